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

use super::leases::Lease;
use super::{Ctx, audit, destinations};
use crate::model::{NewProvider, Provider, ProviderCheck, ProviderUpdate, Unverified};
use crate::server::auth::signing::MasterKey;
use crate::server::db;
use crate::server::db::entities::{provider, provider_user, user};
use crate::server::directory::DirectoryError;
use crate::server::error::{AppError, AppResult};
use crate::server::oidc::{self, Identity, OidcClient, ProviderGroup, Refresh};

pub const KINDS: &[&str] = &["oidc", "okta", "google", "azure"];
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
    pub kind: String,
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
        match self.kind.as_str() {
            "azure" => {
                let base = if self.directory_url.is_empty() { crate::server::directory::GRAPH } else { &self.directory_url };
                crate::server::directory::azure_groups(http, base, &who.access_token).await
            }
            "google" => match &self.google {
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
pub fn authorization_params(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "google" => &[("access_type", "offline"), ("prompt", "consent")],
        _ => &[],
    }
}

fn aad(name: &str) -> String {
    format!("provider:{name}")
}

/// The issuer URL for a kind: `oidc` takes a URL (https, or http on a loopback address for tests),
/// `okta` a domain, `azure` a tenant, `google` nothing.
pub fn issuer_for(kind: &str, given: &str) -> AppResult<String> {
    let given = given.trim().trim_end_matches('/');
    let host_only = given.trim_start_matches("https://");
    match kind {
        // an issuer URL may be given (a test provider); Google itself needs none
        "google" if given.contains("://") => issuer_for("oidc", given),
        "google" => Ok("https://accounts.google.com".into()),
        // an authorization server's issuer URL (https://example.okta.com/oauth2/default), or a test's
        "okta" if given.contains("://") => issuer_for("oidc", given),
        "okta" if !host_only.is_empty() && !host_only.contains('/') => Ok(format!("https://{host_only}")),
        "okta" => Err(AppError::field("issuer", "the Okta domain, like example.okta.com, or an authorization server's issuer URL")),
        "azure" if !given.is_empty() && !given.contains('/') => Ok(format!("https://login.microsoftonline.com/{given}/v2.0")),
        // a national cloud's (or a test's) issuer URL as is
        "azure" if given.contains("://") => issuer_for("oidc", given),
        "azure" => Err(AppError::field("issuer", "the Azure AD tenant id or domain")),
        "oidc" => {
            let url = reqwest::Url::parse(given).map_err(|_| AppError::field("issuer", "the issuer URL, like https://idp.example.com"))?;
            let loopback = url.host_str().is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || h == "[::1]");
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(AppError::field("issuer", "must be https (plain http only on a loopback address)"));
            }
            Ok(given.to_string())
        }
        _ => Err(AppError::field("kind", format!("one of {}", KINDS.join(", ")))),
    }
}

fn default_scopes(kind: &str) -> Vec<String> {
    let list: &[&str] = match kind {
        "google" => &["openid", "email", "profile"],
        "azure" => &["openid", "email", "profile", "offline_access", "https://graph.microsoft.com/GroupMember.Read.All"],
        _ => &["openid", "email", "profile", "groups", "offline_access"],
    };
    list.iter().map(|s| s.to_string()).collect()
}

fn clean_domains(domains: &[String]) -> AppResult<Vec<String>> {
    let mut out = Vec::new();
    for d in domains {
        let d = d.trim().trim_start_matches('@').to_lowercase();
        if d.is_empty() {
            continue;
        }
        if !d.contains('.') || d.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
            return Err(AppError::field("allowed_domains", format!("{d} is not an email domain")));
        }
        out.push(d);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A directory base URL: empty, or https (http only on a loopback address, for tests).
fn directory_url(given: &str) -> AppResult<String> {
    let given = given.trim().trim_end_matches('/');
    if given.is_empty() {
        return Ok(String::new());
    }
    issuer_for("oidc", given).map_err(|_| AppError::field("directory_url", "an https URL (plain http only on a loopback address)"))
}

fn validate_name(name: &str) -> AppResult<String> {
    let name = destinations::validate_name(name)?;
    if name == "local" {
        return Err(AppError::field("name", "`local` is reserved for local users and groups"));
    }
    // clusters see a provider group as `<provider>:<key>`: `system:` names are Kubernetes' own
    if name == "system" {
        return Err(AppError::field("name", "`system` is reserved: clusters would read its groups as Kubernetes' own"));
    }
    Ok(name)
}

fn non_empty(field: &str, value: &str) -> AppResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(AppError::field(field, "required"));
    }
    Ok(v.to_string())
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
        allowed_domains: split(&p.allowed_domains, ','),
        created_at: p.created_at,
        user_count,
        directory_url: p.directory_url,
        directory_admin: p.directory_admin,
        unverified: Unverified::default(),
    };
    Ok((provider, p.client_secret, p.directory_secret))
}

