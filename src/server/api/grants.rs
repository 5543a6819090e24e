//! `/api/grants`: who may do what where.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};

use super::ListQuery;
use super::extract::{ApiJson, ApiQuery};
use crate::model::NewGrant;
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, grants};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/grants", get(list_grants).post(add_grant)).route("/grants/{id}", delete(remove_grant))
}

async fn list_grants(
    State(s): State<AppState>,
    SignedIn(a): SignedIn,
    ApiQuery(filter): ApiQuery<grants::GrantFilter>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(grants::list(Ctx::new(&s.db, &a), &filter, q.paging()).await?))
}

async fn add_grant(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<NewGrant>) -> AppResult<Response> {
    let (grant, created) = grants::add(Ctx::new(&s.db, &a), &body).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(grant)).into_response())
}

async fn remove_grant(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<StatusCode> {
    grants::remove(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
