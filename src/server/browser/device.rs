//! Approving a CLI's device login in the browser (`infra login --web`): the person signs in, types the
//! code their terminal shows, and approves it.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use super::sign_in::NEXT;
use super::with_error;
use crate::app::components::encode;
use crate::server::auth::actor::SignedIn;
use crate::server::auth::session_store;
use crate::server::error::AppError;
use crate::server::services::{Ctx, audit, device_login};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/device/start", get(device_start)).route("/device/confirm", post(device_confirm)).route("/device/approve", post(device_approve))
}

#[derive(Deserialize)]
struct DeviceCode {
    code: String,
}

/// The link `infra login --web` prints: remembers the approval page across a sign-in, then goes there.
/// A `code` in the link (older CLIs put one there) is ignored: the person types the code.
async fn device_start(session: Session) -> Response {
    let _ = session.insert(NEXT, "/device").await;
    Redirect::to("/device").into_response()
}

/// The person typed the code their terminal shows: remember it in this session, then show that login.
async fn device_confirm(State(state): State<AppState>, session: Session, actor: Result<SignedIn, AppError>, Form(form): Form<DeviceCode>) -> Response {
    if actor.is_err() {
        return Redirect::to("/login").into_response();
    }
    let code = device_login::normalize_code(&form.code);
    match device_login::pending(&state.db, &code).await {
        Ok(_) => {
            if session.insert(session_store::DEVICE_TYPED_KEY, code.clone()).await.is_err() {
                return with_error("/device", "could not keep the code in your session").into_response();
            }
            Redirect::to(&format!("/device?code={}", encode(&code))).into_response()
        }
        Err(e) => with_error("/device", &e.to_string()).into_response(),
    }
}

/// The person approves the code their CLI shows: one they typed in this browser (or, with a user's
/// access key, one they send themselves).
async fn device_approve(State(state): State<AppState>, session: Session, actor: Result<SignedIn, AppError>, Form(form): Form<DeviceCode>) -> Response {
    let Ok(SignedIn(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let page = format!("/device?code={}", encode(&form.code));
    if actor.key_id.is_none() && !session_store::device_code_typed(&session, &form.code).await {
        let source = actor.source.clone();
        tracing::info!(%source, "device approval without the typed code refused");
        let why = "code not typed on the approval page";
        let _ = audit::record(&state.db, &actor, "auth.device.approve", &form.code, audit::Outcome::Denied, why).await;
        return with_error("/device", "type the code your terminal shows, then approve").into_response();
    }
    let _ = session.remove::<String>(session_store::DEVICE_TYPED_KEY).await;
    match device_login::approve(Ctx::new(&state.db, &actor), &form.code).await {
        Ok(Some(cli)) => Redirect::to(&cli).into_response(),
        Ok(None) => Redirect::to(&format!("{page}&approved=1")).into_response(),
        Err(e) => with_error(&page, &e.to_string()).into_response(),
    }
}
