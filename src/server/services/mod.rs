//! The domain services. Every rule of the product lives here once; the REST API, the console's server
//! functions, the CLI paths and config-as-code all call these functions with a [`Ctx`].

pub mod audit;
pub mod bindings;
pub mod certificates;
pub mod changes;
pub mod destinations;
pub mod device_login;
pub mod grants;
pub mod groups;
pub mod keys;
pub mod kubeconfig;
pub mod leases;
pub mod providers;
pub mod revocations;
pub mod search;
pub mod settings;
pub mod tokens;
pub mod users;

use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::server::db;
use crate::server::error::{AppError, AppResult};

/// Who is acting, resolved from a session or an access key on every request.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub must_change_password: bool,
    pub roles: InfraRoles,
    /// the client address, for the audit log
    pub source: String,
    /// set when the request came with a connector key: the one cluster that key may register
    pub bound_destination: Option<String>,
    /// the access key the request came with (its public id), if it came with one
    pub key_id: Option<String>,
}

/// The product-level roles an actor holds on the `infra` resource (directly or through a group).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InfraRoles {
    pub admin: bool,
    pub view: bool,
    pub connector: bool,
}

impl Actor {
    /// The server itself, acting on its own (continuous verification): an admin that is no user.
    pub fn system(what: &str) -> Actor {
        Actor {
            user_id: 0,
            email: format!("system:{what}"),
            name: what.to_string(),
            must_change_password: false,
            roles: InfraRoles { admin: true, view: true, connector: false },
            source: "server".into(),
            bound_destination: None,
            key_id: None,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.roles.admin
    }
    /// admins and viewers may read everything
    pub fn can_view(&self) -> bool {
        self.roles.admin || self.roles.view
    }
}

/// What every service call gets: the database and the acting identity.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub db: &'a DatabaseConnection,
    pub actor: &'a Actor,
}

impl<'a> Ctx<'a> {
    pub fn new(db: &'a DatabaseConnection, actor: &'a Actor) -> Self {
        Ctx { db, actor }
    }

    /// Refuses (and audits the refusal) unless the actor is an infra admin.
    pub async fn require_admin(&self, action: &str, target: &str) -> AppResult<()> {
        let allowed = self.actor.is_admin();
        self.check(allowed, action, target).await
    }

    /// Refuses unless the actor may read everything (infra admin or view).
    pub async fn require_view(&self, action: &str, target: &str) -> AppResult<()> {
        let allowed = self.actor.can_view();
        self.check(allowed, action, target).await
    }

    /// Acting for one cluster (register, heartbeat, its bindings, audit and certificates): a connector key
    /// bound to exactly that cluster, or an infra admin. No binding never means "any cluster": a person
    /// holding only the `connector` role acts for none.
    pub async fn require_connector_for(&self, action: &str, cluster: &str) -> AppResult<()> {
        let cluster = cluster.trim();
        let (allowed, why) = match self.actor.bound_destination.as_deref() {
            Some(bound) if bound == cluster && self.actor.roles.connector => (true, ""),
            Some(_) => (false, "connector key of another cluster"),
            None if self.actor.is_admin() => (true, ""),
            None => (false, "not a connector key of this cluster"),
        };
        if allowed {
            return Ok(());
        }
        audit::record(self.db, self.actor, action, cluster, audit::Outcome::Denied, why).await?;
        Err(AppError::Forbidden(format!("only the connector of cluster {cluster} may do this")))
    }

    /// Refuses unless a person is acting (not a connector key, not the server itself).
    pub async fn require_person(&self, action: &str, target: &str) -> AppResult<()> {
        let allowed = self.actor.bound_destination.is_none() && self.actor.user_id != 0;
        self.check(allowed, action, target).await
    }

    async fn check(&self, allowed: bool, action: &str, target: &str) -> AppResult<()> {
        if allowed {
            return Ok(());
        }
        audit::record(self.db, self.actor, action, target, audit::Outcome::Denied, "").await?;
        Err(AppError::forbidden())
    }
}

