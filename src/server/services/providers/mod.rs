//! Identity providers: admins add, change, test and remove them; people sign in through them; the
//! server re-checks every provider user with the IdP on an interval (continuous verification). Users
//! come from the ID token's claims (email, name; the email checked as local ones are, and never taking
//! over another subject's account); groups from the configured groups claim or the provider's
//! directory, keyed by the provider's id for them (never by name), kept apart from local groups
//! (`source` = the provider's name) and read-only in the console. Client secrets and
//! refresh tokens are encrypted with the master key.
//!
//! Verification acts only on a definite answer (`invalid_grant`, a user gone from the directory, an ID
//! token for another subject). Trouble without one (unreachable, 5xx, a timeout, no ID token) leaves the
//! user as is, retries with backoff, shows on the Identity providers page, and disables only once it
//! outlasts the grace period. One pass runs at a time across replicas (a lease in the database).

use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

mod admin;
mod sign_in;
mod verify;

pub use admin::*;
pub use sign_in::*;
pub use verify::*;

use super::leases::Lease;
use super::{Ctx, audit, destinations};
use crate::model::{NewProvider, Provider, ProviderCheck, ProviderKind, ProviderUpdate, Unverified};
use crate::server::auth::signing::MasterKey;
use crate::server::db;
use crate::server::db::entities::{provider, provider_user, user};
use crate::server::directory::DirectoryError;
use crate::server::error::{AppError, AppResult};
use crate::server::oidc::{self, Identity, OidcClient, ProviderGroup, Refresh};

pub const KINDS: &[&str] = &["oidc", "okta", "google", "azure"];
const _: () = assert!(KINDS.len() == ProviderKind::ALL.len());
/// The interval of continuous verification unless an admin sets another one.
pub const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(300);
/// How long a user may stay unverifiable (no definite answer from the IdP) before being disabled.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(24 * 3600);
/// After a failed check a user is tried again after 1 minute, 2, 4, … at most this long.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// A pass's lease lives this long unless renewed (its holder renews it every third of that), so a
/// replica that dies mid-pass holds the others up this long at most.
const LEASE_TTL: Duration = Duration::from_secs(120);

/// A provider with its secret, for signing in and verifying.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    pub id: i64,
    pub name: String,
    pub kind: ProviderKind,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub allowed_domains: Vec<String>,
    pub directory_url: String,
    /// `google`: the service account (decrypted) and the admin it acts as; `None` when not set
    pub google: Option<(crate::server::directory::ServiceAccount, String)>,
}

impl ProviderConfig {
    /// The user's groups, each with its key at the provider: from Microsoft Graph for `azure`, from the
    /// Directory API for `google` with a service account, else from the groups claim.
    pub async fn groups(&self, http: &reqwest::Client, who: &Identity) -> Result<Vec<ProviderGroup>, DirectoryError> {
        match self.kind {
            ProviderKind::Azure => {
                let base = if self.directory_url.is_empty() { crate::server::directory::GRAPH } else { &self.directory_url };
                crate::server::directory::azure_groups(http, base, &who.access_token).await
            }
            ProviderKind::Google => match &self.google {
                Some((sa, admin)) => {
                    let base = if self.directory_url.is_empty() { crate::server::directory::GOOGLE_DIRECTORY } else { &self.directory_url };
                    crate::server::directory::google_groups(http, base, sa, admin, &who.email).await
                }
                None => Ok(who.groups.clone()),
            },
            _ => Ok(who.groups.clone()),
        }
    }

    pub async fn client(&self, http: &reqwest::Client, redirect_url: &str) -> Result<OidcClient, oidc::OidcError> {
        let meta = oidc::discover(http, &self.issuer).await?;
        oidc::client(meta, &self.client_id, &self.client_secret, redirect_url)
    }
}

/// Parameters a kind's authorization URL needs: Google gives a refresh token (which verification
/// needs) only with `access_type=offline`, and again on later sign-ins only with `prompt=consent`.
pub fn authorization_params(kind: &ProviderKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ProviderKind::Google => &[("access_type", "offline"), ("prompt", "consent")],
        _ => &[],
    }
}

/// The kind of a stored provider (always one of the kinds: `create` stores no other).
fn stored_kind(kind: &str) -> AppResult<ProviderKind> {
    ProviderKind::parse(kind).ok_or_else(|| AppError::Internal(format!("a provider of unknown kind {kind}")))
}

fn aad(name: &str) -> String {
    format!("provider:{name}")
}

