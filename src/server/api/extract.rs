//! Extractors for the REST API: the acting identity (access key or session), and JSON bodies and query
//! strings whose rejections become our JSON errors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use crate::server::auth::{actor_for_user, session_store::USER_ID_KEY};
use crate::server::error::AppError;
use crate::server::services::{audit, keys, Actor};
use crate::server::state::AppState;

pub fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// Resolves who is calling: an access key in `Authorization: Bearer`, or else the session cookie.
/// A user who still has to change a one-time password is refused everything else.
pub async fn resolve_actor(parts: &mut Parts, state: &AppState, allow_pending_password: bool) -> Result<Actor, AppError> {
    let source = client_ip(parts).to_string();
    let actor = if let Some(key) = bearer(parts) {
        let identity = match keys::authenticate(&state.db, key).await {
            Ok(identity) => identity,
            Err(e) => {
                let key_id = key.split('.').next().unwrap_or("").chars().take(32).collect::<String>();
                audit::record_as(&state.db, "", &source, "auth.key", &key_id, audit::Outcome::Denied, &e.to_string()).await?;
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
        match actor_for_user(&state.db, user_id, &source).await {
            Ok(actor) => actor,
            Err(e) => {
                let _ = session.flush().await;
                return Err(e);
            }
        }
    };
    if actor.must_change_password && !allow_pending_password {
        return Err(AppError::Forbidden("change your one-time password first".into()));
    }
    Ok(actor)
}

pub struct ApiActor(pub Actor);

impl FromRequestParts<AppState> for ApiActor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_actor(parts, state, false).await.map(ApiActor)
    }
}

/// A JSON body; malformed input is a 400 with our error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| ApiJson(v))
            .map_err(|e| AppError::Invalid(e.body_text(), Vec::new()))
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