pub async fn list(ctx: Ctx<'_>) -> AppResult<Vec<Provider>> {
    ctx.require_view("providers.list", "").await?;
    let rows = db::query_all(ctx.db, &format!("{SELECT} ORDER BY p.name"), []).await?;
    let mut list = rows.iter().map(|r| row_to_provider(r).map(|(p, _)| p)).collect::<AppResult<Vec<_>>>()?;
    for p in &mut list {
        p.unverified = unverified(ctx.db, p.id).await?;
    }
    Ok(list)
}

/// The provider's enabled users whose last checks had no definite answer (for the providers page).
async fn unverified(db: &impl ConnectionTrait, provider_id: i64) -> AppResult<Unverified> {
    const FAILING: &str =
        "FROM provider_users pu JOIN users u ON u.id = pu.user_id WHERE pu.provider_id = ? AND u.disabled = ? AND pu.verify_failing_since IS NOT NULL";
    // aggregates over a join: hand-written
    #[derive(FromQueryResult)]
    struct Failing {
        users: i64,
        since: Option<i64>,
    }
    let row =
        db::query_one(db, &format!("SELECT COUNT(*) AS users, MIN(pu.verify_failing_since) AS since {FAILING}"), [provider_id.into(), false.into()]).await?;
    let (users, since) = match row {
        Some(r) => {
            let f = Failing::from_query_result(&r, "")?;
            (f.users, f.since)
        }
        None => (0, None),
    };
    if users == 0 {
        return Ok(Unverified::default());
    }
    let latest =
        db::query_one(db, &format!("SELECT pu.verify_error AS error {FAILING} ORDER BY pu.verify_retry_at DESC LIMIT 1"), [provider_id.into(), false.into()])
            .await?;
    #[derive(FromQueryResult)]
    struct Latest {
        error: String,
    }
    let error = latest.map(|r| Latest::from_query_result(&r, "")).transpose()?.map(|l| l.error).unwrap_or_default();
    Ok(Unverified { users, since, error })
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
    let row = match by {
        By::Id(id) => db::query_one(db, &format!("{SELECT} WHERE p.id = ?"), [id.into()]).await?,
        By::Name(name) => db::query_one(db, &format!("{SELECT} WHERE p.name = ?"), [name.into()]).await?,
    };
    row.as_ref().map(row_to_provider).transpose()
}

