//! Groups and their members. Groups that come from an identity provider are read-only here.
//!
//! A group's identity is its source and key: a local group is keyed by its name (unique among local
//! groups, whatever the case), a provider group by the provider's stable id for it (`external_id`: the
//! Azure AD object id, the Google group email, a groups claim's value), its name being only a label.
//! So two groups may share a name (a local one and a provider's, or two of a provider's); a grant
//! names one of them without doubt as `group:<source>:<key>` (`group:local:<name>` for a local group),
//! and a bare name only when no other group has it. Clusters see a group under the same unique name:
//! its name for a local group, `<provider>:<key>` for a provider's (see `CLUSTER_NAME`).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, sea_query::Expr,
};

use super::{Ctx, Paging, audit, ensure_an_admin_remains, prefix_range, users};
use crate::model::{Group, GroupDetail, Page, TypeaheadOption};
use crate::server::db::{
    self,
    entities::{grant, group, group_member, user},
};
use crate::server::error::{AppError, AppResult};
use crate::server::oidc::ProviderGroup;

pub const SOURCE_LOCAL: &str = "local";

/// The name a cluster knows the group `gr` by (RBAC bindings, impersonation, certificates): unique, as
/// local names have no `:` and provider names are DNS labels. A provider group's name cannot make it
/// anything else, such as `system:masters`.
pub const CLUSTER_NAME: &str = "CASE WHEN gr.source = 'local' THEN gr.name ELSE gr.source || ':' || gr.external_id END";
/// Whether the group `gr` can have members: not a provider group from before groups were keyed by id
/// (see migrations/0009), which keeps its grants for the admin to see but gives them to nobody.
pub const KEYED: &str = "(gr.source = 'local' OR gr.external_id <> '')";

/// How a grant names `g` without doubt.
pub fn unique_reference(g: &group::Model) -> String {
    if g.source == SOURCE_LOCAL { format!("group:{SOURCE_LOCAL}:{}", g.name) } else { format!("group:{}:{}", g.source, g.external_id) }
}

/// The longest label a provider group's name is kept to.
const MAX_LABEL: usize = 256;

fn validate_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::field("name", "is required"));
    }
    if name.chars().count() > 64 {
        return Err(AppError::field("name", "must be at most 64 characters"));
    }
    // no '@' and no ':': a bare name in a grant or filter is then a group, an email a user
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.')) {
        return Err(AppError::field("name", "may contain letters, digits, spaces and - _ ."));
    }
    Ok(name.to_string())
}

async fn member_count(db: &impl ConnectionTrait, group_id: i64) -> AppResult<i64> {
    Ok(group_member::Entity::find().filter(group_member::Column::GroupId.eq(group_id)).count(db).await? as i64)
}

async fn to_model(db: &impl ConnectionTrait, g: group::Model) -> AppResult<Group> {
    let member_count = member_count(db, g.id).await?;
    Ok(Group { id: g.id, name: g.name, source: g.source, external_id: g.external_id, member_count, created_at: g.created_at })
}

async fn get_model(db: &impl ConnectionTrait, id: i64) -> AppResult<group::Model> {
    group::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::NotFound(format!("group {id}")))
}

/// The local group of this name (whatever the case).
pub async fn find_local(db: &impl ConnectionTrait, name: &str) -> AppResult<Option<group::Model>> {
    Ok(group::Entity::find().filter(group::Column::Source.eq(SOURCE_LOCAL)).filter(group::Column::NameLc.eq(name.trim().to_lowercase())).one(db).await?)
}

/// A provider's group by its key there.
async fn find_provider_group(db: &impl ConnectionTrait, source: &str, key: &str) -> AppResult<Option<group::Model>> {
    Ok(group::Entity::find().filter(group::Column::Source.eq(source)).filter(group::Column::ExternalId.eq(key)).one(db).await?)
}

