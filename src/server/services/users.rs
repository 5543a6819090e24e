//! Users: create, disable, delete, passwords, listing and search.

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use super::{Ctx, Paging, audit, ensure_an_admin_remains, prefix_range};
use crate::model::{Page, Subject, SubjectKind, User, UserUpdate, Whoami};
use crate::server::auth::password;
use crate::server::db::{
    self,
    entities::{grant, user},
};
use crate::server::error::{AppError, AppResult};

pub const KIND_USER: &str = "user";
pub const KIND_MACHINE: &str = "machine";

#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    /// None: a one-time password is generated and returned, to be changed at first sign-in
    pub password: Option<String>,
}

pub fn to_model(u: user::Model) -> User {
    User {
        id: u.id,
        email: u.email,
        name: u.name,
        provider: u.provider,
        disabled: u.disabled,
        must_change_password: u.must_change_password,
        last_seen_at: u.last_seen_at,
        created_at: u.created_at,
    }
}

/// An email as accounts are keyed by: trimmed, lowercased, one `@` with something on each side. Names
/// in Kubernetes' reserved `system:` namespace are refused, since clusters see a user as their email
/// (impersonation): `system:kube-controller-manager` must not be anyone's email here.
pub fn normalize_email(email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    if email.starts_with("system:") {
        return Err(AppError::field("email", "may not start with `system:`, which Kubernetes reserves"));
    }
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'),
            None => false,
        };
    if !valid {
        return Err(AppError::field("email", "is not a valid email address"));
    }
    Ok(email)
}

fn normalize_name(name: &str, email: &str) -> AppResult<String> {
    let name = name.trim();
    let name = if name.is_empty() { email.split('@').next().unwrap_or(email) } else { name };
    if name.chars().count() > 100 {
        return Err(AppError::field("name", "must be at most 100 characters"));
    }
    Ok(name.to_string())
}

