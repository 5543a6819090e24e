//! The generic verbs on stored objects: get, list (selectors, paging, Table), create, update (PUT),
//! patch (merge, strategic-as-merge, JSON patch, server-side apply as create-or-merge), delete and
//! deletecollection, with Kubernetes' preconditions and immutable fields.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{StatusCode, header};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use super::handlers::{Ctx, content_type, decode_body, read_body, read_json};
use super::object::{self, meta_mut, meta_str};
use super::resources::{CSRS, NAMESPACES, PODS, RESOURCES};
use super::status::{ApiError, json_response};
use super::store::{Change, Outcome};
use super::{csr, table, validate};

/// A list item without `kind` and `apiVersion`, as Kubernetes serializes the items of built-in lists.
struct Item<'a>(&'a Value);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(map) = self.0 else { return self.0.serialize(s) };
        let mut out = s.serialize_map(None)?;
        for (k, v) in map.iter().filter(|(k, _)| *k != "kind" && *k != "apiVersion") {
            out.serialize_entry(k, v)?;
        }
        out.end()
    }
}

#[derive(serde::Serialize)]
struct List<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
    items: Vec<Item<'a>>,
}

impl Ctx {
    pub fn get(&self) -> Result<Response, ApiError> {
        let obj = self.app.store.get(self.rid, &self.ns, self.name()).ok_or_else(|| self.not_found())?;
        Ok(self.respond(StatusCode::OK, &obj))
    }

