//! The request pipeline (authenticate, impersonate, authorize, dispatch) and the generic verbs on stored
//! objects: get, list, create, update, patch, delete, deletecollection. Watch, logs, exec, reviews and CSR
//! subresources have their own modules.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{StatusCode, header};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

use super::App;
use super::identity::{self, Identity, PeerIdentity};
use super::object::{self, meta_mut, meta_str};
use super::request::{self, Query, RequestInfo, ResourceAttrs};
use super::resources::{self, CSRS, NAMESPACES, PODS, RESOURCES, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::{self, ApiError, json_response};
use super::store::{Change, Obj, Outcome};
use super::{csr, pods, reviews, table, validate, watch};

/// Kubernetes refuses bodies over 3 MiB.
const MAX_BODY: usize = 3 * 1024 * 1024;

/// One resource request, after authentication and authorization.
pub struct Ctx {
    pub app: Arc<App>,
    pub user: Identity,
    pub verb: String,
    pub attrs: ResourceAttrs,
    pub rid: usize,
    pub def: &'static ResourceDef,
    pub query: Query,
    /// The namespace objects are stored under: "" for cluster-scoped types.
    pub ns: String,
    pub table: bool,
}

pub async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let response = serve(app, req).await.unwrap_or_else(IntoResponse::into_response);
    tracing::debug!(%method, %path, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "kube-test-apiserver");
    response
}

async fn serve(app: Arc<App>, req: Request) -> Result<Response, ApiError> {
    let query = Query::parse(req.uri());
    let info = request::parse(req.method(), req.uri().path(), &query);
    let requester = app.authn.authenticate(req.headers(), req.extensions().get::<PeerIdentity>())?;
    let user = identity::impersonate(&app.authz, requester, req.headers())?;
    if !app.authz.authorize(&user, &info).allowed {
        tracing::debug!(user = %user.user, verb = %info.verb, path = %info.path, "kube-test-apiserver: forbidden");
        return Err(forbidden(&user, &info));
    }
    let Some(attrs) = info.resource else {
        return app.discovery.serve(req.method(), &info.path);
    };
    let rid = resources::find(&attrs.group, &attrs.version, &attrs.resource).ok_or_else(ApiError::path_not_found)?;
    let def = &RESOURCES[rid];
    // Only `namespaces/NAME` may carry a namespace for a cluster-scoped type; a namespaced type needs one
    // to address an object by name.
    if (!def.namespaced && !attrs.namespace.is_empty() && rid != NAMESPACES)
        || (def.namespaced && attrs.namespace.is_empty() && !attrs.name.is_empty())
    {
        return Err(ApiError::path_not_found());
    }
    let ns = if def.namespaced { attrs.namespace.clone() } else { String::new() };
    let table = table::wanted(req.headers());
    let ctx = Ctx { app, user, verb: info.verb, attrs, rid, def, query, ns, table };
    if ctx.query.get("dryRun").is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request("dryRun is not supported by this test double"));
    }
    if !def.stored {
        return reviews::create(&ctx, req).await;
    }
    match (ctx.attrs.subresource.as_str(), ctx.verb.as_str()) {
        ("", "get") => ctx.get(),
        ("", "list") => ctx.list(),
        ("", "watch") => watch::serve(&ctx),
        ("", "create") => ctx.create(req).await,
        ("", "update") => ctx.update(req).await,
        ("", "patch") => ctx.patch(req).await,
        ("", "delete") => ctx.delete(req).await,
        ("", "deletecollection") => ctx.delete_collection(),
        ("", _) => Err(ApiError::method_not_allowed()),
        ("log", "get") if rid == PODS => pods::logs(&ctx),
        ("exec", "get" | "create") if rid == PODS => pods::exec(&ctx, req).await,
        ("approval" | "status", "get") if rid == CSRS => ctx.get(),
        ("approval" | "status", "update" | "patch") if rid == CSRS => csr::update_subresource(&ctx, req).await,
        _ => Err(ApiError::path_not_found()),
    }
}