/// A provider with its decrypted secret, by name.
pub async fn config(db: &impl ConnectionTrait, master: &MasterKey, name: &str) -> AppResult<ProviderConfig> {
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
        name: p.name,
        kind: p.kind,
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

pub async fn create(ctx: Ctx<'_>, master: &MasterKey, new: &NewProvider) -> AppResult<Provider> {
    ctx.require_admin("providers.create", &new.name).await?;
    let name = validate_name(&new.name)?;
    let kind = new.kind.trim().to_lowercase();
    let issuer = issuer_for(&kind, &new.issuer)?;
    let client_id = non_empty("client_id", &new.client_id)?;
    let secret = non_empty("client_secret", &new.client_secret)?;
    let scopes = new.scopes.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| default_scopes(&kind));
    let groups_claim = new.groups_claim.clone().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).unwrap_or_else(|| "groups".into());
    let domains = clean_domains(&new.allowed_domains)?;
    let directory_url = directory_url(new.directory_url.as_deref().unwrap_or(""))?;
    let service_account = new.service_account_json.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(json) = service_account {
        crate::server::directory::ServiceAccount::parse(json).map_err(|e| AppError::field("service_account_json", e))?;
    }
    let directory_admin = new.directory_admin.as_deref().map(str::trim).unwrap_or("").to_lowercase();
    if service_account.is_some() == directory_admin.is_empty() {
        return Err(AppError::field("directory_admin", "give both the service account key and the admin it acts as, or neither"));
    }
    if service_account.is_some() && kind != "google" {
        return Err(AppError::field("service_account_json", "only for google"));
    }
    let txn = db::begin_write(ctx.db).await?;
    db::execute(
        &txn,
        "INSERT INTO providers (name, kind, issuer, client_id, client_secret, scopes, groups_claim, allowed_domains, directory_url, directory_secret, directory_admin, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            name.clone().into(),
            kind.into(),
            issuer.into(),
            client_id.into(),
            master.encrypt(secret.as_bytes(), &aad(&name))?.into(),
            scopes.join(" ").into(),
            groups_claim.into(),
            domains.join(",").into(),
            directory_url.into(),
            match service_account {
                Some(json) => master.encrypt(json.as_bytes(), &aad(&name))?,
                None => String::new(),
            }
            .into(),
            directory_admin.into(),
            crate::server::now().into(),
        ],
    )
    .await
    .map_err(AppError::or_taken("name", "a provider with this name already exists"))?;
    audit::record(&txn, ctx.actor, "providers.create", &name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    find(ctx.db, By::Name(name)).await?.map(|(p, _)| p).ok_or_else(|| AppError::Internal("the provider was not stored".into()))
}

pub async fn update(ctx: Ctx<'_>, master: &MasterKey, id: i64, change: &ProviderUpdate) -> AppResult<Provider> {
    ctx.require_admin("providers.update", &id.to_string()).await?;
    let (p, sealed) = find(ctx.db, By::Id(id)).await?.ok_or_else(|| AppError::NotFound(format!("identity provider {id}")))?;
    let issuer = match &change.issuer {
        Some(i) => issuer_for(&p.kind, i)?,
        None => p.issuer.clone(),
    };
    let client_id = match &change.client_id {
        Some(c) => non_empty("client_id", c)?,
        None => p.client_id.clone(),
    };
    let sealed = match &change.client_secret {
        Some(s) if !s.trim().is_empty() => master.encrypt(s.trim().as_bytes(), &aad(&p.name))?,
        _ => sealed,
    };
    let scopes = change.scopes.clone().filter(|s| !s.is_empty()).unwrap_or(p.scopes.clone());
    let groups_claim = change.groups_claim.clone().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).unwrap_or(p.groups_claim.clone());
    let domains = match &change.allowed_domains {
        Some(d) => clean_domains(d)?,
        None => p.allowed_domains.clone(),
    };
    let txn = db::begin_write(ctx.db).await?;
    db::execute(
        &txn,
        "UPDATE providers SET issuer = ?, client_id = ?, client_secret = ?, scopes = ?, groups_claim = ?, allowed_domains = ? WHERE id = ?",
        [issuer.into(), client_id.into(), sealed.into(), scopes.join(" ").into(), groups_claim.into(), domains.join(",").into(), id.into()],
    )
    .await?;
    audit::record(&txn, ctx.actor, "providers.update", &p.name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    find(ctx.db, By::Id(id)).await?.map(|(p, _)| p).ok_or_else(|| AppError::NotFound(format!("identity provider {id}")))
}

