//! RBAC evaluation as the real authorizer does it: ClusterRoleBindings and the RoleBindings of the request's
//! namespace whose subjects match the user, their roles' rules, and `system:masters` as a bypass.
//!
//! Roles and bindings are kept in typed form, with bindings indexed by subject, and brought up to date from
//! the store's change history: a change costs one object, and a request looks only at its user's and
//! groups' bindings, so thousands of bindings stay cheap.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use serde_json::Value;

use super::identity::Identity;
use super::object::meta_str;
use super::request::RequestInfo;
use super::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES};
use super::store::{EventType, Store};

pub const MASTERS: &str = "system:masters";

pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

struct Binding {
    /// As RBAC reasons print it: `ClusterRoleBinding "name"` or `RoleBinding "name/namespace"`.
    describe: String,
    role_kind: String,
    role_name: String,
    /// Who it binds: users (service accounts as their user names) and groups.
    users: Vec<String>,
    groups: Vec<String>,
}

/// The bindings of one scope (a namespace, or "" for ClusterRoleBindings) by subject.
#[derive(Default)]
struct Scope {
    users: HashMap<String, BTreeSet<String>>,
    groups: HashMap<String, BTreeSet<String>>,
}

#[derive(Default)]
struct Index {
    /// The store's RBAC resourceVersion this index reflects.
    rv: u64,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// Roles by namespace, then name.
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    /// Bindings by namespace ("" for ClusterRoleBindings), then name.
    bindings: HashMap<String, HashMap<String, Binding>>,
    scopes: HashMap<String, Scope>,
}

pub struct Authorizer {
    store: Arc<Store>,
    index: RwLock<Index>,
}

impl Authorizer {
    pub fn new(store: Arc<Store>) -> Self {
        Authorizer { store, index: RwLock::new(Index { rv: u64::MAX, ..Default::default() }) }
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
        let index = self.current();
        let namespace = attrs.resource.as_ref().map(|r| r.namespace.as_str()).unwrap_or("");
        for (binding, rules) in index.applicable(user, namespace) {
            if rules.iter().any(|r| rule_allows(r, attrs)) {
                let (kind, name) = if binding.users.contains(&user.user) {
                    ("User", user.user.as_str())
                } else {
                    ("Group", user.groups.iter().find(|g| binding.groups.contains(g)).map_or("", String::as_str))
                };
                let reason = format!("RBAC: allowed by {} of {} \"{}\" to {kind} \"{name}\"", binding.describe, binding.role_kind, binding.role_name);
                return Decision { allowed: true, reason };
            }
        }
        Decision { allowed: false, reason: String::new() }
    }

    /// Every rule that applies to the user in a namespace (for SelfSubjectRulesReview).
    pub fn rules_for(&self, user: &Identity, namespace: &str) -> Vec<PolicyRule> {
        let index = self.current();
        index.applicable(user, namespace).flat_map(|(_, rules)| rules.iter().cloned()).collect()
    }

    /// The index, first brought up to date with the store's RBAC changes (or rebuilt when the store's
    /// history no longer reaches back to it).
    fn current(&self) -> RwLockReadGuard<'_, Index> {
        let target = self.store.rbac_rv();
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        if index.rv == target {
            return index;
        }
        drop(index);
        {
            let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
            if index.rv != target {
                let changes = if index.rv == u64::MAX { None } else { self.store.rbac_changes_since(index.rv) };
                match changes {
                    Some((events, rv)) => {
                        for e in events {
                            index.apply(e.rid, &e.object, e.kind == EventType::Deleted);
                        }
                        index.rv = rv;
                    }
                    None => {
                        let (objects, rv) = self.store.rbac_snapshot();
                        *index = Index { rv, ..Default::default() };
                        for (rid, o) in objects {
                            index.apply(rid, &o, false);
                        }
                    }
                }
            }
        }
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn typed<T: serde::de::DeserializeOwned>(obj: &Value) -> Option<T> {
    serde_json::from_value::<T>(obj.clone()).inspect_err(|e| tracing::warn!(error = %e, "kube-test-apiserver: ignoring an RBAC object it cannot read")).ok()
}

impl Index {
    fn apply(&mut self, rid: usize, obj: &Value, deleted: bool) {
        let (ns, name) = (meta_str(obj, "namespace").to_string(), meta_str(obj, "name").to_string());
        match rid {
            CLUSTER_ROLES => match typed::<ClusterRole>(obj).filter(|_| !deleted) {
                Some(r) => drop(self.cluster_roles.insert(name, r.rules.unwrap_or_default())),
                None => drop(self.cluster_roles.remove(&name)),
            },
            ROLES => match typed::<Role>(obj).filter(|_| !deleted) {
                Some(r) => drop(self.roles.entry(ns).or_default().insert(name, r.rules.unwrap_or_default())),
                None => drop(self.roles.get_mut(&ns).and_then(|roles| roles.remove(&name))),
            },
            CLUSTER_ROLE_BINDINGS => {
                self.unbind(&ns, &name);
                if let Some(b) = typed::<ClusterRoleBinding>(obj).filter(|_| !deleted) {
                    self.bind(ns, name, b.subjects.unwrap_or_default(), b.role_ref);
                }
            }
            ROLE_BINDINGS => {
                self.unbind(&ns, &name);
                if let Some(b) = typed::<RoleBinding>(obj).filter(|_| !deleted) {
                    self.bind(ns, name, b.subjects.unwrap_or_default(), b.role_ref);
                }
            }
            _ => {}
        }
    }

