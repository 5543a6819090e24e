//! Extractors for the REST API: the acting identity (access key or session), and JSON bodies and query
//! strings whose rejections become our JSON errors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use crate::server::auth::{
    actor_for_user,
    session_store::{SIGNED_IN_AT_KEY, USER_ID_KEY},
};
use crate::server::error::AppError;
use crate::server::services::{Actor, audit, keys};
use crate::server::state::AppState;

/// The client's address: the connection's peer, or, when the peer is a trusted proxy (`--trusted-proxy`),
/// the right-most `X-Forwarded-For` entry that is not a trusted proxy itself (entries further left are
/// whatever the client chose to send). Unspecified when the server runs without connection info.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_canonical()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let mut client = peer;
    for hop in forwarded.split(',').rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Resolves a person who is calling (a session cookie, or a user's access key in `Authorization: Bearer`).
/// A connector key is refused here: it acts only on its own cluster's connector endpoints
/// ([`resolve_connector`]). A user who still has to change a one-time password is refused everything else.
pub async fn resolve_actor(parts: &mut Parts, state: &AppState, allow_pending_password: bool) -> Result<Actor, AppError> {
    let actor = authenticate(parts, state).await?;
    if let Some(cluster) = &actor.bound_destination {
        let what = format!("{} {}", parts.method, parts.uri.path());
        let why = format!("connector key of cluster {cluster} used outside its cluster's connector endpoints");
        audit::record(&state.db, &actor, "auth.key", &what, audit::Outcome::Denied, &why).await?;
        return Err(AppError::Forbidden("a connector key can only be used by its cluster's connector".into()));
    }
    if actor.must_change_password && !allow_pending_password {
        return Err(AppError::Forbidden("change your one-time password first".into()));
    }
    Ok(actor)
}

/// Resolves the caller of a connector endpoint: a connector key, or a person (only an admin may act for
/// a cluster; the service decides with [`crate::server::services::Ctx::require_connector_for`]).
pub async fn resolve_connector(parts: &mut Parts, state: &AppState) -> Result<Actor, AppError> {
    let actor = authenticate(parts, state).await?;
    if actor.must_change_password {
        return Err(AppError::Forbidden("change your one-time password first".into()));
    }
    Ok(actor)
}

/// Who is calling, whatever the credential: an access key in `Authorization: Bearer`, or else the session.
async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Actor, AppError> {
    let ip = client_ip(parts, &state.config.trusted_proxies);
    let source = ip.to_string();
    let actor = if let Some(key) = bearer(parts) {
        let identity = match keys::authenticate(&state.db, key).await {
            Ok(identity) => identity,
            Err(e) => {
                let key_id = key.split('.').next().unwrap_or("").chars().take(32).collect::<String>();
                state.unauthenticated.audit_refusal(&state.db, ip, "auth.key", &key_id, &e.to_string()).await?;
                return Err(e);
            }
        };
        let mut actor = actor_for_user(&state.db, identity.user_id, &source).await?;
        actor.bound_destination = identity.destination;
        actor.key_id = Some(identity.key_id);
        actor
    } else {
        let session = Session::from_request_parts(parts, state).await.map_err(|_| AppError::Unauthenticated)?;
        let user_id: Option<i64> = session.get(USER_ID_KEY).await.map_err(|e| AppError::Internal(e.to_string()))?;
        let user_id = user_id.ok_or(AppError::Unauthenticated)?;
        let signed_in_at: Option<i64> = session.get(SIGNED_IN_AT_KEY).await.map_err(|e| AppError::Internal(e.to_string()))?;
        let max_age_ms = state.config.session_max_age_hours.saturating_mul(3_600_000) as i64;
        if signed_in_at.is_none_or(|t| crate::server::now() - t > max_age_ms) {
            let _ = session.flush().await;
            return Err(AppError::Unauthenticated);
        }
        match actor_for_user(&state.db, user_id, &source).await {
            Ok(actor) => actor,
            Err(e) => {
                let _ = session.flush().await;
                return Err(e);
            }
        }
    };
    Ok(actor)
}

/// A person calling the API (refuses connector keys).
pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_actor(parts, state, false).await.map(ApiActor)
    }
}

/// The caller of one of a cluster's connector endpoints (register, heartbeat, bindings, audit, certificates).
pub struct ConnectorActor(pub Actor);

impl FromRequestParts<AppState> for ConnectorActor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_connector(parts, state).await.map(ConnectorActor)
    }
}

/// A JSON body; malformed input is a 400 with our error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Json::<T>::from_request(req, state).await.map(|axum::Json(v)| ApiJson(v)).map_err(|e| AppError::Invalid(e.body_text(), Vec::new()))
    }
}

/// A query string; malformed input is a 400 with our error body.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| AppError::Invalid(e.body_text(), Vec::new()))
    }
}
