//! The authenticating proxy kubectl talks to. It verifies the bearer token, then forwards the request
//! to the Kubernetes API with the connector's own credential and `Impersonate-User` /
//! `Impersonate-Group` headers, so Kubernetes RBAC decides. Bodies stream both ways (watch, logs -f)
//! and upgrades (exec, port-forward) are spliced through. Every request is reported to the audit log.

pub mod audit;
pub mod streams;
pub mod verify;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::client::ConfigExt;
use tokio::net::TcpListener;

use self::audit::AuditSink;
use self::streams::{Guarded, Streams};
use self::verify::Verifier;
use crate::model::ProxiedRequest;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// How the proxy reaches the Kubernetes API: its URL, a TLS client trusting the cluster CA (with the
/// connector's client certificate if its kubeconfig has one), and its bearer token if any.
pub struct Upstream {
    base: String,
    client: HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    token: UpstreamToken,
}

/// The connector's bearer token; a projected service-account token file is re-read every minute.
struct UpstreamToken {
    file: Option<PathBuf>,
    current: RwLock<(Option<HeaderValue>, Instant)>,
}

impl UpstreamToken {
    fn header(&self) -> Option<HeaderValue> {
        let (value, read_at) = self.current.read().ok()?.clone();
        let Some(file) = &self.file else { return value };
        if read_at.elapsed() < Duration::from_secs(60) && value.is_some() {
            return value;
        }
        let fresh = std::fs::read_to_string(file).ok().and_then(|t| bearer_value(t.trim()));
        if let Ok(mut current) = self.current.write() {
            *current = (fresh.clone(), Instant::now());
        }
        fresh
    }
}

fn bearer_value(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

impl Upstream {
    pub fn from_kube_config(config: &kube::Config) -> Result<Upstream, String> {
        let tls = config.rustls_client_config().map_err(|e| format!("cannot set up TLS to the Kubernetes API: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
        let client = HttpClient::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).pool_max_idle_per_host(256).build(https);
        let token = config.auth_info.token.as_ref().map(|t| {
            use secrecy::ExposeSecret;
            t.expose_secret().to_string()
        });
        let token = UpstreamToken {
            file: config.auth_info.token_file.as_ref().map(PathBuf::from),
            current: RwLock::new((token.as_deref().and_then(bearer_value), Instant::now())),
        };
        Ok(Upstream { base: config.cluster_url.to_string().trim_end_matches('/').to_string(), client, token })
    }
}

pub struct Proxy {
    pub verifier: Arc<Verifier>,
    pub upstream: Upstream,
    pub audit: AuditSink,
    /// the long-lived requests open now, closed when their access ends
    pub streams: Arc<Streams>,
}

/// Accepts TLS connections and serves each with HTTP/1.1 or HTTP/2, upgrades included.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, proxy: Arc<Proxy>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "proxy accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let proxy = proxy.clone();
        tokio::spawn(async move {
            // a client that never finishes its handshake or its headers (slowloris) is dropped
            let Ok(Ok(stream)) = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else { return };
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, remote).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(crate::tls::HEADER_READ_TIMEOUT);
            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
        });
    }
}

impl Proxy {
    pub fn new(verifier: Arc<Verifier>, upstream: Upstream, audit: AuditSink) -> Proxy {
        Proxy { verifier, upstream, audit, streams: Arc::new(Streams::default()) }
    }

