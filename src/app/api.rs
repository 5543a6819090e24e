//! The console's server functions. Each one authenticates and calls a service in `crate::server`;
//! none holds a rule of its own. They live under `/_fn/`, apart from the REST API under `/api/`.

use leptos::prelude::*;

use crate::model::*;

#[cfg(feature = "ssr")]
use crate::server::{
    auth::actor::server_fn::{self, actor as fn_actor, actor_pending_password as fn_actor_pending_password},
    services::{self, Ctx, Paging},
};

/// Who is signed in, or None.
#[server(prefix = "/_fn", endpoint = "me")]
pub async fn get_me() -> Result<Option<Me>, ServerFnError> {
    let Some((_, a)) = fn_actor_pending_password().await? else { return Ok(None) };
    Ok(Some(Me {
        id: a.user_id,
        email: a.email.clone(),
        name: a.name.clone(),
        is_admin: a.is_admin(),
        can_view: a.can_view(),
        must_change_password: a.must_change_password,
    }))
}

#[server(prefix = "/_fn", endpoint = "my_access")]
pub async fn my_access() -> Result<WithNow<Vec<AccessEntry>>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(WithNow { now: crate::server::now(), data: services::grants::access_of(&s.db, a.user_id).await? })
}

#[server(prefix = "/_fn", endpoint = "users_list")]
pub async fn list_users(q: String, page: u64) -> Result<WithNow<Page<User>>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let data = services::users::list(Ctx::new(&s.db, &a), Some(&q), Paging::new(Some(page), Some(25))).await?;
    Ok(WithNow { now: crate::server::now(), data })
}

/// Returns the one-time password when none was given.
#[server(prefix = "/_fn", endpoint = "users_create")]
pub async fn create_user(email: String, name: String, password: String) -> Result<Option<String>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let new = services::users::NewUser { email, name, password: Some(password).filter(|p| !p.is_empty()) };
    Ok(services::users::create(Ctx::new(&s.db, &a), new).await?.1)
}

#[server(prefix = "/_fn", endpoint = "users_set_disabled")]
pub async fn set_user_disabled(id: i64, disabled: bool) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    services::users::set_disabled(Ctx::new(&s.db, &a), id, disabled).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "users_delete")]
pub async fn delete_user(id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::users::delete(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "groups_list")]
pub async fn list_groups(q: String, page: u64) -> Result<Page<Group>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::groups::list(Ctx::new(&s.db, &a), Some(&q), Paging::new(Some(page), Some(25))).await?)
}

#[server(prefix = "/_fn", endpoint = "groups_create")]
pub async fn create_group(name: String) -> Result<Group, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::groups::create(Ctx::new(&s.db, &a), &name).await?)
}

#[server(prefix = "/_fn", endpoint = "groups_get")]
pub async fn get_group(id: i64) -> Result<GroupDetail, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::groups::get(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "groups_delete")]
pub async fn delete_group(id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::groups::delete(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "groups_add_member")]
pub async fn add_member(group_id: i64, member: String) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    services::groups::add_member(Ctx::new(&s.db, &a), group_id, &member).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "groups_remove_member")]
pub async fn remove_member(group_id: i64, user_id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    services::groups::remove_member(Ctx::new(&s.db, &a), group_id, user_id).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "clusters_list")]
pub async fn list_clusters() -> Result<WithNow<Vec<Destination>>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(WithNow { now: crate::server::now(), data: services::destinations::list(Ctx::new(&s.db, &a)).await? })
}

#[server(prefix = "/_fn", endpoint = "clusters_get")]
pub async fn get_cluster(name: String, page: u64) -> Result<WithNow<ClusterDetail>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let data = services::destinations::detail(Ctx::new(&s.db, &a), &name, Paging::new(Some(page), Some(50))).await?;
    Ok(WithNow { now: crate::server::now(), data })
}

/// Adds a pending cluster and returns the key its connector registers with.
#[server(prefix = "/_fn", endpoint = "clusters_connect")]
pub async fn connect_cluster(name: String) -> Result<CreatedAccessKey, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::keys::create_connector_key(Ctx::new(&s.db, &a), &name).await?)
}

/// Grants a role on a cluster, or on one of its namespaces when `namespace` is not empty.
#[server(prefix = "/_fn", endpoint = "grants_add")]
pub async fn add_grant(cluster: String, namespace: String, subject: String, role: String) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    let resource = crate::model::Resource::new(&cluster, &namespace).to_string();
    services::grants::add(Ctx::new(&s.db, &a), &NewGrant { subject, role, resource, expires_at: None }).await?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "grants_remove")]
pub async fn remove_grant(id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::grants::remove(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "grants_list")]
pub async fn list_grants(subject: String, cluster: String, role: String, page: u64) -> Result<Page<Grant>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let filter = services::grants::GrantFilter { subject: Some(subject), cluster: Some(cluster), role: Some(role) };
    Ok(services::grants::list(Ctx::new(&s.db, &a), &filter, Paging::new(Some(page), Some(50))).await?)
}