/// The group a grant or a filter names: `<source>:<key>` (`local:<name>`, `<provider>:<external id>`),
/// or a name that only one group has. A name that several groups share is refused with their unique
/// forms, rather than one of them picked.
pub async fn resolve(db: &impl ConnectionTrait, reference: &str) -> AppResult<group::Model> {
    let reference = reference.trim();
    if let Some((source, key)) = reference.split_once(':') {
        let found = match source.trim().to_lowercase().as_str() {
            SOURCE_LOCAL => find_local(db, key).await?,
            source => find_provider_group(db, source, key.trim()).await?.filter(|g| !g.external_id.is_empty()),
        };
        if let Some(g) = found {
            return Ok(g);
        }
        // else a provider group's name may well contain a `:`
    }
    let mut named = group::Entity::find().filter(group::Column::NameLc.eq(reference.to_lowercase())).all(db).await?;
    match named.len() {
        0 => Err(AppError::field("subject", format!("no group {reference}"))),
        1 => {
            let g = named.remove(0);
            if g.source != SOURCE_LOCAL && g.external_id.is_empty() {
                return Err(AppError::field(
                    "subject",
                    format!(
                        "group {} of {} is from before provider groups were keyed by id and has no members: grant the group by id instead",
                        g.name, g.source
                    ),
                ));
            }
            Ok(g)
        }
        n => {
            let forms: Vec<String> = named.iter().filter(|g| g.source == SOURCE_LOCAL || !g.external_id.is_empty()).map(unique_reference).collect();
            Err(AppError::field("subject", format!("{n} groups are named {reference}: name one of them as {}", forms.join(" or "))))
        }
    }
}

fn ensure_local(g: &group::Model) -> AppResult<()> {
    if g.source != SOURCE_LOCAL {
        return Err(AppError::Forbidden(format!("group {} comes from the identity provider {} and is changed there", g.name, g.source)));
    }
    Ok(())
}

/// The unique index `groups_local_name` is the check that a local group's name is free.
fn name_taken(e: sea_orm::DbErr) -> AppError {
    AppError::or_taken("name", "a group with this name already exists")(e)
}

