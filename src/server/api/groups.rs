//! `/api/groups` and their members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use super::ListQuery;
use super::extract::{ApiJson, ApiQuery};
use crate::model::{Named, NewMember};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, groups};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{id}", get(get_group).patch(rename_group).delete(delete_group))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/members/{user_id}", delete(remove_member))
}

/// The body that names something: a group, a pending cluster.
async fn list_groups(State(s): State<AppState>, SignedIn(a): SignedIn, ApiQuery(q): ApiQuery<ListQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::list(Ctx::new(&s.db, &a), q.q.as_deref(), q.paging()).await?))
}

async fn create_group(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<Named>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(groups::create(Ctx::new(&s.db, &a), &body.name).await?)).into_response())
}

async fn get_group(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::get(Ctx::new(&s.db, &a), id).await?))
}

async fn rename_group(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>, ApiJson(body): ApiJson<Named>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::rename(Ctx::new(&s.db, &a), id, &body.name).await?))
}

async fn delete_group(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<StatusCode> {
    groups::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_member(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>, ApiJson(body): ApiJson<NewMember>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::add_member(Ctx::new(&s.db, &a), id, &body.user).await?))
}

async fn remove_member(State(s): State<AppState>, SignedIn(a): SignedIn, Path((id, user_id)): Path<(i64, i64)>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::remove_member(Ctx::new(&s.db, &a), id, user_id).await?))
}