    async fn handle(&self, mut req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
        let token = bearer(req.headers());
        let identity = match token {
            None => {
                return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", &verify::Refusal::Missing.sentence(self.verifier.server()));
            }
            Some(token) => match self.verifier.verify(token).await {
                Ok(identity) => identity,
                Err(refusal @ verify::Refusal::NotReady) => {
                    return status_response(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &refusal.sentence(self.verifier.server()));
                }
                Err(refusal) => {
                    tracing::debug!(%refusal, %remote, "refused a token");
                    return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", &refusal.sentence(self.verifier.server()));
                }
            },
        };
        let attributes = Attributes::of(req.method(), req.uri());
        // `..` would make the path Kubernetes serves differ from the one the audit log names (and from
        // what an intermediary checks); no Kubernetes client sends one
        if has_dot_segment(req.uri().path()) {
            let answer = status_response(StatusCode::BAD_REQUEST, "BadRequest", "the request path may not contain \".\" or \"..\" segments");
            self.record(&identity.user, &attributes, answer.status(), remote);
            return answer;
        }
        let upgrade = match upgrade_protocols(req.headers()) {
            Ok(upgrade) => upgrade,
            Err(answer) => {
                self.record(&identity.user, &attributes, answer.status(), remote);
                return *answer;
            }
        };
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));

        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri: Uri = match format!("{}{path}", self.upstream.base).parse() {
            Ok(uri) => uri,
            Err(_) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", "the request path is not valid"),
        };
        let long_lived = upgrade.is_some() || attributes.verb == "watch" || follows(&parts.uri);
        let mut headers = forwardable(parts.headers);
        if let Some(protocols) = upgrade.clone() {
            // exactly these two hop-by-hop headers: nothing the client listed in its Connection header
            // may be stripped as hop-by-hop further along (impersonation headers, say)
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(header::UPGRADE, protocols);
        }
        if let Err(answer) = self.impersonate(&mut headers, &identity.user) {
            self.record(&identity.user, &attributes, answer.status(), remote);
            return *answer;
        }
        // registered before the request goes upstream, so that a re-check of access running meanwhile sees it
        let guard = long_lived.then(|| self.streams.open(identity.clone(), attributes.clone(), &self.verifier));
        let body: Body = if upgrade.is_some() { empty() } else { body.map_err(Into::into).boxed() };
        let mut upstream_req = Request::new(body);
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.headers_mut() = headers;

        let response = match self.upstream.client.request(upstream_req).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the Kubernetes API");
                let answer = status_response(StatusCode::BAD_GATEWAY, "ServiceUnavailable", "the connector cannot reach the Kubernetes API");
                self.record(&identity.user, &attributes, answer.status(), remote);
                return answer;
            }
        };
        self.record(&identity.user, &attributes, response.status(), remote);

        match (client_upgrade, guard) {
            (Some(client_upgrade), Some(guard)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                let (mut parts, _) = response.into_parts();
                let upstream_upgrade = hyper::upgrade::on(Response::from_parts(parts.clone(), Empty::<Bytes>::new()));
                tokio::spawn(async move {
                    let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else { return };
                    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                    // dropping both ends closes the connections
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                        why = guard.ended() => tracing::debug!(%why, "closed an upgraded connection"),
                    }
                });
                parts.extensions = http::Extensions::new();
                Response::from_parts(parts, empty())
            }
            (None, Some(guard)) if response.status().is_success() => response.map(|b| Guarded::new(b, guard).boxed()),
            _ => response.map(|b| b.map_err(Into::into).boxed()),
        }
    }

    /// `Impersonate-User` and `Impersonate-Group` for `user` and the groups the server reports now
    /// (not those of when the token was minted), as the UTF-8 bytes Kubernetes reads them as. A name
    /// that cannot be a header value (a control character) refuses the request rather than being dropped.
    fn impersonate(&self, headers: &mut HeaderMap, user: &str) -> Result<(), Box<Response<Body>>> {
        if let Some(auth) = self.upstream.token.header() {
            headers.insert(header::AUTHORIZATION, auth);
        }
        let value = |kind: &str, name: &str| {
            HeaderValue::from_bytes(name.as_bytes()).map_err(|_| {
                let message = format!("the {kind} name {name:?} cannot be sent to Kubernetes (it holds a control character): ask an admin to rename it");
                Box::new(status_response(StatusCode::FORBIDDEN, "Forbidden", &message))
            })
        };
        headers.insert(HeaderName::from_static("impersonate-user"), value("user", user)?);
        for group in &self.verifier.current_groups(user) {
            headers.append(HeaderName::from_static("impersonate-group"), value("group", group)?);
        }
        Ok(())
    }

    /// Re-checks every open stream against Kubernetes RBAC as it is now (a SelfSubjectAccessReview as
    /// the stream's user, with the groups the server reports now) and closes those no longer allowed.
    /// Called after the bindings are reconciled. A review that fails (the API unreachable) keeps the
    /// stream open until the next re-check.
    pub async fn recheck_streams(&self) {
        use futures::StreamExt;
        let open = self.streams.snapshot();
        if open.is_empty() {
            return;
        }
        let denied: Vec<u64> = futures::stream::iter(open)
            .map(|stream| async move { (!self.still_allowed(&stream).await).then_some(stream.id) })
            .buffer_unordered(16)
            .filter_map(|id| async move { id })
            .collect()
            .await;
        self.streams.close(&denied);
    }

    async fn still_allowed(&self, stream: &streams::Snapshot) -> bool {
        for verb in stream.attributes.checked_verbs() {
            match self.access_review(&stream.identity.user, &stream.attributes, verb).await {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, user = %stream.identity.user, "cannot re-check an open stream; keeping it until the next check");
                    return true;
                }
            }
        }
        true
    }

    async fn access_review(&self, user: &str, a: &Attributes, verb: &str) -> Result<bool, String> {
        let spec = if a.resource.starts_with('/') || a.resource.is_empty() {
            serde_json::json!({ "nonResourceAttributes": { "path": a.resource, "verb": verb } })
        } else {
            let (resource, subresource) = a.resource.split_once('/').unwrap_or((a.resource.as_str(), ""));
            serde_json::json!({ "resourceAttributes": {
                "verb": verb, "group": a.group, "resource": resource, "subresource": subresource, "namespace": a.namespace, "name": a.name,
            } })
        };
        let review = serde_json::json!({ "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec });
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if self.impersonate(&mut headers, user).is_err() {
            return Ok(false);
        }
        let uri: Uri = format!("{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", self.upstream.base).parse().map_err(|e| format!("{e}"))?;
        let mut req = Request::new(Full::new(Bytes::from(review.to_string())).map_err(|never| match never {}).boxed());
        *req.method_mut() = Method::POST;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let ask = async {
            let response = self.upstream.client.request(req).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), ask).await.map_err(|_| "the review timed out".to_string())??;
        if status == StatusCode::FORBIDDEN {
            return Ok(false); // the user can no longer be impersonated
        }
        if !status.is_success() {
            return Err(format!("the review answered {status}"));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(answer.pointer("/status/allowed").and_then(serde_json::Value::as_bool).unwrap_or(false))
    }

    fn record(&self, user: &str, a: &Attributes, status: StatusCode, remote: SocketAddr) {
        self.audit.record(ProxiedRequest {
            at: crate::server::now(),
            user: user.to_string(),
            verb: a.verb.clone(),
            resource: a.resource.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            status: status.as_u16(),
            source: remote.ip().to_string(),
        });
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim();
    (!token.is_empty()).then_some(token)
}

/// The protocols Kubernetes upgrades to: websockets (exec, attach, port-forward since kubectl 1.30/1.31)
/// and SPDY (older kubectl).
const UPGRADES: [&str; 2] = ["websocket", "SPDY/3.1"];

/// For an upgrade request (`Connection: upgrade` and `Upgrade`), the `Upgrade` header to send: the
/// protocols Kubernetes speaks, in their canonical spelling, and nothing else. Not an upgrade: `None`;
/// an upgrade to nothing Kubernetes speaks: refused.
fn upgrade_protocols(headers: &HeaderMap) -> Result<Option<HeaderValue>, Box<Response<Body>>> {
    let tokens = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let asked = tokens(header::UPGRADE);
    if asked.is_empty() || !tokens(header::CONNECTION).iter().any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Ok(None);
    }
    let known: Vec<&str> = UPGRADES.into_iter().filter(|p| asked.iter().any(|a| a.eq_ignore_ascii_case(p))).collect();
    if known.is_empty() {
        return Err(Box::new(status_response(StatusCode::BAD_REQUEST, "BadRequest", "the proxy upgrades only to websocket or SPDY/3.1")));
    }
    Ok(Some(HeaderValue::from_str(&known.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("websocket"))))
}

/// Whether a path has a `.` or `..` segment, also percent-encoded (`%2e`).
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// A followed log (`logs -f`): a response that lasts.
fn follows(uri: &Uri) -> bool {
    uri.path().ends_with("/log") && uri.query().is_some_and(|q| q.split('&').any(|p| p == "follow=true" || p == "follow=1"))
}

/// The client's headers minus its credentials, any impersonation it asked for, every hop-by-hop header
/// (`Connection` and `Upgrade` too: an upgrade gets its own), and whatever the client named as hop-by-hop.
fn forwardable(mut headers: HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    let impersonation: Vec<HeaderName> = headers.keys().filter(|k| k.as_str().starts_with("impersonate-")).cloned().collect();
    for name in impersonation {
        headers.remove(name);
    }
    for hop in ["keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "connection", "upgrade"] {
        headers.remove(hop);
    }
    headers
}

fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A Kubernetes `Status` answer, the shape kubectl knows how to print.
fn status_response(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed());
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// What a request does, in Kubernetes' terms, for the audit log and the re-check of open streams.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// the API group ("" for the core group)
    pub group: String,
    /// `pods`, `pods/exec` ...; for a non-resource request, its path
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    pub fn of(method: &Method, uri: &Uri) -> Attributes {
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let (group, rest): (&str, &[&str]) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (group, rest),
            _ => ("", &[]),
        };
        // the old `/watch/` paths
        let (old_watch, rest) = match rest {
            ["watch", rest @ ..] if !rest.is_empty() => (true, rest),
            _ => (false, rest),
        };
        if rest.is_empty() {
            // discovery, /version, /healthz, /openapi ...: a non-resource request
            return Attributes { verb: method.as_str().to_lowercase(), resource: uri.path().to_string(), ..Default::default() };
        }
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (namespace.to_string(), rest),
            _ => (String::new(), rest),
        };
        let mut resource = rest[0].to_string();
        let name = rest.get(1).map(|s| s.to_string()).unwrap_or_default();
        if let Some(sub) = rest.get(2) {
            resource = format!("{resource}/{sub}");
        }
        let watch = old_watch || uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        let verb = match *method {
            Method::GET | Method::HEAD if watch => "watch",
            Method::GET | Method::HEAD if name.is_empty() => "list",
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ => "unknown",
        };
        Attributes { verb: verb.into(), group: group.to_string(), resource, namespace, name }
    }

    /// The verbs Kubernetes authorizes this request with: its own, and for a websocket GET on exec,
    /// attach or port-forward also `create` (the verb of the POST it replaces, since Kubernetes 1.30).
    pub fn checked_verbs(&self) -> Vec<&str> {
        let streaming = ["/exec", "/attach", "/portforward"].iter().any(|s| self.resource.ends_with(s));
        match self.verb.as_str() {
            "get" if streaming => vec!["get", "create"],
            verb => vec![verb],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str) -> Attributes {
        Attributes::of(&method, &path.parse().unwrap())
    }

    #[test]
    fn request_attributes() {
        let a = attrs(Method::GET, "/api/v1/namespaces/web/pods");
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.namespace.as_str(), a.name.as_str()), ("list", "pods", "web", ""));
        let a = attrs(Method::GET, "/api/v1/namespaces/web/pods/web-0/log?follow=true");
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.name.as_str()), ("get", "pods/log", "web-0"));
        let a = attrs(Method::GET, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?watch=1");
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()), ("watch", "clusterrolebindings", ""));
        let a = attrs(Method::GET, "/api/v1/namespaces/db");
        assert_eq!((a.verb.as_str(), a.resource.as_str(), a.name.as_str()), ("get", "namespaces", "db"));
        let a = attrs(Method::DELETE, "/api/v1/namespaces/web/pods");
        assert_eq!(a.verb, "deletecollection");
        let a = attrs(Method::GET, "/apis");
        assert_eq!((a.verb.as_str(), a.resource.as_str()), ("get", "/apis"));
    }

    #[test]
    fn dot_segments_upgrades_and_checked_verbs() {
        for path in ["/api/v1/namespaces/web/../db/pods", "/api/%2E%2e/v1", "/api/v1/./pods", "/api/v1/%2e"] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in ["/api/v1/namespaces/web/pods/web-0", "/api/v1/namespaces/web/pods/a..b", "/"] {
            assert!(!has_dot_segment(path), "{path}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade, Impersonate-User"));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket, h2c"));
        assert_eq!(upgrade_protocols(&h).ok().flatten().unwrap(), "websocket");
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(upgrade_protocols(&h).err().map(|r| r.status()), Some(StatusCode::BAD_REQUEST));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(upgrade_protocols(&h).ok().flatten().is_none());
        assert_eq!(attrs(Method::GET, "/api/v1/namespaces/web/pods/web-0/exec?command=ls").checked_verbs(), ["get", "create"]);
        assert_eq!(attrs(Method::GET, "/api/v1/watch/namespaces/web/pods").checked_verbs(), ["watch"]);
        let a = attrs(Method::GET, "/apis/rbac.authorization.k8s.io/v1/watch/clusterrolebindings");
        assert_eq!((a.verb.as_str(), a.group.as_str(), a.resource.as_str()), ("watch", "rbac.authorization.k8s.io", "clusterrolebindings"));
    }

    #[test]
    fn forwarded_headers_drop_credentials_and_impersonation() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert("impersonate-user", HeaderValue::from_static("root"));
        h.insert("impersonate-group", HeaderValue::from_static("system:masters"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade, X-Named"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-named", HeaderValue::from_static("hop"));
        let out = forwardable(h);
        assert!(out.get(header::CONNECTION).is_none() && out.get(header::UPGRADE).is_none() && out.get("x-named").is_none());
        assert!(out.get(header::AUTHORIZATION).is_none());
        assert!(out.get("impersonate-user").is_none() && out.get("impersonate-group").is_none());
        assert_eq!(out.get(header::ACCEPT).unwrap(), "application/json");
    }
}
