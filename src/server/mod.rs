//! Everything that runs only on the server.

pub mod api;
pub mod auth;
pub mod browser;
pub mod config;
pub mod db;
pub mod directory;
pub mod error;
pub mod https;
pub mod oidc;
pub mod services;
pub mod state;
pub mod web;

/// Milliseconds since the Unix epoch, the product's one clock.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
