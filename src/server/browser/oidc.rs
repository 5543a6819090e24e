//! Signing in with an identity provider: to the provider (PKCE, state and nonce kept in the session),
//! and back from it.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

use super::sign_in::signed_in;
use super::with_error;
use crate::server::auth::actor::ClientIp;
use crate::server::auth::password::constant_time_eq;
use crate::server::oidc::{self, PendingLogin};
use crate::server::services::providers;
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/auth/oidc/callback", get(oidc_callback)).route("/auth/oidc/{provider}", get(oidc_start))
}

const OIDC_PENDING: &str = "oidc_pending";

/// "Sign in with <provider>": to the provider, with PKCE, state and nonce kept in the session.
async fn oidc_start(State(state): State<AppState>, session: Session, Path(name): Path<String>) -> Response {
    let started = async {
        let provider = providers::config(&state.db, &state.master, &name).await.map_err(|e| e.to_string())?;
        let client = provider.client(&state.oidc_http, &state.oidc_redirect_url()).await.map_err(|e| e.to_string())?;
        let (url, pending) = oidc::authorization_url(&client, &provider.name, &provider.scopes, providers::authorization_params(&provider.kind));
        session.insert(OIDC_PENDING, pending).await.map_err(|_| "could not start a session".to_string())?;
        Ok::<_, String>(url)
    };
    match started.await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(message) => with_error("/login", &message).into_response(),
    }
}

#[derive(Deserialize)]
struct OidcCallback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider sends the browser back here: the state must be the one this browser started with;
/// then the code is exchanged and the ID token checked, and the user signed in.
async fn oidc_callback(State(state): State<AppState>, ClientIp(ip): ClientIp, session: Session, Query(q): Query<OidcCallback>) -> Response {
    let pending: Option<PendingLogin> = session.remove(OIDC_PENDING).await.ok().flatten();
    let finished = async {
        let pending = pending.ok_or("this sign-in was not started here, or it was already used: start again")?;
        if let Some(error) = &q.error {
            return Err(format!("the identity provider did not sign you in: {}", q.error_description.clone().unwrap_or(error.clone())));
        }
        let state_ok = q.state.as_deref().is_some_and(|s| constant_time_eq(s, &pending.state));
        if !state_ok {
            return Err("the sign-in response does not match this sign-in (state mismatch): start again".into());
        }
        let code = q.code.as_deref().ok_or("the identity provider sent no authorization code")?;
        let provider = providers::config(&state.db, &state.master, &pending.provider).await.map_err(|e| e.to_string())?;
        let client = provider.client(&state.oidc_http, &state.oidc_redirect_url()).await.map_err(|e| e.to_string())?;
        let who = oidc::finish(&client, &state.oidc_http, &pending, code, &provider.groups_claim).await.map_err(|e| e.to_string())?;
        providers::sign_in(&state.db, &state.master, &state.oidc_http, &provider, &who).await.map_err(|e| e.to_string())
    };
    match finished.await {
        Ok(user_id) => signed_in(&session, user_id, false).await,
        Err(message) => {
            tracing::info!(%ip, %message, "identity provider sign-in refused");
            let _ = state.unauthenticated.audit_refusal(&state.db, ip, "auth.provider.login", "", &message).await;
            with_error("/login", &message).into_response()
        }
    }
}
