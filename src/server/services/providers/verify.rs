//! Continuous verification: every provider user re-checked with the IdP on an interval, acting only on
//! a definite answer, one pass at a time across replicas.

use super::sign_in::describe_groups;
use super::*;
use sea_orm::sea_query::Expr;

/// What one verification pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: usize,
    pub updated: usize,
    pub disabled: usize,
    /// checked without a definite answer, still within the grace period
    pub unavailable: usize,
    /// not checked this time: backing off after a failed check
    pub skipped: usize,
    /// another pass (another replica) held the lease: this one did nothing
    pub busy: bool,
}

/// How a verification pass runs.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// at most this many requests to the IdPs at a time
    pub concurrency: usize,
    /// how long a user may stay unverifiable before being disabled (zero: at the first failure)
    pub grace_period: Duration,
    /// after the pass, the lease stays taken this long, so that the other replicas' timers do not run
    /// a pass each right after this one
    pub hold_after: Duration,
    /// the time of the pass, for the failure state (`None`: now; tests move it forward)
    pub now: Option<i64>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { concurrency: 8, grace_period: DEFAULT_GRACE_PERIOD, hold_after: Duration::ZERO, now: None }
    }
}

impl VerifyOptions {
    /// The periodic pass of `infra server`: the lease is held for half an interval after each pass.
    pub fn from_config(config: &crate::server::config::ServerConfig) -> Self {
        VerifyOptions {
            grace_period: Duration::from_secs(config.verify_grace_period_secs),
            hold_after: Duration::from_secs(config.verify_interval_secs.max(1)) / 2,
            ..VerifyOptions::default()
        }
    }
}

/// One pass with the default options and at most `concurrency` requests at a time.
pub async fn verify_all(
    db: &sea_orm::DatabaseConnection,
    master: &MasterKey,
    http: &reqwest::Client,
    redirect_url: &str,
    concurrency: usize,
) -> AppResult<VerifyReport> {
    verify_pass(db, master, http, redirect_url, &VerifyOptions { concurrency, ..VerifyOptions::default() }).await
}

/// One pass of continuous verification over every enabled provider user with a refresh token: the
/// refresh token grant (which also returns fresh claims). A definite refusal → disabled; groups follow
/// the claims; no definite answer → the user stays as is, is retried with backoff, and is disabled once
/// the trouble outlasts the grace period. Does nothing while another pass holds the lease.
pub async fn verify_pass(
    db: &sea_orm::DatabaseConnection,
    master: &MasterKey,
    http: &reqwest::Client,
    redirect_url: &str,
    options: &VerifyOptions,
) -> AppResult<VerifyReport> {
    let Some(lease) = Lease::acquire(db, "verification", LEASE_TTL).await? else {
        return Ok(VerifyReport { busy: true, ..VerifyReport::default() });
    };
    let report = verify_providers(db, master, http, redirect_url, options, &lease).await;
    lease.release(if report.is_ok() { options.hold_after } else { Duration::ZERO }).await?;
    report
}

/// A provider user due for a check, and their trouble so far.
struct Due {
    user_id: i64,
    subject: String,
    refresh_token: String,
    failures: i64,
    failing_since: Option<i64>,
}

