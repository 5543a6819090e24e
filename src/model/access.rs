//! Grants: who has which role where, and what a signed-in user can reach.

use super::{ClusterStatus, Millis, Subject};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: i64,
    pub subject: Subject,
    pub role: String,
    /// `infra`, `cluster` or `cluster.namespace`
    pub resource: String,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewGrant {
    /// `user:<email>`, `group:<name>`, or a bare email or group name
    pub subject: String,
    pub role: String,
    pub resource: String,
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

/// One cluster (and namespace) the signed-in user can reach, and through which grants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub resource: String,
    pub role: String,
    /// `direct` or `group <name>`
    pub via: String,
    pub expires_at: Option<Millis>,
    pub cluster_status: Option<ClusterStatus>,
}

/// Roles every Kubernetes cluster has; a cluster whose connector has not reported its roles yet offers these.
/// `logs`, `exec` and `port-forward` are ClusterRoles the connector installs and reports.
pub const BUILTIN_KUBERNETES_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];
/// The product's own roles on the `infra` resource.
pub const INFRA_ROLES: [&str; 3] = ["admin", "view", "connector"];
pub const INFRA_RESOURCE: &str = "infra";
