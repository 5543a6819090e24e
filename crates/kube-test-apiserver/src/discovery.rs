//! Discovery (`/version`, `/api`, `/apis`, the group versions) and the other non-resource paths.
//!
//! Answers are legacy (unaggregated) discovery documents: clients that ask for the aggregated
//! `APIGroupDiscoveryList` see a plain `application/json` answer and fall back, as they do with older servers.
//! Everything is rendered once at start: `/version` and friends are then a copy of bytes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Value, json};

use super::resources::{RESOURCES, group_versions};
use super::status::ApiError;

pub const GIT_VERSION: &str = "v1.33.0";

pub struct Discovery {
    docs: HashMap<String, Bytes>,
}

impl Discovery {
    pub fn new(server_address: &str) -> Self {
        let mut docs = HashMap::new();
        let mut put = |path: String, v: Value| {
            docs.insert(path, Bytes::from(v.to_string()));
        };
        put(
            "/version".into(),
            json!({
                "major": "1", "minor": "33", "gitVersion": GIT_VERSION,
                "gitCommit": "60a317eadfcb839692a5551a7b30f79ed4aa5d9a", "gitTreeState": "clean",
                "buildDate": "2025-04-23T13:07:12Z", "goVersion": "go1.24.2", "compiler": "gc",
                "platform": "linux/amd64",
            }),
        );
        put(
            "/api".into(),
            json!({
                "kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
            }),
        );
        let groups: Vec<Value> = group_versions()
            .into_iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, v)| {
                let gv = json!({ "groupVersion": format!("{g}/{v}"), "version": v });
                json!({ "name": g, "versions": [gv.clone()], "preferredVersion": gv })
            })
            .collect();
        for g in &groups {
            let mut group = g.clone();
            group["kind"] = "APIGroup".into();
            group["apiVersion"] = "v1".into();
            put(format!("/apis/{}", g["name"].as_str().unwrap_or_default()), group);
        }
        put("/apis".into(), json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }));
        for (group, version) in group_versions() {
            let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
            let mut resources = Vec::new();
            for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
                let mut entry = json!({
                    "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": r.verbs,
                });
                if !r.short_names.is_empty() {
                    entry["shortNames"] = json!(r.short_names);
                }
                if r.plural == "pods" {
                    entry["categories"] = json!(["all"]);
                }
                resources.push(entry);
                for s in r.subresources {
                    resources.push(json!({
                        "name": format!("{}/{}", r.plural, s.name), "singularName": "",
                        "namespaced": r.namespaced, "kind": s.kind, "verbs": s.verbs,
                    }));
                }
            }
            let path = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{gv}") };
            put(path.clone(), json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources }));
            put(format!("/openapi/v3{path}"), openapi_v3(group, version, &path));
        }
        let roots: serde_json::Map<String, Value> = group_versions()
            .into_iter()
            .map(|(g, v)| {
                let path = if g.is_empty() { format!("api/{v}") } else { format!("apis/{g}/{v}") };
                (path.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", GIT_VERSION) }))
            })
            .collect();
        put("/openapi/v3".into(), json!({ "paths": roots }));
        Discovery { docs }
    }

    /// Answers a GET on a non-resource path (RBAC has already allowed it).
    pub fn serve(&self, method: &http::Method, path: &str) -> Result<Response, ApiError> {
        let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
        if !matches!(*method, http::Method::GET | http::Method::HEAD) {
            return Err(ApiError::path_not_found());
        }
        if let Some(doc) = self.docs.get(path) {
            return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response());
        }
        match path {
            "/healthz" | "/livez" | "/readyz" => Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "ok").into_response()),
            // No OpenAPI v2: kubectl uses v3 (below) and copes without v2.
            _ => Err(ApiError::path_not_found()),
        }
    }
}

/// A minimal OpenAPI v3 document for a group version: no schemas, only each type's PATCH operation with its
/// group-version-kind and the `fieldValidation` parameter. That is what kubectl looks for to leave field
/// validation to the server (`kubectl create -f` fails without it); this server accepts and ignores it.
fn openapi_v3(group: &str, version: &str, prefix: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version && r.stored) {
        let path = if r.namespaced { format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural) } else { format!("{prefix}/{}/{{name}}", r.plural) };
        let patch = json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": [{ "name": "fieldValidation", "in": "query", "schema": { "type": "string", "uniqueItems": true } }],
            "responses": { "200": { "description": "OK" } },
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": group, "version": version, "kind": r.kind },
        });
        paths.insert(path, json!({ "patch": patch }));
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes (kube-test-apiserver, a test double)", "version": GIT_VERSION },
        "paths": paths,
        "components": { "schemas": {} },
    })
}
