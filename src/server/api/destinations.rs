//! `/api/destinations`: the clusters, as people manage them (the connector's own endpoints are in
//! [`super::connector`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::ListQuery;
use super::extract::{ApiJson, ApiQuery};
use crate::model::Named;
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, destinations, grants, keys};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/destinations", get(list_destinations).post(create_destination))
        .route("/destinations/{name}", get(get_destination).delete(remove_destination))
        .route("/destinations/{name}/grants", get(destination_grants))
        .route("/destinations/{name}/connector-key", post(connector_key))
}

async fn list_destinations(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::list(Ctx::new(&s.db, &a)).await?))
}

async fn create_destination(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<Named>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(destinations::create_pending(Ctx::new(&s.db, &a), &body.name).await?)).into_response())
}

async fn get_destination(State(s): State<AppState>, SignedIn(a): SignedIn, Path(name): Path<String>) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::get(Ctx::new(&s.db, &a), &name).await?))
}

async fn remove_destination(State(s): State<AppState>, SignedIn(a): SignedIn, Path(name): Path<String>) -> AppResult<StatusCode> {
    destinations::remove(Ctx::new(&s.db, &a), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn destination_grants(
    State(s): State<AppState>,
    SignedIn(a): SignedIn,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let filter = grants::GrantFilter { cluster: Some(name), ..Default::default() };
    Ok(Json(grants::list(Ctx::new(&s.db, &a), &filter, q.paging()).await?))
}

async fn connector_key(State(s): State<AppState>, SignedIn(a): SignedIn, Path(name): Path<String>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(keys::create_connector_key(Ctx::new(&s.db, &a), &name).await?)).into_response())
}
