//! `/api/audit`: the audit log.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::ListQuery;
use super::extract::ApiQuery;
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, audit};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list_audit))
}

async fn list_audit(
    State(s): State<AppState>,
    SignedIn(a): SignedIn,
    ApiQuery(filter): ApiQuery<audit::AuditFilter>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(audit::list(Ctx::new(&s.db, &a), &filter, q.paging()).await?))
}
