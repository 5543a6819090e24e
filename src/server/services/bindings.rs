//! What each cluster's connector must bind: the grants on that cluster, grouped into one binding per
//! role and namespace, with users named by email and groups by the unique name clusters know them by
//! (`groups::CLUSTER_NAME`: a local group's name, `<provider>:<key>` for a provider's). Expired grants
//! and disabled users are left out, so expiry and disabling reach the cluster like a removed grant.

use std::collections::BTreeMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, FromQueryResult};
use sha2::{Digest, Sha256};

use super::groups::{CLUSTER_NAME, KEYED};
use super::{Ctx, changes, destinations};
use crate::model::{BindingSubject, DesiredBinding, DesiredBindings, INFRA_RESOURCE};
use crate::server::db;
use crate::server::error::{AppError, AppResult};

/// The longest a connector's long poll is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

pub async fn desired(db: &impl ConnectionTrait, destination: &str) -> AppResult<DesiredBindings> {
    // raw: a UNION over joins of grants with users and with groups, which the ORM cannot express
    let rows = db::query_all(
        db,
        &format!(
            "SELECT g.role AS role, g.namespace AS namespace, 'User' AS kind, u.email AS name FROM grants g JOIN users u ON u.id = g.subject_id \
               WHERE g.subject_kind = 'user' AND g.destination = ? AND u.disabled = ? \
                 AND (g.expires_at IS NULL OR g.expires_at > ?) \
             UNION ALL \
             SELECT g.role, g.namespace, 'Group', {CLUSTER_NAME} FROM grants g JOIN groups gr ON gr.id = g.subject_id \
               WHERE g.subject_kind = 'group' AND g.destination = ? AND {KEYED} AND (g.expires_at IS NULL OR g.expires_at > ?)"
        ),
        [destination.into(), false.into(), crate::server::now().into(), destination.into(), crate::server::now().into()],
    )
    .await?;
    #[derive(FromQueryResult)]
    struct Row {
        role: String,
        namespace: String,
        kind: String,
        name: String,
    }
    let mut grouped: BTreeMap<(String, String), Vec<BindingSubject>> = BTreeMap::new();
    for r in db::decode::<Row>(&rows)? {
        grouped.entry((r.role, r.namespace)).or_default().push(BindingSubject { kind: r.kind, name: r.name });
    }
    let bindings: Vec<DesiredBinding> = grouped
        .into_iter()
        .map(|((role, namespace), mut subjects)| {
            subjects.sort();
            subjects.dedup();
            DesiredBinding { role, namespace, subjects }
        })
        .collect();
    let revoked = super::revocations::current(db).await?;
    let members = granted_group_members(db, destination).await?;
    let certificates = super::certificates::pending(db, destination).await?;
    let version = version_of(&(&bindings, &revoked, &members, &certificates));
    Ok(DesiredBindings { version, bindings, revoked, members, certificates })
}

/// Members (emails, enabled users only) of the groups with a current grant on the cluster.
async fn granted_group_members(db: &impl ConnectionTrait, destination: &str) -> AppResult<BTreeMap<String, Vec<String>>> {
    // raw: a DISTINCT over a four-table join with a computed group name, which the entity API cannot say
    let rows = db::query_all(
        db,
        &format!(
            "SELECT DISTINCT {CLUSTER_NAME} AS grp, u.email AS email FROM grants g \
               JOIN groups gr ON gr.id = g.subject_id \
               JOIN group_members m ON m.group_id = gr.id \
               JOIN users u ON u.id = m.user_id \
             WHERE g.subject_kind = 'group' AND g.destination = ? AND u.disabled = ? AND {KEYED} \
               AND (g.expires_at IS NULL OR g.expires_at > ?) \
             ORDER BY 1, 2"
        ),
        [destination.into(), false.into(), crate::server::now().into()],
    )
    .await?;
    #[derive(FromQueryResult)]
    struct Row {
        grp: String,
        email: String,
    }
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in db::decode::<Row>(&rows)? {
        members.entry(r.grp).or_default().push(r.email);
    }
    Ok(members)
}

/// A short digest of the content: equal content, equal version, on every replica.
fn version_of(content: &impl serde::Serialize) -> String {
    let canonical = serde_json::to_vec(content).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The connector's long poll: answers as soon as the bindings differ from `known_version`, or after
/// `wait` with the unchanged state. Only a connector key bound to this cluster (or an admin) may ask.
pub async fn wait_for_change(ctx: Ctx<'_>, destination: &str, known_version: &str, wait: Duration) -> AppResult<DesiredBindings> {
    ctx.require_connector_for("destinations.bindings", destination).await?;
    if destination == INFRA_RESOURCE || destinations::find_by_name(ctx.db, destination).await?.is_none() {
        return Err(AppError::NotFound(format!("cluster {destination}")));
    }
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    let mut wake = changes::subscribe();
    loop {
        let current = desired(ctx.db, destination).await?;
        if current.version != known_version || tokio::time::Instant::now() >= deadline {
            return Ok(current);
        }
        let next_poll = (tokio::time::Instant::now() + changes::POLL_INTERVAL).min(deadline);
        // either a local change wakes us, or we look again at the next poll
        let _ = tokio::time::timeout_at(next_poll, wake.changed()).await;
    }
}
