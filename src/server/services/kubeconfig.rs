//! Kubeconfigs for the signed-in user: one context per cluster they can reach, and one per granted
//! namespace (with that namespace set), named `infra:<cluster>[.<namespace>]`, each pointing at the
//! cluster's connector proxy with its CA embedded. The console's download and `infra login` both
//! come here, so they write the same file.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use super::{Actor, Ctx, audit, certificates, destinations, grants, keys, settings, tokens};
use crate::model::{CredentialStyle, INFRA_RESOURCE, KubeconfigFile, KubeconfigOptions, KubeconfigRequest, Resource};
use crate::server::auth::signing::Signer;
use crate::server::error::{AppError, AppResult};

/// The prefix of every context, cluster and user entry infra writes; the CLI touches no other entry.
pub const PREFIX: &str = "infra:";

/// What kubectl prints when the CLI is missing.
const INSTALL_HINT: &str = "This kubeconfig uses the infra CLI for short-lived tokens: install it, then run `infra login`.";

/// Break-glass: who may download a client certificate the cluster signs, which bypasses the proxy and
/// cannot be revoked. Infra admins only; stated here once, for the Kubeconfig page and for [`build`].
pub fn may_break_glass(actor: &Actor) -> bool {
    actor.is_admin()
}

/// What the Kubeconfig page offers this person.
pub async fn options(ctx: Ctx<'_>) -> AppResult<KubeconfigOptions> {
    let max = settings::token_max_lifetime(ctx.db).await?;
    Ok(KubeconfigOptions { max_lifetime_secs: max.as_secs() as i64, can_break_glass: may_break_glass(ctx.actor) })
}

/// The clusters (with their granted namespaces) the user can reach now, among `wanted` (all when empty).
async fn reachable(ctx: Ctx<'_>, wanted: &[String]) -> AppResult<BTreeMap<String, Vec<String>>> {
    let mut clusters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in grants::access_of(ctx.db, ctx.actor.user_id).await? {
        let Ok(resource) = Resource::parse(&entry.resource) else { continue };
        if resource.destination == INFRA_RESOURCE {
            continue;
        }
        let namespaces = clusters.entry(resource.destination).or_default();
        if !resource.namespace.is_empty() && !namespaces.contains(&resource.namespace) {
            namespaces.push(resource.namespace);
        }
    }
    for w in wanted {
        if !clusters.contains_key(w.trim()) {
            return Err(AppError::Forbidden(format!("no access to {}: ask an admin for a grant", w.trim())));
        }
    }
    if !wanted.is_empty() {
        clusters.retain(|name, _| wanted.iter().any(|w| w.trim() == name));
    }
    Ok(clusters)
}

