//! The password sign-in form, sign-out, and changing one's own password (where a one-time password ends).

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;
use tower_sessions::Session;

use super::{local_path, with_error};
use crate::server::auth::actor::{ClientIp, PendingPassword};
use crate::server::auth::{self, session_store};
use crate::server::error::AppError;
use crate::server::services::{Ctx, users};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/login", post(login_form)).route("/auth/logout", post(logout_form)).route("/auth/password", post(password_form))
}

/// Where a page remembered before signing in is kept (the device approval).
pub(super) const NEXT: &str = "next";

/// Where to go after signing in: a page remembered before (the device approval), else home.
pub(super) async fn after_sign_in(session: &Session) -> String {
    let next: Option<String> = session.remove(NEXT).await.ok().flatten();
    next.as_deref().and_then(local_path).unwrap_or("/").to_string()
}

/// Starts this browser's session for a user who just signed in, then where they go next.
pub(super) async fn signed_in(session: &Session, user_id: i64, must_change_password: bool) -> Response {
    if session_store::start(session, user_id).await.is_err() {
        return with_error("/login", "could not start a session").into_response();
    }
    let next = if must_change_password { "/change-password".to_string() } else { after_sign_in(session).await };
    Redirect::to(&next).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// The sign-in form posts here; it works with or without JavaScript.
async fn login_form(State(state): State<AppState>, ClientIp(ip): ClientIp, session: Session, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return with_error("/login", "enter your email and password").into_response();
    };
    match auth::login(&state.db, &state.limiter, &form.email, &form.password, ip).await {
        Ok(user) => signed_in(&session, user.id, user.must_change_password).await,
        Err(e) => with_error("/login", &e.to_string()).into_response(),
    }
}

async fn logout_form(session: Session) -> Response {
    let _ = session.flush().await;
    Redirect::to("/login").into_response()
}

/// The pages the password form is on, where its errors are shown; the first is the default.
const PASSWORD_PAGES: [&str; 2] = ["/change-password", "/settings"];

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
    /// the page the form is on: one of [`PASSWORD_PAGES`]
    #[serde(default)]
    from: String,
}

/// Changing one's own password; the one-time password flow ends here.
async fn password_form(
    State(state): State<AppState>,
    session: Session,
    actor: Result<PendingPassword, AppError>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Ok(PendingPassword(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let Ok(Form(form)) = form else {
        return with_error(PASSWORD_PAGES[0], "fill in every field").into_response();
    };
    let from = local_path(&form.from).filter(|p| PASSWORD_PAGES.contains(p)).unwrap_or(PASSWORD_PAGES[0]);
    if form.new_password != form.confirm_password {
        return with_error(from, "the new passwords do not match").into_response();
    }
    match users::change_own_password(Ctx::new(&state.db, &actor), &form.current_password, &form.new_password).await {
        Ok(()) => {
            // the change ended every session of this user; this browser goes on with a new one
            if actor.key_id.is_none() && session_store::start(&session, actor.user_id).await.is_err() {
                return with_error("/login", "could not start a session").into_response();
            }
            if actor.email == state.config.admin_email.to_lowercase() {
                let _ = std::fs::remove_file(state.config.initial_password_file());
            }
            Redirect::to("/?password=changed").into_response()
        }
        Err(e) => with_error(from, &e.body().sentence()).into_response(),
    }
}
