//! `/.well-known/`: the keys that verify cluster tokens, and the discovery document connectors pin the
//! issuer with. Public by design.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::server::error::AppResult;
use crate::server::state::AppState;

/// Mounted at the root, not under `/api`.
pub fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks)).route("/.well-known/openid-configuration", get(discovery))
}

/// The public keys that verify cluster tokens.
async fn jwks(State(s): State<AppState>) -> AppResult<Response> {
    let keys = s.signer.jwks(&s.db).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "max-age=60")], Json(keys)).into_response())
}

#[derive(Serialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The issuer connectors pin and where its keys are.
async fn discovery(State(s): State<AppState>) -> impl IntoResponse {
    Json(Discovery { issuer: s.config.issuer(), jwks_uri: format!("{}/.well-known/jwks.json", s.public_url) })
}
