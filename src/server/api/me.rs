//! `/api/me`: the caller and what they can reach.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::model::{AccessEntry, User};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, grants, users};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me)).route("/me/access", get(my_access))
}

async fn me(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<Json<User>> {
    Ok(Json(users::get(Ctx::new(&s.db, &a), a.user_id).await?))
}

async fn my_access(State(s): State<AppState>, SignedIn(a): SignedIn) -> AppResult<Json<Vec<AccessEntry>>> {
    Ok(Json(grants::access_of(&s.db, a.user_id).await?))
}
