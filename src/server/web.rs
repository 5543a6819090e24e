//! The HTTP server: the router (console, server functions, REST API, browser forms), its layers, and
//! start-up (database, migrations, first admin, background jobs).

use std::sync::Arc;

use axum::routing::get;
use axum::{Router, middleware};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::app::{App, shell};
use crate::server::auth::signing::{MasterKey, Signer};
use crate::server::auth::{self, LoginLimiter, origin, session_store::DbSessionStore};
use crate::server::config::ServerConfig;
use crate::server::state::AppState;
use crate::server::{api, browser};

pub const SESSION_COOKIE: &str = "infra_session";
pub const SESSION_IDLE_HOURS: i64 = 12;

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_secure(state.config.secure_cookies())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(SESSION_IDLE_HOURS)));
    let leptos_options = state.leptos_options.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(browser::router())
        .nest("/api", api::router())
        .merge(api::well_known::router())
        .leptos_routes_with_context(&state, routes, || {}, move || shell(leptos_options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(origin::check_origin))
        .layer(sessions)
        .with_state(state)
}

/// Connects, migrates, creates the first admin if needed; returns the state and that admin's one-time
/// password when one was just created.
pub async fn prepare(config: ServerConfig, leptos_options: LeptosOptions) -> StartResult<(AppState, Option<String>)> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| format!("cannot create the data directory {}: {e}", config.data_dir.display()))?;
    let url = config.database_url();
    let db = crate::server::db::connect(&url).await.map_err(|e| format!("cannot open the database: {e}"))?;
    crate::server::db::migrate(&db).await.map_err(|e| format!("cannot migrate the database: {e}"))?;
    let one_time = auth::bootstrap_first_admin(&db, &config.admin_email).await.map_err(|e| e.to_string())?;
    let master = MasterKey::load_or_create(&config.master_key_file())?;
    let signer = Signer::start(&db, master.clone()).await?;
    let public_url: Arc<str> = config.url.as_deref().unwrap_or_default().trim_end_matches('/').into();
    let state = AppState {
        db,
        public_url,
        config: Arc::new(config),
        limiter: Arc::new(LoginLimiter::default()),
        unauthenticated: Arc::default(),
        signer,
        master,
        oidc_http: crate::server::oidc::http_client(),
        leptos_options,
    };
    Ok((state, one_time))
}

/// Start-up fails with a sentence for the operator.
pub type StartResult<T> = Result<T, String>;

pub async fn serve(mut config: ServerConfig, leptos_options: LeptosOptions) -> StartResult<()> {
    let addr = config.listen.unwrap_or(leptos_options.site_addr);
    let https = crate::server::https::setup(&config, addr)?;
    let scheme = if https.is_some() { "https" } else { "http" };
    let url = config.url.get_or_insert_with(|| format!("{scheme}://{addr}")).clone();
    let (state, one_time) = prepare(config, leptos_options).await?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let password_file = state.config.initial_password_file();
    println!("\n  Infra is running. Sign in at {url}/login");
    match &https {
        Some(h) => {
            match &h.ca_file {
                Some(ca) => println!("  TLS certificate from the server's own CA ({}); browsers will warn about it.", ca.display()),
                None => println!("  TLS certificate from --tls-cert."),
            }
            println!("  Fingerprint (SHA-256), which `infra login` shows too:\n    {}", h.fingerprint);
        }
        None => println!("  Plain HTTP (--no-tls): only behind a proxy that terminates TLS."),
    }
    match &one_time {
        Some(password) => {
            crate::files::write_private(&password_file, password)?;
            println!("\n  First admin: {}", state.config.admin_email);
            println!("  One-time password: {password}   (you will choose a new one at first sign-in;");
            println!("  it is also in {} until then)\n", password_file.display());
        }
        None if password_file.exists() => {
            println!("\n  The first admin's one-time password is in {}\n", password_file.display());
        }
        None => println!(),
    }
    spawn_housekeeping(state.clone());
    let app = router(state);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::server::https::serve(listener, app, https.map(|h| h.rustls), shutdown).await
}

fn spawn_housekeeping(state: AppState) {
    spawn_verification(state.clone());
    tokio::spawn(async move {
        let store = DbSessionStore::new(state.db.clone());
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = store.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
        }
    });
}

/// Continuous verification: every `--verify-interval-secs`, every provider user is checked with their
/// identity provider (at most 8 requests at a time; one replica at a time, see `providers::verify_pass`).
pub fn spawn_verification(state: AppState) {
    let every = std::time::Duration::from_secs(state.config.verify_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let redirect = state.oidc_redirect_url();
            let options = crate::server::services::providers::VerifyOptions::from_config(&state.config);
            match crate::server::services::providers::verify_pass(&state.db, &state.master, &state.oidc_http, &redirect, &options).await {
                Ok(r) if r.checked > 0 => {
                    tracing::info!(checked = r.checked, updated = r.updated, disabled = r.disabled, unavailable = r.unavailable, "verified provider users")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "continuous verification failed"),
            }
        }
    });
}