/// Removes a provider. Its users can no longer sign in: they are disabled (their sessions end and the
/// clusters refuse their tokens); its groups go, with their grants.
pub async fn delete(ctx: Ctx<'_>, id: i64) -> AppResult<()> {
    ctx.require_admin("providers.delete", &id.to_string()).await?;
    let (p, _) = find(ctx.db, By::Id(id)).await?.ok_or_else(|| AppError::NotFound(format!("identity provider {id}")))?;
    let users: Vec<i64> = provider_user::Entity::find()
        .select_only()
        .column(provider_user::Column::UserId)
        .filter(provider_user::Column::ProviderId.eq(id))
        .into_tuple()
        .all(ctx.db)
        .await?;
    for user_id in users {
        disable(ctx.db, user_id, &format!("provider {} removed", p.name)).await?;
    }
    let txn = db::begin_write(ctx.db).await?;
    db::execute(&txn, "DELETE FROM grants WHERE subject_kind = 'group' AND subject_id IN (SELECT id FROM groups WHERE source = ?)", [p.name.clone().into()])
        .await?;
    db::execute(&txn, "DELETE FROM groups WHERE source = ?", [p.name.clone().into()]).await?;
    db::execute(&txn, "DELETE FROM providers WHERE id = ?", [id.into()]).await?;
    audit::record(&txn, ctx.actor, "providers.delete", &p.name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(())
}

/// "Test connection": discovery and signing keys, in words.
pub async fn check(ctx: Ctx<'_>, master: &MasterKey, id: i64, http: &reqwest::Client) -> AppResult<ProviderCheck> {
    ctx.require_admin("providers.test", &id.to_string()).await?;
    let (p, _) = find(ctx.db, By::Id(id)).await?.ok_or_else(|| AppError::NotFound(format!("identity provider {id}")))?;
    let cfg = config(ctx.db, master, &p.name).await?;
    Ok(match oidc::discover(http, &cfg.issuer).await {
        Ok(meta) => ProviderCheck { ok: true, message: format!("Discovery works: {}.", oidc::describe(&meta)) },
        Err(e) => ProviderCheck { ok: false, message: e.to_string() },
    })
}

/// The email a provider's sign-in names, normalised as local emails are (`users::normalize_email`):
/// present, with an `@`, outside Kubernetes' `system:` names, not one the IdP says is unverified, and in
/// the allowed domains. Clusters see a user as their email, so a refusal here is what keeps an IdP
/// user from becoming, say, `system:kube-controller-manager` there.
fn usable_email(provider: &ProviderConfig, who: &Identity) -> AppResult<String> {
    if who.email.trim().is_empty() {
        return Err(AppError::Unauthorized("the identity provider did not share an email address: ask an admin to add the `email` scope".into()));
    }
    let email = super::users::normalize_email(&who.email)
        .map_err(|e| AppError::Unauthorized(format!("the identity provider's email address {:?} is refused ({e})", who.email)))?;
    if who.email_verified == Some(false) {
        return Err(AppError::Unauthorized(format!("the identity provider has not verified {email}")));
    }
    let domain = email.rsplit('@').next().unwrap_or_default();
    if !provider.allowed_domains.is_empty() && !provider.allowed_domains.iter().any(|d| d == domain) {
        return Err(AppError::Unauthorized(format!("{email} may not sign in here: allowed domains are {}", provider.allowed_domains.join(", "))));
    }
    Ok(email)
}

/// The account a provider user signs in to: the one linked to their subject (`sub`), else a new one.
/// An existing account is linked by email only when it is a person's account of this provider that no
/// other subject holds, and the IdP says the email is verified: a new subject with someone's email (a
/// recreated IdP account, an email an IdP lets people choose) never takes their account over.
async fn account_for(txn: &impl ConnectionTrait, provider: &ProviderConfig, who: &Identity, email: &str) -> AppResult<i64> {
    let linked = provider_user::Entity::find()
        .filter(provider_user::Column::ProviderId.eq(provider.id))
        .filter(provider_user::Column::Subject.eq(who.subject.clone()))
        .one(txn)
        .await?;
    if let Some(linked) = linked {
        return Ok(linked.user_id);
    }
    let Some(existing) = super::users::find_by_email(txn, email).await? else {
        let name = if who.name.trim().is_empty() { email.to_string() } else { who.name.trim().to_string() };
        let user = super::users::insert(txn, super::users::KIND_USER, email, &name, None, false).await?;
        db::execute(txn, "UPDATE users SET provider = ? WHERE id = ?", [provider.name.clone().into(), user.id.into()]).await?;
        return Ok(user.id);
    };
    if existing.kind != super::users::KIND_USER {
        return Err(AppError::Unauthorized(format!("{email} is a built-in identity of this server and cannot sign in through {}", provider.name)));
    }
    if existing.provider != provider.name {
        return Err(AppError::Unauthorized(format!("{email} already has an account that does not sign in through {}: ask an admin", provider.name)));
    }
    let holder = provider_user::Entity::find_by_id(existing.id).one(txn).await?;
    if holder.is_some() {
        return Err(AppError::Unauthorized(format!(
            "{email} belongs to an account of another {} identity (another subject): a new identity does not take it over; ask an admin",
            provider.name
        )));
    }
    if who.email_verified != Some(true) {
        return Err(AppError::Unauthorized(format!("{} has not said that {email} is verified, and an existing account has it: ask an admin", provider.name)));
    }
    Ok(existing.id)
}

/// After a verified sign-in: creates or updates the user from the claims, brings their provider
/// groups up to date and keeps the refresh token. Returns the user's id.
pub async fn sign_in(
    db: &sea_orm::DatabaseConnection,
    master: &MasterKey,
    http: &reqwest::Client,
    provider: &ProviderConfig,
    who: &Identity,
) -> AppResult<i64> {
    let email = usable_email(provider, who)?;
    let who = Identity { email: email.clone(), ..who.clone() };
    let who = if provider.kind == "azure" || provider.google.is_some() {
        let groups = provider.groups(http, &who).await.map_err(|e| AppError::Unauthorized(e.to_string()))?;
        Identity { groups, ..who }
    } else {
        who
    };
    let txn = db::begin_write(db).await?;
    let user_id = account_for(&txn, provider, &who, &email).await?;
    let disabled = user::Entity::find_by_id(user_id).one(&txn).await?.is_none_or(|u| u.disabled);
    if disabled {
        return Err(AppError::Unauthorized("your account is disabled: ask an admin".into()));
    }
    if !who.name.trim().is_empty() {
        let name = who.name.trim();
        db::execute(&txn, "UPDATE users SET name = ?, name_lc = ? WHERE id = ?", [name.into(), name.to_lowercase().into(), user_id.into()]).await?;
    }
    let sealed = match &who.refresh_token {
        Some(t) => master.encrypt(t.as_bytes(), &aad(&provider.name))?,
        None => String::new(),
    };
    db::execute(&txn, "DELETE FROM provider_users WHERE user_id = ?", [user_id.into()]).await?;
    db::execute(
        &txn,
        "INSERT INTO provider_users (user_id, provider_id, subject, refresh_token, verified_at) VALUES (?, ?, ?, ?, ?)",
        [user_id.into(), provider.id.into(), who.subject.clone().into(), sealed.into(), crate::server::now().into()],
    )
    .await?;
    super::groups::sync_provider_memberships(&txn, &provider.name, user_id, &who.groups).await?;
    let actor = crate::server::auth::actor_for_user(&txn, user_id, &provider.name).await?;
    audit::record(&txn, &actor, "auth.provider.login", &provider.name, audit::Outcome::Success, &format!("groups: {}", describe_groups(&who.groups))).await?;
    txn.commit().await?;
    Ok(user_id)
}

/// Groups for an audit event: the name, and the key where it differs.
fn describe_groups(groups: &[ProviderGroup]) -> String {
    groups.iter().map(|g| if g.id == g.name { g.name.clone() } else { format!("{} ({})", g.name, g.id) }).collect::<Vec<_>>().join(", ")
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
            let actor = super::Actor::system("verification");
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
    db::execute(
        db,
        "UPDATE provider_users SET verify_failures = ?, verify_failing_since = ?, verify_retry_at = ?, verify_error = ? WHERE user_id = ?",
        [failures.into(), since.into(), retry_at.into(), why.into(), user.user_id.into()],
    )
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
    db::execute(
        &txn,
        &format!("UPDATE provider_users SET refresh_token = ?, verified_at = ?, {NO_TROUBLE} WHERE user_id = ?"),
        [sealed.into(), crate::server::now().into(), user_id.into()],
    )
    .await?;
    let changed = super::groups::sync_provider_memberships(&txn, &provider.name, user_id, &who.groups).await?;
    if changed {
        let actor = super::Actor::system("verification");
        audit::record(&txn, &actor, "auth.provider.groups", &who.email, audit::Outcome::Success, &format!("groups: {}", describe_groups(&who.groups))).await?;
    }
    txn.commit().await?;
    Ok(changed)
}
