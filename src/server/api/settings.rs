//! `/api/settings` (the product's settings) and rotating the key that signs cluster tokens.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::extract::ApiJson;
use crate::model::ProductSettings;
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, settings, tokens};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/settings", get(get_settings).patch(update_settings)).route("/signing-keys/rotate", post(rotate_signing_key))
}

async fn get_settings(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<impl IntoResponse> {
    Ok(Json(settings::get(Ctx::new(&s.db, &a)).await?))
}

async fn update_settings(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<ProductSettings>) -> AppResult<impl IntoResponse> {
    Ok(Json(settings::update(Ctx::new(&s.db, &a), &body).await?))
}

#[derive(Serialize)]
struct Rotated {
    kid: String,
}

async fn rotate_signing_key(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<impl IntoResponse> {
    Ok(Json(Rotated { kid: tokens::rotate_signing_key(Ctx::new(&s.db, &a), &s.signer).await? }))
}
