//! `/api/me`: the caller and what they can reach.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::model::{AccessEntry, Whoami};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, grants, users};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me)).route("/me/access", get(my_access))
}

async fn me(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<Json<Whoami>> {
    Ok(Json(users::whoami(Ctx::new(&s.db, &a)).await?))
}

async fn my_access(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<Json<Vec<AccessEntry>>> {
    Ok(Json(grants::access_of(&s.db, a.user_id).await?))
}
