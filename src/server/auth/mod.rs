//! Authentication: password sign-in with rate limiting and lockout, sessions, access keys, the acting
//! identity of a request, the Origin check, and the first admin.

pub mod actor;
pub mod origin;
pub mod password;
pub mod session_store;
pub mod signing;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, Set, sea_query::Expr};

use crate::model::INFRA_RESOURCE;
use crate::server::db::{
    self,
    entities::{grant, user},
};
use crate::server::error::{AppError, AppResult};
use crate::server::services::{Actor, audit, infra_roles, users};

/// Failed sign-ins in a row before an account is locked, and for how long.
pub const MAX_FAILED_LOGINS: i32 = 5;
pub const LOCKOUT_MS: i64 = 5 * 60_000;
/// Sign-in attempts one client address may make per window, whatever the accounts.
pub const ATTEMPTS_PER_ADDRESS: u32 = 30;
pub const ADDRESS_WINDOW_MS: i64 = 5 * 60_000;
/// Refusals of unauthenticated requests written to the audit log per client per minute, and device logins
/// one client may start per minute.
pub const AUDITED_REFUSALS_PER_MINUTE: u32 = 20;
pub const DEVICE_LOGINS_PER_MINUTE: u32 = 10;
/// A user's `last_seen_at` is written at most this often.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

/// Counts sign-in attempts per client address in this server's memory. The per-account lockout is in the
/// database and so holds across replicas; this limit only slows one address spraying many accounts.
pub type LoginLimiter = AddressLimiter<ATTEMPTS_PER_ADDRESS, ADDRESS_WINDOW_MS>;

/// At most `LIMIT` events per client per `WINDOW_MS`, counted in this server's memory. A client is an IPv4
/// address or an IPv6 /64 (one host usually holds a whole /64, so per-address limits would not bind).
#[derive(Debug, Default)]
pub struct AddressLimiter<const LIMIT: u32, const WINDOW_MS: i64> {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl<const LIMIT: u32, const WINDOW_MS: i64> AddressLimiter<LIMIT, WINDOW_MS> {
    /// Counts an event; refuses with the seconds to wait when the client is over its limit.
    pub fn attempt(&self, addr: IpAddr, now: i64) -> AppResult<()> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 100_000 {
            windows.retain(|_, (start, _)| now - *start < WINDOW_MS);
        }
        let entry = windows.entry(client_network(addr)).or_insert((now, 0));
        if now - entry.0 >= WINDOW_MS {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 > LIMIT {
            return Err(AppError::Locked((entry.0 + WINDOW_MS - now).max(1000) / 1000));
        }
        Ok(())
    }

