//! CSRF defence: every state-changing request that a browser could send with our cookie must come from
//! our own origin. Server functions have no CSRF protection of their own, so this covers them too.
//! Requests authenticated only by an access key (a bearer header and no cookie) cannot be forged by a
//! browser and pass. So do requests with neither a cookie nor an `Origin` (the CLI's password login):
//! they carry no ambient authority, and a browser always sends `Origin` on a cross-site POST.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::error::AppError;

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split('/').next().unwrap_or(rest))
}

pub fn is_same_origin(req: &Request) -> bool {
    let headers = req.headers();
    // HTTP/1.1 names the host in `Host`; HTTP/2 (browsers over TLS) in the `:authority` of the URI
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
    let Some(host) = host else { return false };
    let claimed = headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER)).and_then(|h| h.to_str().ok()).and_then(host_of);
    claimed.is_some_and(|c| c.eq_ignore_ascii_case(host))
}

pub async fn check_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = req.headers();
    let bearer_only =
        headers.get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).is_some_and(|h| h.starts_with("Bearer ")) && !headers.contains_key(header::COOKIE);
    let not_a_browser = !headers.contains_key(header::COOKIE) && !headers.contains_key(header::ORIGIN);
    if safe || bearer_only || not_a_browser || is_same_origin(&req) {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), uri = %req.uri(), "refused a cross-origin state-changing request");
    AppError::Forbidden("cross-origin request refused".into()).into_response()
}
