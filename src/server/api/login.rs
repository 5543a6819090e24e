//! How the CLI signs in: with a password (`/api/login`), or with a device code a person approves in
//! the browser (`/api/device`); and which identity providers one may sign in with.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::extract::ApiJson;
use crate::model::{CliLogin, DeviceStartRequest, DeviceTokenRequest};
use crate::server::auth::{self, actor::ClientIp};
use crate::server::error::{AppError, AppResult};
use crate::server::services::{Ctx, device_login, keys, providers};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(cli_login))
        .route("/login/providers", get(login_providers))
        .route("/device", post(device_start))
        .route("/device/token", post(device_token))
}

/// The CLI's password login: the same checks, lockout and audit as the console's sign-in, and an
/// access key for the CLI in return.
async fn cli_login(State(s): State<AppState>, ClientIp(ip): ClientIp, ApiJson(body): ApiJson<CliLogin>) -> AppResult<Response> {
    let user = auth::login(&s.db, &s.limiter, &body.email, &body.password, ip).await?;
    let actor = auth::actor_for_user(&s.db, user.id, &ip.to_string()).await?;
    if actor.must_change_password {
        return Err(AppError::Forbidden("change your one-time password in the console first".into()));
    }
    let created = keys::create_for_cli_login(Ctx::new(&s.db, &actor), body.name.as_deref().unwrap_or_default()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The identity providers one may sign in with (names only; no sign-in needed).
async fn login_providers(State(s): State<AppState>) -> AppResult<impl IntoResponse> {
    Ok(Json(providers::names(&s.db).await?))
}

async fn device_start(State(s): State<AppState>, ClientIp(ip): ClientIp, ApiJson(body): ApiJson<DeviceStartRequest>) -> AppResult<Response> {
    s.unauthenticated.device.attempt(ip, crate::server::now())?;
    let name = body.name.as_deref().unwrap_or_default();
    let started = device_login::start(&s.db, &s.public_url, name, body.redirect_port, &ip.to_string()).await?;
    Ok((StatusCode::CREATED, Json(started)).into_response())
}

#[derive(Serialize)]
struct Pending {
    status: &'static str,
}

/// 202 `{"status": "pending"}` until the person approves; then 201 with the access key, once.
async fn device_token(State(s): State<AppState>, ApiJson(body): ApiJson<DeviceTokenRequest>) -> AppResult<Response> {
    Ok(match device_login::poll(&s.db, &body.device_code).await? {
        Some(key) => (StatusCode::CREATED, Json(key)).into_response(),
        None => (StatusCode::ACCEPTED, Json(Pending { status: "pending" })).into_response(),
    })
}
