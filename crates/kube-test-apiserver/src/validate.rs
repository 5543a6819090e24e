//! Validation of stored objects: each must read as its typed k8s-openapi struct (wrong field types are
//! refused), names must be valid, and RBAC objects must make sense (as the real API server checks them).

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::resources::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, CSRS, NAMESPACES, PODS, RBAC, RESOURCES, ROLE_BINDINGS, ROLES};
use super::status::ApiError;

pub fn object(rid: usize, obj: &Value, name: &str) -> Result<(), ApiError> {
    let def = &RESOURCES[rid];
    let invalid = |field: &str, message: &str| ApiError::invalid(def.group, def.kind, name, field, message);
    let name_ok = if rid == NAMESPACES { is_dns_label(name) } else { is_path_segment(name) };
    if !name_ok {
        return Err(invalid("metadata.name", &format!("Invalid value: {name:?}: not a valid name")));
    }
    fn typed<T: DeserializeOwned>(obj: &Value) -> Result<T, String> {
        serde_json::from_value::<T>(obj.clone()).map_err(|e| e.to_string())
    }
    let decode = |e: String| ApiError::bad_request(format!("cannot read the {}: {e}", def.kind));
    let bindings = |subjects: Option<Vec<Subject>>, kind: &str, role_group: &str, cluster: bool| {
        if role_group != RBAC {
            return Err(invalid("roleRef.apiGroup", &format!("Unsupported value: {role_group:?}: supported values: {RBAC:?}")));
        }
        let kinds: &[&str] = if cluster { &["ClusterRole"] } else { &["ClusterRole", "Role"] };
        if !kinds.contains(&kind) {
            return Err(invalid("roleRef.kind", &format!("Unsupported value: {kind:?}: supported values: {kinds:?}")));
        }
        for (i, s) in subjects.iter().flatten().enumerate() {
            if !matches!(s.kind.as_str(), "User" | "Group" | "ServiceAccount") {
                return Err(invalid(&format!("subjects[{i}].kind"), &format!("Unsupported value: {:?}", s.kind)));
            }
            if s.kind == "ServiceAccount" && cluster && s.namespace.as_deref().is_none_or(str::is_empty) {
                return Err(invalid(&format!("subjects[{i}].namespace"), "Required value"));
            }
        }
        Ok(())
    };
    let rules_ok = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule]| {
        for (i, r) in rules.iter().enumerate() {
            if r.verbs.is_empty() {
                return Err(invalid(&format!("rules[{i}].verbs"), "Required value: verbs must contain at least one value"));
            }
        }
        Ok(())
    };
    match rid {
        NAMESPACES => typed::<Namespace>(obj).map(drop).map_err(decode),
        PODS => typed::<Pod>(obj).map(drop).map_err(decode),
        CLUSTER_ROLES => rules_ok(&typed::<ClusterRole>(obj).map_err(decode)?.rules.unwrap_or_default()),
        ROLES => rules_ok(&typed::<Role>(obj).map_err(decode)?.rules.unwrap_or_default()),
        CLUSTER_ROLE_BINDINGS => {
            let b = typed::<ClusterRoleBinding>(obj).map_err(decode)?;
            bindings(b.subjects, &b.role_ref.kind, &b.role_ref.api_group, true)
        }
        ROLE_BINDINGS => {
            let b = typed::<RoleBinding>(obj).map_err(decode)?;
            bindings(b.subjects, &b.role_ref.kind, &b.role_ref.api_group, false)
        }
        CSRS => typed::<CertificateSigningRequest>(obj).map(drop).map_err(decode),
        _ => Ok(()),
    }
}

/// RFC 1123 label: what namespace names must be.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') && !s.starts_with('-') && !s.ends_with('-')
}

/// What RBAC and CSR names must be: usable as one URL path segment.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '%']) && s.len() <= 253
}
