//! The REST API under `/api`. Handlers only parse, call a service, and shape the answer.

mod extract;

pub use extract::{ApiActor, client_ip, resolve_actor};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::model::{AccessEntry, DestinationRegistration, NewAccessKey, NewGrant, ProxiedRequest, TokenRequest, User};
use crate::server::error::{AppError, AppResult};
use crate::server::services::{self, Ctx, Paging, audit, bindings, destinations, grants, groups, keys, tokens, users};
use crate::server::state::AppState;
use extract::{ApiJson, ApiQuery, ConnectorActor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/me/access", get(my_access))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{id}", get(get_group).patch(rename_group).delete(delete_group))
        .route("/groups/{id}/members", post(add_member))
        .route("/groups/{id}/members/{user_id}", delete(remove_member))
        .route("/grants", get(list_grants).post(add_grant))
        .route("/grants/{id}", delete(remove_grant))
        .route("/destinations", get(list_destinations).post(create_destination))
        .route("/destinations/register", post(register_destination))
        .route("/destinations/heartbeat", post(register_destination))
        .route("/destinations/{name}", get(get_destination).delete(remove_destination))
        .route("/destinations/{name}/grants", get(destination_grants))
        .route("/destinations/{name}/connector-key", post(connector_key))
        .route("/destinations/{name}/bindings", get(destination_bindings))
        .route("/destinations/{name}/audit", post(destination_audit))
        .route("/destinations/{name}/certificates/{id}", post(destination_certificate))
        .route("/tokens", post(issue_token))
        .route("/kubeconfig", post(kubeconfig))
        .route("/login", post(cli_login))
        .route("/login/providers", get(login_providers))
        .route("/device", post(device_start))
        .route("/device/token", post(device_token))
        .route("/settings", get(get_settings).patch(update_settings))
        .route("/providers", get(list_providers).post(create_provider))
        .route("/providers/{id}", axum::routing::patch(update_provider).delete(delete_provider))
        .route("/providers/{id}/test", post(test_provider))
        .route("/signing-keys/rotate", post(rotate_signing_key))
        .route("/keys", get(list_keys).post(create_key))
        .route("/keys/{id}", delete(revoke_key))
        .route("/audit", get(list_audit))
        .fallback(|| async { AppError::NotFound("API route".into()) })
}

#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<u64>,
    limit: Option<u64>,
}

async fn me(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<Json<User>> {
    Ok(Json(users::get(Ctx::new(&s.db, &a), a.user_id).await?))
}

async fn my_access(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<Json<Vec<AccessEntry>>> {
    Ok(Json(grants::access_of(&s.db, a.user_id).await?))
}

async fn list_users(State(s): State<AppState>, ApiActor(a): ApiActor, ApiQuery(q): ApiQuery<ListQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(users::list(Ctx::new(&s.db, &a), q.q.as_deref(), Paging::new(q.page, q.limit)).await?))
}

#[derive(Deserialize)]
struct CreateUser {
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Serialize)]
struct CreatedUser {
    user: User,
    #[serde(skip_serializing_if = "Option::is_none")]
    one_time_password: Option<String>,
}

async fn create_user(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<CreateUser>) -> AppResult<Response> {
    let (user, one_time_password) = users::create(Ctx::new(&s.db, &a), users::NewUser { email: body.email, name: body.name, password: body.password }).await?;
    Ok((StatusCode::CREATED, Json(CreatedUser { user, one_time_password })).into_response())
}