/// Creates a user. Returns the user and, when no password was given, the one-time password.
pub async fn create(ctx: Ctx<'_>, new: NewUser) -> AppResult<(User, Option<String>)> {
    ctx.require_admin("users.create", &new.email).await?;
    let email = normalize_email(&new.email)?;
    let name = normalize_name(&new.name, &email)?;
    let (password, one_time) = match new.password.filter(|p| !p.is_empty()) {
        Some(p) => {
            password::validate_new_password(&p)?;
            (p, false)
        }
        None => (password::random_token(16), true),
    };
    let hash = password::hash(&password).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let model = insert(&txn, KIND_USER, &email, &name, Some(hash), one_time).await?;
    audit::record(&txn, ctx.actor, "users.create", &email, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok((to_model(model), one_time.then_some(password)))
}

/// Inserts a user row; the caller checks permissions and audits.
pub async fn insert(
    db: &impl ConnectionTrait,
    kind: &str,
    email: &str,
    name: &str,
    password_hash: Option<String>,
    must_change_password: bool,
) -> AppResult<user::Model> {
    let model = user::ActiveModel {
        kind: Set(kind.to_string()),
        email: Set(email.to_string()),
        name: Set(name.to_string()),
        name_lc: Set(name.to_lowercase()),
        password_hash: Set(password_hash),
        must_change_password: Set(must_change_password),
        provider: Set("local".to_string()),
        disabled: Set(false),
        failed_logins: Set(0),
        locked_until: Set(None),
        last_seen_at: Set(None),
        created_at: Set(crate::server::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(AppError::or_taken("email", "a user with this email already exists"))?;
    Ok(model)
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> AppResult<Option<user::Model>> {
    Ok(user::Entity::find().filter(user::Column::Email.eq(email.trim().to_lowercase())).one(db).await?)
}

async fn get_model(db: &impl ConnectionTrait, id: i64) -> AppResult<user::Model> {
    user::Entity::find_by_id(id).one(db).await?.filter(|u| u.kind == KIND_USER).ok_or_else(|| AppError::NotFound(format!("user {id}")))
}

pub async fn get(ctx: Ctx<'_>, id: i64) -> AppResult<User> {
    if ctx.actor.user_id != id {
        ctx.require_view("users.get", &id.to_string()).await?;
    }
    Ok(to_model(get_model(ctx.db, id).await?))
}

/// The caller, with their groups and their role on infra itself.
pub async fn whoami(ctx: Ctx<'_>) -> AppResult<Whoami> {
    let user = get(ctx, ctx.actor.user_id).await?;
    let groups = super::groups::names_of_user(ctx.db, ctx.actor.user_id).await?;
    let roles = ctx.actor.roles;
    let infra_role = if roles.admin {
        "admin"
    } else if roles.view {
        "view"
    } else {
        ""
    };
    Ok(Whoami { user, groups, infra_role: infra_role.to_string() })
}

/// Disables or enables a user: a disabled user's sessions end and the clusters refuse their tokens now.
pub async fn set_disabled(ctx: Ctx<'_>, id: i64, disabled: bool) -> AppResult<User> {
    update(ctx, id, &UserUpdate { disabled: Some(disabled), password: None }).await
}

/// `PATCH /api/users/{id}`: every change asked for, checked first and then made in one transaction, so a
/// refused part changes nothing.
pub async fn update(ctx: Ctx<'_>, id: i64, change: &UserUpdate) -> AppResult<User> {
    let target = id.to_string();
    let disable_action = change.disabled.map(|d| if d { "users.disable" } else { "users.enable" });
    if let Some(action) = disable_action {
        ctx.require_admin(action, &target).await?;
    }
    let hash = match &change.password {
        Some(new_password) => {
            ctx.require_admin("users.set_password", &target).await?;
            password::validate_new_password(new_password)?;
            get_model(ctx.db, id).await?;
            Some(password::hash(new_password).await?)
        }
        None => None,
    };
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let existing = get_model(&txn, id).await?;
    let email = existing.email.clone();
    let mut active: user::ActiveModel = existing.into();
    if let Some(hash) = hash {
        active.password_hash = Set(Some(hash));
        active.must_change_password = Set(ctx.actor.user_id != id);
        active.failed_logins = Set(0);
        active.locked_until = Set(None);
    }
    if let Some(disabled) = change.disabled {
        active.disabled = Set(disabled);
    }
    let model = if active.is_changed() { active.update(&txn).await? } else { get_model(&txn, id).await? };
    if change.password.is_some() {
        // whoever knew the old password is signed out everywhere
        crate::server::auth::session_store::delete_user_sessions(&txn, id).await?;
        audit::record(&txn, ctx.actor, "users.set_password", &email, audit::Outcome::Success, "").await?;
    }
    if let (Some(disabled), Some(action)) = (change.disabled, disable_action) {
        if disabled {
            ensure_an_admin_remains(&txn).await?;
            // a disabled user's sessions end now, not when they expire, and the clusters refuse their tokens
            crate::server::auth::session_store::delete_user_sessions(&txn, id).await?;
            super::revocations::revoke_user(&txn, id).await?;
        } else {
            super::revocations::restore_user(&txn, id).await?;
        }
        audit::record(&txn, ctx.actor, action, &email, audit::Outcome::Success, "").await?;
    }
    txn.commit().await?;
    Ok(to_model(model))
}

pub async fn delete(ctx: Ctx<'_>, id: i64) -> AppResult<()> {
    ctx.require_admin("users.delete", &id.to_string()).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let existing = get_model(&txn, id).await?;
    grant::Entity::delete_many().filter(grant::Column::SubjectKind.eq(SubjectKind::User.as_str())).filter(grant::Column::SubjectId.eq(id)).exec(&txn).await?;
    crate::server::auth::session_store::delete_user_sessions(&txn, id).await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    ensure_an_admin_remains(&txn).await?;
    super::revocations::revoke_user(&txn, id).await?;
    audit::record(&txn, ctx.actor, "users.delete", &existing.email, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(())
}

/// The signed-in user changes their own password, proving they know the current one.
pub async fn change_own_password(ctx: Ctx<'_>, current: &str, new_password: &str) -> AppResult<()> {
    let existing = get_model(ctx.db, ctx.actor.user_id).await?;
    if !password::verify(current, existing.password_hash.as_deref()).await {
        audit::record(ctx.db, ctx.actor, "users.change_password", &existing.email, audit::Outcome::Denied, "wrong current password").await?;
        return Err(AppError::field("current_password", "is not your current password"));
    }
    password::validate_new_password(new_password)?;
    if new_password == current {
        return Err(AppError::field("new_password", "must differ from the current password"));
    }
    let hash = password::hash(new_password).await?;
    let txn = crate::server::db::begin_write(ctx.db).await?;
    let email = existing.email.clone();
    let mut active: user::ActiveModel = existing.into();
    active.password_hash = Set(Some(hash));
    active.must_change_password = Set(false);
    active.update(&txn).await?;
    // every session ends, this one too: the form handler signs this browser in again on a new session id
    crate::server::auth::session_store::delete_user_sessions(&txn, ctx.actor.user_id).await?;
    audit::record(&txn, ctx.actor, "users.change_password", &email, audit::Outcome::Success, "").await?;
    txn.commit().await?;
    Ok(())
}

const USER_COLUMNS: &str =
    "id, kind, email, name, name_lc, password_hash, must_change_password, provider, disabled, failed_logins, locked_until, last_seen_at, created_at";

/// Users, optionally those whose email or name starts with `q`, ordered by email.
pub async fn list(ctx: Ctx<'_>, q: Option<&str>, paging: Paging) -> AppResult<Page<User>> {
    ctx.require_view("users.list", "users").await?;
    let (items, total) = match q.and_then(prefix_range) {
        None => {
            let total = user::Entity::find().filter(user::Column::Kind.eq(KIND_USER)).count(ctx.db).await?;
            let rows = user::Entity::find()
                .from_raw_sql(db::statement(
                    ctx.db.get_database_backend(),
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE kind = 'user' ORDER BY email LIMIT ? OFFSET ?"),
                    [(paging.limit as i64).into(), (paging.offset() as i64).into()],
                ))
                .all(ctx.db)
                .await?;
            (rows, total)
        }
        Some((lo, hi)) => {
            let filter = "kind = 'user' AND ((email >= ? AND email < ?) OR (name_lc >= ? AND name_lc < ?))";
            let args = || [lo.clone().into(), hi.clone().into(), lo.clone().into(), hi.clone().into()];
            // raw: the same WHERE text as the page query below, so that the count and the page agree
            let total = db::count(ctx.db, &format!("SELECT COUNT(*) FROM users WHERE {filter}"), args()).await?;
            let mut values: Vec<sea_orm::Value> = args().into();
            values.push((paging.limit as i64).into());
            values.push((paging.offset() as i64).into());
            let rows = user::Entity::find()
                .from_raw_sql(db::statement(
                    ctx.db.get_database_backend(),
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY email LIMIT ? OFFSET ?"),
                    values,
                ))
                .all(ctx.db)
                .await?;
            (rows, total)
        }
    };
    Ok(paging.wrap(items.into_iter().map(to_model).collect(), total))
}

/// Typeahead: up to `limit` users whose email or name starts with `q`. Two index range scans.
pub async fn search(db: &impl ConnectionTrait, q: &str, limit: u64) -> AppResult<Vec<Subject>> {
    let Some((lo, hi)) = prefix_range(q) else { return Ok(Vec::new()) };
    let mut found: Vec<Subject> = Vec::new();
    for column in [user::Column::Email, user::Column::NameLc] {
        let rows = user::Entity::find()
            .filter(column.gte(lo.clone()))
            .filter(column.lt(hi.clone()))
            .filter(user::Column::Kind.eq(KIND_USER))
            .filter(user::Column::Disabled.eq(false))
            .order_by_asc(column)
            .limit(limit)
            .all(db)
            .await?;
        for row in rows {
            if found.iter().any(|s| s.id == row.id) {
                continue;
            }
            found.push(Subject { kind: SubjectKind::User, id: row.id, name: row.email, detail: row.name });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.truncate(limit as usize);
    Ok(found)
}
