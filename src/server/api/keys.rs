//! `/api/keys`: access keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;

use super::extract::{ApiJson, ApiQuery};
use crate::model::NewAccessKey;
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, keys};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/keys", get(list_keys).post(create_key)).route("/keys/{id}", delete(revoke_key))
}

#[derive(Deserialize)]
struct KeysQuery {
    #[serde(default)]
    all: bool,
}

async fn list_keys(State(s): State<AppState>, SignedIn(a): SignedIn, ApiQuery(q): ApiQuery<KeysQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(keys::list(Ctx::new(&s.db, &a), q.all).await?))
}

async fn create_key(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<NewAccessKey>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(keys::create(Ctx::new(&s.db, &a), &body).await?)).into_response())
}

async fn revoke_key(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<StatusCode> {
    keys::revoke(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
