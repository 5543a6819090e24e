//! Break-glass client certificates: signed by the cluster itself (its CertificateSigningRequest API,
//! signer `kubernetes.io/kube-apiserver-client`), so kubectl reaches the API server directly, without
//! the connector's proxy, for when the proxy or this server is down. CN is the user's email and O those
//! of their groups that hold a grant on that cluster, so the RBAC bindings the connector keeps apply;
//! never a `system:` group (`system:masters` would make them the cluster's superuser, past RBAC). Such a certificate cannot be revoked before it
//! expires; only admins may have one, and never for less than the 10 minutes Kubernetes requires.
//!
//! The server makes the key and the CSR, records the request, and waits; the connector sees the
//! request in its bindings long poll, has the cluster sign and approve it, and posts the certificate
//! back ([`complete`]).

use std::time::Duration;

use sea_orm::ConnectionTrait;

use super::{Ctx, audit};
use crate::model::{CertificateRequest, IssuedCertificate, is_kubernetes_system_name};
use crate::server::db;
use crate::server::error::{AppError, AppResult};

/// Kubernetes signs no client certificate for less than this.
pub const MIN_LIFETIME: Duration = Duration::from_secs(600);
/// How long a download waits for the connector.
const WAIT: Duration = Duration::from_secs(30);

/// A signed certificate with its key, and where and how to reach the API server directly.
pub struct BreakGlass {
    pub certificate_pem: String,
    pub key_pem: String,
    pub api_server: String,
    pub api_server_ca: String,
}

