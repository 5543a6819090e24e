//! Grants: subject x role x resource (`infra`, `cluster` or `cluster.namespace`), with optional expiry.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Set};

use super::{Ctx, Paging, audit, destinations, ensure_an_admin_remains, groups, users};
use crate::model::{AccessEntry, Grant, INFRA_RESOURCE, INFRA_ROLES, NewGrant, Page, Resource, Subject, SubjectKind};
use crate::server::db::{self, entities::grant};
use crate::server::error::{AppError, AppResult};

/// A resource from a request, or the request's field error.
pub fn parse_resource(text: &str) -> AppResult<Resource> {
    Resource::parse(text).map_err(|e| AppError::field("resource", e.to_string()))
}

/// Finds a user or group from `user:<email>`, `group:<name>`, `group:<source>:<key>` (see
/// `groups::resolve`), or a bare email (user) or name (group).
pub async fn resolve_subject(db: &impl ConnectionTrait, reference: &str) -> AppResult<Subject> {
    let reference = reference.trim();
    let prefixed = reference.split_once(':').and_then(|(kind, rest)| Some((SubjectKind::parse(kind)?, rest.trim())));
    let (kind, name) = match prefixed {
        Some(found) => found,
        None if reference.contains('@') => (SubjectKind::User, reference),
        None => (SubjectKind::Group, reference),
    };
    if name.is_empty() {
        return Err(AppError::field("subject", "choose a user or a group"));
    }
    match kind {
        SubjectKind::User => match users::find_by_email(db, name).await? {
            Some(u) if u.kind == users::KIND_USER || u.kind == users::KIND_MACHINE => Ok(Subject { kind, id: u.id, name: u.email, detail: u.name }),
            _ => Err(AppError::field("subject", format!("no user {name}"))),
        },
        SubjectKind::Group => {
            let g = groups::resolve(db, name).await?;
            let detail = if g.source == groups::SOURCE_LOCAL { String::new() } else { g.source };
            Ok(Subject { kind, id: g.id, name: g.name, detail })
        }
    }
}

/// Checks that the role fits the resource: a product role on `infra`, or a role the cluster offers.
async fn validate_role(db: &impl ConnectionTrait, role: &str, resource: &Resource) -> AppResult<()> {
    let role = role.trim();
    if role.is_empty() {
        return Err(AppError::field("role", "is required"));
    }
    if resource.destination == INFRA_RESOURCE {
        if !INFRA_ROLES.contains(&role) {
            return Err(AppError::field("role", format!("{role:?} is not a role of infra ({})", INFRA_ROLES.join(", "))));
        }
        return Ok(());
    }
    let Some(dest) = destinations::find_by_name(db, &resource.destination).await? else {
        return Err(AppError::field("resource", format!("no cluster {}", resource.destination)));
    };
    let offered = destinations::offered_roles(&dest);
    if !offered.iter().any(|r| r == role) {
        return Err(AppError::field("role", format!("{role:?} is not a role of {} ({})", dest.name, offered.join(", "))));
    }
    Ok(())
}

