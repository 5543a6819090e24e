//! The audit log: every mutation and every refusal is recorded here, in the same transaction as the change.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Actor, Ctx, Paging};
use crate::model::{AuditEvent, Page, ProxiedRequest};
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

pub async fn record(db: &impl ConnectionTrait, actor: &Actor, action: &str, target: &str, outcome: Outcome, detail: &str) -> AppResult<()> {
    record_as(db, &actor.email, &actor.source, action, target, outcome, detail).await
}

/// For events without a signed-in actor (a failed sign-in, the first start).
pub async fn record_as(db: &impl ConnectionTrait, actor: &str, source: &str, action: &str, target: &str, outcome: Outcome, detail: &str) -> AppResult<()> {
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

/// Also the query string of its list (`?subject=&cluster=&role=`, `?actor=&action=&outcome=`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
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
    let rows = query.order_by_desc(audit_event::Column::Id).offset(paging.offset()).limit(paging.limit).all(ctx.db).await?;
    let items = rows
        .into_iter()
        .map(|e| AuditEvent { id: e.id, at: e.at, actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, source: e.source, detail: e.detail })
        .collect();
    Ok(paging.wrap(items, total))
}

/// At most this many proxied requests per batch from a connector.
pub const MAX_PROXIED_BATCH: usize = 5000;

/// Records the requests a cluster's proxy forwarded (sent in batches so the proxy never waits on the
/// audit log). Only that cluster's connector may report for it.
pub async fn record_proxied(ctx: Ctx<'_>, destination: &str, events: &[ProxiedRequest]) -> AppResult<usize> {
    ctx.require_connector_for("audit.proxied", destination).await?;
    if events.len() > MAX_PROXIED_BATCH {
        return Err(crate::server::error::AppError::field("events", format!("at most {MAX_PROXIED_BATCH} per batch")));
    }
    if events.is_empty() {
        return Ok(0);
    }
    let rows = events.iter().map(|e| {
        let mut target = format!("{destination}/");
        if !e.namespace.is_empty() {
            target.push_str(&e.namespace);
            target.push('/');
        }
        target.push_str(&e.resource);
        if !e.name.is_empty() {
            target.push('/');
            target.push_str(&e.name);
        }
        let outcome = if e.status < 400 { Outcome::Success } else { Outcome::Denied };
        audit_event::ActiveModel {
            at: Set(e.at),
            actor: Set(clip(&e.user, 320)),
            action: Set(format!("kubernetes.{}", clip(&e.verb, 32))),
            target: Set(clip(&target, 1024)),
            outcome: Set(outcome.as_str().to_string()),
            source: Set(clip(&e.source, 64)),
            detail: Set(format!("status {}", e.status)),
            ..Default::default()
        }
    });
    // one multi-row INSERT per chunk, in one short write transaction: a batch of a thousand events holds
    // SQLite's write lock for milliseconds, so grant changes are not kept waiting behind it
    let rows: Vec<_> = rows.collect();
    let txn = crate::server::db::begin_write(ctx.db).await?;
    for chunk in rows.chunks(INSERT_CHUNK) {
        audit_event::Entity::insert_many(chunk.to_vec()).exec_without_returning(&txn).await?;
    }
    txn.commit().await?;
    Ok(events.len())
}

/// Rows per INSERT statement: 7 bound values each stays under SQLite's 32,766-parameter limit.
const INSERT_CHUNK: usize = 500;

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
