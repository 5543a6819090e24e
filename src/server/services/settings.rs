//! Product settings an admin changes at run time, kept in the `settings` table.

use std::time::Duration;

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use super::{Ctx, audit};
use crate::model::ProductSettings;
use crate::server::db;
use crate::server::db::entities::setting;
use crate::server::error::{AppError, AppResult};

const TOKEN_MAX_LIFETIME: &str = "kubeconfig.token_max_lifetime_secs";
/// Until an admin says otherwise, a downloaded kubeconfig token lives at most a day.
pub const DEFAULT_TOKEN_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const CLI_LOGIN_LIFETIME: &str = "cli.login_lifetime_secs";
/// The key of a CLI login lives 12 hours unless an admin says otherwise (like infrahq/infra's sessions):
/// a login approved by mistake, or a laptop left open, does not hold access for a month.
pub const DEFAULT_CLI_LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

async fn seconds(db: &impl ConnectionTrait, name: &str, default: Duration) -> AppResult<Duration> {
    let row = setting::Entity::find_by_id(name).one(db).await?;
    let secs = match row {
        Some(r) => r.value.parse::<u64>().unwrap_or(default.as_secs()),
        None => default.as_secs(),
    };
    Ok(Duration::from_secs(secs))
}

/// The longest lifetime a user may pick for a kubeconfig token.
pub async fn token_max_lifetime(db: &impl ConnectionTrait) -> AppResult<Duration> {
    seconds(db, TOKEN_MAX_LIFETIME, DEFAULT_TOKEN_MAX_LIFETIME).await
}

/// The lifetime of a CLI login's access key.
pub async fn cli_login_lifetime(db: &impl ConnectionTrait) -> AppResult<Duration> {
    seconds(db, CLI_LOGIN_LIFETIME, DEFAULT_CLI_LOGIN_LIFETIME).await
}

pub async fn get(ctx: Ctx<'_>) -> AppResult<ProductSettings> {
    ctx.require_view("settings.get", "settings").await?;
    Ok(ProductSettings {
        token_max_lifetime_secs: Some(token_max_lifetime(ctx.db).await?.as_secs() as i64),
        cli_login_lifetime_secs: Some(cli_login_lifetime(ctx.db).await?.as_secs() as i64),
    })
}

/// Changes the settings given (the others stay as they are).
pub async fn update(ctx: Ctx<'_>, new: &ProductSettings) -> AppResult<ProductSettings> {
    ctx.require_admin("settings.update", "settings").await?;
    let longest = super::revocations::LONGEST_TOKEN.as_secs() as i64;
    let changes = [
        (TOKEN_MAX_LIFETIME, "token_max_lifetime_secs", new.token_max_lifetime_secs),
        (CLI_LOGIN_LIFETIME, "cli_login_lifetime_secs", new.cli_login_lifetime_secs),
    ];
    for (_, field, value) in changes {
        if value.is_some_and(|v| !(60..=longest).contains(&v)) {
            return Err(AppError::field(field, format!("between 60 and {longest} seconds (30 days)")));
        }
    }
    let txn = db::begin_write(ctx.db).await?;
    for (name, _, value) in changes {
        let Some(value) = value else { continue };
        setting::Entity::delete_by_id(name).exec(&txn).await?;
        setting::ActiveModel { name: Set(name.to_string()), value: Set(value.to_string()) }.insert(&txn).await?;
        audit::record(&txn, ctx.actor, "settings.update", name, audit::Outcome::Success, &value.to_string()).await?;
    }
    txn.commit().await?;
    get(ctx).await
}
