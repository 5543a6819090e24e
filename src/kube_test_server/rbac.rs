//! RBAC evaluation as the real authorizer does it: ClusterRoleBindings and the RoleBindings of the request's
//! namespace whose subjects match the user, their roles' rules, and `system:masters` as a bypass.
//!
//! Bindings and roles are compiled from the store into typed form once per change (not per request).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use serde::de::DeserializeOwned;

use super::identity::Identity;
use super::request::RequestInfo;
use super::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES};
use super::store::Store;

pub const MASTERS: &str = "system:masters";

pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

struct Binding {
    /// `name` for ClusterRoleBindings, `name/namespace` for RoleBindings (as RBAC reasons print them).
    describe: String,
    subjects: Vec<Subject>,
    role_kind: String,
    role_name: String,
}

#[derive(Default)]
struct Compiled {
    generation: u64,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_bindings: Vec<Binding>,
    bindings: HashMap<String, Vec<Binding>>,
}

pub struct Authorizer {
    store: Arc<Store>,
    cache: RwLock<Arc<Compiled>>,
}

impl Authorizer {
    pub fn new(store: Arc<Store>) -> Self {
        Authorizer { store, cache: RwLock::new(Arc::new(Compiled { generation: u64::MAX, ..Default::default() })) }
    }

    pub fn authorize(&self, user: &Identity, attrs: &RequestInfo) -> Decision {
        let masters = user.groups.iter().any(|g| g == MASTERS);
        if masters && attrs.verb != "impersonate" {
            return Decision { allowed: true, reason: String::new() };
        }
        // Deliberate difference from Kubernetes: membership of system:masters (its bypass, and its binding to
        // cluster-admin) does not allow impersonation, so that the connector's service account is the only
        // seeded identity that may impersonate.
        if masters {
            let mut without = user.clone();
            without.groups.retain(|g| g != MASTERS);
            return self.authorize(&without, attrs);
        }
        let compiled = self.compiled();
        let namespace = attrs.resource.as_ref().map(|r| r.namespace.as_str()).unwrap_or("");
        for (binding, rules) in compiled.applicable(user, namespace) {
            if rules.iter().any(|r| rule_allows(r, attrs)) {
                let (kind, name) = matched_subject(binding, user);
                let reason = format!(
                    "RBAC: allowed by {} \"{}\" of {} \"{}\" to {kind} \"{name}\"",
                    if binding.describe.contains('/') { "RoleBinding" } else { "ClusterRoleBinding" },
                    binding.describe,
                    binding.role_kind,
                    binding.role_name
                );
                return Decision { allowed: true, reason };
            }
        }
        Decision { allowed: false, reason: String::new() }
    }

    /// Every rule that applies to the user in a namespace (for SelfSubjectRulesReview).
    pub fn rules_for(&self, user: &Identity, namespace: &str) -> Vec<PolicyRule> {
        let compiled = self.compiled();
        compiled.applicable(user, namespace).flat_map(|(_, rules)| rules.iter().cloned()).collect()
    }

    fn compiled(&self) -> Arc<Compiled> {
        let generation = self.store.rbac_generation();
        {
            let cached = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if cached.generation == generation {
                return cached.clone();
            }
        }
        let compiled = Arc::new(compile(&self.store, generation));
        *self.cache.write().unwrap_or_else(|e| e.into_inner()) = compiled.clone();
        compiled
    }
}

impl Compiled {
    /// The matching bindings (cluster-wide first, then the namespace's) with their roles' rules.
    fn applicable<'a>(
        &'a self,
        user: &'a Identity,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Binding, &'a [PolicyRule])> + 'a {
        let cluster = self.cluster_bindings.iter().map(move |b| (b, None));
        let local = self.bindings.get(namespace).into_iter().flatten().map(move |b| (b, Some(namespace)));
        cluster.chain(local).filter_map(move |(b, ns)| {
            if !b.subjects.iter().any(|s| subject_matches(s, user, ns)) {
                return None;
            }
            let rules = match (b.role_kind.as_str(), ns) {
                ("ClusterRole", _) => self.cluster_roles.get(&b.role_name),
                ("Role", Some(ns)) => self.roles.get(&(ns.to_string(), b.role_name.clone())),
                _ => None,
            };
            rules.map(|r| (b, r.as_slice()))
        })
    }
}

