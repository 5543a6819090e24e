//! Credentials for clusters: `/api/tokens` (what `infra tokens` asks for) and `/api/kubeconfig`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::extract::ApiJson;
use crate::model::{KubeconfigRequest, TokenRequest};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, kubeconfig, tokens};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/tokens", post(issue_token)).route("/kubeconfig", post(build_kubeconfig))
}

async fn issue_token(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<TokenRequest>) -> AppResult<Response> {
    let token = tokens::issue(Ctx::new(&s.db, &a), &s.signer, &s.config.issuer(), &body.destination).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn build_kubeconfig(State(s): State<AppState>, SignedIn(a): SignedIn, ApiJson(body): ApiJson<KubeconfigRequest>) -> AppResult<impl IntoResponse> {
    Ok(Json(kubeconfig::build(Ctx::new(&s.db, &a), &s.signer, &s.config.issuer(), &s.public_url, &body).await?))
}