/// Builds the kubeconfig. Every download is an audit event (`kubeconfig.download`).
pub async fn build(ctx: Ctx<'_>, signer: &Signer, issuer: &str, server_url: &str, req: &KubeconfigRequest) -> AppResult<KubeconfigFile> {
    let clusters = reachable(ctx, &req.clusters).await?;
    let max = settings::token_max_lifetime(ctx.db).await?;
    let (lifetime, token_key) = match req.style {
        CredentialStyle::Exec => (None, None),
        CredentialStyle::Token => {
            let secs = req.lifetime_secs.unwrap_or(3600);
            if secs < 60 || secs > max.as_secs() as i64 {
                return Err(AppError::field("lifetime_secs", format!("between 60 seconds and {} (the maximum an admin set)", human(max))));
            }
            if clusters.is_empty() {
                return Err(AppError::Forbidden("no access to any cluster: ask an admin for a grant".into()));
            }
            // the tokens name a key of their own, so that revoking it (Settings → Access keys) refuses them
            let names: Vec<&str> = clusters.keys().map(String::as_str).collect();
            let key = keys::create_for_kubeconfig(ctx, &format!("kubeconfig token for {}", names.join(", ")), secs).await?;
            (Some(Duration::from_secs(secs as u64)), Some(key))
        }
        CredentialStyle::Certificate => {
            ctx.check(may_break_glass(ctx.actor), "kubeconfig.certificate", &req.clusters.join(",")).await?;
            let secs = req.lifetime_secs.unwrap_or(3600);
            let min = certificates::MIN_LIFETIME;
            if secs < min.as_secs() as i64 || secs > max.as_secs() as i64 {
                return Err(AppError::field("lifetime_secs", format!("between {} and {} (the maximum an admin set)", human(min), human(max))));
            }
            if clusters.is_empty() {
                return Err(AppError::Forbidden("no access to any cluster: ask an admin for a grant".into()));
            }
            (Some(Duration::from_secs(secs as u64)), None)
        }
    };
    let mut kube_clusters = Vec::new();
    let mut users = Vec::new();
    let mut contexts = Vec::new();
    let mut expires_at = None;
    for (name, namespaces) in &clusters {
        let Some(d) = destinations::find_by_name(ctx.db, name).await? else { continue };
        if d.endpoint.is_empty() || d.ca.is_empty() {
            continue; // pending: its connector has not registered yet
        }
        let entry = format!("{PREFIX}{name}");
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        let mut cluster = json!({"server": d.endpoint, "certificate-authority-data": b64(&d.ca)});
        let user = match (&lifetime, &token_key) {
            (Some(lifetime), None) => {
                // break-glass: straight to the API server, with a certificate the cluster signed
                let signed = certificates::issue(ctx, name, *lifetime).await?;
                expires_at = Some(crate::server::now() + lifetime.as_millis() as i64);
                cluster = json!({"server": signed.api_server});
                if !signed.api_server_ca.is_empty() {
                    cluster["certificate-authority-data"] = b64(&signed.api_server_ca).into();
                }
                json!({"client-certificate-data": b64(&signed.certificate_pem), "client-key-data": b64(&signed.key_pem)})
            }
            (Some(lifetime), Some(key_id)) => {
                let issued = tokens::issue_for_kubeconfig(ctx, signer, issuer, name, *lifetime, key_id).await?;
                expires_at = Some(issued.expires_at);
                json!({"token": issued.token})
            }
            _ => exec_user(req.command.as_deref().unwrap_or("infra"), name, server_url),
        };
        kube_clusters.push(json!({"name": entry, "cluster": cluster}));
        users.push(json!({"name": entry, "user": user}));
        contexts.push(json!({"name": entry, "context": {"cluster": entry, "user": entry}}));
        for ns in namespaces {
            contexts.push(json!({"name": format!("{entry}.{ns}"), "context": {"cluster": entry, "user": entry, "namespace": ns}}));
        }
    }
    let names: Vec<String> = contexts.iter().filter_map(|c| c["name"].as_str().map(String::from)).collect();
    let current = names.first().cloned().unwrap_or_default();
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": kube_clusters,
        "users": users,
        "contexts": contexts,
        "current-context": current,
        "preferences": {},
    });
    let style = match req.style {
        CredentialStyle::Exec => "exec plugin".to_string(),
        CredentialStyle::Token => format!("token for {}", human(lifetime.unwrap_or_default())),
        CredentialStyle::Certificate => format!("break-glass client certificate for {} (cannot be revoked)", human(lifetime.unwrap_or_default())),
    };
    let target: Vec<&str> = clusters.keys().map(String::as_str).collect();
    audit::record(ctx.db, ctx.actor, "kubeconfig.download", &target.join(","), audit::Outcome::Success, &style).await?;
    Ok(KubeconfigFile { filename: "infra.kubeconfig".into(), contexts: names, kubeconfig, expires_at })
}

/// The kubeconfig user that has kubectl run infra's credential plugin, `command tokens --cluster
/// <cluster>`. The CLI writes its own with this too, naming its own binary.
pub fn exec_user(command: &str, cluster: &str, server_url: &str) -> serde_json::Value {
    json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": command,
        "args": ["tokens", "--cluster", cluster],
        "env": [{"name": "INFRA_SERVER", "value": server_url}],
        "interactiveMode": "Never",
        "provideClusterInfo": false,
        "installHint": INSTALL_HINT,
    }})
}

/// "1 hour", "30 days", "90 seconds".
pub fn human(d: Duration) -> String {
    crate::model::human_duration(d.as_secs())
}
