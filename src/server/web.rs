//! The HTTP server: the router (console, server functions, REST API, sign-in forms), its layers, and
//! start-up (database, migrations, first admin).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router, middleware};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use serde::Deserialize;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::app::{App, shell};
use crate::model::{CredentialStyle, KubeconfigRequest};
use crate::server::api::{self, client_ip, resolve_actor};
use crate::server::auth::signing::{MasterKey, Signer};
use crate::server::auth::{
    self, LoginLimiter, origin,
    session_store::{self, DbSessionStore},
};
use crate::server::config::ServerConfig;
use crate::server::error::AppError;
use crate::server::services::{Actor, Ctx, users};
use crate::server::state::AppState;

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
        .route("/auth/login", post(login_form))
        .route("/auth/logout", post(logout_form))
        .route("/auth/password", post(password_form))
        .route("/auth/oidc/callback", get(oidc_callback))
        .route("/device/start", get(device_start))
        .route("/device/confirm", post(device_confirm))
        .route("/device/approve", post(device_approve))
        .route("/auth/oidc/{provider}", get(oidc_start))
        .route("/kubeconfig/download", post(kubeconfig_download))
        .nest("/api", api::routes())
        .route("/.well-known/jwks.json", get(api::jwks))
        .route("/.well-known/openid-configuration", get(api::discovery))
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

fn with_error(path: &str, message: &str) -> Redirect {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}error={}", crate::app::components::encode(message)))
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
        Ok(user) => {
            if session_store::start(&session, user.id).await.is_err() {
                return with_error("/login", "could not start a session").into_response();
            }
            let next = if user.must_change_password { "/change-password".to_string() } else { after_sign_in(&session).await };
            Redirect::to(&next).into_response()
        }
        Err(e) => with_error("/login", &e.to_string()).into_response(),
    }
}

const OIDC_PENDING: &str = "oidc_pending";

