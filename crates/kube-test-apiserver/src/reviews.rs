//! The review resources, answered and not stored: SelfSubjectReview (`kubectl auth whoami`),
//! SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview (`kubectl auth can-i --list`) and
//! SubjectAccessReview. Each answers for the effective identity, impersonated or not.

use axum::extract::Request;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::handlers::{Ctx, read_json};
use super::identity::Identity;
use super::request::{RequestInfo, ResourceAttrs};
use super::status::ApiError;

pub async fn create(ctx: &Ctx, req: Request) -> Result<Response, ApiError> {
    if ctx.verb != "create" || !ctx.attrs.name.is_empty() {
        return Err(ApiError::method_not_allowed());
    }
    let mut review = read_json(req).await?;
    review["kind"] = ctx.def.kind.into();
    review["apiVersion"] = ctx.def.api_version().into();
    review["metadata"] = json!({ "creationTimestamp": null });
    let spec = review.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match ctx.def.plural {
        "selfsubjectreviews" => json!({ "userInfo": { "username": ctx.user.user, "groups": ctx.user.groups } }),
        "selfsubjectaccessreviews" => access(ctx, &ctx.user, &spec)?,
        "subjectaccessreviews" => {
            let user = spec.get("user").and_then(Value::as_str).unwrap_or("").to_string();
            let groups: Vec<String> =
                spec.get("groups").and_then(Value::as_array).into_iter().flatten().filter_map(|g| g.as_str().map(str::to_string)).collect();
            // The groups are taken as given: a SubjectAccessReview states the whole identity.
            access(ctx, &Identity { user, groups }, &spec)?
        }
        "selfsubjectrulesreviews" => rules(ctx, &spec),
        _ => return Err(ApiError::path_not_found()),
    };
    review["status"] = status;
    Ok(ctx.respond(StatusCode::CREATED, &review))
}

fn access(ctx: &Ctx, user: &Identity, spec: &Value) -> Result<Value, ApiError> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let info = if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        RequestInfo {
            verb: s(r, "verb"),
            path: String::new(),
            resource: Some(ResourceAttrs {
                group: s(r, "group"),
                version: s(r, "version"),
                resource: s(r, "resource"),
                subresource: s(r, "subresource"),
                namespace: s(r, "namespace"),
                name: s(r, "name"),
            }),
        }
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|n| n.is_object()) {
        RequestInfo { verb: s(n, "verb"), path: s(n, "path"), resource: None }
    } else {
        return Err(ApiError::invalid(
            ctx.def.group,
            ctx.def.kind,
            "",
            "spec.resourceAttributes",
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let decision = ctx.app.authz.authorize(user, &info);
    let mut status = json!({ "allowed": decision.allowed });
    if !decision.reason.is_empty() {
        status["reason"] = decision.reason.into();
    }
    Ok(status)
}

fn rules(ctx: &Ctx, spec: &Value) -> Value {
    let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
    let (mut resource_rules, mut non_resource_rules) = (Vec::new(), Vec::new());
    for r in ctx.app.authz.rules_for(&ctx.user, namespace) {
        if let Some(urls) = r.non_resource_urls.filter(|u| !u.is_empty()) {
            non_resource_rules.push(json!({ "verbs": r.verbs, "nonResourceURLs": urls }));
        } else {
            let mut rule = json!({ "verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources });
            if let Some(names) = r.resource_names.filter(|n| !n.is_empty()) {
                rule["resourceNames"] = json!(names);
            }
            resource_rules.push(rule);
        }
    }
    json!({ "resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false })
}
