//! What every request handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use sea_orm::DatabaseConnection;

use crate::server::auth::signing::Signer;
use crate::server::auth::LoginLimiter;
use crate::server::config::ServerConfig;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<ServerConfig>,
    pub limiter: Arc<LoginLimiter>,
    /// signs cluster tokens; publishes the JWKS
    pub signer: Signer,
    pub leptos_options: LeptosOptions,
}