/// The authorizer's sentence, word for word as Kubernetes writes it.
pub fn forbidden_message(user: &Identity, info: &RequestInfo) -> String {
    let Some(r) = &info.resource else {
        return format!("User {:?} cannot {} path {:?}", user.user, info.verb, info.path);
    };
    let resource =
        if r.subresource.is_empty() { r.resource.clone() } else { format!("{}/{}", r.resource, r.subresource) };
    let scope = if r.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", r.namespace)
    };
    format!("User {:?} cannot {} resource {resource:?} in API group {:?} {scope}", user.user, info.verb, r.group)
}

pub fn forbidden(user: &Identity, info: &RequestInfo) -> ApiError {
    let message = forbidden_message(user, info);
    match &info.resource {
        Some(r) => ApiError::forbidden(&r.group, &r.resource, &r.name, &message),
        None => ApiError::forbidden("", "", "", &message),
    }
}

pub async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::new(413, "RequestEntityTooLarge", format!("cannot read the request body: {e}")))
}

/// An object body as JSON: JSON as sent, or protobuf (kubectl's typed clients) decoded.
pub async fn read_json(req: Request) -> Result<Value, ApiError> {
    let kind = content_type(&req);
    let body = read_body(req).await?;
    decode_body(&kind, &body)
}

pub fn decode_body(kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = if kind == "application/vnd.kubernetes.protobuf" {
        super::protobuf::decode(body).map_err(|e| ApiError::new(415, "UnsupportedMediaType", e))?
    } else if kind.contains("cbor") || kind.contains("protobuf") || kind.contains("yaml") {
        return Err(ApiError::unsupported_media_type(kind));
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(value)
}

pub fn content_type(req: &Request) -> String {
    let raw = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

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
    pub fn name(&self) -> &str {
        &self.attrs.name
    }

    pub fn not_found(&self) -> ApiError {
        ApiError::not_found(self.def.group, self.def.plural, self.name())
    }

    /// An object, or a one-row Table when kubectl asked for one.
    pub fn respond(&self, code: StatusCode, obj: &Value) -> Response {
        if self.table {
            let meta = json!({ "resourceVersion": meta_str(obj, "resourceVersion") });
            let body = table::render(self.def, [obj], meta).to_string();
            return (code, [(header::CONTENT_TYPE, table::CONTENT_TYPE)], body).into_response();
        }
        json_response(code, serde_json::to_vec(obj).unwrap_or_default())
    }

    pub fn respond_outcome(&self, outcome: Outcome) -> Result<Response, ApiError> {
        match outcome {
            Outcome::Created(o) => Ok(self.respond(StatusCode::CREATED, &o)),
            Outcome::Updated(o) | Outcome::Unchanged(o) => Ok(self.respond(StatusCode::OK, &o)),
            Outcome::Deleted(o) => Ok(self.deleted(&o)),
            Outcome::Missing => Err(self.not_found()),
        }
    }

    fn deleted(&self, obj: &Value) -> Response {
        let mut d = status::details(self.def.group, self.def.plural, meta_str(obj, "name"));
        d["uid"] = meta_str(obj, "uid").into();
        json_response(StatusCode::OK, status::success(d).to_string().into_bytes())
    }

    fn get(&self) -> Result<Response, ApiError> {
        let obj = self.app.store.get(self.rid, &self.ns, self.name()).ok_or_else(|| self.not_found())?;
        Ok(self.respond(StatusCode::OK, &obj))
    }

    pub fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels =
            LabelSelector::parse(self.query.get("labelSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
        let fields =
            FieldSelector::parse(self.query.get("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    /// The stored objects this list or watch addresses (all namespaces when the path names none).
    pub fn matching(&self) -> Result<(Vec<Obj>, u64), ApiError> {
        let (labels, fields) = self.selectors()?;
        let namespace = (self.def.namespaced && !self.ns.is_empty()).then_some(self.ns.as_str());
        let (mut items, rv) = self.app.store.list(self.rid, namespace);
        items.retain(|o| labels.matches(object::labels(o)) && fields.matches(o));
        Ok((items, rv))
    }

    fn list(&self) -> Result<Response, ApiError> {
        let (mut items, rv) = self.matching()?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // The continue token is the last key returned; keys are unique and sorted, so paging is stable.
        if let Some(token) = self.query.get("continue").filter(|t| !t.is_empty()) {
            let key = b64
                .decode(token)
                .ok()
                .and_then(|k| String::from_utf8(k).ok())
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            items.retain(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name")) > key);
        }
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        let limit = self.query.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
        if limit > 0 && items.len() > limit {
            let remaining = items.len() - limit;
            items.truncate(limit);
            let last = items
                .last()
                .map(|o| format!("{}/{}", meta_str(o, "namespace"), meta_str(o, "name")))
                .unwrap_or_default();
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
                return Err(ApiError::invalid(
                    self.def.group,
                    self.def.kind,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
            let suffix: String =
                (0..5).map(|_| char::from(b"bcdfghjklmnpqrstvwxz2456789"[rand::random_range(0..27)])).collect();
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
                meta.entry("labels").or_insert_with(|| json!({}))["kubernetes.io/metadata.name"] = name.clone().into();
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
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
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
            return Err(ApiError::invalid(
                self.def.group,
                self.def.kind,
                &name,
                "roleRef",
                "Invalid value: cannot change roleRef",
            ));
        }
        validate::object(self.rid, next, &name)
    }

    async fn create(&self, req: Request) -> Result<Response, ApiError> {
        let mut obj = read_json(req).await?;
        let name = self.prepare_new(&mut obj)?;
        let (group, plural) = (self.def.group, self.def.plural);
        let outcome = self.app.store.mutate(self.rid, &self.ns, &name, |cur| match cur {
            Some(_) => Err(ApiError::already_exists(group, plural, &name)),
            None => Ok(Change::Put(obj)),
        })?;
        self.respond_outcome(outcome)
    }

    async fn update(&self, req: Request) -> Result<Response, ApiError> {
        let mut obj = read_json(req).await?;
        self.check_type(&mut obj)?;
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != self.name() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                self.name()
            )));
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

    async fn patch(&self, req: Request) -> Result<Response, ApiError> {
        let kind = content_type(&req);
        let apply = kind == "application/apply-patch+yaml";
        if apply && self.query.get("fieldManager").is_none_or(str::is_empty) {
            return Err(ApiError::bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set"));
        }
        if !matches!(
            kind.as_str(),
            "application/merge-patch+json"
                | "application/strategic-merge-patch+json"
                | "application/json-patch+json"
                | "application/apply-patch+yaml"
        ) {
            return Err(ApiError::unsupported_media_type(&kind));
        }
        let body = read_body(req).await?;
        let patch: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the patch is not JSON (this test double reads apply patches as JSON only): {e}"
            ))
        })?;
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

    async fn delete(&self, req: Request) -> Result<Response, ApiError> {
        // DeleteOptions may carry preconditions on uid and resourceVersion.
        let kind = content_type(&req);
        let body = read_body(req).await?;
        let options = if body.is_empty() { json!({}) } else { decode_body(&kind, &body)? };
        let precondition = |field: &str| {
            options.pointer(&format!("/preconditions/{field}")).and_then(Value::as_str).map(str::to_string)
        };
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
                tracing::debug!(
                    resource = def.plural,
                    name = meta_str(&o, "name"),
                    "kube-test-apiserver: deleted with its namespace"
                );
            }
        }
    }

    fn delete_collection(&self) -> Result<Response, ApiError> {
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

/// A streaming response body of newline-delimited chunks.
pub fn stream_response(content_type: &'static str, body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