pub async fn create(ctx: Ctx<'_>, name: &str) -> AppResult<Group> {
    ctx.require_admin("groups.create", name).await?;
    let name = validate_name(name)?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let model = group::ActiveModel {
        name: Set(name.clone()),
        name_lc: Set(name.to_lowercase()),
        source: Set(SOURCE_LOCAL.to_string()),
        created_at: Set(crate::server::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(name_taken)?;
    audit::record(&txn, ctx.actor, "groups.create", &name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    to_model(ctx.db, model).await
}

pub async fn rename(ctx: Ctx<'_>, id: i64, new_name: &str) -> AppResult<Group> {
    ctx.require_admin("groups.rename", &id.to_string()).await?;
    let new_name = validate_name(new_name)?;
    let existing = get_model(ctx.db, id).await?;
    ensure_local(&existing)?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let old_name = existing.name.clone();
    let mut active: group::ActiveModel = existing.into();
    active.name = Set(new_name.clone());
    active.name_lc = Set(new_name.to_lowercase());
    let model = active.update(&txn).await.map_err(name_taken)?;
    audit::record(&txn, ctx.actor, "groups.rename", &old_name, audit::Outcome::Success, &format!("to {new_name}")).await?;
    txn.commit().await?;
    to_model(ctx.db, model).await
}

/// Removes a group, its memberships and its grants.
pub async fn delete(ctx: Ctx<'_>, id: i64) -> AppResult<()> {
    ctx.require_admin("groups.delete", &id.to_string()).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let existing = get_model(&txn, id).await?;
    ensure_local(&existing)?;
    grant::Entity::delete_many()
        .filter(grant::Column::SubjectKind.eq(crate::model::SubjectKind::Group.as_str()))
        .filter(grant::Column::SubjectId.eq(id))
        .exec(&txn)
        .await?;
    group_member::Entity::delete_many().filter(group_member::Column::GroupId.eq(id)).exec(&txn).await?;
    group::Entity::delete_by_id(id).exec(&txn).await?;
    ensure_an_admin_remains(&txn).await?;
    audit::record(&txn, ctx.actor, "groups.delete", &existing.name, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(())
}

/// Resolves a member reference: a user id, or an email (optionally `user:`-prefixed).
async fn resolve_user(db: &impl ConnectionTrait, member: &str) -> AppResult<user::Model> {
    let member = member.trim();
    let member = member.strip_prefix("user:").unwrap_or(member);
    let found = match member.parse::<i64>() {
        Ok(id) => user::Entity::find_by_id(id).one(db).await?,
        Err(_) => users::find_by_email(db, member).await?,
    };
    found.filter(|u| u.kind == users::KIND_USER).ok_or_else(|| AppError::field("user", format!("no user {member}")))
}

/// Adds a user to a group; adding someone already in it changes nothing.
pub async fn add_member(ctx: Ctx<'_>, group_id: i64, member: &str) -> AppResult<GroupDetail> {
    ctx.require_admin("groups.add_member", &group_id.to_string()).await?;
    let g = get_model(ctx.db, group_id).await?;
    ensure_local(&g)?;
    let u = resolve_user(ctx.db, member).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let exists = group_member::Entity::find_by_id((group_id, u.id)).one(&txn).await?.is_some();
    if !exists {
        group_member::ActiveModel { group_id: Set(group_id), user_id: Set(u.id), created_at: Set(crate::server::now()) }.insert(&txn).await?;
        audit::record(&txn, ctx.actor, "groups.add_member", &g.name, audit::Outcome::Success, &u.email).await?;
    }
    txn.commit().await?;
    detail_of(ctx.db, g).await
}

pub async fn remove_member(ctx: Ctx<'_>, group_id: i64, user_id: i64) -> AppResult<GroupDetail> {
    ctx.require_admin("groups.remove_member", &group_id.to_string()).await?;
    let g = get_model(ctx.db, group_id).await?;
    ensure_local(&g)?;
    let u = resolve_user(ctx.db, &user_id.to_string()).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let removed = group_member::Entity::delete_by_id((group_id, user_id)).exec(&txn).await?.rows_affected;
    if removed > 0 {
        ensure_an_admin_remains(&txn).await?;
        audit::record(&txn, ctx.actor, "groups.remove_member", &g.name, audit::Outcome::Success, &u.email).await?;
    }
    txn.commit().await?;
    detail_of(ctx.db, g).await
}

async fn detail_of(db: &impl ConnectionTrait, g: group::Model) -> AppResult<GroupDetail> {
    let members = user::Entity::find()
        .from_raw_sql(db::statement(
            db.get_database_backend(),
            "SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = ? ORDER BY u.email",
            [g.id.into()],
        ))
        .all(db)
        .await?;
    Ok(GroupDetail { group: to_model(db, g).await?, members: members.into_iter().map(users::to_model).collect() })
}

pub async fn get(ctx: Ctx<'_>, id: i64) -> AppResult<GroupDetail> {
    ctx.require_view("groups.get", &id.to_string()).await?;
    detail_of(ctx.db, get_model(ctx.db, id).await?).await
}

/// Groups, optionally those whose name starts with `q`, ordered by name, with member counts.
pub async fn list(ctx: Ctx<'_>, q: Option<&str>, paging: Paging) -> AppResult<Page<Group>> {
    ctx.require_view("groups.list", "groups").await?;
    let (filter, mut values): (&str, Vec<sea_orm::Value>) = match q.and_then(prefix_range) {
        Some((lo, hi)) => ("WHERE g.name_lc >= ? AND g.name_lc < ?", vec![lo.into(), hi.into()]),
        None => ("", vec![]),
    };
    // raw: the same WHERE text as the page query below, so that the count and the page agree
    let total = db::count(ctx.db, &format!("SELECT COUNT(*) FROM groups g {filter}"), values.clone()).await?;
    values.push((paging.limit as i64).into());
    values.push((paging.offset() as i64).into());
    // raw: each group's member count in a subquery of the one query, which the entity API cannot say
    let rows = db::query_all(
        ctx.db,
        &format!(
            "SELECT g.id AS id, g.name AS name, g.source AS source, g.created_at AS created_at, \
               (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count, g.external_id AS external_id \
             FROM groups g {filter} ORDER BY g.name_lc LIMIT ? OFFSET ?"
        ),
        values,
    )
    .await?;
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        name: String,
        source: String,
        created_at: i64,
        member_count: i64,
        external_id: String,
    }
    let items = db::decode::<Row>(&rows)?
        .into_iter()
        .map(|r| Group { id: r.id, name: r.name, source: r.source, created_at: r.created_at, member_count: r.member_count, external_id: r.external_id })
        .collect();
    Ok(paging.wrap(items, total))
}

/// Typeahead: up to `limit` groups whose name starts with `q`, each with its source (and key where it
/// is not the name), so that an admin sees which of two same-named groups they pick. A name that other
/// groups share is offered in its unique form. Provider groups from before keying by id are left out:
/// they can have no members.
pub async fn search(db: &impl ConnectionTrait, q: &str, limit: u64) -> AppResult<Vec<TypeaheadOption>> {
    let Some((lo, hi)) = prefix_range(q) else { return Ok(Vec::new()) };
    let rows = group::Entity::find()
        .from_raw_sql(db::statement(
            db.get_database_backend(),
            &format!("SELECT gr.* FROM groups gr WHERE gr.name_lc >= ? AND gr.name_lc < ? AND {KEYED} ORDER BY gr.name_lc, gr.source, gr.external_id LIMIT ?"),
            [lo.into(), hi.into(), (limit as i64).into()],
        ))
        .all(db)
        .await?;
    let mut options = Vec::with_capacity(rows.len());
    for g in rows {
        let shared = group::Entity::find().filter(group::Column::NameLc.eq(g.name_lc.clone())).count(db).await? > 1;
        let value = if shared { unique_reference(&g) } else { g.name.clone() };
        let detail = match g.source.as_str() {
            SOURCE_LOCAL => "group".to_string(),
            source if g.external_id == g.name => format!("group from {source}"),
            source => format!("group from {source}, id {}", g.external_id),
        };
        options.push(TypeaheadOption { value, label: g.name, detail });
    }
    Ok(options)
}

/// One `name` column of hand-written SQL (joins the ORM's entities do not state).
#[derive(FromQueryResult)]
struct NameRow {
    name: String,
}

/// The groups a user belongs to, by name.
pub async fn names_of_user(db: &impl ConnectionTrait, user_id: i64) -> AppResult<Vec<String>> {
    // raw: a join with memberships, and the entities declare no relations to join by
    let rows = db::query_all(
        db,
        "SELECT g.name AS name FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.name_lc",
        [user_id.into()],
    )
    .await?;
    Ok(db::decode::<NameRow>(&rows)?.into_iter().map(|r| r.name).collect())
}

/// The groups a user belongs to, by the names clusters know them by (`CLUSTER_NAME`).
pub async fn cluster_names_of_user(db: &impl ConnectionTrait, user_id: i64) -> AppResult<Vec<String>> {
    // raw: a join with memberships and the computed CLUSTER_NAME, which the entity API cannot say
    let rows = db::query_all(
        db,
        &format!("SELECT {CLUSTER_NAME} AS name FROM groups gr JOIN group_members m ON m.group_id = gr.id WHERE m.user_id = ? AND {KEYED} ORDER BY 1"),
        [user_id.into()],
    )
    .await?;
    Ok(db::decode::<NameRow>(&rows)?.into_iter().map(|r| r.name).collect())
}

/// Makes the user's memberships in `source`'s groups exactly `groups`, matched by key (never by name,
/// and never to a local group or another provider's), creating groups as needed and keeping their
/// names up to date as labels. Returns whether the memberships changed.
pub async fn sync_provider_memberships(txn: &impl ConnectionTrait, source: &str, user_id: i64, groups: &[ProviderGroup]) -> AppResult<bool> {
    let mut wanted = Vec::new();
    for pg in groups {
        let key = pg.id.trim();
        if key.is_empty() {
            continue;
        }
        let label: String = match pg.name.trim() {
            "" => key.chars().take(MAX_LABEL).collect(),
            name => name.chars().take(MAX_LABEL).collect(),
        };
        match find_provider_group(txn, source, key).await? {
            Some(g) => {
                if g.name != label {
                    group::Entity::update_many()
                        .col_expr(group::Column::Name, Expr::value(label.clone()))
                        .col_expr(group::Column::NameLc, Expr::value(label.to_lowercase()))
                        .filter(group::Column::Id.eq(g.id))
                        .exec(txn)
                        .await?;
                }
                wanted.push(g.id);
            }
            None => {
                let g = group::ActiveModel {
                    name: Set(label.clone()),
                    name_lc: Set(label.to_lowercase()),
                    source: Set(source.to_string()),
                    external_id: Set(key.to_string()),
                    created_at: Set(crate::server::now()),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                wanted.push(g.id);
            }
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let current: Vec<i64> = group_member::Entity::find()
        .select_only()
        .column(group_member::Column::GroupId)
        .filter(group_member::Column::UserId.eq(user_id))
        .filter(group_member::Column::GroupId.in_subquery(
            sea_orm::sea_query::Query::select().column(group::Column::Id).from(group::Entity).and_where(group::Column::Source.eq(source)).to_owned(),
        ))
        .order_by_asc(group_member::Column::GroupId)
        .into_tuple()
        .all(txn)
        .await?;
    if current == wanted {
        return Ok(false);
    }
    group_member::Entity::delete_many()
        .filter(group_member::Column::UserId.eq(user_id))
        .filter(group_member::Column::GroupId.in_subquery(
            sea_orm::sea_query::Query::select().column(group::Column::Id).from(group::Entity).and_where(group::Column::Source.eq(source)).to_owned(),
        ))
        .exec(txn)
        .await?;
    for group_id in wanted {
        group_member::Entity::insert(group_member::ActiveModel { group_id: Set(group_id), user_id: Set(user_id), created_at: Set(crate::server::now()) })
            .exec_without_returning(txn)
            .await?;
    }
    Ok(true)
}
