//! `infra login --web`: a device-code login through the console. The CLI starts it and gets a secret
//! device code and a short user code; the person opens the console (signing in with a password or an
//! identity provider), checks that the code matches what the CLI shows, and approves it; the CLI,
//! polling with the device code, then receives an access key of that person's. Codes live 10 minutes
//! and are used once. Where the CLI could open a browser, it also listens on a loopback port; after the
//! approval the console sends the browser there (RFC 8252's loopback redirect), so the CLI collects its
//! key at once. The redirect carries only the user code: the key still needs the secret device code.

use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::{Ctx, audit, keys};
use crate::model::{CreatedAccessKey, DevicePending, DeviceStart};
use crate::server::auth::password::{random_token, sha256_hex};
use crate::server::db;
use crate::server::db::entities::device_login;
use crate::server::error::{AppError, AppResult};

const LIFETIME_SECS: i64 = 600;
/// No 0/O, 1/I/L: codes are read and typed by people.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn user_code() -> String {
    let mut rng = rand::rng();
    let c: String = (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{}-{}", &c[..4], &c[4..])
}

fn normalize(code: &str) -> String {
    let c: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    if c.len() == 8 { format!("{}-{}", &c[..4], &c[4..]) } else { c }
}

/// Starts a login; `redirect_port` is the CLI's loopback port, if it listens on one; `client_addr` is
/// where the request came from, for the approval page.
pub async fn start(
    db: &sea_orm::DatabaseConnection,
    server_url: &str,
    client_name: &str,
    redirect_port: Option<u16>,
    client_addr: &str,
) -> AppResult<DeviceStart> {
    if redirect_port.is_some_and(|p| p < 1024) {
        return Err(AppError::field("redirect_port", "a loopback port from 1024 to 65535"));
    }
    let now = crate::server::now();
    let device_code = random_token(32);
    let code = user_code();
    let txn = db::begin_write(db).await?;
    device_login::Entity::delete_many().filter(device_login::Column::ExpiresAt.lte(now)).exec(&txn).await?;
    device_login::ActiveModel {
        device_code: Set(sha256_hex(device_code.as_bytes())),
        user_code: Set(code.clone()),
        client_name: Set(super::keys::given_name(client_name)),
        user_id: Set(None),
        redirect_port: Set(redirect_port.map(i32::from)),
        client_addr: Set(client_addr.to_string()),
        expires_at: Set(now + LIFETIME_SECS * 1000),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(DeviceStart {
        device_code,
        verification_uri: format!("{}/device/start", server_url.trim_end_matches('/')),
        user_code: code,
        expires_in: LIFETIME_SECS,
        interval: 1,
    })
}

/// A code as people type it (any case, with or without the dash), as stored.
pub fn normalize_code(code: &str) -> String {
    normalize(code)
}

/// A pending code, for the approval page: which client asked, from where, when.
pub async fn pending(db: &impl ConnectionTrait, code: &str) -> AppResult<DevicePending> {
    Ok(pending_login(db, code).await?.0)
}

/// A pending code and its loopback port.
async fn pending_login(db: &impl ConnectionTrait, code: &str) -> AppResult<(DevicePending, Option<i64>)> {
    let code = normalize(code);
    let row = device_login::Entity::find()
        .filter(device_login::Column::UserCode.eq(code.clone()))
        .filter(device_login::Column::UserId.is_null())
        .filter(device_login::Column::ExpiresAt.gt(crate::server::now()))
        .one(db)
        .await?;
    let row = row.ok_or_else(|| AppError::NotFound("that code (it expires after 10 minutes and works once)".into()))?;
    let pending = DevicePending { user_code: code, client_name: row.client_name, client_addr: row.client_addr, created_at: row.created_at };
    Ok((pending, row.redirect_port.map(i64::from)))
}

/// The signed-in person approves the code the CLI shows. Returns where to send the browser next: the
/// CLI's loopback address when it listens on one.
pub async fn approve(ctx: Ctx<'_>, code: &str) -> AppResult<Option<String>> {
    let code = normalize(code);
    // a machine identity's keys are always bound to a cluster (keys::authenticate), so this refuses them
    ctx.require_person("auth.device.approve", &code).await?;
    let (pending, port) = pending_login(ctx.db, &code).await?;
    let client = pending.client_name;
    let txn = db::begin_write(ctx.db).await?;
    let n = device_login::Entity::update_many()
        .col_expr(device_login::Column::UserId, Expr::value(ctx.actor.user_id))
        .filter(device_login::Column::UserCode.eq(code.clone()))
        .filter(device_login::Column::UserId.is_null())
        .filter(device_login::Column::ExpiresAt.gt(crate::server::now()))
        .exec(&txn)
        .await?
        .rows_affected;
    if n == 0 {
        return Err(AppError::NotFound("that code (it expires after 10 minutes and works once)".into()));
    }
    audit::record(&txn, ctx.actor, "auth.device.approve", &code, audit::Outcome::Success, &client).await?;
    txn.commit().await?;
    Ok(port.map(|p| format!("http://127.0.0.1:{p}/done?code={code}")))
}

/// The CLI polls: `None` while the person has not approved yet; then, once, a new access key.
pub async fn poll(db: &sea_orm::DatabaseConnection, device_code: &str) -> AppResult<Option<CreatedAccessKey>> {
    let hash = sha256_hex(device_code.as_bytes());
    let row = device_login::Entity::find().filter(device_login::Column::DeviceCode.eq(hash.clone())).one(db).await?;
    let Some(row) = row else { return Err(AppError::Unauthorized("unknown device code: start again".into())) };
    if row.expires_at <= crate::server::now() {
        return Err(AppError::Unauthorized("the code expired before it was approved: start again".into()));
    }
    let Some(user_id) = row.user_id else { return Ok(None) };
    let client = row.client_name;
    // used once: whoever deletes the row hands out the key
    if device_login::Entity::delete_many().filter(device_login::Column::DeviceCode.eq(hash)).exec(db).await?.rows_affected == 0 {
        return Err(AppError::Unauthorized("this code was already used: start again".into()));
    }
    let actor = crate::server::auth::actor_for_user(db, user_id, "device login").await?;
    if actor.must_change_password {
        return Err(AppError::Forbidden("change your one-time password in the console first".into()));
    }
    Ok(Some(keys::create_for_cli_login(Ctx::new(db, &actor), &client).await?))
}