/// "Sign in with <provider>": to the provider, with PKCE, state and nonce kept in the session.
async fn oidc_start(State(state): State<AppState>, session: Session, axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let started = async {
        let provider = crate::server::services::providers::config(&state.db, &state.master, &name).await.map_err(|e| e.to_string())?;
        let client = provider.client(&state.oidc_http, &state.oidc_redirect_url()).await.map_err(|e| e.to_string())?;
        let (url, pending) = crate::server::oidc::authorization_url(
            &client,
            &provider.name,
            &provider.scopes,
            crate::server::services::providers::authorization_params(&provider.kind),
        );
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
async fn oidc_callback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    axum::extract::Query(q): axum::extract::Query<OidcCallback>,
) -> Response {
    let pending: Option<crate::server::oidc::PendingLogin> = session.remove(OIDC_PENDING).await.ok().flatten();
    let finished = async {
        let pending = pending.ok_or("this sign-in was not started here, or it was already used: start again")?;
        if let Some(error) = &q.error {
            return Err(format!("the identity provider did not sign you in: {}", q.error_description.clone().unwrap_or(error.clone())));
        }
        let state_ok = q.state.as_deref().is_some_and(|s| crate::server::auth::password::constant_time_eq(s, &pending.state));
        if !state_ok {
            return Err("the sign-in response does not match this sign-in (state mismatch): start again".into());
        }
        let code = q.code.as_deref().ok_or("the identity provider sent no authorization code")?;
        let provider = crate::server::services::providers::config(&state.db, &state.master, &pending.provider).await.map_err(|e| e.to_string())?;
        let client = provider.client(&state.oidc_http, &state.oidc_redirect_url()).await.map_err(|e| e.to_string())?;
        let who = crate::server::oidc::finish(&client, &state.oidc_http, &pending, code, &provider.groups_claim).await.map_err(|e| e.to_string())?;
        crate::server::services::providers::sign_in(&state.db, &state.master, &state.oidc_http, &provider, &who).await.map_err(|e| e.to_string())
    };
    match finished.await {
        Ok(user_id) => {
            if session_store::start(&session, user_id).await.is_err() {
                return with_error("/login", "could not start a session").into_response();
            }
            Redirect::to(&after_sign_in(&session).await).into_response()
        }
        Err(message) => {
            tracing::info!(%ip, %message, "identity provider sign-in refused");
            let _ = state.unauthenticated.audit_refusal(&state.db, ip, "auth.provider.login", "", &message).await;
            with_error("/login", &message).into_response()
        }
    }
}

const NEXT: &str = "next";

/// Where to go after signing in: a page remembered before (the device approval), else home.
async fn after_sign_in(session: &Session) -> String {
    let next: Option<String> = session.remove(NEXT).await.ok().flatten();
    next.filter(|n| n.starts_with('/') && !n.starts_with("//")).unwrap_or_else(|| "/".into())
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
async fn device_confirm(State(state): State<AppState>, session: Session, actor: Result<SignedInActor, AppError>, Form(form): Form<DeviceCode>) -> Response {
    if actor.is_err() {
        return Redirect::to("/login").into_response();
    }
    let code = crate::server::services::device_login::normalize_code(&form.code);
    match crate::server::services::device_login::pending(&state.db, &code).await {
        Ok(_) => {
            if session.insert(session_store::DEVICE_TYPED_KEY, code.clone()).await.is_err() {
                return with_error("/device", "could not keep the code in your session").into_response();
            }
            Redirect::to(&format!("/device?code={}", crate::app::components::encode(&code))).into_response()
        }
        Err(e) => with_error("/device", &e.to_string()).into_response(),
    }
}

/// The person approves the code their CLI shows: one they typed in this browser (or, with a user's
/// access key, one they send themselves).
async fn device_approve(State(state): State<AppState>, session: Session, actor: Result<SignedInActor, AppError>, Form(form): Form<DeviceCode>) -> Response {
    let Ok(SignedInActor(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let page = format!("/device?code={}", crate::app::components::encode(&form.code));
    if actor.key_id.is_none() && !session_store::device_code_typed(&session, &form.code).await {
        let source = actor.source.clone();
        tracing::info!(%source, "device approval without the typed code refused");
        let _ = crate::server::services::audit::record(
            &state.db,
            &actor,
            "auth.device.approve",
            &form.code,
            crate::server::services::audit::Outcome::Denied,
            "code not typed on the approval page",
        )
        .await;
        return with_error("/device", "type the code your terminal shows, then approve").into_response();
    }
    let _ = session.remove::<String>(session_store::DEVICE_TYPED_KEY).await;
    match crate::server::services::device_login::approve(Ctx::new(&state.db, &actor), &form.code).await {
        Ok(Some(cli)) => Redirect::to(&cli).into_response(),
        Ok(None) => Redirect::to(&format!("{page}&approved=1")).into_response(),
        Err(e) => with_error(&page, &e.to_string()).into_response(),
    }
}

async fn logout_form(session: Session) -> Response {
    let _ = session.flush().await;
    Redirect::to("/login").into_response()
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
    /// the page the form is on, where errors are shown: `/settings` or (default) `/change-password`
    #[serde(default)]
    from: String,
}

/// Changing one's own password; the one-time password flow ends here.
async fn password_form(
    State(state): State<AppState>,
    session: Session,
    actor: Result<PendingPasswordActor, AppError>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Ok(PendingPasswordActor(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let Ok(Form(form)) = form else {
        return with_error("/change-password", "fill in every field").into_response();
    };
    // only our own two pages: never an open redirect
    let from = if form.from == "/settings" { "/settings" } else { "/change-password" };
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
        Err(e) => {
            let body = e.body();
            let message = match body.fields.first() {
                Some(f) => format!("{} {}", f.field.replace('_', " "), f.message),
                None => body.message,
            };
            with_error(from, &message).into_response()
        }
    }
}

/// The Kubeconfig page's form: `cluster.<name>=on` per chosen cluster, `style`, `lifetime_secs`.
async fn kubeconfig_download(
    State(state): State<AppState>,
    actor: Result<SignedInActor, AppError>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Response {
    let Ok(SignedInActor(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let clusters: Vec<String> = form.keys().filter_map(|k| k.strip_prefix("cluster.")).map(String::from).collect();
    if clusters.is_empty() {
        return with_error("/kubeconfig", "choose at least one cluster").into_response();
    }
    let style = match form.get("style").map(String::as_str) {
        Some("token") => CredentialStyle::Token,
        Some("certificate") => CredentialStyle::Certificate,
        _ => CredentialStyle::Exec,
    };
    let lifetime_secs = form.get("lifetime_secs").and_then(|v| v.parse().ok());
    let request = KubeconfigRequest { clusters, style, lifetime_secs, command: None };
    let server_url = state.public_url.to_string();
    let file = match crate::server::services::kubeconfig::build(Ctx::new(&state.db, &actor), &state.signer, &state.config.issuer(), &server_url, &request).await
    {
        Ok(file) => file,
        Err(e) => {
            let body = e.body();
            let message = body.fields.first().map(|f| format!("{} {}", f.field.replace('_', " "), f.message)).unwrap_or(body.message);
            return with_error("/kubeconfig", &message).into_response();
        }
    };
    let yaml = match serde_saphyr::to_string(&file.kubeconfig) {
        Ok(y) => y,
        Err(e) => return AppError::Internal(e.to_string()).into_response(),
    };
    (
        [
            (http::header::CONTENT_TYPE, "application/yaml".to_string()),
            (http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", file.filename)),
            (http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        yaml,
    )
        .into_response()
}

/// The signed-in actor (a session or a key), with the one-time password already changed.
pub struct SignedInActor(pub Actor);

impl FromRequestParts<AppState> for SignedInActor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        resolve_actor(parts, state, false).await.map(SignedInActor)
    }
}

/// The client's address (unspecified when the server was not started with connection info).
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, &state.config.trusted_proxies)))
    }
}

/// The signed-in actor, also while they still have to change a one-time password.
pub struct PendingPasswordActor(pub Actor);

impl FromRequestParts<AppState> for PendingPasswordActor {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &AppState) -> Result<Self, AppError> {
        resolve_actor(parts, state, true).await.map(PendingPasswordActor)
    }
}

/// For server functions: the app state and the signed-in actor, or an error the console shows.
pub async fn fn_actor() -> Result<(AppState, Actor), ServerFnError> {
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state missing"))?;
    let mut parts: http::request::Parts = use_context().ok_or_else(|| ServerFnError::new("request missing"))?;
    let actor = resolve_actor(&mut parts, &state, false).await.map_err(|e| ServerFnError::new(e.to_string()))?;
    Ok((state, actor))
}

/// Like [`fn_actor`], but also for a user who still has to change a one-time password.
pub async fn fn_actor_pending_password() -> Result<Option<(AppState, Actor)>, ServerFnError> {
    let state = use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state missing"))?;
    let mut parts: http::request::Parts = use_context().ok_or_else(|| ServerFnError::new("request missing"))?;
    match resolve_actor(&mut parts, &state, true).await {
        Ok(actor) => Ok(Some((state, actor))),
        Err(AppError::Unauthenticated) => Ok(None),
        Err(e) => Err(ServerFnError::new(e.to_string())),
    }
}
