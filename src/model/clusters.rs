//! Clusters (destinations) and what passes between the server and a cluster's connector.

use super::{Grant, Millis, Page};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    Connected,
    Disconnected,
    Pending,
}

impl ClusterStatus {
    pub fn label(self) -> &'static str {
        match self {
            ClusterStatus::Connected => "connected",
            ClusterStatus::Disconnected => "disconnected",
            ClusterStatus::Pending => "pending",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: i64,
    pub name: String,
    pub unique_id: String,
    pub endpoint: String,
    pub ca: String,
    pub kubernetes_version: String,
    pub connector_version: String,
    pub namespaces: Vec<String>,
    pub roles: Vec<String>,
    pub status: ClusterStatus,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
    /// what the connector could not apply, in sentences (a grant to a missing namespace or role)
    #[serde(default)]
    pub problems: Vec<String>,
}

/// What a connector sends when it registers and on every heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationRegistration {
    pub name: String,
    /// hash of the cluster CA
    pub unique_id: String,
    /// URL of the connector's authenticating proxy
    pub endpoint: String,
    /// PEM of the proxy's CA
    pub ca: String,
    pub kubernetes_version: String,
    #[serde(default)]
    pub connector_version: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// grants the connector could not turn into bindings, in sentences; empty when all is well
    #[serde(default)]
    pub problems: Vec<String>,
}

/// What a cluster's connector should make true: one binding per role and scope, with its subjects.
/// `version` changes whenever the content does; the connector long-polls with the version it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredBindings {
    pub version: String,
    pub bindings: Vec<DesiredBinding>,
    /// credentials the proxy must refuse from now on, though their tokens have not expired
    #[serde(default)]
    pub revoked: Revoked,
    /// the current members (emails) of every group with a grant on this cluster: the proxy impersonates
    /// a user's groups from here, not from the token, so leaving a group takes effect within seconds
    #[serde(default)]
    pub members: std::collections::BTreeMap<String, Vec<String>>,
    /// break-glass client certificates the connector is to have the cluster sign
    #[serde(default)]
    pub certificates: Vec<CertificateRequest>,
}

/// A CSR (PEM) the cluster is to sign with `kubernetes.io/kube-apiserver-client`, and what it must
/// say: the connector signs it only if its subject is CN = `user`, O = `groups` (the user's groups
/// with a grant on the cluster, no `system:` group) and the lifetime is within Kubernetes' minimum and
/// `max_expiration_secs`, the admin's maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest {
    pub id: i64,
    pub csr: String,
    pub expiration_secs: i64,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub max_expiration_secs: i64,
}

/// A Kubernetes name reserved for the cluster itself (`system:masters`, `system:nodes` ...): never a
/// user's or group's name in a client certificate infra has signed.
pub fn is_kubernetes_system_name(name: &str) -> bool {
    name.trim_start().get(..7).is_some_and(|p| p.eq_ignore_ascii_case("system:"))
}

/// The connector's answer to a [`CertificateRequest`]: the certificate and where users reach the API
/// server directly (its URL and CA, PEM; the CA is empty when a public authority signs it), or an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub api_server: String,
    #[serde(default)]
    pub api_server_ca: String,
    #[serde(default)]
    pub error: String,
}

/// Revoked access keys (by key id, the `sid` claim) and disabled or deleted users (by id, the `uid`
/// claim). Tokens naming either are refused by the proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub keys: Vec<String>,
    pub users: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DesiredBinding {
    pub role: String,
    /// empty for a ClusterRoleBinding (the whole cluster)
    #[serde(default)]
    pub namespace: String,
    pub subjects: Vec<BindingSubject>,
}

/// A Kubernetes RBAC subject: `User` (named by email) or `Group` (named by group name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BindingSubject {
    pub kind: String,
    pub name: String,
}

/// One request the proxy forwarded, reported to the server's audit log in batches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxiedRequest {
    pub at: Millis,
    pub user: String,
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    pub status: u16,
    #[serde(default)]
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterDetail {
    pub destination: Destination,
    /// one page of the cluster's access list (empty for those who may not read it)
    pub grants: Page<Grant>,
}
