//! Access keys: `<key_id>.<secret>`. Only a SHA-256 of the secret is stored; the whole key is shown once.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{Ctx, audit, grants, users};
use crate::model::{AccessKey, CreatedAccessKey, INFRA_RESOURCE, KeyText, NewAccessKey, NewGrant};
use crate::server::auth::password::{constant_time_eq, random_token, sha256_hex};
use crate::server::db::entities::{access_key, user};
use crate::server::error::{AppError, AppResult};

pub const DEFAULT_TTL_SECS: i64 = 30 * 24 * 3600;
pub const MAX_TTL_SECS: i64 = 365 * 24 * 3600;
pub const MIN_INACTIVITY_SECS: i64 = 60;
const KEY_ID_LEN: usize = 10;
const SECRET_LEN: usize = 24;
/// `last_used_at` is written at most this often per key, so that busy keys do not turn every read into a write.
const LAST_USED_RESOLUTION_MS: i64 = 5_000;
/// The identity that owns connector keys.
pub const CONNECTOR_IDENTITY: &str = "connector";

fn to_model(k: access_key::Model, owner: String) -> AccessKey {
    AccessKey {
        id: k.id,
        key_id: k.key_id,
        name: k.name,
        owner,
        expires_at: k.expires_at,
        inactivity_timeout_secs: k.inactivity_timeout_secs,
        last_used_at: k.last_used_at,
        created_at: k.created_at,
    }
}

/// The longest name a key may have, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// What a CLI's key is called when the CLI sends no name of its own.
pub const DEFAULT_CLI_NAME: &str = "infra CLI";

/// A name the server gives a key itself (from a CLI's name or a download): trimmed, cut to
/// [`NAME_MAX_CHARS`], [`DEFAULT_CLI_NAME`] when empty.
pub fn given_name(name: &str) -> String {
    match name.trim() {
        "" => DEFAULT_CLI_NAME.to_string(),
        name => name.chars().take(NAME_MAX_CHARS).collect(),
    }
}

fn validate(new: &NewAccessKey) -> AppResult<(String, i64, Option<i64>)> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        return Err(AppError::field("name", format!("is required, at most {NAME_MAX_CHARS} characters")));
    }
    let ttl = new.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if ttl <= 0 || ttl > MAX_TTL_SECS {
        return Err(AppError::field("ttl_secs", format!("must be between 1 second and {} days", MAX_TTL_SECS / 86400)));
    }
    if let Some(t) = new.inactivity_timeout_secs
        && (t < MIN_INACTIVITY_SECS || t > ttl)
    {
        return Err(AppError::field("inactivity_timeout_secs", format!("must be at least {MIN_INACTIVITY_SECS} seconds and at most the key's lifetime")));
    }
    Ok((name.to_string(), ttl, new.inactivity_timeout_secs))
}

async fn issue(
    db: &impl ConnectionTrait,
    owner: &user::Model,
    name: String,
    ttl: i64,
    inactivity: Option<i64>,
    destination: Option<String>,
) -> AppResult<CreatedAccessKey> {
    let key_id = random_token(KEY_ID_LEN);
    let secret = random_token(SECRET_LEN);
    let now = crate::server::now();
    let model = access_key::ActiveModel {
        key_id: Set(key_id.clone()),
        secret_hash: Set(sha256_hex(secret.as_bytes())),
        name: Set(name),
        user_id: Set(owner.id),
        destination: Set(destination),
        expires_at: Set(now + ttl * 1000),
        inactivity_timeout_secs: Set(inactivity),
        last_used_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(CreatedAccessKey { key: to_model(model, owner.email.clone()), access_key: KeyText::render(&key_id, &secret) })
}

/// A key for the signed-in user, acting with their rights.
pub async fn create(ctx: Ctx<'_>, new: &NewAccessKey) -> AppResult<CreatedAccessKey> {
    if ctx.actor.bound_destination.is_some() {
        // a connector key must not mint itself a key without its cluster binding
        audit::record(ctx.db, ctx.actor, "keys.create", &new.name, audit::Outcome::Denied, "connector key").await?;
        return Err(AppError::forbidden());
    }
    let (name, ttl, inactivity) = validate(new)?;
    let owner = user::Entity::find_by_id(ctx.actor.user_id).one(ctx.db).await?.ok_or(AppError::Unauthenticated)?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let created = issue(&txn, &owner, name, ttl, inactivity, None).await?;
    audit::record(&txn, ctx.actor, "keys.create", &created.key.name, audit::Outcome::Success, &created.key.key_id).await?;
    txn.commit().await?;
    Ok(created)
}

/// The key a CLI login (`infra login` with a password, or `--web`) receives: the signed-in person's, living
/// as long as the admin's CLI login lifetime (12 hours by default).
pub async fn create_for_cli_login(ctx: Ctx<'_>, client_name: &str) -> AppResult<CreatedAccessKey> {
    let ttl = super::settings::cli_login_lifetime(ctx.db).await?.as_secs() as i64;
    create(ctx, &NewAccessKey { name: given_name(client_name), ttl_secs: Some(ttl), inactivity_timeout_secs: None }).await
}

/// A key that only names the tokens of one kubeconfig download (their `sid`): its secret is thrown
/// away, it lives as long as the tokens, and revoking it under Settings → Access keys refuses them.
/// Returns its public key id.
pub async fn create_for_kubeconfig(ctx: Ctx<'_>, name: &str, ttl_secs: i64) -> AppResult<String> {
    let owner = user::Entity::find_by_id(ctx.actor.user_id).one(ctx.db).await?.ok_or(AppError::Unauthenticated)?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let created = issue(&txn, &owner, given_name(name), ttl_secs, None, None).await?;
    audit::record(&txn, ctx.actor, "keys.create", &created.key.name, audit::Outcome::Success, &created.key.key_id).await?;
    txn.commit().await?;
    Ok(created.key.key_id)
}

/// A key a connector uses to register its cluster: owned by the `connector` identity, which holds the
/// `connector` role on `infra` and nothing else, and bound to this one cluster. A cluster not known
/// yet is added as pending, to show in the console until its connector registers.
pub async fn create_connector_key(ctx: Ctx<'_>, cluster: &str) -> AppResult<CreatedAccessKey> {
    ctx.require_admin("keys.create_connector", cluster).await?;
    let cluster = super::destinations::validate_name(cluster)?;
    if super::destinations::find_by_name(ctx.db, &cluster).await?.is_none() {
        super::destinations::create_pending(ctx, &cluster).await?;
    }
    let identity = match users::find_by_email(ctx.db, CONNECTOR_IDENTITY).await? {
        Some(u) => u,
        None => users::insert(ctx.db, users::KIND_MACHINE, CONNECTOR_IDENTITY, "Connector", None, false).await?,
    };
    grants::add(ctx, &NewGrant { subject: format!("user:{CONNECTOR_IDENTITY}"), role: "connector".into(), resource: INFRA_RESOURCE.into(), expires_at: None })
        .await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let created = issue(&txn, &identity, format!("connector-{cluster}"), MAX_TTL_SECS, None, Some(cluster.clone())).await?;
    audit::record(&txn, ctx.actor, "keys.create_connector", &cluster, audit::Outcome::Success, &created.key.key_id).await?;
    txn.commit().await?;
    Ok(created)
}

/// The signed-in user's keys; admins may ask for everyone's.
pub async fn list(ctx: Ctx<'_>, everyone: bool) -> AppResult<Vec<AccessKey>> {
    let mut query = access_key::Entity::find().order_by_desc(access_key::Column::Id);
    if everyone {
        ctx.require_view("keys.list", "keys").await?;
    } else {
        query = query.filter(access_key::Column::UserId.eq(ctx.actor.user_id));
    }
    let keys = query.all(ctx.db).await?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let owner = user::Entity::find_by_id(k.user_id).one(ctx.db).await?.map(|u| u.email).unwrap_or_default();
        out.push(to_model(k, owner));
    }
    Ok(out)
}

