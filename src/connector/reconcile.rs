//! Turns the server's desired bindings into RBAC objects and converges the cluster to them.
//!
//! Each (role, namespace) pair becomes one binding named `infra:<role>`: a ClusterRoleBinding for the
//! whole cluster, a RoleBinding in a namespace. The connector labels what it creates and only ever
//! lists, changes or deletes objects carrying its label, so bindings made by anyone else are safe.
//! Running it twice changes nothing the second time; after a restart or a hand edit it converges again.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use super::cluster::{self, Facts};
use crate::model::{BindingSubject, DesiredBinding, Resource};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// What one pass did, and the grants it could not apply (in sentences for the console).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub problems: Vec<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.deleted > 0
    }
}

pub fn binding_name(role: &str) -> String {
    format!("infra:{role}")
}

fn subjects(desired: &[BindingSubject]) -> Vec<Subject> {
    desired.iter().map(|s| Subject { kind: s.kind.clone(), name: s.name.clone(), api_group: Some(RBAC_GROUP.into()), namespace: None }).collect()
}

/// The subjects of an existing binding in the form the server sends, for comparison.
fn subject_keys(subjects: Option<&Vec<Subject>>) -> BTreeSet<(String, String)> {
    subjects.into_iter().flatten().map(|s| (s.kind.clone(), s.name.clone())).collect()
}

fn wanted_keys(desired: &DesiredBinding) -> BTreeSet<(String, String)> {
    desired.subjects.iter().map(|s| (s.kind.clone(), s.name.clone())).collect()
}

fn role_ref(role: &str) -> RoleRef {
    RoleRef { api_group: RBAC_GROUP.into(), kind: "ClusterRole".into(), name: role.into() }
}

fn meta(name: String, namespace: Option<String>, role: &str) -> ObjectMeta {
    let mut labels = cluster::managed_labels();
    labels.insert("infra.rs/role".into(), role.into());
    ObjectMeta { name: Some(name), namespace, labels: Some(labels), ..Default::default() }
}

fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels.as_ref().and_then(|l| l.get(cluster::MANAGED_BY_KEY)).is_some_and(|v| v == cluster::MANAGED_BY_VALUE)
}

/// Converges the cluster's bindings to `desired`. `facts` are the namespaces and roles the cluster has
/// now; a grant naming one that does not exist is reported, not applied.
pub async fn reconcile(client: &Client, cluster_name: &str, desired: &[DesiredBinding], facts: &Facts) -> Result<Report, kube::Error> {
    let mut report = Report::default();
    let selector = ListParams::default().labels(&cluster::managed_selector());
    let crb_api = Api::<ClusterRoleBinding>::all(client.clone());
    let mut owned_crbs: BTreeMap<String, ClusterRoleBinding> =
        crb_api.list(&selector).await?.items.into_iter().filter(|b| is_managed(&b.metadata)).filter_map(|b| Some((b.metadata.name.clone()?, b))).collect();
    let mut owned_rbs: BTreeMap<(String, String), RoleBinding> = Api::<RoleBinding>::all(client.clone())
        .list(&selector)
        .await?
        .items
        .into_iter()
        .filter(|b| is_managed(&b.metadata))
        .filter_map(|b| Some(((b.metadata.namespace.clone()?, b.metadata.name.clone()?), b)))
        .collect();

    for want in desired {
        if !facts.roles.iter().any(|r| r == &want.role) {
            report.problems.push(format!("{} on {}: the cluster has no role {}", want.role, Resource::render(cluster_name, &want.namespace), want.role));
            continue;
        }
        if !want.namespace.is_empty() && !facts.namespaces.iter().any(|n| n == &want.namespace) {
            report.problems.push(format!("{} on {}: namespace {} does not exist", want.role, Resource::render(cluster_name, &want.namespace), want.namespace));
            continue;
        }
        let name = binding_name(&want.role);
        if want.namespace.is_empty() {
            let existing = owned_crbs.remove(&name);
            apply(&crb_api, want, &name, existing, cluster_name, &mut report).await?;
        } else {
            let existing = owned_rbs.remove(&(want.namespace.clone(), name.clone()));
            let api = Api::<RoleBinding>::namespaced(client.clone(), &want.namespace);
            apply(&api, want, &name, existing, cluster_name, &mut report).await?;
        }
    }

    // what is still in the owned maps was not wanted: stale
    for name in owned_crbs.into_keys() {
        delete_ignoring_gone(&crb_api, &name).await?;
        report.deleted += 1;
    }
    for (namespace, name) in owned_rbs.into_keys() {
        delete_ignoring_gone(&Api::<RoleBinding>::namespaced(client.clone(), &namespace), &name).await?;
        report.deleted += 1;
    }
    Ok(report)
}

/// The two binding kinds, seen alike.
trait Binding: kube::Resource<DynamicType = ()> + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug {
    fn build(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self;
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> Option<&Vec<Subject>>;
}

impl Binding for ClusterRoleBinding {
    fn build(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self {
        ClusterRoleBinding { metadata, role_ref, subjects: Some(subjects) }
    }
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
}

impl Binding for RoleBinding {
    fn build(metadata: ObjectMeta, role_ref: RoleRef, subjects: Vec<Subject>) -> Self {
        RoleBinding { metadata, role_ref, subjects: Some(subjects) }
    }
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> Option<&Vec<Subject>> {
        self.subjects.as_ref()
    }
}

/// Creates, updates or re-creates one binding so that it matches `want`.
async fn apply<K: Binding>(
    api: &Api<K>,
    want: &DesiredBinding,
    name: &str,
    existing: Option<K>,
    cluster_name: &str,
    report: &mut Report,
) -> Result<(), kube::Error> {
    let namespace = (!want.namespace.is_empty()).then(|| want.namespace.clone());
    let object = K::build(meta(name.into(), namespace, &want.role), role_ref(&want.role), subjects(&want.subjects));
    match existing {
        None => create(api, &object, name, cluster_name, report).await,
        Some(current) if current.role_ref() != object.role_ref() => {
            // a binding's roleRef cannot change in place
            delete_ignoring_gone(api, name).await?;
            create(api, &object, name, cluster_name, report).await
        }
        Some(current) => {
            if subject_keys(current.subjects()) != wanted_keys(want) || labels_differ(current.meta(), object.meta()) {
                let mut object = object;
                object.meta_mut().resource_version = current.meta().resource_version.clone();
                api.replace(name, &PostParams::default(), &object).await?;
                report.updated += 1;
            }
            Ok(())
        }
    }
}

fn labels_differ(current: &ObjectMeta, wanted: &ObjectMeta) -> bool {
    let current = current.labels.clone().unwrap_or_default();
    wanted.labels.iter().flatten().any(|(k, v)| current.get(k) != Some(v))
}

/// Creates a binding; if one of that name exists without our label, reports it and leaves it alone.
async fn create<K>(api: &Api<K>, object: &K, name: &str, cluster_name: &str, report: &mut Report) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => {
            report.created += 1;
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let namespace = object.meta().namespace.clone().unwrap_or_default();
            report
                .problems
                .push(format!("{}: a binding named {name} exists that infra does not manage; rename or remove it", Resource::render(cluster_name, &namespace)));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn delete_ignoring_gone<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
