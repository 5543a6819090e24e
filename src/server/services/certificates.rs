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

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Set};

use super::{Ctx, audit};
use crate::model::{CertificateRequest, IssuedCertificate, is_kubernetes_system_name};
use crate::server::db;
use crate::server::db::entities::certificate_request;
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
    let id = certificate_request::ActiveModel {
        destination: Set(cluster.to_string()),
        user_id: Set(ctx.actor.user_id),
        csr: Set(csr),
        expiration_secs: Set(lifetime.as_secs() as i64),
        certificate: Set(String::new()),
        api_server: Set(String::new()),
        api_server_ca: Set(String::new()),
        error: Set(String::new()),
        created_at: Set(crate::server::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?
    .id;
    txn.commit().await?;

    let deadline = tokio::time::Instant::now() + WAIT;
    let answer = loop {
        let row = certificate_request::Entity::find_by_id(id).one(ctx.db).await?;
        let Some(row) = row else { break Err(AppError::Internal("the certificate request vanished".into())) };
        if !row.error.is_empty() {
            break Err(AppError::Conflict(format!("cluster {cluster} did not sign the certificate: {}", row.error)));
        }
        if !row.certificate.is_empty() {
            break Ok(BreakGlass { certificate_pem: row.certificate, key_pem: key_pem.clone(), api_server: row.api_server, api_server_ca: row.api_server_ca });
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
    certificate_request::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    answer
}

/// O of the user's certificate for `cluster`: their groups with a current grant on it (the groups the
/// connector binds there), without `system:` groups, sorted.
pub async fn subject_groups(db: &impl ConnectionTrait, user_id: i64, cluster: &str) -> AppResult<Vec<String>> {
    // by the names clusters know groups by (a provider's as `<provider>:<key>`)
    // raw: a DISTINCT over a three-table join with a computed group name, which the entity API cannot say
    let rows = db::query_all(
        db,
        &format!(
            "SELECT DISTINCT {} AS name FROM grants g \
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
    #[derive(FromQueryResult)]
    struct Row {
        name: String,
    }
    let mut groups: Vec<String> = db::decode::<Row>(&rows)?.into_iter().map(|r| r.name).collect();
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
    // raw: a LEFT JOIN with users for the email, and the entities declare no relations to join by
    let rows = db::query_all(
        db,
        "SELECT r.id AS id, r.csr AS csr, r.expiration_secs AS expiration_secs, r.user_id AS user_id, COALESCE(u.email, '') AS email \
         FROM certificate_requests r \
           LEFT JOIN users u ON u.id = r.user_id \
         WHERE r.destination = ? AND r.certificate = '' AND r.error = '' AND r.created_at > ? ORDER BY r.id",
        [cluster.into(), since.into()],
    )
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let max_expiration_secs = super::settings::token_max_lifetime(db).await?.as_secs() as i64;
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        csr: String,
        expiration_secs: i64,
        user_id: i64,
        email: String,
    }
    let mut requests = Vec::new();
    for r in db::decode::<Row>(&rows)? {
        requests.push(CertificateRequest {
            id: r.id,
            csr: r.csr,
            expiration_secs: r.expiration_secs,
            groups: subject_groups(db, r.user_id, cluster).await?,
            user: r.email,
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
    let updated = certificate_request::Entity::update_many()
        .col_expr(certificate_request::Column::Certificate, Expr::value(answer.certificate.clone()))
        .col_expr(certificate_request::Column::ApiServer, Expr::value(answer.api_server.clone()))
        .col_expr(certificate_request::Column::ApiServerCa, Expr::value(answer.api_server_ca.clone()))
        .col_expr(certificate_request::Column::Error, Expr::value(error.clone()))
        .filter(certificate_request::Column::Id.eq(id))
        .filter(certificate_request::Column::Destination.eq(cluster))
        .filter(certificate_request::Column::Certificate.eq(""))
        .filter(certificate_request::Column::Error.eq(""))
        .exec(&txn)
        .await?
        .rows_affected;
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
