//! Product settings an admin changes at run time, kept in the `settings` table.

use std::time::Duration;

use sea_orm::ConnectionTrait;

use super::{audit, Ctx};
use crate::model::ProductSettings;
use crate::server::db;
use crate::server::error::{AppError, AppResult};

const TOKEN_MAX_LIFETIME: &str = "kubeconfig.token_max_lifetime_secs";
/// Until an admin says otherwise, a downloaded kubeconfig token lives at most a day.
pub const DEFAULT_TOKEN_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The longest lifetime a user may pick for a kubeconfig token.
pub async fn token_max_lifetime(db: &impl ConnectionTrait) -> AppResult<Duration> {
    let row = db::query_one(db, "SELECT value FROM settings WHERE name = ?", [TOKEN_MAX_LIFETIME.into()]).await?;
    let secs = match row {
        Some(r) => r.try_get_by_index::<String>(0)?.parse::<u64>().unwrap_or(DEFAULT_TOKEN_MAX_LIFETIME.as_secs()),
        None => DEFAULT_TOKEN_MAX_LIFETIME.as_secs(),
    };
    Ok(Duration::from_secs(secs))
}

pub async fn get(ctx: Ctx<'_>) -> AppResult<ProductSettings> {
    ctx.require_view("settings.get", "settings").await?;
    Ok(ProductSettings { token_max_lifetime_secs: token_max_lifetime(ctx.db).await?.as_secs() as i64 })
}

pub async fn update(ctx: Ctx<'_>, new: &ProductSettings) -> AppResult<ProductSettings> {
    ctx.require_admin("settings.update", "settings").await?;
    let longest = super::revocations::LONGEST_TOKEN.as_secs() as i64;
    if new.token_max_lifetime_secs < 60 || new.token_max_lifetime_secs > longest {
        return Err(AppError::field("token_max_lifetime_secs", format!("between 60 and {longest} seconds (30 days)")));
    }
    let txn = db::begin_write(ctx.db).await?;
    db::execute(&txn, "DELETE FROM settings WHERE name = ?", [TOKEN_MAX_LIFETIME.into()]).await?;
    db::execute(
        &txn,
        "INSERT INTO settings (name, value) VALUES (?, ?)",
        [TOKEN_MAX_LIFETIME.into(), new.token_max_lifetime_secs.to_string().into()],
    )
    .await?;
    audit::record(&txn, ctx.actor, "settings.update", TOKEN_MAX_LIFETIME, audit::Outcome::Success, &new.token_max_lifetime_secs.to_string()).await?;
    txn.commit().await?;
    Ok(new.clone())
}
