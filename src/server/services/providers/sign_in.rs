//! Signing in through an identity provider: the usable email, the account it signs in to (never taking
//! over another subject's), and the user's groups brought up to date.

use super::*;
use sea_orm::{ActiveModelTrait, Set, sea_query::Expr};

/// The email a provider's sign-in names, normalised as local emails are (`users::normalize_email`):
/// present, with an `@`, outside Kubernetes' `system:` names, not one the IdP says is unverified, and in
/// the allowed domains. Clusters see a user as their email, so a refusal here is what keeps an IdP
/// user from becoming, say, `system:kube-controller-manager` there.
fn usable_email(provider: &ProviderConfig, who: &Identity) -> AppResult<String> {
    if who.email.trim().is_empty() {
        return Err(AppError::Unauthorized("the identity provider did not share an email address: ask an admin to add the `email` scope".into()));
    }
    let email = crate::server::services::users::normalize_email(&who.email)
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
    let Some(existing) = crate::server::services::users::find_by_email(txn, email).await? else {
        let name = if who.name.trim().is_empty() { email.to_string() } else { who.name.trim().to_string() };
        let user = crate::server::services::users::insert(txn, crate::server::services::users::KIND_USER, email, &name, None, false).await?;
        user::Entity::update_many().col_expr(user::Column::Provider, Expr::value(provider.name.clone())).filter(user::Column::Id.eq(user.id)).exec(txn).await?;
        return Ok(user.id);
    };
    if existing.kind != crate::server::services::users::KIND_USER {
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
    let who = if provider.kind == ProviderKind::Azure || provider.google.is_some() {
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
        user::Entity::update_many()
            .col_expr(user::Column::Name, Expr::value(name))
            .col_expr(user::Column::NameLc, Expr::value(name.to_lowercase()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
    }
    let sealed = match &who.refresh_token {
        Some(t) => master.encrypt(t.as_bytes(), &aad(&provider.name))?,
        None => String::new(),
    };
    provider_user::Entity::delete_many().filter(provider_user::Column::UserId.eq(user_id)).exec(&txn).await?;
    provider_user::ActiveModel {
        user_id: Set(user_id),
        provider_id: Set(provider.id),
        subject: Set(who.subject.clone()),
        refresh_token: Set(sealed),
        verified_at: Set(Some(crate::server::now())),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    crate::server::services::groups::sync_provider_memberships(&txn, &provider.name, user_id, &who.groups).await?;
    let actor = crate::server::auth::actor_for_user(&txn, user_id, &provider.name).await?;
    audit::record(&txn, &actor, "auth.provider.login", &provider.name, audit::Outcome::Success, &format!("groups: {}", describe_groups(&who.groups))).await?;
    txn.commit().await?;
    Ok(user_id)
}

/// Groups for an audit event: the name, and the key where it differs.
pub(super) fn describe_groups(groups: &[ProviderGroup]) -> String {
    groups.iter().map(|g| if g.id == g.name { g.name.clone() } else { format!("{} ({})", g.name, g.id) }).collect::<Vec<_>>().join(", ")
}
