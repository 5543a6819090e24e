//! CertificateSigningRequests: the requester's identity is recorded at creation, approval (the `approval`
//! subresource, which also needs `approve` on the signer) and, for `kubernetes.io/kube-apiserver-client`,
//! signing by the cluster CA at once (in Kubernetes a controller does it moments later).

use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::certs;
use super::handlers::{Ctx, content_type, decode_body, forbidden_message, read_body};
use super::identity::Identity;
use super::object;
use super::request::{RequestInfo, ResourceAttrs};
use super::resources::CERTIFICATES;
use super::status::ApiError;
use super::store::Change;
use super::validate;

pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
const MIN_SECONDS: i64 = 600;
/// Kubernetes' default --cluster-signing-duration, also the longest certificate it issues.
const MAX_SECONDS: i64 = 365 * 24 * 3600;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Checks the request and records who asked (whatever the client put in spec.username and friends).
pub fn prepare_create(obj: &mut Value, user: &Identity) -> Result<(), ApiError> {
    let name = object::meta_str(obj, "name").to_string();
    let invalid = |field: &str, message: &str| ApiError::invalid(CERTIFICATES, "CertificateSigningRequest", &name, field, message);
    let request = obj.pointer("/spec/request").and_then(Value::as_str).unwrap_or("");
    let pem = b64().decode(request).map_err(|_| invalid("spec.request", "Invalid value: not base64 PEM"))?;
    certs::parse_csr(&pem).map_err(|e| invalid("spec.request", &format!("Invalid value: {e}")))?;
    if obj.pointer("/spec/signerName").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(invalid("spec.signerName", "Required value"));
    }
    if let Some(seconds) = obj.pointer("/spec/expirationSeconds").and_then(Value::as_i64)
        && seconds < MIN_SECONDS
    {
        return Err(invalid("spec.expirationSeconds", &format!("Invalid value: {seconds}: may not specify a duration less than 600 seconds (10 minutes)")));
    }
    let spec = obj["spec"].as_object_mut().ok_or_else(|| invalid("spec", "Required value"))?;
    spec.insert("username".into(), user.user.clone().into());
    spec.insert("groups".into(), json!(user.groups));
    spec.remove("uid");
    spec.remove("extra");
    obj["status"] = json!({});
    Ok(())
}

/// PUT or PATCH on `approval` (conditions only) or `status` (the whole status, for external signers).
pub async fn update_subresource(ctx: &Ctx, req: Request) -> Result<Response, ApiError> {
    let kind = content_type(&req);
    let body = read_body(req).await?;
    // A patch is JSON whatever the content type says (merge or JSON patch); a PUT may be protobuf.
    let body: Value = if ctx.verb == "patch" {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the patch is not JSON: {e}")))?
    } else {
        decode_body(&kind, &body)?
    };
    let approval = ctx.attrs.subresource == "approval";
    let current = ctx.app.store.get(ctx.rid, "", ctx.name()).ok_or_else(|| ctx.not_found())?;
    if approval {
        let signer = current.pointer("/spec/signerName").and_then(Value::as_str).unwrap_or("");
        may_approve(ctx, signer)?;
    }
    let outcome = ctx.app.store.mutate(ctx.rid, "", ctx.name(), |cur| {
        let cur = cur.ok_or_else(|| ctx.not_found())?;
        // The object as the client wants it: the body for PUT, the patched object for PATCH.
        let wanted = if ctx.verb == "patch" {
            let mut next = (**cur).clone();
            match kind.as_str() {
                "application/json-patch+json" => super::patch::json_patch(&mut next, &body).map_err(|e| ApiError::new(422, "Invalid", e))?,
                _ => super::patch::merge(&mut next, &body),
            }
            next
        } else {
            body.clone()
        };
        let rv = object::meta_str(&wanted, "resourceVersion");
        if !rv.is_empty() && rv != object::meta_str(cur, "resourceVersion") {
            return Err(ApiError::conflict(CERTIFICATES, ctx.def.plural, ctx.name()));
        }
        let mut next = (**cur).clone();
        if !next.get("status").is_some_and(Value::is_object) {
            next["status"] = json!({});
        }
        if approval {
            let conditions = wanted.pointer("/status/conditions").cloned().unwrap_or_else(|| json!([]));
            next["status"]["conditions"] = stamp_conditions(conditions, ctx.name())?;
            sign_if_approved(ctx, &mut next);
        } else {
            next["status"] = wanted.get("status").cloned().unwrap_or_else(|| json!({}));
        }
        validate::object(ctx.rid, &next, ctx.name())?;
        Ok(Change::Put(next))
    })?;
    ctx.respond_outcome(outcome)
}

