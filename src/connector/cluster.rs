//! What the connector learns from its cluster and reports to the server: the version, the namespaces,
//! the roles grants may name, and the cluster's identity (a hash of its CA). It also installs the
//! product's own ClusterRoles (`logs`, `exec`, `port-forward`) when they are missing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::model::BUILTIN_KUBERNETES_ROLES;

/// Label on everything the connector creates; it never touches objects without it.
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "infra";
/// A ClusterRole with this label set to "true" is offered to grants like the built-in ones.
pub const INCLUDE_ROLE_LABEL: &str = "infra.rs/include-role";

/// The namespaces and roles the cluster offers, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub namespaces: Vec<String>,
    pub roles: Vec<String>,
}

pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY_KEY.to_string(), MANAGED_BY_VALUE.to_string())])
}

pub fn managed_selector() -> String {
    format!("{MANAGED_BY_KEY}={MANAGED_BY_VALUE}")
}

pub async fn kubernetes_version(client: &Client) -> Result<String, kube::Error> {
    Ok(client.apiserver_version().await?.git_version)
}

pub async fn facts(client: &Client) -> Result<Facts, kube::Error> {
    let mut namespaces: Vec<String> =
        Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await?.items.into_iter().filter_map(|n| n.metadata.name).collect();
    namespaces.sort();
    let mut roles: Vec<String> = Api::<ClusterRole>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(is_offered)
        .filter_map(|r| r.metadata.name)
        .collect();
    roles.sort();
    Ok(Facts { namespaces, roles })
}

fn is_offered(role: &ClusterRole) -> bool {
    let name = role.metadata.name.as_deref().unwrap_or_default();
    let labels = role.metadata.labels.as_ref();
    BUILTIN_KUBERNETES_ROLES.contains(&name)
        || PRODUCT_ROLES.iter().any(|(n, _)| *n == name)
        || labels.and_then(|l| l.get(INCLUDE_ROLE_LABEL)).is_some_and(|v| v == "true")
}

/// The product's roles: narrow rights people often need alone.
const PRODUCT_ROLES: &[(&str, &str)] = &[("logs", "pods/log"), ("exec", "pods/exec"), ("port-forward", "pods/portforward")];

fn product_role(name: &str, subresource: &str) -> ClusterRole {
    let read_pods = PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["pods".into()]),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..Default::default()
    };
    // reading logs is a `get`; exec and port-forward open a stream with `create` (and `get` for old clients)
    let verbs = if subresource == "pods/log" { vec!["get".into()] } else { vec!["create".into(), "get".into()] };
    let sub = PolicyRule { api_groups: Some(vec![String::new()]), resources: Some(vec![subresource.into()]), verbs, ..Default::default() };
    ClusterRole {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(managed_labels()), ..Default::default() },
        rules: Some(vec![read_pods, sub]),
        ..Default::default()
    }
}

/// Creates the product's ClusterRoles that are missing. Existing ones are left as they are.
pub async fn ensure_product_roles(client: &Client) -> Result<Vec<String>, kube::Error> {
    let api = Api::<ClusterRole>::all(client.clone());
    let mut created = Vec::new();
    for (name, subresource) in PRODUCT_ROLES {
        if api.get_opt(name).await?.is_none() {
            match api.create(&PostParams::default(), &product_role(name, subresource)).await {
                Ok(_) => created.push(name.to_string()),
                // another connector replica created it first
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(created)
}