async fn get_user(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<Json<User>> {
    Ok(Json(users::get(Ctx::new(&s.db, &a), id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateUser {
    disabled: Option<bool>,
    password: Option<String>,
}

async fn update_user(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>, ApiJson(body): ApiJson<UpdateUser>) -> AppResult<Json<User>> {
    let ctx = Ctx::new(&s.db, &a);
    if let Some(password) = body.password {
        users::set_password(ctx, id, &password).await?;
    }
    if let Some(disabled) = body.disabled {
        return Ok(Json(users::set_disabled(ctx, id, disabled).await?));
    }
    Ok(Json(users::get(ctx, id).await?))
}

async fn delete_user(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<StatusCode> {
    users::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(State(s): State<AppState>, ApiActor(a): ApiActor, ApiQuery(q): ApiQuery<ListQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::list(Ctx::new(&s.db, &a), q.q.as_deref(), Paging::new(q.page, q.limit)).await?))
}

#[derive(Deserialize)]
struct GroupName {
    name: String,
}

async fn create_group(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<GroupName>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(groups::create(Ctx::new(&s.db, &a), &body.name).await?)).into_response())
}

async fn get_group(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::get(Ctx::new(&s.db, &a), id).await?))
}

async fn rename_group(
    State(s): State<AppState>,
    ApiActor(a): ApiActor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<GroupName>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::rename(Ctx::new(&s.db, &a), id, &body.name).await?))
}

async fn delete_group(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<StatusCode> {
    groups::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Member {
    /// a user id or email
    user: String,
}

async fn add_member(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>, ApiJson(body): ApiJson<Member>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::add_member(Ctx::new(&s.db, &a), id, &body.user).await?))
}

async fn remove_member(State(s): State<AppState>, ApiActor(a): ApiActor, Path((id, user_id)): Path<(i64, i64)>) -> AppResult<impl IntoResponse> {
    Ok(Json(groups::remove_member(Ctx::new(&s.db, &a), id, user_id).await?))
}

#[derive(Deserialize)]
struct GrantQuery {
    subject: Option<String>,
    cluster: Option<String>,
    role: Option<String>,
    page: Option<u64>,
    limit: Option<u64>,
}

async fn list_grants(State(s): State<AppState>, ApiActor(a): ApiActor, ApiQuery(q): ApiQuery<GrantQuery>) -> AppResult<impl IntoResponse> {
    let filter = grants::GrantFilter { subject: q.subject, cluster: q.cluster, role: q.role };
    Ok(Json(grants::list(Ctx::new(&s.db, &a), &filter, Paging::new(q.page, q.limit)).await?))
}

async fn add_grant(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<NewGrant>) -> AppResult<Response> {
    let (grant, created) = grants::add(Ctx::new(&s.db, &a), &body).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(grant)).into_response())
}

async fn remove_grant(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<StatusCode> {
    grants::remove(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_destinations(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::list(Ctx::new(&s.db, &a)).await?))
}

async fn create_destination(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<GroupName>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(destinations::create_pending(Ctx::new(&s.db, &a), &body.name).await?)).into_response())
}

async fn register_destination(
    State(s): State<AppState>,
    ConnectorActor(a): ConnectorActor,
    ApiJson(body): ApiJson<DestinationRegistration>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::register(Ctx::new(&s.db, &a), body).await?))
}

async fn get_destination(State(s): State<AppState>, ApiActor(a): ApiActor, Path(name): Path<String>) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::get(Ctx::new(&s.db, &a), &name).await?))
}