async fn verify_providers(
    db: &sea_orm::DatabaseConnection,
    master: &MasterKey,
    http: &reqwest::Client,
    redirect_url: &str,
    options: &VerifyOptions,
    lease: &Lease,
) -> AppResult<VerifyReport> {
    use futures::StreamExt;
    let now = options.now.unwrap_or_else(crate::server::now);
    let mut report = VerifyReport::default();
    for name in names(db).await? {
        let provider = config(db, master, &name).await?;
        // raw: a join with users, and the entities declare no relations to join by
        let rows = db::query_all(
            db,
            "SELECT pu.* \
             FROM provider_users pu JOIN users u ON u.id = pu.user_id \
             WHERE pu.provider_id = ? AND u.disabled = ? AND pu.refresh_token <> ''",
            [provider.id.into(), false.into()],
        )
        .await?;
        let mut users = Vec::new();
        for r in db::decode::<provider_user::Model>(&rows)? {
            if r.verify_retry_at.is_some_and(|retry_at| retry_at > now) {
                report.skipped += 1;
                continue;
            }
            let token = master.decrypt(&r.refresh_token, &aad(&provider.name)).map_err(AppError::Internal)?;
            users.push(Due {
                user_id: r.user_id,
                refresh_token: String::from_utf8_lossy(&token).into_owned(),
                subject: r.subject,
                failures: r.verify_failures,
                failing_since: r.verify_failing_since,
            });
        }
        if users.is_empty() {
            continue;
        }
        // an unreachable provider is no answer about its users: each of them is in trouble
        let client = provider.client(http, redirect_url).await.map_err(|e| {
            tracing::warn!(provider = %name, error = %e, "continuous verification: the provider is not reachable");
            e.to_string()
        });
        let outcomes: Vec<(Due, Option<Refresh>)> = futures::stream::iter(users)
            .map(|user| {
                let (client, provider) = (&client, &provider);
                async move {
                    // another replica may have taken over: its pass uses the refresh tokens from now on
                    if !lease.held() {
                        return (user, None);
                    }
                    let outcome = match client {
                        Err(why) => Refresh::Unavailable(why.clone()),
                        Ok(client) => match oidc::refresh(client, http, &user.refresh_token, &user.subject, &provider.groups_claim).await {
                            // groups from the directory (Azure: Microsoft Graph), else from the claims
                            Refresh::Refreshed(who) => match provider.groups(http, &who).await {
                                Ok(groups) => Refresh::Refreshed(Identity { groups, ..who }),
                                Err(DirectoryError::UserGone(why)) => Refresh::Denied(why),
                                Err(DirectoryError::Failed(why)) => Refresh::Unavailable(why),
                            },
                            other => other,
                        },
                    };
                    (user, Some(outcome))
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        let before = report.clone();
        for (user, outcome) in outcomes {
            let Some(outcome) = outcome else { continue };
            let user_id = user.user_id;
            report.checked += 1;
            match outcome {
                // one user's trouble (say, the last admin cannot be disabled) never stops the pass
                Refresh::Refreshed(who) => match refreshed(db, master, &provider, user_id, &who).await {
                    Ok(true) => report.updated += 1,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(user_id, error = %e, "continuous verification: cannot update the user"),
                },
                Refresh::Denied(why) => match disable_unverified(db, user_id, &format!("the identity provider refused: {why}")).await {
                    Ok(()) => report.disabled += 1,
                    Err(e) => tracing::warn!(user_id, error = %e, "continuous verification: cannot disable the user"),
                },
                Refresh::Unavailable(why) => match no_answer(db, &user, &why, now, options.grace_period).await {
                    Ok(false) => {
                        tracing::warn!(provider = %provider.name, user_id, error = %why, "continuous verification: no definite answer, trying again later");
                        report.unavailable += 1;
                    }
                    Ok(true) => {
                        let why = format!(
                            "no definite answer from the identity provider for longer than the grace period of {}: {why}",
                            crate::model::human_duration(options.grace_period.as_secs())
                        );
                        match disable_unverified(db, user_id, &why).await {
                            Ok(()) => report.disabled += 1,
                            Err(e) => tracing::warn!(user_id, error = %e, "continuous verification: cannot disable the user"),
                        }
                    }
                    Err(e) => tracing::warn!(user_id, error = %e, "continuous verification: cannot record the failed check"),
                },
            }
        }
        // one audit event per provider and pass with the outcomes; each change and removal has its own
        if report.checked > before.checked {
            let detail = format!(
                "checked {}, groups changed {}, disabled {}, unreachable {}",
                report.checked - before.checked,
                report.updated - before.updated,
                report.disabled - before.disabled,
                report.unavailable - before.unavailable
            );
            let actor = crate::server::services::Actor::system("verification");
            audit::record(db, &actor, "auth.provider.verify", &provider.name, audit::Outcome::Success, &detail).await?;
        }
    }
    Ok(report)
}

/// The failure state of a user, back to none (after an answer; or when disabled, so that an admin who
/// enables them again gives them a new grace period).
const NO_TROUBLE: &str = "verify_failures = 0, verify_failing_since = NULL, verify_retry_at = NULL, verify_error = ''";

async fn disable_unverified(db: &sea_orm::DatabaseConnection, user_id: i64, why: &str) -> AppResult<()> {
    disable(db, user_id, why).await?;
    // raw: the reset's text (NO_TROUBLE) is shared with `refreshed`
    db::execute(db, &format!("UPDATE provider_users SET {NO_TROUBLE} WHERE user_id = ?"), [user_id.into()]).await?;
    Ok(())
}

/// A check without a definite answer: the user stays as is and is tried again after a backoff (never
/// past the end of the grace period), unless the trouble has lasted the grace period: then true.
async fn no_answer(db: &sea_orm::DatabaseConnection, user: &Due, why: &str, now: i64, grace: Duration) -> AppResult<bool> {
    let since = user.failing_since.unwrap_or(now);
    let grace_ends = since.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
    if now >= grace_ends {
        return Ok(true);
    }
    let failures = user.failures.saturating_add(1);
    let backoff = (60_000_i64 << (failures - 1).clamp(0, 10)).min(MAX_BACKOFF.as_millis() as i64);
    let retry_at = now.saturating_add(backoff).min(grace_ends);
    let why: String = why.chars().take(500).collect();
    provider_user::Entity::update_many()
        .col_expr(provider_user::Column::VerifyFailures, Expr::value(failures))
        .col_expr(provider_user::Column::VerifyFailingSince, Expr::value(since))
        .col_expr(provider_user::Column::VerifyRetryAt, Expr::value(retry_at))
        .col_expr(provider_user::Column::VerifyError, Expr::value(why))
        .filter(provider_user::Column::UserId.eq(user.user_id))
        .exec(db)
        .await?;
    Ok(false)
}

/// Stores the new refresh token and brings the groups up to date; true when the groups changed.
async fn refreshed(db: &sea_orm::DatabaseConnection, master: &MasterKey, provider: &ProviderConfig, user_id: i64, who: &Identity) -> AppResult<bool> {
    let txn = db::begin_write(db).await?;
    let sealed = match &who.refresh_token {
        Some(t) => master.encrypt(t.as_bytes(), &aad(&provider.name))?,
        None => String::new(),
    };
    // raw: the reset's text (NO_TROUBLE) is shared with `disable_unverified`
    db::execute(
        &txn,
        &format!("UPDATE provider_users SET refresh_token = ?, verified_at = ?, {NO_TROUBLE} WHERE user_id = ?"),
        [sealed.into(), crate::server::now().into(), user_id.into()],
    )
    .await?;
    let changed = crate::server::services::groups::sync_provider_memberships(&txn, &provider.name, user_id, &who.groups).await?;
    if changed {
        let actor = crate::server::services::Actor::system("verification");
        audit::record(&txn, &actor, "auth.provider.groups", &who.email, audit::Outcome::Success, &format!("groups: {}", describe_groups(&who.groups))).await?;
    }
    txn.commit().await?;
    Ok(changed)
}