#[server(prefix = "/_fn", endpoint = "keys_list")]
pub async fn list_keys() -> Result<WithNow<Vec<AccessKey>>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(WithNow { now: crate::server::now(), data: services::keys::list(Ctx::new(&s.db, &a), false).await? })
}

#[server(prefix = "/_fn", endpoint = "keys_create")]
pub async fn create_key(name: String, ttl_days: i64) -> Result<CreatedAccessKey, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let new = NewAccessKey { name, ttl_secs: Some(ttl_days.saturating_mul(86_400)), inactivity_timeout_secs: None };
    Ok(services::keys::create(Ctx::new(&s.db, &a), &new).await?)
}

#[server(prefix = "/_fn", endpoint = "keys_revoke")]
pub async fn revoke_key(id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::keys::revoke(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "audit_list")]
pub async fn list_audit(actor: String, action: String, outcome: String, page: u64) -> Result<Page<AuditEvent>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let filter = services::audit::AuditFilter { actor: Some(actor), action: Some(action), outcome: Some(outcome) };
    Ok(services::audit::list(Ctx::new(&s.db, &a), &filter, Paging::new(Some(page), Some(50))).await?)
}

/// Suggestions for a typeahead; for roles, `scope` names the cluster.
#[server(prefix = "/_fn", endpoint = "typeahead")]
pub async fn typeahead(source: TypeaheadSource, scope: String, q: String) -> Result<Vec<TypeaheadOption>, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::search::typeahead(Ctx::new(&s.db, &a), source, &scope, &q).await?)
}

#[server(prefix = "/_fn", endpoint = "kubeconfig_options")]
pub async fn kubeconfig_choices() -> Result<KubeconfigOptions, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::kubeconfig::options(Ctx::new(&s.db, &a)).await?)
}

/// The identity providers people may sign in with (names only; no sign-in needed).
#[server(prefix = "/_fn", endpoint = "sign_in_providers")]
pub async fn sign_in_providers() -> Result<Vec<String>, ServerFnError> {
    Ok(services::providers::names(&server_fn::state()?.db).await?)
}

/// The providers and the redirect URI to register at them.
#[server(prefix = "/_fn", endpoint = "providers_list")]
pub async fn list_providers() -> Result<(Vec<Provider>, String), ServerFnError> {
    let (s, a) = fn_actor().await?;
    let list = services::providers::list(Ctx::new(&s.db, &a)).await?;
    Ok((list, s.oidc_redirect_url()))
}

#[server(prefix = "/_fn", endpoint = "providers_create")]
pub async fn create_provider(
    name: String,
    kind: String,
    issuer: String,
    client_id: String,
    client_secret: String,
    allowed_domains: String,
    groups_claim: String,
) -> Result<Provider, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let new = NewProvider {
        name,
        kind,
        issuer,
        client_id,
        client_secret,
        scopes: None,
        groups_claim: Some(groups_claim),
        allowed_domains: crate::model::parse_domain_list(&allowed_domains),
        directory_url: None,
        service_account_json: None,
        directory_admin: None,
    };
    Ok(services::providers::create(Ctx::new(&s.db, &a), &s.master, &new).await?)
}

/// Changes a provider; an empty client secret keeps the stored one.
#[server(prefix = "/_fn", endpoint = "providers_update")]
pub async fn update_provider(
    id: i64,
    issuer: String,
    client_id: String,
    client_secret: String,
    scopes: String,
    groups_claim: String,
    allowed_domains: String,
) -> Result<Provider, ServerFnError> {
    let (s, a) = fn_actor().await?;
    let words = |s: &str| s.split([',', ' ']).filter(|w| !w.is_empty()).map(String::from).collect::<Vec<_>>();
    let change = ProviderUpdate {
        issuer: Some(issuer),
        client_id: Some(client_id),
        client_secret: Some(client_secret),
        scopes: Some(words(&scopes)),
        groups_claim: Some(groups_claim),
        allowed_domains: Some(crate::model::parse_domain_list(&allowed_domains)),
    };
    Ok(services::providers::update(Ctx::new(&s.db, &a), &s.master, id, &change).await?)
}

#[server(prefix = "/_fn", endpoint = "providers_delete")]
pub async fn delete_provider(id: i64) -> Result<(), ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::providers::delete(Ctx::new(&s.db, &a), id).await?)
}

#[server(prefix = "/_fn", endpoint = "providers_test")]
pub async fn test_provider(id: i64) -> Result<ProviderCheck, ServerFnError> {
    let (s, a) = fn_actor().await?;
    Ok(services::providers::check(Ctx::new(&s.db, &a), &s.master, id, &s.oidc_http).await?)
}

/// The login a device code was made for, for the approval page; only for a code the person typed in
/// this browser (`None` otherwise: the page asks for the code).
#[server(prefix = "/_fn", endpoint = "device_pending")]
pub async fn device_pending(code: String) -> Result<Option<crate::model::DevicePending>, ServerFnError> {
    let (s, _) = fn_actor().await?;
    let typed = match server_fn::session() {
        Some(session) => crate::server::auth::session_store::device_code_typed(&session, &code).await,
        None => false,
    };
    if !typed {
        return Ok(None);
    }
    Ok(Some(services::device_login::pending(&s.db, &code).await?))
}
