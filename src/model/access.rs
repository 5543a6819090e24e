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

/// A grant's resource: `infra`, a cluster, or `cluster.namespace`. The one place that builds and splits
/// that text: the services, the console's forms and the connector all go through it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    /// the cluster, or `infra`
    pub destination: String,
    /// empty for the whole cluster
    pub namespace: String,
}

/// Why a resource text is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("must be `infra`, a cluster, or `cluster.namespace`")]
    Shape,
    #[error("`infra` has no namespaces")]
    InfraNamespace,
    #[error("{0:?} is not a valid namespace name")]
    Namespace(String),
}

impl Resource {
    /// A cluster, or one of its namespaces when `namespace` (trimmed) is not empty.
    pub fn new(destination: &str, namespace: &str) -> Resource {
        Resource { destination: destination.trim().to_string(), namespace: namespace.trim().to_string() }
    }

    pub fn parse(resource: &str) -> Result<Resource, ResourceError> {
        let resource = resource.trim();
        let (destination, namespace) = resource.split_once('.').unwrap_or((resource, ""));
        if destination.is_empty() || namespace.contains('.') || (resource.contains('.') && namespace.is_empty()) {
            return Err(ResourceError::Shape);
        }
        if destination == INFRA_RESOURCE && !namespace.is_empty() {
            return Err(ResourceError::InfraNamespace);
        }
        if !namespace.is_empty() && !is_dns_label(namespace) {
            return Err(ResourceError::Namespace(namespace.to_string()));
        }
        Ok(Resource::new(destination, namespace))
    }

    pub fn render(destination: &str, namespace: &str) -> String {
        if namespace.is_empty() { destination.to_string() } else { format!("{destination}.{namespace}") }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Resource::render(&self.destination, &self.namespace))
    }
}

/// A Kubernetes-style name (clusters, namespaces): lowercase letters, digits and '-', starting and
/// ending alphanumeric, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !s.starts_with('-') && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::{Resource, ResourceError, is_dns_label};

    #[test]
    fn resources_parse_and_render_back() {
        for text in ["infra", "prod", "prod.web", " prod.web "] {
            let r = Resource::parse(text).expect(text);
            assert_eq!(r.to_string(), text.trim());
        }
        assert_eq!(Resource::parse("prod.web"), Ok(Resource::new("prod", "web")));
        assert_eq!(Resource::new("prod", " ").to_string(), "prod");
        assert_eq!(Resource::parse(""), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("prod."), Err(ResourceError::Shape));
        assert_eq!(Resource::parse(".web"), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("a.b.c"), Err(ResourceError::Shape));
        assert_eq!(Resource::parse("infra.web"), Err(ResourceError::InfraNamespace));
        assert_eq!(Resource::parse("prod.Web"), Err(ResourceError::Namespace("Web".into())));
    }

    #[test]
    fn cluster_and_namespace_names_are_dns_labels() {
        for good in ["prod", "a", "web-1", "0abc", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good:?}");
        }
        for bad in ["", "-prod", "prod-", "Prod", "prod.web", "pröd", "a b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad:?}");
        }
    }
}