    /// Whether one more event is within the limit (counting it).
    pub fn allows(&self, addr: IpAddr, now: i64) -> bool {
        self.attempt(addr, now).is_ok()
    }
}

/// Limits on what a client without credentials can make the server write: audit rows for refused
/// credentials and failed identity-provider callbacks, and started device logins. Past a limit the
/// requests are still refused (or answered 429), only not written down again.
#[derive(Debug, Default)]
pub struct UnauthenticatedLimits {
    /// refusal audit rows per client per minute
    pub audit: AddressLimiter<AUDITED_REFUSALS_PER_MINUTE, 60_000>,
    /// `POST /api/device` per client per minute
    pub device: AddressLimiter<DEVICE_LOGINS_PER_MINUTE, 60_000>,
}

impl UnauthenticatedLimits {
    /// Records a refusal of an unauthenticated request, unless this client has had its share this minute.
    pub async fn audit_refusal(&self, db: &impl ConnectionTrait, source: IpAddr, action: &str, target: &str, detail: &str) -> AppResult<()> {
        if !self.audit.allows(source, crate::server::now()) {
            tracing::debug!(%source, action, "refusal not audited: over the per-client limit");
            return Ok(());
        }
        audit::record_as(db, "", &source.to_string(), action, target, audit::Outcome::Denied, detail).await
    }
}

/// The unit a client is limited by: its IPv4 address, or its IPv6 /64.
pub fn client_network(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Checks an email and password. On success returns the user; failures count towards the lockout and
/// are audited. The message never says whether the account exists.
pub async fn login(db: &DatabaseConnection, limiter: &LoginLimiter, email: &str, password: &str, source: IpAddr) -> AppResult<user::Model> {
    let now = crate::server::now();
    let source_text = source.to_string();
    limiter.attempt(source, now)?;
    let email = email.trim().to_lowercase();
    let found = users::find_by_email(db, &email).await?.filter(|u| u.kind == users::KIND_USER);
    if let Some(locked_until) = found.as_ref().and_then(|u| u.locked_until).filter(|t| *t > now) {
        audit::record_as(db, &email, &source_text, "auth.login", &email, audit::Outcome::Denied, "locked").await?;
        return Err(AppError::Locked((locked_until - now).max(1000) / 1000));
    }
    let ok = password::verify(password, found.as_ref().and_then(|u| u.password_hash.as_deref())).await;
    let Some(found) = found else {
        audit::record_as(db, &email, &source_text, "auth.login", &email, audit::Outcome::Denied, "unknown user").await?;
        return Err(AppError::Unauthorized("wrong email or password".into()));
    };
    if !ok {
        // raw: one statement, so that concurrent guesses each count (a read-modify-write would lose some)
        db::execute(
            db,
            "UPDATE users SET \
               locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END, \
               failed_logins = CASE WHEN failed_logins + 1 >= ? THEN 0 ELSE failed_logins + 1 END \
             WHERE id = ?",
            [MAX_FAILED_LOGINS.into(), (now + LOCKOUT_MS).into(), MAX_FAILED_LOGINS.into(), found.id.into()],
        )
        .await?;
        audit::record_as(db, &email, &source_text, "auth.login", &email, audit::Outcome::Denied, "wrong password").await?;
        return Err(AppError::Unauthorized("wrong email or password".into()));
    }
    if found.disabled {
        audit::record_as(db, &email, &source_text, "auth.login", &email, audit::Outcome::Denied, "disabled").await?;
        return Err(AppError::Unauthorized("this account is disabled".into()));
    }
    let mut active: user::ActiveModel = found.into();
    active.failed_logins = Set(0);
    active.locked_until = Set(None);
    active.last_seen_at = Set(Some(now));
    let updated = active.update(db).await?;
    audit::record_as(db, &email, &source_text, "auth.login", &email, audit::Outcome::Success, "password").await?;
    Ok(updated)
}

/// The acting identity for a user id from a session or an access key: refused when the user is gone
/// or disabled. Roles are computed now, so a removed grant takes effect on the next request.
pub async fn actor_for_user(db: &impl ConnectionTrait, user_id: i64, source: &str) -> AppResult<Actor> {
    let u = user::Entity::find_by_id(user_id).one(db).await?.ok_or(AppError::Unauthenticated)?;
    if u.disabled {
        return Err(AppError::Unauthenticated);
    }
    let now = crate::server::now();
    if u.last_seen_at.is_none_or(|t| now - t >= LAST_SEEN_RESOLUTION_MS) {
        user::Entity::update_many().col_expr(user::Column::LastSeenAt, Expr::value(now)).filter(user::Column::Id.eq(u.id)).exec(db).await?;
    }
    Ok(Actor {
        user_id: u.id,
        roles: infra_roles(db, u.id).await?,
        email: u.email,
        name: u.name,
        must_change_password: u.must_change_password,
        source: source.to_string(),
        bound_destination: None,
        key_id: None,
    })
}

/// Creates the first admin when there is no user yet, with a one-time password that must be changed
/// at first sign-in. Returns that password (to print) when it created the admin.
pub async fn bootstrap_first_admin(db: &DatabaseConnection, email: &str) -> AppResult<Option<String>> {
    let people = user::Entity::find().filter(user::Column::Kind.eq(users::KIND_USER)).count(db).await?;
    if people > 0 {
        return Ok(None);
    }
    let email = users::normalize_email(email)?;
    let one_time = password::random_token(20);
    let hash = password::hash(&one_time).await?;
    let admin = users::insert(db, users::KIND_USER, &email, "Admin", Some(hash), true).await?;
    grant::ActiveModel {
        subject_kind: Set("user".into()),
        subject_id: Set(admin.id),
        role: Set("admin".into()),
        destination: Set(INFRA_RESOURCE.into()),
        namespace: Set(String::new()),
        created_by: Set(None),
        created_at: Set(crate::server::now()),
        expires_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    audit::record_as(db, "system", "", "users.create", &email, audit::Outcome::Success, "first admin").await?;
    Ok(Some(one_time))
}