async fn remove_destination(State(s): State<AppState>, ApiActor(a): ApiActor, Path(name): Path<String>) -> AppResult<StatusCode> {
    destinations::remove(Ctx::new(&s.db, &a), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn destination_grants(
    State(s): State<AppState>,
    ApiActor(a): ApiActor,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<impl IntoResponse> {
    let filter = grants::GrantFilter { cluster: Some(name), ..Default::default() };
    Ok(Json(grants::list(Ctx::new(&s.db, &a), &filter, Paging::new(q.page, q.limit)).await?))
}

async fn connector_key(State(s): State<AppState>, ApiActor(a): ApiActor, Path(name): Path<String>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(keys::create_connector_key(Ctx::new(&s.db, &a), &name).await?)).into_response())
}

#[derive(Deserialize)]
struct KeysQuery {
    #[serde(default)]
    all: bool,
}

async fn list_keys(State(s): State<AppState>, ApiActor(a): ApiActor, ApiQuery(q): ApiQuery<KeysQuery>) -> AppResult<impl IntoResponse> {
    Ok(Json(keys::list(Ctx::new(&s.db, &a), q.all).await?))
}

async fn create_key(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<NewAccessKey>) -> AppResult<Response> {
    Ok((StatusCode::CREATED, Json(keys::create(Ctx::new(&s.db, &a), &body).await?)).into_response())
}

async fn revoke_key(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<StatusCode> {
    keys::revoke(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    page: Option<u64>,
    limit: Option<u64>,
}

async fn list_audit(State(s): State<AppState>, ApiActor(a): ApiActor, ApiQuery(q): ApiQuery<AuditQuery>) -> AppResult<impl IntoResponse> {
    let filter = audit::AuditFilter { actor: q.actor, action: q.action, outcome: q.outcome };
    Ok(Json(audit::list(Ctx::new(&s.db, &a), &filter, Paging::new(q.page, q.limit)).await?))
}

#[derive(Deserialize)]
struct BindingsQuery {
    /// the version the connector has; the answer waits until the bindings differ from it
    #[serde(default)]
    version: String,
    /// seconds to wait for a change (at most 30)
    #[serde(default)]
    wait: u64,
}

async fn destination_bindings(
    State(s): State<AppState>,
    ConnectorActor(a): ConnectorActor,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<BindingsQuery>,
) -> AppResult<impl IntoResponse> {
    let wait = std::time::Duration::from_secs(q.wait);
    Ok(Json(bindings::wait_for_change(Ctx::new(&s.db, &a), &name, &q.version, wait).await?))
}

#[derive(Deserialize, Serialize)]
struct Recorded {
    recorded: usize,
}

async fn destination_audit(
    State(s): State<AppState>,
    ConnectorActor(a): ConnectorActor,
    Path(name): Path<String>,
    ApiJson(events): ApiJson<Vec<ProxiedRequest>>,
) -> AppResult<impl IntoResponse> {
    let recorded = audit::record_proxied(Ctx::new(&s.db, &a), &name, &events).await?;
    Ok(Json(Recorded { recorded }))
}

/// The connector's answer to a break-glass certificate request.
async fn destination_certificate(
    State(s): State<AppState>,
    ConnectorActor(a): ConnectorActor,
    Path((name, id)): Path<(String, i64)>,
    ApiJson(answer): ApiJson<crate::model::IssuedCertificate>,
) -> AppResult<Json<serde_json::Value>> {
    crate::server::services::certificates::complete(Ctx::new(&s.db, &a), &name, id, &answer).await?;
    Ok(Json(serde_json::json!({"recorded": true})))
}

async fn issue_token(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<TokenRequest>) -> AppResult<Response> {
    let token = tokens::issue(Ctx::new(&s.db, &a), &s.signer, &s.config.issuer(), &body.destination).await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

async fn kubeconfig(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(body): ApiJson<crate::model::KubeconfigRequest>) -> AppResult<impl IntoResponse> {
    let server_url = s.public_url.to_string();
    Ok(Json(crate::server::services::kubeconfig::build(Ctx::new(&s.db, &a), &s.signer, &s.config.issuer(), &server_url, &body).await?))
}

/// The CLI's password login: the same checks, lockout and audit as the console's sign-in, and an
/// access key for the CLI in return (30 days, like any key by default).
async fn cli_login(
    State(s): State<AppState>,
    crate::server::web::ClientIp(ip): crate::server::web::ClientIp,
    ApiJson(body): ApiJson<crate::model::CliLogin>,
) -> AppResult<Response> {
    let user = crate::server::auth::login(&s.db, &s.limiter, &body.email, &body.password, ip).await?;
    let actor = crate::server::auth::actor_for_user(&s.db, user.id, &ip.to_string()).await?;
    if actor.must_change_password {
        return Err(crate::server::error::AppError::Forbidden("change your one-time password in the console first".into()));
    }
    let created = keys::create_for_cli_login(Ctx::new(&s.db, &actor), body.name.as_deref().unwrap_or_default()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The identity providers one may sign in with (names only; no sign-in needed).
async fn login_providers(State(s): State<AppState>) -> AppResult<impl IntoResponse> {
    Ok(Json(services::providers::names(&s.db).await?))
}

#[derive(Deserialize)]
struct DeviceStartRequest {
    #[serde(default)]
    name: Option<String>,
    /// the CLI's loopback port, where the browser goes after the approval
    #[serde(default)]
    redirect_port: Option<u16>,
}

async fn device_start(
    State(s): State<AppState>,
    crate::server::web::ClientIp(ip): crate::server::web::ClientIp,
    ApiJson(body): ApiJson<DeviceStartRequest>,
) -> AppResult<Response> {
    s.unauthenticated.device.attempt(ip, crate::server::now())?;
    let url = s.public_url.to_string();
    let started = services::device_login::start(&s.db, &url, body.name.as_deref().unwrap_or("infra CLI"), body.redirect_port, &ip.to_string()).await?;
    Ok((StatusCode::CREATED, Json(started)).into_response())
}

#[derive(Deserialize)]
struct DeviceTokenRequest {
    device_code: String,
}

/// 202 `{"status": "pending"}` until the person approves; then 201 with the access key, once.
async fn device_token(State(s): State<AppState>, ApiJson(body): ApiJson<DeviceTokenRequest>) -> AppResult<Response> {
    Ok(match services::device_login::poll(&s.db, &body.device_code).await? {
        Some(key) => (StatusCode::CREATED, Json(key)).into_response(),
        None => (StatusCode::ACCEPTED, Json(serde_json::json!({"status": "pending"}))).into_response(),
    })
}

async fn list_providers(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<impl IntoResponse> {
    Ok(Json(services::providers::list(Ctx::new(&s.db, &a)).await?))
}

async fn create_provider(State(s): State<AppState>, ApiActor(a): ApiActor, ApiJson(new): ApiJson<crate::model::NewProvider>) -> AppResult<Response> {
    let created = services::providers::create(Ctx::new(&s.db, &a), &s.master, &new).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn update_provider(
    State(s): State<AppState>,
    ApiActor(a): ApiActor,
    Path(id): Path<i64>,
    ApiJson(change): ApiJson<crate::model::ProviderUpdate>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(services::providers::update(Ctx::new(&s.db, &a), &s.master, id, &change).await?))
}

async fn delete_provider(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<StatusCode> {
    services::providers::delete(Ctx::new(&s.db, &a), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test_provider(State(s): State<AppState>, ApiActor(a): ApiActor, Path(id): Path<i64>) -> AppResult<impl IntoResponse> {
    Ok(Json(services::providers::check(Ctx::new(&s.db, &a), &s.master, id, &s.oidc_http).await?))
}

async fn get_settings(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<impl IntoResponse> {
    Ok(Json(crate::server::services::settings::get(Ctx::new(&s.db, &a)).await?))
}

async fn update_settings(
    State(s): State<AppState>,
    ApiActor(a): ApiActor,
    ApiJson(body): ApiJson<crate::model::ProductSettings>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(crate::server::services::settings::update(Ctx::new(&s.db, &a), &body).await?))
}

#[derive(Serialize)]
struct Rotated {
    kid: String,
}

async fn rotate_signing_key(State(s): State<AppState>, ApiActor(a): ApiActor) -> AppResult<impl IntoResponse> {
    Ok(Json(Rotated { kid: tokens::rotate_signing_key(Ctx::new(&s.db, &a), &s.signer).await? }))
}

/// `/.well-known/jwks.json`: the public keys that verify cluster tokens. Public by design.
pub async fn jwks(State(s): State<AppState>) -> AppResult<Response> {
    let keys = s.signer.jwks(&s.db).await?;
    Ok(([(axum::http::header::CACHE_CONTROL, "max-age=60")], Json(keys)).into_response())
}

#[derive(Serialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// `/.well-known/openid-configuration`: the issuer connectors pin and where its keys are.
pub async fn discovery(State(s): State<AppState>) -> impl IntoResponse {
    let issuer = s.config.issuer();
    let base = s.public_url.to_string();
    Json(Discovery { issuer, jwks_uri: format!("{}/.well-known/jwks.json", base.trim_end_matches('/')) })
}
