//! The Kubeconfig page's download: a file, or back to the page with the error.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Form, Router};

use super::with_error;
use crate::model::{CredentialStyle, KubeconfigRequest};
use crate::server::auth::actor::SignedIn;
use crate::server::error::AppError;
use crate::server::services::{Ctx, kubeconfig};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/kubeconfig/download", post(kubeconfig_download))
}

/// The Kubeconfig page's form: `cluster.<name>=on` per chosen cluster, `style`, `lifetime_secs`.
async fn kubeconfig_download(State(state): State<AppState>, actor: Result<SignedIn, AppError>, Form(form): Form<HashMap<String, String>>) -> Response {
    let Ok(SignedIn(actor)) = actor else {
        return Redirect::to("/login").into_response();
    };
    let clusters: Vec<String> = form.keys().filter_map(|k| k.strip_prefix("cluster.")).map(String::from).collect();
    if clusters.is_empty() {
        return with_error("/kubeconfig", "choose at least one cluster").into_response();
    }
    let style = form.get("style").and_then(|s| CredentialStyle::parse(s)).unwrap_or_default();
    let lifetime_secs = form.get("lifetime_secs").and_then(|v| v.parse().ok());
    let request = KubeconfigRequest { clusters, style, lifetime_secs, command: None };
    let file = match kubeconfig::build(Ctx::new(&state.db, &actor), &state.signer, &state.config.issuer(), &state.public_url, &request).await {
        Ok(file) => file,
        Err(e) => return with_error("/kubeconfig", &e.body().sentence()).into_response(),
    };
    let yaml = match serde_saphyr::to_string(&file.kubeconfig) {
        Ok(y) => y,
        Err(e) => return AppError::Internal(e.to_string()).into_response(),
    };
    (
        [
            (http::header::CONTENT_TYPE, "application/yaml".to_string()),
            (http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", file.filename)),
            (http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        yaml,
    )
        .into_response()
}