fn compile(store: &Store, generation: u64) -> Compiled {
    fn typed<T: DeserializeOwned>(store: &Store, rid: usize) -> Vec<T> {
        let (items, _) = store.list(rid, None);
        items
            .iter()
            .filter_map(|o| match serde_json::from_value::<T>((**o).clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "kube-test-apiserver: ignoring an RBAC object it cannot read");
                    None
                }
            })
            .collect()
    }
    let mut c = Compiled { generation, ..Default::default() };
    for r in typed::<ClusterRole>(store, CLUSTER_ROLES) {
        c.cluster_roles.insert(r.metadata.name.unwrap_or_default(), r.rules.unwrap_or_default());
    }
    for r in typed::<Role>(store, ROLES) {
        c.roles.insert(
            (r.metadata.namespace.unwrap_or_default(), r.metadata.name.unwrap_or_default()),
            r.rules.unwrap_or_default(),
        );
    }
    for b in typed::<ClusterRoleBinding>(store, CLUSTER_ROLE_BINDINGS) {
        c.cluster_bindings.push(Binding {
            describe: b.metadata.name.unwrap_or_default(),
            subjects: b.subjects.unwrap_or_default(),
            role_kind: b.role_ref.kind,
            role_name: b.role_ref.name,
        });
    }
    for b in typed::<RoleBinding>(store, ROLE_BINDINGS) {
        let ns = b.metadata.namespace.unwrap_or_default();
        c.bindings.entry(ns.clone()).or_default().push(Binding {
            describe: format!("{}/{ns}", b.metadata.name.unwrap_or_default()),
            subjects: b.subjects.unwrap_or_default(),
            role_kind: b.role_ref.kind,
            role_name: b.role_ref.name,
        });
    }
    c
}

fn subject_matches(s: &Subject, user: &Identity, binding_namespace: Option<&str>) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.user,
        "Group" => user.groups.iter().any(|g| *g == s.name),
        "ServiceAccount" => {
            let ns = s.namespace.as_deref().filter(|n| !n.is_empty()).or(binding_namespace).unwrap_or("");
            user.user == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

fn matched_subject<'a>(b: &'a Binding, user: &'a Identity) -> (&'a str, &'a str) {
    b.subjects
        .iter()
        .find(|s| subject_matches(s, user, b.describe.split_once('/').map(|(_, ns)| ns)))
        .map(|s| (s.kind.as_str(), s.name.as_str()))
        .unwrap_or(("User", user.user.as_str()))
}

fn has(list: &Option<Vec<String>>, value: &str) -> bool {
    list.iter().flatten().any(|x| x == "*" || x == value)
}

pub fn rule_allows(rule: &PolicyRule, attrs: &RequestInfo) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || *v == attrs.verb) {
        return false;
    }
    let Some(r) = &attrs.resource else {
        return rule.non_resource_urls.iter().flatten().any(|u| {
            u == "*" || *u == attrs.path || u.strip_suffix('*').is_some_and(|prefix| attrs.path.starts_with(prefix))
        });
    };
    let combined =
        if r.subresource.is_empty() { r.resource.clone() } else { format!("{}/{}", r.resource, r.subresource) };
    let resource_ok = rule
        .resources
        .iter()
        .flatten()
        .any(|x| x == "*" || *x == combined || (!r.subresource.is_empty() && *x == format!("*/{}", r.subresource)));
    let names_ok = match &rule.resource_names {
        None => true,
        Some(names) if names.is_empty() => true,
        Some(names) => names.iter().any(|n| *n == r.name),
    };
    has(&rule.api_groups, &r.group) && resource_ok && names_ok
}