/// A provider with its user count in one query (a subquery the entity does not state), read as [`ProviderRow`].
const SELECT: &str = "SELECT p.*, (SELECT COUNT(*) FROM provider_users pu WHERE pu.provider_id = p.id) AS user_count FROM providers p";

#[derive(FromQueryResult)]
struct ProviderRow {
    #[sea_orm(nested)]
    provider: provider::Model,
    user_count: i64,
}

fn split(text: &str, sep: char) -> Vec<String> {
    text.split(sep).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// A provider, its sealed client secret and its sealed directory secret.
fn row_to_provider(r: &sea_orm::QueryResult) -> AppResult<(Provider, String)> {
    row_to_sealed(r).map(|(p, secret, _)| (p, secret))
}

fn row_to_sealed(r: &sea_orm::QueryResult) -> AppResult<(Provider, String, String)> {
    let ProviderRow { provider: p, user_count } = ProviderRow::from_query_result(r, "")?;
    let provider = Provider {
        id: p.id,
        name: p.name,
        kind: p.kind,
        issuer: p.issuer,
        client_id: p.client_id,
        scopes: split(&p.scopes, ' '),
        groups_claim: p.groups_claim,
        allowed_domains: crate::model::parse_domain_list(&p.allowed_domains),
        created_at: p.created_at,
        user_count,
        directory_url: p.directory_url,
        directory_admin: p.directory_admin,
        unverified: Unverified::default(),
    };
    Ok((provider, p.client_secret, p.directory_secret))
}

/// The names of the providers, for the sign-in page (no secrets, no sign-in needed).
pub async fn names(db: &impl ConnectionTrait) -> AppResult<Vec<String>> {
    Ok(provider::Entity::find().select_only().column(provider::Column::Name).order_by_asc(provider::Column::Name).into_tuple().all(db).await?)
}

/// How a provider is looked up (a fixed set of columns: no column name is ever formatted into SQL).
enum By {
    Id(i64),
    Name(String),
}

async fn find(db: &impl ConnectionTrait, by: By) -> AppResult<Option<(Provider, String)>> {
    // raw: the shared SELECT counts each provider's users in a subquery, which the entity API cannot say
    let row = match by {
        By::Id(id) => db::query_one(db, &format!("{SELECT} WHERE p.id = ?"), [id.into()]).await?,
        By::Name(name) => db::query_one(db, &format!("{SELECT} WHERE p.name = ?"), [name.into()]).await?,
    };
    row.as_ref().map(row_to_provider).transpose()
}

/// A provider with its decrypted secret, by name.
pub async fn config(db: &impl ConnectionTrait, master: &MasterKey, name: &str) -> AppResult<ProviderConfig> {
    // raw: the shared SELECT (see `find`)
    let row = db::query_one(db, &format!("{SELECT} WHERE p.name = ?"), [name.trim().to_lowercase().into()]).await?;
    let (p, sealed, sealed_sa) = row.as_ref().map(row_to_sealed).transpose()?.ok_or_else(|| AppError::NotFound(format!("identity provider {name}")))?;
    let secret = master.decrypt(&sealed, &aad(&p.name)).map_err(AppError::Internal)?;
    let google = if sealed_sa.is_empty() || p.directory_admin.is_empty() {
        None
    } else {
        let json = master.decrypt(&sealed_sa, &aad(&p.name)).map_err(AppError::Internal)?;
        Some((crate::server::directory::ServiceAccount::parse(&String::from_utf8_lossy(&json)).map_err(AppError::Internal)?, p.directory_admin.clone()))
    };
    Ok(ProviderConfig {
        id: p.id,
        kind: stored_kind(&p.kind)?,
        name: p.name,
        issuer: p.issuer,
        client_id: p.client_id,
        client_secret: String::from_utf8_lossy(&secret).into_owned(),
        scopes: p.scopes,
        groups_claim: p.groups_claim,
        allowed_domains: p.allowed_domains,
        directory_url: p.directory_url,
        google,
    })
}

/// Disables a user the IdP refused: sessions end, keys stop working (revocation), clusters refuse
/// their tokens within seconds.
async fn disable(db: &sea_orm::DatabaseConnection, user_id: i64, why: &str) -> AppResult<()> {
    let actor = super::Actor::system("verification");
    let ctx = Ctx::new(db, &actor);
    super::users::set_disabled(ctx, user_id, true).await.map(|_| ())?;
    audit::record(db, &actor, "auth.provider.removed", &user_id.to_string(), audit::Outcome::Success, why).await?;
    Ok(())
}
