//! A cluster's connector endpoints: register and heartbeat, the bindings long poll, the proxied
//! requests' audit events, and the answers to break-glass certificate requests. The caller is a
//! connector key of that cluster (or an infra admin), decided by the services.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{ApiJson, ApiQuery};
use crate::model::{DestinationRegistration, IssuedCertificate, ProxiedRequest};
use crate::server::auth::actor::ConnectorCaller;
use crate::server::error::AppResult;
use crate::server::services::{Ctx, audit, bindings, certificates, destinations};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/destinations/register", post(register_destination))
        .route("/destinations/heartbeat", post(register_destination))
        .route("/destinations/{name}/bindings", get(destination_bindings))
        .route("/destinations/{name}/audit", post(destination_audit))
        .route("/destinations/{name}/certificates/{id}", post(destination_certificate))
}

async fn register_destination(
    State(s): State<AppState>,
    ConnectorCaller(a): ConnectorCaller,
    ApiJson(body): ApiJson<DestinationRegistration>,
) -> AppResult<impl IntoResponse> {
    Ok(Json(destinations::register(Ctx::new(&s.db, &a), body).await?))
}

#[derive(Deserialize)]
struct BindingsQuery {
    /// the version the connector has; the answer waits until the bindings differ from it
    #[serde(default)]
    version: String,
    /// seconds to wait for a change (at most 30)
    #[serde(default)]
    wait: u64,
}

async fn destination_bindings(
    State(s): State<AppState>,
    ConnectorCaller(a): ConnectorCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<BindingsQuery>,
) -> AppResult<impl IntoResponse> {
    let wait = std::time::Duration::from_secs(q.wait);
    Ok(Json(bindings::wait_for_change(Ctx::new(&s.db, &a), &name, &q.version, wait).await?))
}

#[derive(Deserialize, Serialize)]
struct Recorded {
    recorded: usize,
}

async fn destination_audit(
    State(s): State<AppState>,
    ConnectorCaller(a): ConnectorCaller,
    Path(name): Path<String>,
    ApiJson(events): ApiJson<Vec<ProxiedRequest>>,
) -> AppResult<impl IntoResponse> {
    let recorded = audit::record_proxied(Ctx::new(&s.db, &a), &name, &events).await?;
    Ok(Json(Recorded { recorded }))
}

#[derive(Serialize)]
struct CertificateRecorded {
    recorded: bool,
}

/// The connector's answer to a break-glass certificate request.
async fn destination_certificate(
    State(s): State<AppState>,
    ConnectorCaller(a): ConnectorCaller,
    Path((name, id)): Path<(String, i64)>,
    ApiJson(answer): ApiJson<IssuedCertificate>,
) -> AppResult<impl IntoResponse> {
    certificates::complete(Ctx::new(&s.db, &a), &name, id, &answer).await?;
    Ok(Json(CertificateRecorded { recorded: true }))
}
