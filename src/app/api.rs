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

/// Declares console endpoints for a signed-in person. Each one authenticates the caller, then evaluates its
/// body with `s` (the app state) and `ctx` (the service context for the caller) in scope:
/// `"endpoint" fn name(args) -> T |s, ctx| { body }`.
macro_rules! signed_in {
    ($($(#[$doc:meta])* $endpoint:literal fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty |$s:ident, $ctx:ident| $body:block)*) => {$(
        $(#[$doc])*
        #[server(prefix = "/_fn", endpoint = $endpoint)]
        pub async fn $name($($arg: $ty),*) -> Result<$ret, ServerFnError> {
            let ($s, actor) = fn_actor().await?;
            let $ctx = Ctx::new(&$s.db, &actor);
            let _ = &$s;
            Ok($body)
        }
    )*};
}

#[cfg(feature = "ssr")]
fn with_now<T>(data: T) -> WithNow<T> {
    WithNow { now: crate::server::now(), data }
}

signed_in! {
    "my_access" fn my_access() -> WithNow<Vec<AccessEntry>> |s, ctx| {
        with_now(services::grants::access_of(&s.db, ctx.actor.user_id).await?)
    }
    "users_list" fn list_users(q: String, page: u64) -> WithNow<Page<User>> |s, ctx| {
        with_now(services::users::list(ctx, Some(&q), Paging::new(Some(page), Some(25))).await?)
    }
    /// Returns the one-time password when none was given.
    "users_create" fn create_user(email: String, name: String, password: String) -> Option<String> |s, ctx| {
        let new = services::users::NewUser { email, name, password: Some(password).filter(|p| !p.is_empty()) };
        services::users::create(ctx, new).await?.1
    }
    "users_set_disabled" fn set_user_disabled(id: i64, disabled: bool) -> () |s, ctx| {
        services::users::set_disabled(ctx, id, disabled).await?;
    }
    "users_delete" fn delete_user(id: i64) -> () |s, ctx| { services::users::delete(ctx, id).await? }
    "groups_list" fn list_groups(q: String, page: u64) -> Page<Group> |s, ctx| {
        services::groups::list(ctx, Some(&q), Paging::new(Some(page), Some(25))).await?
    }
    "groups_create" fn create_group(name: String) -> Group |s, ctx| { services::groups::create(ctx, &name).await? }
    "groups_get" fn get_group(id: i64) -> GroupDetail |s, ctx| { services::groups::get(ctx, id).await? }
    "groups_delete" fn delete_group(id: i64) -> () |s, ctx| { services::groups::delete(ctx, id).await? }
    "groups_add_member" fn add_member(group_id: i64, member: String) -> () |s, ctx| {
        services::groups::add_member(ctx, group_id, &member).await?;
    }
    "groups_remove_member" fn remove_member(group_id: i64, user_id: i64) -> () |s, ctx| {
        services::groups::remove_member(ctx, group_id, user_id).await?;
    }
    "clusters_list" fn list_clusters() -> WithNow<Vec<Destination>> |s, ctx| {
        with_now(services::destinations::list(ctx).await?)
    }
    "clusters_get" fn get_cluster(name: String, page: u64) -> WithNow<ClusterDetail> |s, ctx| {
        with_now(services::destinations::detail(ctx, &name, Paging::new(Some(page), Some(50))).await?)
    }
    /// Adds a pending cluster and returns the key its connector registers with.
    "clusters_connect" fn connect_cluster(name: String) -> CreatedAccessKey |s, ctx| {
        services::keys::create_connector_key(ctx, &name).await?
    }
    /// Grants a role on a cluster, or on one of its namespaces when `namespace` is not empty.
    "grants_add" fn add_grant(cluster: String, namespace: String, subject: String, role: String) -> () |s, ctx| {
        let resource = crate::model::Resource::new(&cluster, &namespace).to_string();
        services::grants::add(ctx, &NewGrant { subject, role, resource, expires_at: None }).await?;
    }
    "grants_remove" fn remove_grant(id: i64) -> () |s, ctx| { services::grants::remove(ctx, id).await? }
    "grants_list" fn list_grants(subject: String, cluster: String, role: String, page: u64) -> Page<Grant> |s, ctx| {
        let filter = services::grants::GrantFilter { subject: Some(subject), cluster: Some(cluster), role: Some(role), inherited: false };
        services::grants::list(ctx, &filter, Paging::new(Some(page), Some(50))).await?
    }
    "keys_list" fn list_keys() -> WithNow<Vec<AccessKey>> |s, ctx| { with_now(services::keys::list(ctx, false).await?) }
    "keys_create" fn create_key(name: String, ttl_days: i64) -> CreatedAccessKey |s, ctx| {
        let new = NewAccessKey { name, ttl_secs: Some(ttl_days.saturating_mul(86_400)), inactivity_timeout_secs: None };
        services::keys::create(ctx, &new).await?
    }
    "keys_revoke" fn revoke_key(id: i64) -> () |s, ctx| { services::keys::revoke(ctx, id).await? }
    "audit_list" fn list_audit(actor: String, action: String, outcome: String, page: u64) -> Page<AuditEvent> |s, ctx| {
        let filter = services::audit::AuditFilter { actor: Some(actor), action: Some(action), outcome: Some(outcome) };
        services::audit::list(ctx, &filter, Paging::new(Some(page), Some(50))).await?
    }
    /// Suggestions for a typeahead; for roles, `scope` names the cluster.
    "typeahead" fn typeahead(source: TypeaheadSource, scope: String, q: String) -> Vec<TypeaheadOption> |s, ctx| {
        services::search::typeahead(ctx, source, &scope, &q).await?
    }
    "kubeconfig_options" fn kubeconfig_choices() -> KubeconfigOptions |s, ctx| { services::kubeconfig::options(ctx).await? }
    /// The providers and the redirect URI to register at them.
    "providers_list" fn list_providers() -> (Vec<Provider>, String) |s, ctx| {
        (services::providers::list(ctx).await?, s.oidc_redirect_url())
    }
    "providers_create" fn create_provider(
        name: String, kind: String, issuer: String, client_id: String, client_secret: String, allowed_domains: String,
        groups_claim: String
    ) -> Provider |s, ctx| {
        let new = NewProvider {
            name,
            kind,
            issuer,
            client_id,
            client_secret,
            scopes: None,
            groups_claim: Some(groups_claim),
            allowed_domains: parse_domain_list(&allowed_domains),
            directory_url: None,
            service_account_json: None,
            directory_admin: None,
        };
        services::providers::create(ctx, &s.master, &new).await?
    }
    /// Changes a provider; an empty client secret keeps the stored one.
    "providers_update" fn update_provider(
        id: i64, issuer: String, client_id: String, client_secret: String, scopes: String, groups_claim: String,
        allowed_domains: String
    ) -> Provider |s, ctx| {
        let words = |s: &str| s.split([',', ' ']).filter(|w| !w.is_empty()).map(String::from).collect::<Vec<_>>();
        let change = ProviderUpdate {
            issuer: Some(issuer),
            client_id: Some(client_id),
            client_secret: Some(client_secret),
            scopes: Some(words(&scopes)),
            groups_claim: Some(groups_claim),
            allowed_domains: Some(parse_domain_list(&allowed_domains)),
        };
        services::providers::update(ctx, &s.master, id, &change).await?
    }
    "providers_delete" fn delete_provider(id: i64) -> () |s, ctx| { services::providers::delete(ctx, id).await? }
    "providers_test" fn test_provider(id: i64) -> ProviderCheck |s, ctx| {
        services::providers::check(ctx, &s.master, id, &s.oidc_http).await?
    }
}

/// The identity providers people may sign in with (names only; no sign-in needed).
#[server(prefix = "/_fn", endpoint = "sign_in_providers")]
pub async fn sign_in_providers() -> Result<Vec<String>, ServerFnError> {
    Ok(services::providers::names(&server_fn::state()?.db).await?)
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
