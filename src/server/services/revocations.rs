//! Revocations the connectors enforce: tokens are verified offline by the proxy, so when an access key
//! is revoked or a user is disabled or deleted, the server tells every connector (through the bindings
//! long poll) and the proxy refuses their tokens within seconds instead of when they expire.

use std::time::Duration;

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::model::Revoked;
use crate::server::db::entities::revocation;
use crate::server::error::AppResult;

/// No cluster token lives longer than this, whatever an admin allows (see `kubeconfig` tokens), so a
/// revocation need not be kept longer.
pub const LONGEST_TOKEN: Duration = Duration::from_secs(30 * 24 * 3600);

const KEY: &str = "key";
const USER: &str = "user";

/// Records that tokens minted with this access key must be refused. `key_expires_at` bounds how long:
/// no token outlives the key it was minted with.
pub async fn revoke_key(db: &impl ConnectionTrait, key_id: &str, key_expires_at: i64) -> AppResult<()> {
    let now = crate::server::now();
    let until = key_expires_at.min(now + LONGEST_TOKEN.as_millis() as i64);
    insert(db, KEY, key_id, until).await
}

/// Records that the user's tokens must be refused (the user was disabled or deleted).
pub async fn revoke_user(db: &impl ConnectionTrait, user_id: i64) -> AppResult<()> {
    let now = crate::server::now();
    insert(db, USER, &user_id.to_string(), now + LONGEST_TOKEN.as_millis() as i64).await
}

/// The user was enabled again: tokens issued from now on are accepted. Tokens from before they were
/// disabled are accepted again too; they expire within minutes (or at their chosen lifetime).
pub async fn restore_user(db: &impl ConnectionTrait, user_id: i64) -> AppResult<()> {
    revocation::Entity::delete_many().filter(revocation::Column::Kind.eq(USER)).filter(revocation::Column::Subject.eq(user_id.to_string())).exec(db).await?;
    Ok(())
}

async fn insert(db: &impl ConnectionTrait, kind: &str, subject: &str, until: i64) -> AppResult<()> {
    let now = crate::server::now();
    revocation::Entity::delete_many().filter(revocation::Column::UntilAt.lte(now)).exec(db).await?;
    revocation::ActiveModel { kind: Set(kind.into()), subject: Set(subject.into()), until_at: Set(until), created_at: Set(now), ..Default::default() }
        .insert(db)
        .await?;
    Ok(())
}

/// What the proxies must refuse now, sorted, so that equal content has an equal digest.
pub async fn current(db: &impl ConnectionTrait) -> AppResult<Revoked> {
    let rows = revocation::Entity::find()
        .filter(revocation::Column::UntilAt.gt(crate::server::now()))
        .order_by_asc(revocation::Column::Kind)
        .order_by_asc(revocation::Column::Subject)
        .all(db)
        .await?;
    let mut revoked = Revoked::default();
    for revocation::Model { kind, subject, .. } in rows {
        match kind.as_str() {
            KEY => revoked.keys.push(subject),
            USER => revoked.users.extend(subject.parse::<i64>().ok()),
            _ => {}
        }
    }
    revoked.keys.dedup();
    revoked.users.sort_unstable();
    revoked.users.dedup();
    Ok(revoked)
}
