//! `/api/providers`: identity providers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};

use super::extract::ApiJson;
use crate::model::{NewProvider, ProviderUpdate};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, providers};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/providers", get(list_providers).post(create_provider))
        .route("/providers/{id}", patch(update_provider).delete(delete_provider))
        .route("/providers/{id}/test", post(test_provider))
}

async fn list_providers(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<impl IntoResponse> {
    Ok(Json(providers::list(Ctx::new(&s.db, &a)).await?))
}

async fn create_provider(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(new): ApiJson<NewProvider>) -> AppResult<Response> {
    let created = providers::create(Ctx::new(&s.db, &a), &s.master, &new).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn update_provider(
    State(s): State<AppState>,
    SignedIn(a): SignedIn,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<ProviderUpdate>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(providers::update(Ctx::new(&s.db, &a), &s.master, id, &change).await?))
}

async fn delete_provider(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<StatusCode> {
    providers::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_provider(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<impl IntoResponse> {
    Ok(Json(providers::check(Ctx::new(&s.db, &a), &s.master, id, &s.oidc_http).await?))
}
