//! `/api/users`: local accounts and the users identity providers bring.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::ListQuery;
use super::extract::{ApiJson, ApiQuery};
use crate::model::{CreateUser, CreatedUser, User, UserUpdate};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, users};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/users", get(list_users).post(create_user)).route("/users/{id}", get(get_user).patch(update_user).delete(delete_user))
}

async fn list_users(State(s): State<AppState>, SignedIn(a): SignedIn, ApiQuery(q): ApiQuery<ListQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(users::list(Ctx::new(&s.db, &a), q.q.as_deref(), q.paging()).await?))
}

async fn create_user(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<CreateUser>) -> AppResult<Response> {
    let (user, one_time_password) = users::create(Ctx::new(&s.db, &a), users::NewUser { email: body.email, name: body.name, password: body.password }).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user, one_time_password })).into_response())
}

async fn get_user(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<Json<User>> {
    Ok(Json(users::get(Ctx::new(&s.db, &a), id).await?))
}

async fn update_user(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>, ApiJson(change): ApiJson<UserUpdate>) -> AppResult<Json<User>> {
    Ok(Json(users::update(Ctx::new(&s.db, &a), id, &change).await?))
}

async fn delete_user(State(s): State<AppState>, SignedIn(a): SignedIn, Path(id): Path<i64>) -> AppResult<StatusCode> {
    users::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
