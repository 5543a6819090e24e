//! Who is asking: bearer tokens and client certificates (authentication), then the `Impersonate-*`
//! headers, which RBAC must allow with the `impersonate` verb, as in Kubernetes.

use std::collections::HashMap;
use std::sync::RwLock;

use http::HeaderMap;

use super::rbac::Authorizer;
use super::request::{RequestInfo, ResourceAttrs};
use super::status::ApiError;

pub const AUTHENTICATED: &str = "system:authenticated";

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// A user with `groups` plus `system:authenticated`, which every authenticated user has.
    pub fn new(user: impl Into<String>, groups: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        Identity { user: user.into(), groups }
    }

    /// `system:serviceaccount:NS:NAME` with the groups Kubernetes gives service accounts.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Identity::new(
            format!("system:serviceaccount:{namespace}:{name}"),
            ["system:serviceaccounts".to_string(), format!("system:serviceaccounts:{namespace}")],
        )
    }
}

/// The identity of the TLS client certificate of a connection, if it sent one the CA signed; put in
/// every request's extensions by the connection handler.
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Option<Identity>);

#[derive(Default)]
pub struct Authenticator {
    tokens: RwLock<HashMap<String, Identity>>,
}

impl Authenticator {
    pub fn add_token(&self, token: String, identity: Identity) {
        self.tokens.write().unwrap_or_else(|e| e.into_inner()).insert(token, identity);
    }

    /// A verified client certificate wins over a token, as in Kubernetes' union authenticator.
    pub fn authenticate(&self, headers: &HeaderMap, peer: Option<&PeerIdentity>) -> Result<Identity, ApiError> {
        if let Some(PeerIdentity(Some(identity))) = peer {
            return Ok(identity.clone());
        }
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        token.and_then(|t| self.tokens.read().unwrap_or_else(|e| e.into_inner()).get(t).cloned()).ok_or_else(ApiError::unauthorized)
    }
}

/// Applies `Impersonate-User` / `Impersonate-Group` / `Impersonate-Uid` / `Impersonate-Extra-*` after checking,
/// one by one and in Kubernetes' order, that the requester may impersonate each of them.
pub fn impersonate(authz: &Authorizer, requester: Identity, headers: &HeaderMap) -> Result<Identity, ApiError> {
    // kube-apiserver reads header values as raw bytes into Go strings: UTF-8 names arrive as they were sent
    // (invalid UTF-8 is replaced, as Go's JSON encoder does when it writes the name back)
    let text = |v: &http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let values = |name: &str| -> Vec<String> { headers.get_all(name).iter().map(text).collect() };
    let user = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid");
    let extras: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| Some((k.as_str().strip_prefix("impersonate-extra-")?.to_string(), text(v)))).collect();
    let Some(user) = user else {
        if groups.is_empty() && uid.is_empty() && extras.is_empty() {
            return Ok(requester);
        }
        return Err(ApiError::bad_request("requested impersonation of groups, extras or a uid without impersonating a user"));
    };

    let check = |group: &str, resource: &str, namespace: &str, name: &str| -> Result<(), ApiError> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let attrs = RequestInfo {
            verb: "impersonate".into(),
            path: String::new(),
            resource: Some(ResourceAttrs {
                group: group.into(),
                resource: resource.into(),
                subresource: subresource.into(),
                namespace: namespace.into(),
                name: name.into(),
                ..Default::default()
            }),
        };
        if authz.authorize(&requester, &attrs).allowed {
            return Ok(());
        }
        tracing::debug!(user = %requester.user, resource, name, "kube-test-apiserver: impersonation refused");
        Err(ApiError::forbidden(group, resource, name, &super::handlers::forbidden_message(&requester, &attrs)))
    };

    let service_account = user.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':'));
    match service_account {
        Some((ns, name)) => check("", "serviceaccounts", ns, name)?,
        None => check("", "users", "", &user)?,
    }
    for g in &groups {
        check("", "groups", "", g)?;
    }
    for (key, value) in &extras {
        check("authentication.k8s.io", &format!("userextras/{key}"), "", value)?;
    }
    for u in &uid {
        check("authentication.k8s.io", "uids", "", u)?;
    }

    // Kubernetes adds the service-account groups when none are given, and system:authenticated always
    // (except for system:anonymous).
    let mut identity = match (service_account, groups.is_empty()) {
        (Some((ns, name)), true) => Identity::service_account(ns, name),
        _ => Identity::new(user.clone(), groups),
    };
    if user == "system:anonymous" {
        identity.groups.retain(|g| g != AUTHENTICATED);
    }
    Ok(identity)
}
