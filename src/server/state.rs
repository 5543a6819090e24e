//! What every request handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use crate::server::auth::signing::{MasterKey, Signer};
use crate::server::auth::{LoginLimiter, UnauthenticatedLimits};
use crate::server::config::ServerConfig;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<ServerConfig>,
    pub limiter: Arc<LoginLimiter>,
    /// what clients without credentials may make the server write
    pub unauthenticated: Arc<UnauthenticatedLimits>,
    /// signs cluster tokens; publishes the JWKS
    pub signer: Signer,
    /// encrypts secrets at rest (identity providers' client secrets and refresh tokens)
    pub master: MasterKey,
    /// the HTTP client for identity providers (no redirects followed)
    pub oidc_http: reqwest::Client,
    pub leptos_options: LeptosOptions,
    /// The URL people reach the server at (`--url`, else what `infra server` listens on), without a
    /// trailing `/`: resolved once at start-up. Empty only for a server that is not listening (tests).
    pub public_url: Arc<str>,
}

impl AppState {
    /// Where identity providers send people back to.
    pub fn oidc_redirect_url(&self) -> String {
        format!("{}/auth/oidc/callback", self.public_url)
    }
}