/// Kubernetes requires `approve` on `signers` for the signer name (or `domain/*`) besides the update.
fn may_approve(ctx: &Ctx, signer: &str) -> Result<(), ApiError> {
    let attrs = |name: String| RequestInfo {
        verb: "approve".into(),
        path: String::new(),
        resource: Some(ResourceAttrs { group: CERTIFICATES.into(), resource: "signers".into(), name, ..Default::default() }),
    };
    let wildcard = signer.split_once('/').map(|(domain, _)| format!("{domain}/*"));
    let allowed = std::iter::once(signer.to_string()).chain(wildcard).any(|n| ctx.app.authz.authorize(&ctx.user, &attrs(n)).allowed);
    if allowed {
        return Ok(());
    }
    let message = format!("user not permitted to approve requests with signerName {signer:?} ({})", forbidden_message(&ctx.user, &attrs(signer.to_string())));
    Err(ApiError::forbidden(CERTIFICATES, ctx.def.plural, ctx.name(), &message))
}

fn stamp_conditions(mut conditions: Value, name: &str) -> Result<Value, ApiError> {
    let list = conditions.as_array_mut().ok_or_else(|| ApiError::bad_request("status.conditions must be a list"))?;
    let has = |t: &str, list: &[Value]| list.iter().any(|c| c["type"] == t && c["status"] != "False");
    if has("Approved", list) && has("Denied", list) {
        return Err(ApiError::invalid(
            CERTIFICATES,
            "CertificateSigningRequest",
            name,
            "status.conditions",
            "Invalid value: Approved and Denied conditions are mutually exclusive",
        ));
    }
    for c in list.iter_mut().filter(|c| c.is_object()) {
        for field in ["lastUpdateTime", "lastTransitionTime"] {
            if c.get(field).is_none_or(Value::is_null) {
                c[field] = object::now().into();
            }
        }
        if c.get("status").is_none() {
            c["status"] = "True".into();
        }
    }
    Ok(conditions)
}

/// The kube-apiserver-client signer: signs approved requests that only ask for client usages.
fn sign_if_approved(ctx: &Ctx, csr: &mut Value) {
    let is = |t: &str| csr.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|l| l.iter().any(|c| c["type"] == t && c["status"] == "True"));
    let signed = csr.pointer("/status/certificate").and_then(Value::as_str).is_some_and(|c| !c.is_empty());
    if !is("Approved") || is("Denied") || is("Failed") || signed || csr.pointer("/spec/signerName").and_then(Value::as_str) != Some(CLIENT_SIGNER) {
        return;
    }
    let usages: Vec<&str> = csr.pointer("/spec/usages").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let allowed = ["client auth", "digital signature", "key encipherment"];
    let result = if !usages.contains(&"client auth") || usages.iter().any(|u| !allowed.contains(u)) {
        Err(format!("invalid usage for client certificate: {usages:?}"))
    } else {
        let seconds = csr.pointer("/spec/expirationSeconds").and_then(Value::as_i64).unwrap_or(MAX_SECONDS).clamp(MIN_SECONDS, MAX_SECONDS);
        let pem = b64().decode(csr.pointer("/spec/request").and_then(Value::as_str).unwrap_or("")).unwrap_or_default();
        ctx.app.ca.sign_client_csr(&pem, Duration::from_secs(seconds as u64))
    };
    match result {
        Ok(cert) => {
            csr["status"]["certificate"] = b64().encode(cert).into();
            tracing::info!(csr = ctx.name(), "kube-test-apiserver: signed a client certificate");
        }
        Err(message) => {
            if let Some(list) = csr["status"]["conditions"].as_array_mut() {
                let now = object::now();
                list.push(json!({
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": message,
                    "lastUpdateTime": now, "lastTransitionTime": now,
                }));
            }
        }
    }
}
