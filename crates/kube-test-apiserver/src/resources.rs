//! The resource types the test server serves: one table drives discovery, routing, storage and RBAC.

/// A subresource as discovery lists it (`pods/log`).
pub struct Sub {
    pub name: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub subresources: &'static [Sub],
    /// Stored objects; the reviews are answered and forgotten, as in Kubernetes.
    pub stored: bool,
    /// PUT on a missing object creates it (true for the RBAC types in Kubernetes).
    pub create_on_update: bool,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn is_rbac(&self) -> bool {
        self.group == RBAC
    }
}

pub const RBAC: &str = "rbac.authorization.k8s.io";
pub const CERTIFICATES: &str = "certificates.k8s.io";
const ALL: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const CREATE: &[&str] = &["create"];

const fn def(group: &'static str, plural: &'static str, singular: &'static str, kind: &'static str, namespaced: bool) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        verbs: ALL,
        short_names: &[],
        subresources: &[],
        stored: true,
        create_on_update: false,
    }
}

const fn review(group: &'static str, plural: &'static str, singular: &'static str, kind: &'static str) -> ResourceDef {
    ResourceDef { verbs: CREATE, stored: false, ..def(group, plural, singular, kind, false) }
}

const fn rbac(plural: &'static str, singular: &'static str, kind: &'static str, namespaced: bool) -> ResourceDef {
    ResourceDef { create_on_update: true, ..def(RBAC, plural, singular, kind, namespaced) }
}

/// Indexed by resource id (`rid`): the store keeps one table per entry.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
        short_names: &["ns"],
        ..def("", "namespaces", "namespace", "Namespace", false)
    },
    ResourceDef {
        short_names: &["po"],
        subresources: &[
            Sub { name: "exec", kind: "PodExecOptions", verbs: &["create", "get"] },
            Sub { name: "portforward", kind: "PodPortForwardOptions", verbs: &["create", "get"] },
            Sub { name: "log", kind: "Pod", verbs: &["get"] },
        ],
        ..def("", "pods", "pod", "Pod", true)
    },
    rbac("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false),
    rbac("clusterroles", "clusterrole", "ClusterRole", false),
    rbac("rolebindings", "rolebinding", "RoleBinding", true),
    rbac("roles", "role", "Role", true),
    review("authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview"),
    review("authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview"),
    review("authorization.k8s.io", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview"),
    review("authorization.k8s.io", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview"),
    ResourceDef {
        short_names: &["csr"],
        subresources: &[
            Sub { name: "approval", kind: "CertificateSigningRequest", verbs: &["get", "patch", "update"] },
            Sub { name: "status", kind: "CertificateSigningRequest", verbs: &["get", "patch", "update"] },
        ],
        ..def(CERTIFICATES, "certificatesigningrequests", "certificatesigningrequest", "CertificateSigningRequest", false)
    },
];

pub const NAMESPACES: usize = 0;
pub const PODS: usize = 1;
pub const CLUSTER_ROLE_BINDINGS: usize = 2;
pub const CLUSTER_ROLES: usize = 3;
pub const ROLE_BINDINGS: usize = 4;
pub const ROLES: usize = 5;
pub const CSRS: usize = 10;

/// The group versions served, in discovery order.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.group == group && r.version == version && r.plural == plural)
}
