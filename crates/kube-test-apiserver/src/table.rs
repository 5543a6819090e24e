//! Server-side printing: the `Table` kubectl asks for (`Accept: application/json;as=Table;...`), with the
//! columns `kubectl get` shows for these types.

use http::HeaderMap;
use serde_json::{Value, json};

use super::object::{age, meta_str};
use super::resources::ResourceDef;

pub const CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|t| t.contains("as=Table") && t.contains("g=meta.k8s.io")))
}

fn column(name: &str, kind: &str, description: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({ "name": name, "type": kind, "format": format, "description": description, "priority": 0 })
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let name = column("Name", "string", "Name must be unique within a namespace.");
    let age = column("Age", "string", "CreationTimestamp is a timestamp representing the server time when this object was created.");
    match def.plural {
        "pods" => vec![
            name,
            column("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            column("Status", "string", "The aggregate status of the containers in this pod."),
            column("Restarts", "string", "The number of times the containers in this pod have been restarted."),
            age,
        ],
        "namespaces" => vec![name, column("Status", "string", "The status of the namespace"), age],
        "clusterrolebindings" | "rolebindings" => vec![name, column("Role", "string", "Role of the binding"), age],
        "certificatesigningrequests" => vec![
            name,
            age,
            column("SignerName", "string", "Name of the signer"),
            column("Requestor", "string", "Name of the user that created the request"),
            column("Condition", "string", "The status of the request"),
        ],
        _ => vec![name, age],
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = meta_str(obj, "name");
    let s = |path: &[&str]| path.iter().try_fold(obj, |v, k| v.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
    match def.plural {
        "pods" => {
            let statuses = obj.pointer("/status/containerStatuses").and_then(Value::as_array);
            let total = obj.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = statuses.into_iter().flatten().filter(|c| c["ready"] == true).count();
            let restarts: i64 = statuses.into_iter().flatten().filter_map(|c| c["restartCount"].as_i64()).sum();
            vec![name.into(), format!("{ready}/{total}").into(), s(&["status", "phase"]).into(), restarts.to_string().into(), age(obj).into()]
        }
        "namespaces" => vec![name.into(), s(&["status", "phase"]).into(), age(obj).into()],
        "clusterrolebindings" | "rolebindings" => {
            vec![name.into(), format!("{}/{}", s(&["roleRef", "kind"]), s(&["roleRef", "name"])).into(), age(obj).into()]
        }
        "certificatesigningrequests" => {
            let conditions: Vec<String> = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c["type"].as_str().map(str::to_string))
                .collect();
            let mut condition = if conditions.is_empty() { "Pending".to_string() } else { conditions.join(",") };
            if obj.pointer("/status/certificate").is_some_and(|c| c.as_str().is_some_and(|c| !c.is_empty())) {
                condition.push_str(",Issued");
            }
            vec![name.into(), age(obj).into(), s(&["spec", "signerName"]).into(), s(&["spec", "username"]).into(), condition.into()]
        }
        _ => vec![name.into(), age(obj).into()],
    }
}

/// A Table of `items`; each row carries the object's metadata (includeObject=Metadata, the default).
pub fn render<'a>(def: &ResourceDef, items: impl IntoIterator<Item = &'a Value>, list_meta: Value) -> Value {
    let rows: Vec<Value> = items
        .into_iter()
        .map(|obj| {
            json!({
                "cells": cells(def, obj),
                "object": {
                    "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                },
            })
        })
        .collect();
    json!({ "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns(def), "rows": rows })
}
