//! The authenticating proxy kubectl talks to. It verifies the bearer token, then forwards the request
//! to the Kubernetes API with the connector's own credential and `Impersonate-User` /
//! `Impersonate-Group` headers, so Kubernetes RBAC decides. Bodies stream both ways (watch, logs -f)
//! and upgrades (exec, port-forward) are spliced through. Every request is reported to the audit log.

pub mod audit;
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
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::client::ConfigExt;
use tokio::net::TcpListener;

use self::audit::AuditSink;
use self::verify::Verifier;
use crate::model::ProxiedRequest;

type Body = BoxBody<Bytes, hyper::Error>;

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
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
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
            let Ok(stream) = acceptor.accept(tcp).await else { return };
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, remote).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Proxy {
    async fn handle(&self, mut req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
        let token = bearer(req.headers());
        let identity = match token {
            None => return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
            Some(token) => match self.verifier.verify(token).await {
                Ok(identity) => identity,
                Err(verify::Refusal::NotReady) => {
                    return status_response(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "the connector is starting: try again in a moment");
                }
                Err(refusal) => {
                    tracing::debug!(%refusal, %remote, "refused a token");
                    return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
                }
            },
        };
        let attributes = Attributes::of(req.method(), req.uri());
        let upgrade = is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let uri: Uri = match format!("{}{path}", self.upstream.base).parse() {
            Ok(uri) => uri,
            Err(_) => return status_response(StatusCode::BAD_REQUEST, "BadRequest", "the request path is not valid"),
        };
        let mut headers = forwardable(parts.headers, upgrade);
        if let Some(auth) = self.upstream.token.header() {
            headers.insert(header::AUTHORIZATION, auth);
        }
        match HeaderValue::from_str(&identity.user) {
            Ok(user) => headers.insert(HeaderName::from_static("impersonate-user"), user),
            Err(_) => return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
        };
        // the groups as the server sees them now, not as they were when the token was minted
        for group in &self.verifier.current_groups(&identity.user) {
            if let Ok(group) = HeaderValue::from_str(group) {
                headers.append(HeaderName::from_static("impersonate-group"), group);
            }
        }
        let body: Body = if upgrade { empty() } else { body.boxed() };
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

        if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, response.status()) {
            let (mut parts, _) = response.into_parts();
            let upstream_upgrade = hyper::upgrade::on(Response::from_parts(parts.clone(), Empty::<Bytes>::new()));
            tokio::spawn(async move {
                let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) else { return };
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(upstream)).await;
            });
            parts.extensions = http::Extensions::new();
            return Response::from_parts(parts, empty());
        }
        response.map(|b| b.boxed())
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

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// The client's headers minus its credentials, any impersonation it asked for, and hop-by-hop headers
/// (kept for an upgrade, which needs `Connection` and `Upgrade`).
fn forwardable(mut headers: HeaderMap, upgrade: bool) -> HeaderMap {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::HOST);
    let impersonation: Vec<HeaderName> =
        headers.keys().filter(|k| k.as_str().starts_with("impersonate-")).cloned().collect();
    for name in impersonation {
        headers.remove(name);
    }
    for hop in ["keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding"] {
        headers.remove(hop);
    }
    if !upgrade {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
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

/// What a request does, in Kubernetes' terms, for the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Attributes {
    pub fn of(method: &Method, uri: &Uri) -> Attributes {
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let rest: &[&str] = match segments.as_slice() {
            ["api", _version, rest @ ..] => rest,
            ["apis", _group, _version, rest @ ..] => rest,
            _ => &[],
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
        let watch = uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
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
        Attributes { verb: verb.into(), resource, namespace, name }
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
    fn forwarded_headers_drop_credentials_and_impersonation() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert("impersonate-user", HeaderValue::from_static("root"));
        h.insert("impersonate-group", HeaderValue::from_static("system:masters"));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let out = forwardable(h, false);
        assert!(out.get(header::AUTHORIZATION).is_none());
        assert!(out.get("impersonate-user").is_none() && out.get("impersonate-group").is_none());
        assert_eq!(out.get(header::ACCEPT).unwrap(), "application/json");
    }
}
