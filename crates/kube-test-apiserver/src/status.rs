//! Kubernetes `Status` objects: every failure leaves the server as the JSON object the real API server sends,
//! because kubectl and kube-rs parse `reason`, `code` and `message` out of it.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Value, json};

/// A failed API request, rendered as a `Status` with this HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

/// `resource.group`, or `resource` for the core group (how Kubernetes names a resource in messages).
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

/// `details` for errors about one object: `{name, group, kind}` with empty fields left out.
pub fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    for (k, v) in [("name", name), ("group", group), ("kind", kind)] {
        if !v.is_empty() {
            d.insert(k.into(), v.into());
        }
    }
    Value::Object(d)
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: json!({}) }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn path_not_found() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource")
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(group, resource))).with_details(details(group, resource, name))
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(group, resource))).with_details(details(group, resource, name))
    }

    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply \
                 your changes to the latest version and try again",
                qualified(group, resource)
            ),
        )
        .with_details(details(group, resource, name))
    }

    /// `message` is the authorizer's sentence (`User "x" cannot ...`); the prefix names the object.
    pub fn forbidden(group: &str, resource: &str, name: &str, message: &str) -> Self {
        let what = match (resource.is_empty(), name.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!("{} is ", qualified(group, resource)),
            (false, false) => format!("{} \"{name}\" is ", qualified(group, resource)),
        };
        Self::new(403, "Forbidden", format!("{what}forbidden: {message}")).with_details(details(group, resource, name))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422, as for a validation failure: `Kind.group "name" is invalid: field: message`.
    pub fn invalid(group: &str, kind: &str, name: &str, field: &str, message: &str) -> Self {
        let what = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let mut d = details(group, kind, name);
        d["causes"] = json!([{ "reason": "FieldValueInvalid", "message": message, "field": field }]);
        Self::new(422, "Invalid", format!("{what} \"{name}\" is invalid: {field}: {message}")).with_details(d)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            ),
        )
    }

    pub fn status_json(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "details": self.details, "code": self.code,
        })
    }
}

/// The `Status` a successful DELETE answers with.
pub fn success(details: Value) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}

/// A JSON response with the content type Kubernetes uses.
pub fn json_response(code: StatusCode, body: Vec<u8>) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, self.status_json().to_string().into_bytes())
    }
}
