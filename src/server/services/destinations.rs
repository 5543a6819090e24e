//! Destinations (clusters): registered and kept alive by their connector, listed, removed.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{Ctx, Paging, audit, grants, is_dns_label, is_role_name};
use crate::model::{BUILTIN_KUBERNETES_ROLES, ClusterDetail, ClusterStatus, Destination, DestinationRegistration, INFRA_RESOURCE};
use crate::server::db::entities::{destination, grant};
use crate::server::error::{AppError, AppResult};

/// A cluster whose connector was seen within this window is connected.
pub const CONNECTED_WINDOW_MS: i64 = 60_000;

pub fn status_of(last_seen_at: Option<i64>, now: i64) -> ClusterStatus {
    match last_seen_at {
        None => ClusterStatus::Pending,
        Some(t) if now - t <= CONNECTED_WINDOW_MS => ClusterStatus::Connected,
        Some(_) => ClusterStatus::Disconnected,
    }
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn to_model(d: destination::Model) -> Destination {
    Destination {
        id: d.id,
        status: status_of(d.last_seen_at, crate::server::now()),
        namespaces: json_list(&d.namespaces),
        roles: json_list(&d.roles),
        name: d.name,
        unique_id: d.unique_id,
        endpoint: d.endpoint,
        ca: d.ca,
        kubernetes_version: d.kubernetes_version,
        connector_version: d.connector_version,
        last_seen_at: d.last_seen_at,
        created_at: d.created_at,
        problems: json_list(&d.problems),
    }
}

/// The roles a grant on this cluster may name: what its connector reported, or Kubernetes' built-in
/// roles until it has reported any.
pub fn offered_roles(d: &destination::Model) -> Vec<String> {
    let reported = json_list(&d.roles);
    if reported.is_empty() { BUILTIN_KUBERNETES_ROLES.iter().map(|r| r.to_string()).collect() } else { reported }
}

pub fn validate_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name == INFRA_RESOURCE {
        return Err(AppError::field("name", "`infra` is reserved for the product itself"));
    }
    if !is_dns_label(name) {
        return Err(AppError::field("name", "must be lowercase letters, digits and '-', at most 63 characters, with no dots"));
    }
    Ok(name.to_string())
}

pub async fn find_by_name(db: &impl ConnectionTrait, name: &str) -> AppResult<Option<destination::Model>> {
    Ok(destination::Entity::find().filter(destination::Column::Name.eq(name)).one(db).await?)
}

fn validate_registration(reg: &DestinationRegistration) -> AppResult<()> {
    validate_name(&reg.name)?;
    if reg.unique_id.trim().is_empty() || reg.unique_id.len() > 128 {
        return Err(AppError::field("unique_id", "is required (the hash of the cluster CA)"));
    }
    // kubectl sends users' tokens to this URL: never in the clear
    if !reg.endpoint.starts_with("https://") || reg.endpoint.len() <= "https://".len() || reg.endpoint.len() > 2048 {
        return Err(AppError::field("endpoint", "must be the proxy's https:// URL"));
    }
    if reg.ca.len() > 64 * 1024 {
        return Err(AppError::field("ca", "is too large"));
    }
    if reg.kubernetes_version.trim().is_empty() || reg.kubernetes_version.len() > 64 {
        return Err(AppError::field("kubernetes_version", "is required"));
    }
    if let Some(bad) = reg.namespaces.iter().find(|n| !is_dns_label(n)) {
        return Err(AppError::field("namespaces", format!("{bad:?} is not a namespace name")));
    }
    if let Some(bad) = reg.roles.iter().find(|r| !is_role_name(r)) {
        return Err(AppError::field("roles", format!("{bad:?} is not a role name")));
    }
    if reg.problems.len() > 1000 || reg.problems.iter().any(|p| p.len() > 1000) {
        return Err(AppError::field("problems", "too many or too long"));
    }
    Ok(())
}

