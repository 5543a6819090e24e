//! The request pipeline: authenticate, impersonate, authorize, then dispatch to the generic verbs ([`super::crud`])
//! or to watch, logs, exec, the reviews and the CSR subresources. Also what they share: the request context,
//! reading bodies, and answering with objects or Tables.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde_json::{Value, json};

use super::App;
use super::identity::{self, Identity, PeerIdentity};
use super::object::{self, meta_str};
use super::request::{self, Query, RequestInfo, ResourceAttrs};
use super::resources::{self, CSRS, NAMESPACES, PODS, RESOURCES, ResourceDef};
use super::selector::{FieldSelector, LabelSelector};
use super::status::{self, ApiError, json_response};
use super::store::{Obj, Outcome};
use super::{csr, pods, reviews, table, watch};

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

async fn serve(app: Arc<App>, mut req: Request) -> Result<Response, ApiError> {
    drop_hop_by_hop(req.headers_mut());
    let query = Query::parse(req.uri());
    let info = request::parse(req.method(), req.uri().path(), &query);
    let requester = app.authn.authenticate(req.headers(), req.extensions().get::<PeerIdentity>())?;
    let user = identity::impersonate(&app.authz, requester, req.headers())?;
    if !app.authz.authorize(&user, &info).allowed {
        tracing::debug!(user = %user.user, verb = %info.verb, path = %info.path, "kube-test-apiserver: forbidden");
        return Err(forbidden(&user, &info));
    }
    // Since Kubernetes 1.30, a websocket GET on exec/attach/portforward also needs `create`, the verb of
    // the POST it replaces (so that read-only roles cannot run commands).
    let streaming = info.resource.as_ref().is_some_and(|r| matches!(r.subresource.as_str(), "exec" | "attach" | "portforward"));
    if streaming && info.verb == "get" {
        let create = RequestInfo { verb: "create".into(), ..info.clone() };
        if !app.authz.authorize(&user, &create).allowed {
            return Err(forbidden(&user, &create));
        }
    }
    let Some(attrs) = info.resource else {
        return app.discovery.serve(req.method(), &info.path);
    };
    let rid = resources::find(&attrs.group, &attrs.version, &attrs.resource).ok_or_else(ApiError::path_not_found)?;
    let def = &RESOURCES[rid];
    // Only `namespaces/NAME` may carry a namespace for a cluster-scoped type; a namespaced type needs one
    // to address an object by name.
    if (!def.namespaced && !attrs.namespace.is_empty() && rid != NAMESPACES) || (def.namespaced && attrs.namespace.is_empty() && !attrs.name.is_empty()) {
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
        ("portforward", "get" | "create") if rid == PODS => pods::port_forward(&ctx, req).await,
        ("approval" | "status", "get") if rid == CSRS => ctx.get(),
        ("approval" | "status", "update" | "patch") if rid == CSRS => csr::update_subresource(&ctx, req).await,
        _ => Err(ApiError::path_not_found()),
    }
}

/// Drops the headers a request names in `Connection` (except `Upgrade`, which an upgrade needs), as an
/// HTTP intermediary in front of kube-apiserver does (Go's `httputil.ReverseProxy`, load balancers; RFC 9110
/// section 7.6.1): so tests see what a client could make such a hop strip.
fn drop_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<http::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| http::HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|name| name != header::UPGRADE)
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// The authorizer's sentence, word for word as Kubernetes writes it.
pub fn forbidden_message(user: &Identity, info: &RequestInfo) -> String {
    let Some(r) = &info.resource else {
        return format!("User {:?} cannot {} path {:?}", user.user, info.verb, info.path);
    };
    let resource = if r.subresource.is_empty() { r.resource.clone() } else { format!("{}/{}", r.resource, r.subresource) };
    let scope = if r.namespace.is_empty() { "at the cluster scope".to_string() } else { format!("in the namespace {:?}", r.namespace) };
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
    axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|e| ApiError::new(413, "RequestEntityTooLarge", format!("cannot read the request body: {e}")))
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

    pub fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.query.get("labelSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(self.query.get("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)?;
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
}

/// A streaming response body of newline-delimited chunks.
pub fn stream_response(content_type: &'static str, body: Body) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