    pub fn list(&self) -> Result<Response, ApiError> {
        let (mut items, rv) = self.matching()?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // The continue token is the last key returned; keys are unique and sorted, so paging is stable.
        if let Some(token) = self.query.get("continue").filter(|t| !t.is_empty()) {
            let key = b64.decode(token).ok().and_then(|k| String::from_utf8(k).ok()).ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            items.retain(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name")) > key);
        }
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        let limit = self.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
        if limit > 0 && items.len() > limit {
            let remaining = items.len() - limit;
            items.truncate(limit);
            let last = items.last().map(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name"))).unwrap_or_default();
            metadata["continue"] = b64.encode(last).into();
            metadata["remainingItemCount"] = remaining.into();
        }
        if self.table {
            let body = table::render(self.def, items.iter().map(|o| &**o), metadata).to_string();
            return Ok((StatusCode::OK, [(header::CONTENT_TYPE, table::CONTENT_TYPE)], body).into_response());
        }
        let list = List {
            kind: format!("{}List", self.def.kind),
            api_version: self.def.api_version(),
            metadata,
            items: items.iter().map(|o| Item(o.as_ref())).collect(),
        };
        let body = serde_json::to_vec(&list).map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?;
        Ok(json_response(StatusCode::OK, body))
    }

    /// Checks a new object against the URL, fills in what the server owns (name from generateName,
    /// namespace, uid, creationTimestamp, kind, apiVersion) and validates it.
    fn prepare_new(&self, obj: &mut Value) -> Result<String, ApiError> {
        self.check_type(obj)?;
        let mut name = meta_str(obj, "name").to_string();
        if name.is_empty() {
            let prefix = meta_str(obj, "generateName");
            if prefix.is_empty() {
                return Err(ApiError::invalid(self.def.group, self.def.kind, "", "metadata.name", "Required value: name or generateName is required"));
            }
            let suffix: String = (0..5).map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[rand::random_range(0..27)])).collect();
            name = format!("{prefix}{suffix}");
        }
        if !meta_str(obj, "resourceVersion").is_empty() {
            return Err(ApiError::bad_request("resourceVersion should not be set on objects to be created"));
        }
        if self.def.namespaced && self.app.store.get(NAMESPACES, "", &self.ns).is_none() {
            return Err(ApiError::not_found("", "namespaces", &self.ns));
        }
        let meta = meta_mut(obj).ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
        meta.insert("name".into(), name.clone().into());
        if self.def.namespaced {
            meta.insert("namespace".into(), self.ns.clone().into());
        }
        meta.insert("uid".into(), object::uid().into());
        meta.insert("creationTimestamp".into(), object::now().into());
        match self.rid {
            NAMESPACES => {
                if let Some(labels) = meta.entry("labels").or_insert_with(|| json!({})).as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), name.clone().into());
                }
                obj["spec"] = json!({ "finalizers": ["kubernetes"] });
                obj["status"] = json!({ "phase": "Active" });
            }
            CSRS => csr::prepare_create(obj, &self.user)?,
            _ => {}
        }
        validate::object(self.rid, obj, &name)?;
        Ok(name)
    }

    /// kind/apiVersion must match the URL when given; they are then always set.
    fn check_type(&self, obj: &mut Value) -> Result<(), ApiError> {
        // A patch may have replaced the whole document with something else.
        if !obj.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        let (kind, api_version) = (self.def.kind, self.def.api_version());
        for (field, want) in [("kind", kind), ("apiVersion", api_version.as_str())] {
            match obj.get(field).and_then(Value::as_str) {
                Some(got) if !got.is_empty() && got != want => {
                    return Err(ApiError::bad_request(format!("{field} {got:?} does not match the expected {want:?}")));
                }
                _ => obj[field] = want.into(),
            }
        }
        // The namespace in the body, if any, must be the one in the URL.
        let body_ns = meta_str(obj, "namespace");
        if self.def.namespaced && !body_ns.is_empty() && body_ns != self.ns {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        Ok(())
    }

    /// Carries over what an update cannot change (identity, creation time, status of types with a status
    /// subresource) and checks immutable fields.
    fn carry_over(&self, cur: &Value, next: &mut Value) -> Result<(), ApiError> {
        let name = self.name().to_string();
        let meta = meta_mut(next).ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
        for field in ["uid", "creationTimestamp", "namespace", "name"] {
            match object::meta(cur).and_then(|m| m.get(field)) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if matches!(self.rid, PODS | NAMESPACES | CSRS) {
            match cur.get("status") {
                Some(s) => next["status"] = s.clone(),
                None => drop(next.as_object_mut().and_then(|m| m.remove("status"))),
            }
        }
        if self.rid == CSRS && next.get("spec") != cur.get("spec") {
            return Err(ApiError::invalid(
                self.def.group,
                self.def.kind,
                &name,
                "spec",
                "Forbidden: updates to certificate signing request spec are forbidden",
            ));
        }
        if self.def.is_rbac() && self.def.kind.ends_with("Binding") && next.get("roleRef") != cur.get("roleRef") {
            return Err(ApiError::invalid(self.def.group, self.def.kind, &name, "roleRef", "Invalid value: cannot change roleRef"));
        }
        validate::object(self.rid, next, &name)
    }

    pub async fn create(&self, req: Request) -> Result<Response, ApiError> {
        let mut obj = read_json(req).await?;
        let name = self.prepare_new(&mut obj)?;
        let (group, plural) = (self.def.group, self.def.plural);
        let outcome = self.app.store.mutate(self.rid, &self.ns, &name, |cur| match cur {
            Some(_) => Err(ApiError::already_exists(group, plural, &name)),
            None => Ok(Change::Put(obj)),
        })?;
        self.respond_outcome(outcome)
    }

    pub async fn update(&self, req: Request) -> Result<Response, ApiError> {
        let mut obj = read_json(req).await?;
        self.check_type(&mut obj)?;
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != self.name() {
            return Err(ApiError::bad_request(format!("the name of the object ({body_name}) does not match the name on the URL ({})", self.name())));
        }
        // A missing object is created only where Kubernetes allows it; prepare that outside the lock.
        let mut fresh = if self.def.create_on_update && self.app.store.get(self.rid, &self.ns, self.name()).is_none() {
            let mut new = obj.clone();
            if let Some(m) = meta_mut(&mut new) {
                m.insert("name".into(), self.name().into());
                m.remove("resourceVersion");
            }
            Some(self.prepare_new(&mut new).map(|_| new)?)
        } else {
            None
        };
        let body_rv = meta_str(&obj, "resourceVersion").to_string();
        let outcome = self.app.store.mutate(self.rid, &self.ns, self.name(), |cur| match cur {
            None => fresh.take().map(Change::Put).ok_or_else(|| self.not_found()),
            Some(cur) => {
                if !body_rv.is_empty() && body_rv != meta_str(cur, "resourceVersion") {
                    return Err(ApiError::conflict(self.def.group, self.def.plural, self.name()));
                }
                self.carry_over(cur, &mut obj)?;
                Ok(Change::Put(obj))
            }
        })?;
        self.respond_outcome(outcome)
    }

    pub async fn patch(&self, req: Request) -> Result<Response, ApiError> {
        let kind = content_type(&req);
        let apply = kind == "application/apply-patch+yaml";
        if apply && self.query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set"));
        }
        if !matches!(
            kind.as_str(),
            "application/merge-patch+json" | "application/strategic-merge-patch+json" | "application/json-patch+json" | "application/apply-patch+yaml"
        ) {
            return Err(ApiError::unsupported_media_type(&kind));
        }
        let body = read_body(req).await?;
        let patch: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the patch is not JSON (this test double reads apply patches as JSON only): {e}")))?;
        // Server-side apply of a missing object creates it.
        let mut fresh = if apply && self.app.store.get(self.rid, &self.ns, self.name()).is_none() {
            let mut new = patch.clone();
            if let Some(m) = meta_mut(&mut new) {
                m.insert("name".into(), self.name().into());
            }
            Some(self.prepare_new(&mut new).map(|_| new)?)
        } else {
            None
        };
        let outcome = self.app.store.mutate(self.rid, &self.ns, self.name(), |cur| {
            let Some(cur) = cur else {
                return fresh.take().map(Change::Put).ok_or_else(|| self.not_found());
            };
            let mut next = (**cur).clone();
            if kind == "application/json-patch+json" {
                super::patch::json_patch(&mut next, &patch).map_err(|e| ApiError::new(422, "Invalid", e))?;
            } else {
                super::patch::merge(&mut next, &patch);
            }
            let rv = meta_str(&next, "resourceVersion");
            if !rv.is_empty() && rv != meta_str(cur, "resourceVersion") {
                return Err(ApiError::conflict(self.def.group, self.def.plural, self.name()));
            }
            self.check_type(&mut next)?;
            self.carry_over(cur, &mut next)?;
            Ok(Change::Put(next))
        })?;
        self.respond_outcome(outcome)
    }

    pub async fn delete(&self, req: Request) -> Result<Response, ApiError> {
        // DeleteOptions may carry preconditions on uid and resourceVersion.
        let kind = content_type(&req);
        let body = read_body(req).await?;
        let options = if body.is_empty() { json!({}) } else { decode_body(&kind, &body)? };
        let precondition = |field: &str| options.pointer(&format!("/preconditions/{field}")).and_then(Value::as_str).map(str::to_string);
        let (want_uid, want_rv) = (precondition("uid"), precondition("resourceVersion"));
        let outcome = self.app.store.mutate(self.rid, &self.ns, self.name(), |cur| {
            let cur = cur.ok_or_else(|| self.not_found())?;
            let failed = |field: &str, want: &Option<String>| want.as_ref().is_some_and(|w| w != meta_str(cur, field));
            if failed("uid", &want_uid) || failed("resourceVersion", &want_rv) {
                return Err(ApiError::conflict(self.def.group, self.def.plural, self.name()));
            }
            Ok(Change::Delete)
        })?;
        if self.rid == NAMESPACES {
            self.delete_namespace_contents();
        }
        self.respond_outcome(outcome)
    }

    /// Deleting a namespace deletes what is in it (at once: there are no finalizers to wait for here).
    fn delete_namespace_contents(&self) {
        for (rid, def) in RESOURCES.iter().enumerate().filter(|(_, d)| d.namespaced && d.stored) {
            let (items, _) = self.app.store.list(rid, Some(self.name()));
            for o in items {
                let _ = self.app.store.mutate(rid, self.name(), meta_str(&o, "name"), |_| Ok(Change::Delete));
                tracing::debug!(resource = def.plural, name = meta_str(&o, "name"), "kube-test-apiserver: deleted with its namespace");
            }
        }
    }

    pub fn delete_collection(&self) -> Result<Response, ApiError> {
        let (items, _) = self.matching()?;
        let mut deleted = Vec::new();
        for o in items {
            let (ns, name) = (meta_str(&o, "namespace"), meta_str(&o, "name"));
            if let Outcome::Deleted(d) = self.app.store.mutate(self.rid, ns, name, |_| Ok(Change::Delete))? {
                deleted.push(d);
            }
        }
        let list = List {
            kind: format!("{}List", self.def.kind),
            api_version: self.def.api_version(),
            metadata: json!({ "resourceVersion": self.app.store.resource_version().to_string() }),
            items: deleted.iter().map(|o| Item(o.as_ref())).collect(),
        };
        Ok(json_response(StatusCode::OK, serde_json::to_vec(&list).unwrap_or_default()))
    }
}