/// The infra roles a user holds now, directly or through any of their groups; expired grants do not count.
pub async fn infra_roles(db: &impl ConnectionTrait, user_id: i64) -> AppResult<InfraRoles> {
    // raw: a DISTINCT over direct and group grants (a subquery over memberships) in one statement
    let rows = db::query_all(
        db,
        "SELECT DISTINCT g.role AS role FROM grants g \
         WHERE g.destination = 'infra' AND (g.expires_at IS NULL OR g.expires_at > ?) AND ( \
           (g.subject_kind = 'user' AND g.subject_id = ?) OR \
           (g.subject_kind = 'group' AND g.subject_id IN (SELECT group_id FROM group_members WHERE user_id = ?)))",
        [crate::server::now().into(), user_id.into(), user_id.into()],
    )
    .await?;
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        role: String,
    }
    let mut roles = InfraRoles::default();
    for Row { role } in db::decode::<Row>(&rows)? {
        match role.as_str() {
            "admin" => roles.admin = true,
            "view" => roles.view = true,
            "connector" => roles.connector = true,
            _ => {}
        }
    }
    Ok(roles)
}

/// Number of enabled users who are infra admins now. Used to refuse any change that would leave none.
pub async fn admin_count(db: &impl ConnectionTrait) -> AppResult<u64> {
    // raw: a COUNT over a UNION of direct and group grants with a join, which the ORM cannot express
    Ok(db::count(
        db,
        "SELECT COUNT(*) FROM users u WHERE u.disabled = ? AND u.kind = 'user' AND u.id IN ( \
           SELECT g.subject_id FROM grants g WHERE g.subject_kind = 'user' AND g.destination = 'infra' \
             AND g.role = 'admin' AND (g.expires_at IS NULL OR g.expires_at > ?) \
           UNION \
           SELECT m.user_id FROM grants g JOIN group_members m ON m.group_id = g.subject_id \
           WHERE g.subject_kind = 'group' AND g.destination = 'infra' AND g.role = 'admin' \
             AND (g.expires_at IS NULL OR g.expires_at > ?))",
        [false.into(), crate::server::now().into(), crate::server::now().into()],
    )
    .await?)
}

/// Call inside the transaction of a change that could remove admin rights, after making it:
/// fails (and so rolls the change back) when no admin would remain.
pub async fn ensure_an_admin_remains(txn: &impl ConnectionTrait) -> AppResult<()> {
    if admin_count(txn).await? == 0 {
        return Err(AppError::Conflict("the last infra admin cannot be removed".into()));
    }
    Ok(())
}

/// Page number (1-based) and size, clamped to sane bounds.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub page: u64,
    pub limit: u64,
}

impl Paging {
    pub const MAX_LIMIT: u64 = 200;
    pub fn new(page: Option<u64>, limit: Option<u64>) -> Self {
        Paging { page: page.unwrap_or(1).max(1), limit: limit.unwrap_or(50).clamp(1, Self::MAX_LIMIT) }
    }
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.limit
    }
    pub fn wrap<T>(&self, items: Vec<T>, total: u64) -> crate::model::Page<T> {
        crate::model::Page { items, page: self.page, limit: self.limit, total }
    }
}

/// Normalises a typeahead or list query to the lowercase prefix the indexes are built for,
/// and returns the range `[lower, upper)` that matches it.
pub fn prefix_range(q: &str) -> Option<(String, String)> {
    let q = q.trim().to_lowercase();
    if q.is_empty() {
        return None;
    }
    let upper = format!("{q}{}", char::MAX);
    Some((q, upper))
}

pub use crate::model::is_dns_label;

/// Role names as Kubernetes allows them for ClusterRoles we may bind (a path segment name).
pub fn is_role_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::{is_role_name, prefix_range};

    #[test]
    fn role_names_allow_the_characters_cluster_roles_use() {
        for good in ["view", "cluster-admin", "system:aggregate-to-view", "infra.logs"] {
            assert!(is_role_name(good), "{good:?}");
        }
        for bad in ["", "View", "a/b", "a b", &"r".repeat(254)] {
            assert!(!is_role_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_query_is_a_lowercase_prefix_range() {
        assert_eq!(prefix_range("  "), None);
        let (lower, upper) = prefix_range(" Ali ").expect("a range");
        assert_eq!(lower, "ali");
        assert!(upper.as_str() > "alice@example.com" && upper.starts_with("ali"));
        assert!("alj" > upper.as_str());
    }
}