/// Revokes (deletes) a key: the owner's own, or anyone's for an admin.
pub async fn revoke(ctx: Ctx<'_>, id: i64) -> AppResult<()> {
    let key = access_key::Entity::find_by_id(id).one(ctx.db).await?.ok_or_else(|| AppError::NotFound(format!("key {id}")))?;
    if key.user_id != ctx.actor.user_id {
        ctx.require_admin("keys.revoke", &key.key_id).await?;
    }
    let txn = crate::server::db::begin_write(ctx.db).await?;
    access_key::Entity::delete_by_id(id).exec(&txn).await?;
    // cluster tokens minted with this key are refused by the proxies from now on
    super::revocations::revoke_key(&txn, &key.key_id, key.expires_at).await?;
    audit::record(&txn, ctx.actor, "keys.revoke", &key.name, audit::Outcome::Success, &key.key_id).await?;
    txn.commit().await?;
    Ok(())
}

/// A key that passed [`authenticate`].
pub struct KeyIdentity {
    pub user_id: i64,
    /// the key's public id (`sid` in the cluster tokens minted with it)
    pub key_id: String,
    /// for a connector key: the cluster it may register
    pub destination: Option<String>,
}

/// Checks a presented key: known, secret matching, not expired, not idle too long, owner enabled.
/// Every refusal says only "invalid or expired access key".
pub async fn authenticate(db: &impl ConnectionTrait, presented: &str) -> AppResult<KeyIdentity> {
    let refused = || AppError::Unauthorized("invalid or expired access key".into());
    let KeyText { key_id, secret } = KeyText::parse(presented).ok_or_else(refused)?;
    let key = access_key::Entity::find().filter(access_key::Column::KeyId.eq(key_id)).one(db).await?.ok_or_else(refused)?;
    if !constant_time_eq(&key.secret_hash, &sha256_hex(secret.as_bytes())) {
        return Err(refused());
    }
    let now = crate::server::now();
    if key.expires_at <= now {
        return Err(refused());
    }
    if let Some(timeout) = key.inactivity_timeout_secs {
        let last = key.last_used_at.unwrap_or(key.created_at);
        if now - last > timeout * 1000 {
            return Err(refused());
        }
    }
    let owner = user::Entity::find_by_id(key.user_id).one(db).await?.ok_or_else(refused)?;
    if owner.disabled {
        return Err(refused());
    }
    // "no cluster" never means "any cluster": a machine identity's key without its cluster is refused,
    // and a person's key never carries one
    if (owner.kind == users::KIND_MACHINE) != key.destination.is_some() {
        return Err(refused());
    }
    let identity = KeyIdentity { user_id: owner.id, key_id: key.key_id.clone(), destination: key.destination.clone() };
    if key.last_used_at.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS) {
        let mut active: access_key::ActiveModel = key.into();
        active.last_used_at = Set(Some(now));
        active.update(db).await?;
    }
    Ok(identity)
}