/// Adds a grant. Adding one that exists already returns it unchanged (`false`: nothing was created).
pub async fn add(ctx: Ctx<'_>, new: &NewGrant) -> AppResult<(Grant, bool)> {
    let resource_text = new.resource.trim();
    ctx.require_admin("grants.add", resource_text).await?;
    let subject = resolve_subject(ctx.db, &new.subject).await?;
    let resource = parse_resource(resource_text)?;
    let role = new.role.trim().to_string();
    validate_role(ctx.db, &role, &resource).await?;
    let now = crate::server::now();
    if let Some(expires_at) = new.expires_at
        && expires_at <= now
    {
        return Err(AppError::field("expires_at", "must be in the future"));
    }
    let existing = find(ctx.db, &subject, &role, &resource).await?;
    if let Some(existing) = existing {
        return Ok((get_by_id(ctx.db, existing.id).await?, false));
    }
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let created = grant::ActiveModel {
        subject_kind: Set(subject.kind.as_str().to_string()),
        subject_id: Set(subject.id),
        role: Set(role.clone()),
        destination: Set(resource.destination.clone()),
        namespace: Set(resource.namespace.clone()),
        created_by: Set(Some(ctx.actor.user_id)),
        created_at: Set(now),
        expires_at: Set(new.expires_at),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let created = match created {
        Ok(c) => c,
        // a concurrent request created the same grant first: that is the idempotent outcome
        Err(e) if crate::server::db::unique_violation(&e) => {
            drop(txn);
            let existing = find(ctx.db, &subject, &role, &resource).await?.ok_or(AppError::Database(e))?;
            return Ok((get_by_id(ctx.db, existing.id).await?, false));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &txn,
        ctx.actor,
        "grants.add",
        &Resource::render(&resource.destination, &resource.namespace),
        audit::Outcome::Success,
        &format!("{} {role}", subject.reference()),
    )
    .await?;
    txn.commit().await?;
    Ok((get_by_id(ctx.db, created.id).await?, true))
}

async fn find(db: &impl ConnectionTrait, subject: &Subject, role: &str, resource: &Resource) -> AppResult<Option<grant::Model>> {
    Ok(grant::Entity::find()
        .filter(grant::Column::SubjectKind.eq(subject.kind.as_str()))
        .filter(grant::Column::SubjectId.eq(subject.id))
        .filter(grant::Column::Role.eq(role))
        .filter(grant::Column::Destination.eq(resource.destination.as_str()))
        .filter(grant::Column::Namespace.eq(resource.namespace.as_str()))
        .one(db)
        .await?)
}

pub async fn remove(ctx: Ctx<'_>, id: i64) -> AppResult<()> {
    ctx.require_admin("grants.remove", &id.to_string()).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let existing = get_by_id(&txn, id).await?;
    grant::Entity::delete_by_id(id).exec(&txn).await?;
    ensure_an_admin_remains(&txn).await?;
    audit::record(
        &txn,
        ctx.actor,
        "grants.remove",
        &existing.resource,
        audit::Outcome::Success,
        &format!("{} {}", existing.subject.reference(), existing.role),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A grant with its subject's and creator's names: joins the entities do not state, read as [`GrantRow`].
const GRANT_SELECT: &str = "SELECT g.id AS id, g.subject_kind AS subject_kind, g.subject_id AS subject_id, \
       COALESCE(u.email, gr.name, '') AS subject_name, \
       COALESCE(u.name, CASE WHEN gr.source <> 'local' THEN gr.source END, '') AS subject_detail, \
       g.role AS role, g.destination AS destination, g.namespace AS namespace, cb.email AS created_by, \
       g.created_at AS created_at, g.expires_at AS expires_at \
     FROM grants g \
     LEFT JOIN users u ON g.subject_kind = 'user' AND u.id = g.subject_id \
     LEFT JOIN groups gr ON g.subject_kind = 'group' AND gr.id = g.subject_id \
     LEFT JOIN users cb ON cb.id = g.created_by";

#[derive(FromQueryResult)]
struct GrantRow {
    id: i64,
    subject_kind: String,
    subject_id: i64,
    subject_name: String,
    subject_detail: String,
    role: String,
    destination: String,
    namespace: String,
    created_by: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
}

fn row_to_grant(r: &sea_orm::QueryResult) -> Result<Grant, sea_orm::DbErr> {
    let r = GrantRow::from_query_result(r, "")?;
    Ok(Grant {
        id: r.id,
        subject: Subject {
            kind: SubjectKind::parse(&r.subject_kind).unwrap_or(SubjectKind::User),
            id: r.subject_id,
            name: r.subject_name,
            detail: r.subject_detail,
        },
        role: r.role,
        resource: Resource::render(&r.destination, &r.namespace),
        created_by: r.created_by,
        created_at: r.created_at,
        expires_at: r.expires_at,
    })
}

async fn get_by_id(db: &impl ConnectionTrait, id: i64) -> AppResult<Grant> {
    // raw: the shared GRANT_SELECT joins the subject's name from users or groups
    let row = db::query_one(db, &format!("{GRANT_SELECT} WHERE g.id = ?"), [id.into()]).await?.ok_or_else(|| AppError::NotFound(format!("grant {id}")))?;
    Ok(row_to_grant(&row)?)
}

/// Also the query string of its list (`?subject=&cluster=&role=`, `?actor=&action=&outcome=`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct GrantFilter {
    /// `user:<email>`, `group:<name>`, or a bare email or group name
    pub subject: Option<String>,
    /// a cluster name (all its namespaces) or `infra`
    pub cluster: Option<String>,
    pub role: Option<String>,
    /// with a user as `subject`: also the grants of the user's groups
    #[serde(default)]
    pub inherited: bool,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// All grants, newest first, filtered by subject, cluster and role.
pub async fn list(ctx: Ctx<'_>, filter: &GrantFilter, paging: Paging) -> AppResult<Page<Grant>> {
    ctx.require_view("grants.list", "grants").await?;
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<sea_orm::Value> = Vec::new();
    if let Some(subject) = non_empty(&filter.subject) {
        let Ok(subject) = resolve_subject(ctx.db, subject).await else {
            return Ok(paging.wrap(Vec::new(), 0));
        };
        if filter.inherited && subject.kind == SubjectKind::User {
            clauses.push(
                "((g.subject_kind = 'user' AND g.subject_id = ?) \
                  OR (g.subject_kind = 'group' AND g.subject_id IN (SELECT group_id FROM group_members WHERE user_id = ?)))",
            );
            values.push(subject.id.into());
        } else {
            clauses.push("g.subject_kind = ? AND g.subject_id = ?");
            values.push(subject.kind.as_str().into());
        }
        values.push(subject.id.into());
    }
    if let Some(cluster) = non_empty(&filter.cluster) {
        clauses.push("g.destination = ?");
        values.push(cluster.to_string().into());
    }
    if let Some(role) = non_empty(&filter.role) {
        clauses.push("g.role = ?");
        values.push(role.to_string().into());
    }
    let filter_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    // raw: the same WHERE text as the page query below, so that the count and the page agree
    let total = db::count(ctx.db, &format!("SELECT COUNT(*) FROM grants g {filter_sql}"), values.clone()).await?;
    values.push((paging.limit as i64).into());
    values.push((paging.offset() as i64).into());
    // raw: the shared GRANT_SELECT (subject names joined) with the filter above
    let rows = db::query_all(ctx.db, &format!("{GRANT_SELECT} {filter_sql} ORDER BY g.id DESC LIMIT ? OFFSET ?"), values).await?;
    let items = rows.iter().map(row_to_grant).collect::<Result<Vec<_>, _>>()?;
    Ok(paging.wrap(items, total))
}

/// What one user can reach now: their own grants and their groups' grants, not expired.
pub async fn access_of(db: &impl ConnectionTrait, user_id: i64) -> AppResult<Vec<AccessEntry>> {
    // raw: a UNION of a user's and their groups' grants, joined with clusters, which the ORM cannot express
    let rows = db::query_all(
        db,
        "SELECT a.destination AS destination, a.namespace AS namespace, a.role AS role, a.expires_at AS expires_at, \
                a.via_group AS via_group, d.id AS cluster_id, d.last_seen_at AS last_seen_at FROM ( \
           SELECT g.destination AS destination, g.namespace AS namespace, g.role AS role, g.expires_at AS expires_at, \
                  '' AS via_group FROM grants g \
             WHERE g.subject_kind = 'user' AND g.subject_id = ? AND (g.expires_at IS NULL OR g.expires_at > ?) \
           UNION ALL \
           SELECT g.destination, g.namespace, g.role, g.expires_at, \
                  CASE WHEN gr.source = 'local' THEN gr.name ELSE gr.name || ' (' || gr.source || ')' END FROM grants g \
             JOIN group_members m ON m.group_id = g.subject_id AND g.subject_kind = 'group' \
             JOIN groups gr ON gr.id = g.subject_id \
             WHERE m.user_id = ? AND (g.expires_at IS NULL OR g.expires_at > ?) \
         ) a LEFT JOIN destinations d ON d.name = a.destination \
         ORDER BY 1, 2, 3",
        [user_id.into(), crate::server::now().into(), user_id.into(), crate::server::now().into()],
    )
    .await?;
    let now = crate::server::now();
    let mut entries = Vec::with_capacity(rows.len());
    #[derive(FromQueryResult)]
    struct Row {
        destination: String,
        namespace: String,
        role: String,
        expires_at: Option<i64>,
        via_group: String,
        /// the cluster's row, from the same query (one join, not one query per entry)
        cluster_id: Option<i64>,
        last_seen_at: Option<i64>,
    }
    for r in db::decode::<Row>(&rows)? {
        let cluster_status = r.cluster_id.filter(|_| r.destination != INFRA_RESOURCE).map(|_| destinations::status_of(r.last_seen_at, now));
        entries.push(AccessEntry {
            resource: Resource::render(&r.destination, &r.namespace),
            role: r.role,
            via: if r.via_group.is_empty() { "direct".into() } else { format!("group {}", r.via_group) },
            expires_at: r.expires_at,
            cluster_status,
        });
    }
    Ok(entries)
}

/// Names of the clusters a user's current grants cover.
pub async fn reachable_destinations(db: &impl ConnectionTrait, user_id: i64) -> AppResult<Vec<String>> {
    let mut names: Vec<String> = access_of(db, user_id)
        .await?
        .into_iter()
        .filter_map(|e| {
            let d = Resource::parse(&e.resource).ok()?.destination;
            (d != INFRA_RESOURCE).then_some(d)
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