fn sorted_json(list: &[String]) -> String {
    let mut list = list.to_vec();
    list.sort();
    list.dedup();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// Registers a cluster or refreshes it: the connector calls this at start and as its heartbeat.
/// Heartbeats are not audited; a first registration and any change of what the cluster reports are.
pub async fn register(ctx: Ctx<'_>, reg: DestinationRegistration) -> AppResult<Destination> {
    ctx.require_connector_for("destinations.register", &reg.name).await?;
    validate_registration(&reg)?;
    let now = crate::server::now();
    let namespaces = sorted_json(&reg.namespaces);
    let roles = sorted_json(&reg.roles);
    let problems = sorted_json(&reg.problems);
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let model = match find_by_name(&txn, reg.name.trim()).await? {
        Some(existing) => {
            if !existing.unique_id.is_empty() && existing.unique_id != reg.unique_id {
                return Err(AppError::Conflict(format!("the name {} is already registered by another cluster", existing.name)));
            }
            let changed = existing.unique_id != reg.unique_id
                || existing.endpoint != reg.endpoint
                || existing.ca != reg.ca
                || existing.namespaces != namespaces
                || existing.roles != roles
                || existing.kubernetes_version != reg.kubernetes_version
                || existing.connector_version != reg.connector_version;
            let name = existing.name.clone();
            let mut active: destination::ActiveModel = existing.into();
            active.unique_id = Set(reg.unique_id.clone());
            active.endpoint = Set(reg.endpoint.clone());
            active.ca = Set(reg.ca.clone());
            active.kubernetes_version = Set(reg.kubernetes_version.clone());
            active.connector_version = Set(reg.connector_version.clone());
            active.namespaces = Set(namespaces);
            active.roles = Set(roles);
            active.problems = Set(problems);
            active.last_seen_at = Set(Some(now));
            let model = active.update(&txn).await?;
            if changed {
                audit::record(&txn, ctx.actor, "destinations.update", &name, audit::Outcome::Success, "").await?;
            }
            model
        }
        None => {
            let model = destination::ActiveModel {
                name: Set(reg.name.trim().to_string()),
                unique_id: Set(reg.unique_id.clone()),
                endpoint: Set(reg.endpoint.clone()),
                ca: Set(reg.ca.clone()),
                kubernetes_version: Set(reg.kubernetes_version.clone()),
                connector_version: Set(reg.connector_version.clone()),
                namespaces: Set(namespaces),
                roles: Set(roles),
                problems: Set(problems),
                last_seen_at: Set(Some(now)),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(AppError::or_taken("name", "a cluster with this name already exists"))?;
            audit::record(&txn, ctx.actor, "destinations.register", &model.name, audit::Outcome::Success, "").await?;
            model
        }
    };
    txn.commit().await?;
    Ok(to_model(model))
}

/// An admin adds a cluster before its connector runs: it shows as pending until the connector registers.
pub async fn create_pending(ctx: Ctx<'_>, name: &str) -> AppResult<Destination> {
    ctx.require_admin("destinations.create", name).await?;
    let name = validate_name(name)?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let model = destination::ActiveModel {
        name: Set(name.clone()),
        unique_id: Set(String::new()),
        endpoint: Set(String::new()),
        ca: Set(String::new()),
        kubernetes_version: Set(String::new()),
        connector_version: Set(String::new()),
        namespaces: Set("[]".into()),
        roles: Set("[]".into()),
        problems: Set("[]".into()),
        last_seen_at: Set(None),
        created_at: Set(crate::server::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(AppError::or_taken("name", "a cluster with this name already exists"))?;
    audit::record(&txn, ctx.actor, "destinations.create", &name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(to_model(model))
}

/// Every cluster for admins and viewers; for anyone else, the clusters their grants cover.
pub async fn list(ctx: Ctx<'_>) -> AppResult<Vec<Destination>> {
    let rows = if ctx.actor.can_view() {
        destination::Entity::find().order_by_asc(destination::Column::Name).all(ctx.db).await?
    } else {
        let reachable = grants::reachable_destinations(ctx.db, ctx.actor.user_id).await?;
        destination::Entity::find().filter(destination::Column::Name.is_in(reachable)).order_by_asc(destination::Column::Name).all(ctx.db).await?
    };
    Ok(rows.into_iter().map(to_model).collect())
}

pub async fn get(ctx: Ctx<'_>, name: &str) -> AppResult<Destination> {
    let found = find_by_name(ctx.db, name).await?.ok_or_else(|| AppError::NotFound(format!("cluster {name}")))?;
    if !ctx.actor.can_view() {
        let reachable = grants::reachable_destinations(ctx.db, ctx.actor.user_id).await?;
        if !reachable.contains(&found.name) {
            // the same answer as for a cluster that does not exist: no probing for names
            return Err(AppError::NotFound(format!("cluster {name}")));
        }
    }
    Ok(to_model(found))
}

/// A cluster's page: the cluster, and one page of its grants for those who may read every grant (admins
/// and viewers). Anyone else who can reach the cluster sees it with an empty grant list: the grants
/// name other people.
pub async fn detail(ctx: Ctx<'_>, name: &str, paging: Paging) -> AppResult<ClusterDetail> {
    let destination = get(ctx, name).await?;
    let grants = if ctx.actor.can_view() {
        let filter = grants::GrantFilter { cluster: Some(destination.name.clone()), ..Default::default() };
        grants::list(ctx, &filter, paging).await?
    } else {
        paging.wrap(Vec::new(), 0)
    };
    Ok(ClusterDetail { destination, grants })
}

/// Removes a cluster and every grant on it.
pub async fn remove(ctx: Ctx<'_>, name: &str) -> AppResult<()> {
    ctx.require_admin("destinations.remove", name).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let existing = find_by_name(&txn, name).await?.ok_or_else(|| AppError::NotFound(format!("cluster {name}")))?;
    grant::Entity::delete_many().filter(grant::Column::Destination.eq(existing.name.clone())).exec(&txn).await?;
    destination::Entity::delete_by_id(existing.id).exec(&txn).await?;
    audit::record(&txn, ctx.actor, "destinations.remove", &existing.name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(())
}
