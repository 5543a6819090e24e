//! Administering identity providers: validation, the list with its unverified users, create, update,
//! delete and "test connection".

use super::*;
use crate::server::db::entities::{grant, group};
use sea_orm::{ActiveModelTrait, Set, sea_query::Expr};

/// The issuer URL for a kind: `oidc` takes a URL (https, or http on a loopback address for tests),
/// `okta` a domain, `azure` a tenant, `google` nothing.
pub fn issuer_for(kind: ProviderKind, given: &str) -> AppResult<String> {
    let given = given.trim().trim_end_matches('/');
    let host_only = given.trim_start_matches("https://");
    match kind {
        // an issuer URL may be given (a test provider); Google itself needs none
        ProviderKind::Google if given.contains("://") => issuer_for(ProviderKind::Oidc, given),
        ProviderKind::Google => Ok("https://accounts.google.com".into()),
        // an authorization server's issuer URL (https://example.okta.com/oauth2/default), or a test's
        ProviderKind::Okta if given.contains("://") => issuer_for(ProviderKind::Oidc, given),
        ProviderKind::Okta if !host_only.is_empty() && !host_only.contains('/') => Ok(format!("https://{host_only}")),
        ProviderKind::Okta => Err(AppError::field("issuer", "the Okta domain, like example.okta.com, or an authorization server's issuer URL")),
        ProviderKind::Azure if !given.is_empty() && !given.contains('/') => Ok(format!("https://login.microsoftonline.com/{given}/v2.0")),
        // a national cloud's (or a test's) issuer URL as is
        ProviderKind::Azure if given.contains("://") => issuer_for(ProviderKind::Oidc, given),
        ProviderKind::Azure => Err(AppError::field("issuer", "the Azure AD tenant id or domain")),
        ProviderKind::Oidc => {
            let url = reqwest::Url::parse(given).map_err(|_| AppError::field("issuer", "the issuer URL, like https://idp.example.com"))?;
            let loopback = url.host_str().is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) || h == "[::1]");
            if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
                return Err(AppError::field("issuer", "must be https (plain http only on a loopback address)"));
            }
            Ok(given.to_string())
        }
    }
}

fn default_scopes(kind: ProviderKind) -> Vec<String> {
    let list: &[&str] = match kind {
        ProviderKind::Google => &["openid", "email", "profile"],
        ProviderKind::Azure => &["openid", "email", "profile", "offline_access", "https://graph.microsoft.com/GroupMember.Read.All"],
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
    issuer_for(ProviderKind::Oidc, given).map_err(|_| AppError::field("directory_url", "an https URL (plain http only on a loopback address)"))
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

pub async fn list(ctx: Ctx<'_>) -> AppResult<Vec<Provider>> {
    ctx.require_view("providers.list", "").await?;
    // raw: the shared SELECT counts each provider's users in a subquery, which the entity API cannot say
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
    #[derive(FromQueryResult)]
    struct Failing {
        users: i64,
        since: Option<i64>,
    }
    // raw: aggregates (COUNT, MIN) over a join with users, which the entity API cannot say
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
    // raw: the same join with users (FAILING) as the aggregates above
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

pub async fn create(ctx: Ctx<'_>, master: &MasterKey, new: &NewProvider) -> AppResult<Provider> {
    ctx.require_admin("providers.create", &new.name).await?;
    let name = validate_name(&new.name)?;
    let kind = ProviderKind::parse(&new.kind).ok_or_else(|| AppError::field("kind", format!("one of {}", KINDS.join(", "))))?;
    let issuer = issuer_for(kind, &new.issuer)?;
    let client_id = non_empty("client_id", &new.client_id)?;
    let secret = non_empty("client_secret", &new.client_secret)?;
    let scopes = new.scopes.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| default_scopes(kind));
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
    if service_account.is_some() && kind != ProviderKind::Google {
        return Err(AppError::field("service_account_json", "only for google"));
    }
    let txn = db::begin_write(ctx.db).await?;
    provider::ActiveModel {
        name: Set(name.clone()),
        kind: Set(kind.as_str().into()),
        issuer: Set(issuer),
        client_id: Set(client_id),
        client_secret: Set(master.encrypt(secret.as_bytes(), &aad(&name))?),
        scopes: Set(scopes.join(" ")),
        groups_claim: Set(groups_claim),
        allowed_domains: Set(domains.join(",")),
        directory_url: Set(directory_url),
        directory_secret: Set(match service_account {
            Some(json) => master.encrypt(json.as_bytes(), &aad(&name))?,
            None => String::new(),
        }),
        directory_admin: Set(directory_admin),
        created_at: Set(crate::server::now()),
        ..Default::default()
    }
    .insert(&txn)
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
        Some(i) => issuer_for(stored_kind(&p.kind)?, i)?,
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
    provider::Entity::update_many()
        .col_expr(provider::Column::Issuer, Expr::value(issuer))
        .col_expr(provider::Column::ClientId, Expr::value(client_id))
        .col_expr(provider::Column::ClientSecret, Expr::value(sealed))
        .col_expr(provider::Column::Scopes, Expr::value(scopes.join(" ")))
        .col_expr(provider::Column::GroupsClaim, Expr::value(groups_claim))
        .col_expr(provider::Column::AllowedDomains, Expr::value(domains.join(",")))
        .filter(provider::Column::Id.eq(id))
        .exec(&txn)
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
    grant::Entity::delete_many()
        .filter(grant::Column::SubjectKind.eq(crate::model::SubjectKind::Group.as_str()))
        .filter(grant::Column::SubjectId.in_subquery(
            sea_orm::sea_query::Query::select().column(group::Column::Id).from(group::Entity).and_where(group::Column::Source.eq(p.name.clone())).to_owned(),
        ))
        .exec(&txn)
        .await?;
    group::Entity::delete_many().filter(group::Column::Source.eq(p.name.clone())).exec(&txn).await?;
    provider::Entity::delete_many().filter(provider::Column::Id.eq(id)).exec(&txn).await?;
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

#[cfg(test)]
mod tests {
    use super::issuer_for;
    use crate::model::ProviderKind::{Azure, Google, Oidc, Okta};

    #[test]
    fn each_kind_maps_what_an_admin_types_to_its_issuer() {
        let ok = |kind, given| issuer_for(kind, given).expect(given);
        assert_eq!(ok(Google, ""), "https://accounts.google.com");
        assert_eq!(ok(Okta, "example.okta.com"), "https://example.okta.com");
        assert_eq!(ok(Okta, "https://example.okta.com/"), "https://example.okta.com");
        assert_eq!(ok(Okta, "https://example.okta.com/oauth2/default"), "https://example.okta.com/oauth2/default");
        assert_eq!(ok(Azure, "contoso.onmicrosoft.com"), "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0");
        assert_eq!(ok(Azure, "https://login.microsoftonline.us/tenant/v2.0"), "https://login.microsoftonline.us/tenant/v2.0");
        assert_eq!(ok(Oidc, " https://idp.example.com/ "), "https://idp.example.com");
        // a test provider on this machine, and only there, may speak plain http
        assert_eq!(ok(Oidc, "http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(ok(Oidc, "http://localhost:9000/idp"), "http://localhost:9000/idp");
        assert_eq!(ok(Google, "http://[::1]:9000"), "http://[::1]:9000");
        for (kind, given) in [(Oidc, "http://idp.example.com"), (Oidc, "idp.example.com"), (Okta, ""), (Okta, "example.okta.com/x"), (Azure, "")] {
            let err = issuer_for(kind, given).expect_err(given);
            assert!(err.to_string().starts_with("issuer: "), "{given}: {err}");
        }
    }
}