    fn bind(&mut self, ns: String, name: String, subjects: Vec<Subject>, role_ref: RoleRef) {
        let (mut users, mut groups) = (Vec::new(), Vec::new());
        for s in subjects {
            match s.kind.as_str() {
                "User" => users.push(s.name),
                "Group" => groups.push(s.name),
                "ServiceAccount" => {
                    let sa_ns = s.namespace.filter(|n| !n.is_empty()).unwrap_or_else(|| ns.clone());
                    users.push(format!("system:serviceaccount:{sa_ns}:{}", s.name));
                }
                _ => {}
            }
        }
        let scope = self.scopes.entry(ns.clone()).or_default();
        for u in &users {
            scope.users.entry(u.clone()).or_default().insert(name.clone());
        }
        for g in &groups {
            scope.groups.entry(g.clone()).or_default().insert(name.clone());
        }
        let describe = if ns.is_empty() { format!("ClusterRoleBinding \"{name}\"") } else { format!("RoleBinding \"{name}/{ns}\"") };
        let binding = Binding { describe, role_kind: role_ref.kind, role_name: role_ref.name, users, groups };
        self.bindings.entry(ns).or_default().insert(name, binding);
    }

    fn unbind(&mut self, ns: &str, name: &str) {
        let Some(old) = self.bindings.get_mut(ns).and_then(|b| b.remove(name)) else { return };
        if let Some(scope) = self.scopes.get_mut(ns) {
            for (map, keys) in [(&mut scope.users, &old.users), (&mut scope.groups, &old.groups)] {
                for k in keys {
                    if let Some(names) = map.get_mut(k) {
                        names.remove(name);
                        if names.is_empty() {
                            map.remove(k);
                        }
                    }
                }
            }
        }
    }

    /// The bindings that name the user or one of its groups (cluster-wide first, then in the namespace),
    /// with their roles' rules.
    fn applicable<'a>(&'a self, user: &'a Identity, namespace: &'a str) -> impl Iterator<Item = (&'a Binding, &'a [PolicyRule])> + 'a {
        let scopes = std::iter::once("").chain((!namespace.is_empty()).then_some(namespace));
        scopes.flat_map(move |ns| {
            let scope = self.scopes.get(ns);
            let by_user = scope.and_then(|s| s.users.get(&user.user)).into_iter().flatten();
            let by_group = user.groups.iter().filter_map(move |g| scope.and_then(|s| s.groups.get(g))).flatten();
            by_user.chain(by_group).filter_map(move |name| {
                let b = self.bindings.get(ns)?.get(name)?;
                let rules = match b.role_kind.as_str() {
                    "ClusterRole" => self.cluster_roles.get(&b.role_name)?,
                    "Role" if !ns.is_empty() => self.roles.get(ns)?.get(&b.role_name)?,
                    _ => return None,
                };
                Some((b, rules.as_slice()))
            })
        })
    }
}

fn has(list: &Option<Vec<String>>, value: &str) -> bool {
    list.iter().flatten().any(|x| x == "*" || x == value)
}

pub fn rule_allows(rule: &PolicyRule, attrs: &RequestInfo) -> bool {
    if !rule.verbs.iter().any(|v| v == "*" || *v == attrs.verb) {
        return false;
    }
    let Some(r) = &attrs.resource else {
        return rule
            .non_resource_urls
            .iter()
            .flatten()
            .any(|u| u == "*" || *u == attrs.path || u.strip_suffix('*').is_some_and(|prefix| attrs.path.starts_with(prefix)));
    };
    let combined = if r.subresource.is_empty() { r.resource.clone() } else { format!("{}/{}", r.resource, r.subresource) };
    let resource_ok =
        rule.resources.iter().flatten().any(|x| x == "*" || *x == combined || (!r.subresource.is_empty() && *x == format!("*/{}", r.subresource)));
    let names_ok = match &rule.resource_names {
        None => true,
        Some(names) if names.is_empty() => true,
        Some(names) => names.contains(&r.name),
    };
    has(&rule.api_groups, &r.group) && resource_ok && names_ok
}
