//! The audit log: every mutation and every refusal is recorded here, in the same transaction as the change.

use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, ColumnTrait, PaginatorTrait};

use super::{Actor, Ctx, Paging};
use crate::model::{AuditEvent, Page};
use crate::server::db::entities::audit_event;
use crate::server::error::AppResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
        }
    }
}

pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    target: &str,
    outcome: Outcome,
    detail: &str,
) -> AppResult<()> {
    record_as(db, &actor.email, &actor.source, action, target, outcome, detail).await
}

/// For events without a signed-in actor (a failed sign-in, the first start).
pub async fn record_as(
    db: &impl ConnectionTrait,
    actor: &str,
    source: &str,
    action: &str,
    target: &str,
    outcome: Outcome,
    detail: &str,
) -> AppResult<()> {
    audit_event::ActiveModel {
        at: Set(crate::server::now()),
        actor: Set(actor.to_string()),
        action: Set(action.to_string()),
        target: Set(target.to_string()),
        outcome: Set(outcome.as_str().to_string()),
        source: Set(source.to_string()),
        detail: Set(detail.to_string()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// matches actions starting with this, e.g. `grants.` or `users.create`
    pub action: Option<String>,
    pub outcome: Option<String>,
}

/// Newest first.
pub async fn list(ctx: Ctx<'_>, filter: &AuditFilter, paging: Paging) -> AppResult<Page<AuditEvent>> {
    ctx.require_view("audit.list", "audit").await?;
    let mut query = audit_event::Entity::find();
    if let Some(actor) = filter.actor.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::Actor.eq(actor.to_lowercase()));
    }
    if let Some(action) = filter.action.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::Action.starts_with(action));
    }
    if let Some(outcome) = filter.outcome.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        query = query.filter(audit_event::Column::Outcome.eq(outcome));
    }
    let total = query.clone().count(ctx.db).await?;
    let rows = query
        .order_by_desc(audit_event::Column::Id)
        .offset(paging.offset())
        .limit(paging.limit)
        .all(ctx.db)
        .await?;
    let items = rows
        .into_iter()
        .map(|e| AuditEvent {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            source: e.source,
            detail: e.detail,
        })
        .collect();
    Ok(paging.wrap(items, total))
}