/// Has `cluster` sign a client certificate for the actor (an admin), valid for `lifetime`. Waits up
/// to 30 seconds for the cluster's connector.
pub async fn issue(ctx: Ctx<'_>, cluster: &str, lifetime: Duration) -> AppResult<BreakGlass> {
    ctx.require_admin("kubeconfig.certificate", cluster).await?;
    let email = ctx.actor.email.clone();
    let groups = subject_groups(ctx.db, ctx.actor.user_id, cluster).await?;
    let (csr, key_pem) = crate::tls::client_csr(&email, &groups).map_err(AppError::Internal)?;
    let txn = db::begin_write(ctx.db).await?;
    db::execute(
        &txn,
        "INSERT INTO certificate_requests (destination, user_id, csr, expiration_secs, created_at) VALUES (?, ?, ?, ?, ?)",
        [cluster.into(), ctx.actor.user_id.into(), csr.clone().into(), (lifetime.as_secs() as i64).into(), crate::server::now().into()],
    )
    .await?;
    let row = db::query_one(&txn, "SELECT id FROM certificate_requests WHERE destination = ? AND csr = ?", [cluster.into(), csr.into()])
        .await?
        .ok_or_else(|| AppError::Internal("the certificate request was not recorded".into()))?;
    let id: i64 = row.try_get_by_index(0)?;
    txn.commit().await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let row = db::query_one(ctx.db, "SELECT certificate, api_server, api_server_ca, error FROM certificate_requests WHERE id = ?", [id.into()]).await?;
        let Some(row) = row else { break Err(AppError::Internal("the certificate request vanished".into())) };
        let certificate: String = row.try_get_by_index(0)?;
        let error: String = row.try_get_by_index(3)?;
        if !error.is_empty() {
            break Err(AppError::Conflict(format!("cluster {cluster} did not sign the certificate: {error}")));
        }
        if !certificate.is_empty() {
            break Ok(BreakGlass {
                certificate_pem: certificate,
                key_pem: key_pem.clone(),
                api_server: row.try_get_by_index(1)?,
                api_server_ca: row.try_get_by_index(2)?,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(AppError::Unavailable(format!(
                "cluster {cluster} did not sign a certificate within {} seconds: is its connector running?",
                WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let txn = db::begin_write(ctx.db).await?;
    db::execute(&txn, "DELETE FROM certificate_requests WHERE id = ?", [id.into()]).await?;
    txn.commit().await?;
    answer
}

/// O of the user's certificate for `cluster`: their groups with a current grant on it (the groups the
/// connector binds there), without `system:` groups, sorted.
pub async fn subject_groups(db: &impl ConnectionTrait, user_id: i64, cluster: &str) -> AppResult<Vec<String>> {
    // by the names clusters know groups by (a provider's as `<provider>:<key>`)
    let rows = db::query_all(
        db,
        &format!(
            "SELECT DISTINCT {} FROM grants g \
               JOIN groups gr ON gr.id = g.subject_id \
               JOIN group_members m ON m.group_id = gr.id \
             WHERE g.subject_kind = 'group' AND g.destination = ? AND m.user_id = ? AND {} \
               AND (g.expires_at IS NULL OR g.expires_at > ?)",
            super::groups::CLUSTER_NAME,
            super::groups::KEYED
        ),
        [cluster.into(), user_id.into(), crate::server::now().into()],
    )
    .await?;
    let mut groups = rows.into_iter().map(|r| r.try_get_by_index::<String>(0)).collect::<Result<Vec<_>, _>>()?;
    groups.retain(|g| !is_kubernetes_system_name(g));
    groups.sort();
    Ok(groups)
}

/// The requests the cluster's connector has yet to answer (younger than the wait, so that a request
/// nobody waits for any more is not signed), each with the subject and lifetime limit its CSR must
/// keep to: the connector checks the CSR against them, so a request row written by other means than
/// [`issue`] is not signed.
pub async fn pending(db: &impl ConnectionTrait, cluster: &str) -> AppResult<Vec<CertificateRequest>> {
    let since = crate::server::now() - WAIT.as_millis() as i64;
    let rows = db::query_all(
        db,
        "SELECT r.id, r.csr, r.expiration_secs, r.user_id, COALESCE(u.email, '') FROM certificate_requests r \
           LEFT JOIN users u ON u.id = r.user_id \
         WHERE r.destination = ? AND r.certificate = '' AND r.error = '' AND r.created_at > ? ORDER BY r.id",
        [cluster.into(), since.into()],
    )
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let max_expiration_secs = super::settings::token_max_lifetime(db).await?.as_secs() as i64;
    let mut requests = Vec::new();
    for r in rows {
        requests.push(CertificateRequest {
            id: r.try_get_by_index(0)?,
            csr: r.try_get_by_index(1)?,
            expiration_secs: r.try_get_by_index(2)?,
            groups: subject_groups(db, r.try_get_by_index(3)?, cluster).await?,
            user: r.try_get_by_index(4)?,
            max_expiration_secs,
        });
    }
    Ok(requests)
}

/// The connector's answer: the signed certificate (or why the cluster refused).
pub async fn complete(ctx: Ctx<'_>, cluster: &str, id: i64, answer: &IssuedCertificate) -> AppResult<()> {
    ctx.require_connector_for("destinations.certificate", cluster).await?;
    if answer.error.is_empty() && !answer.certificate.contains("BEGIN CERTIFICATE") {
        return Err(AppError::field("certificate", "a PEM certificate, or an error"));
    }
    let error: String = answer.error.chars().take(500).collect();
    let txn = db::begin_write(ctx.db).await?;
    let updated = db::execute(
        &txn,
        "UPDATE certificate_requests SET certificate = ?, api_server = ?, api_server_ca = ?, error = ? \
         WHERE id = ? AND destination = ? AND certificate = '' AND error = ''",
        [
            answer.certificate.clone().into(),
            answer.api_server.clone().into(),
            answer.api_server_ca.clone().into(),
            error.clone().into(),
            id.into(),
            cluster.into(),
        ],
    )
    .await?;
    if updated > 0 && !answer.error.is_empty() {
        // the connector refused (a CSR unlike its request) or the cluster did
        audit::record(&txn, ctx.actor, "destinations.certificate", cluster, audit::Outcome::Denied, &error).await?;
    }
    txn.commit().await?;
    if updated == 0 {
        return Err(AppError::NotFound(format!("certificate request {id} of cluster {cluster}")));
    }
    Ok(())
}
