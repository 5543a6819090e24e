//! Cluster tokens: short-lived, signed statements of who a user is (email and groups) for one cluster,
//! checked by that cluster's connector proxy. What the user may do there is decided by the RBAC
//! bindings the connector keeps in sync with the grants.

use std::time::Duration;

use super::{Ctx, audit, grants, groups};
use crate::model::{ClusterClaims, INFRA_RESOURCE, IssuedToken};
use crate::server::auth::password::random_token;
use crate::server::auth::signing::Signer;
use crate::server::error::{AppError, AppResult};

/// How long a cluster token lives. Short, so that a token that leaks is soon worthless.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// Issues a token for `destination` to the acting user, who must hold a current grant on it (directly
/// or through a group). Not audited: the proxy audits every request the token is used for.
pub async fn issue(ctx: Ctx<'_>, signer: &Signer, issuer: &str, destination: &str) -> AppResult<IssuedToken> {
    let key = ctx.actor.key_id.clone();
    mint(ctx, signer, issuer, destination, TOKEN_LIFETIME, key, false).await
}

/// A token for a downloaded kubeconfig: `lifetime` as the user chose (checked by the caller against
/// the admin's maximum), naming `key_id`, the key made for this download, so that it can be revoked.
pub async fn issue_for_kubeconfig(ctx: Ctx<'_>, signer: &Signer, issuer: &str, destination: &str, lifetime: Duration, key_id: &str) -> AppResult<IssuedToken> {
    mint(ctx, signer, issuer, destination, lifetime, Some(key_id.to_string()), true).await
}

async fn mint(
    ctx: Ctx<'_>,
    signer: &Signer,
    issuer: &str,
    destination: &str,
    lifetime: Duration,
    key_id: Option<String>,
    downloaded: bool,
) -> AppResult<IssuedToken> {
    let destination = destination.trim();
    if destination.is_empty() || destination == INFRA_RESOURCE {
        return Err(AppError::field("destination", "name a cluster"));
    }
    let reachable = grants::reachable_destinations(ctx.db, ctx.actor.user_id).await?;
    if !reachable.iter().any(|d| d == destination) {
        return Err(AppError::Forbidden(format!("no access to {destination}: ask an admin for a grant")));
    }
    let now = crate::server::now();
    let exp = now / 1000 + lifetime.as_secs() as i64;
    let claims = ClusterClaims {
        iss: issuer.to_string(),
        aud: destination.to_string(),
        sub: ctx.actor.email.clone(),
        groups: groups::cluster_names_of_user(ctx.db, ctx.actor.user_id).await?,
        iat: now / 1000,
        exp,
        jti: random_token(16),
        uid: ctx.actor.user_id,
        sid: key_id,
        downloaded,
    };
    let token = signer.sign(ctx.db, &claims).await?;
    Ok(IssuedToken { token, expires_at: exp * 1000 })
}

/// Starts signing with a new key; tokens signed with the old one stay valid until they expire.
pub async fn rotate_signing_key(ctx: Ctx<'_>, signer: &Signer) -> AppResult<String> {
    ctx.require_admin("signing_keys.rotate", "").await?;
    let kid = signer.rotate(ctx.db).await?;
    audit::record(ctx.db, ctx.actor, "signing_keys.rotate", &kid, audit::Outcome::Success, "").await?;
    Ok(kid)
}
