//! `infra connector`: runs in (or beside) one cluster. It registers the cluster with the server and
//! heartbeats, reports namespaces and roles as they change, keeps RBAC bindings in step with the grants
//! (a long poll, so a change arrives within a second or so), and runs the authenticating proxy.

pub mod certificates;
pub mod cluster;
pub mod proxy;
pub mod reconcile;
pub mod server_api;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use self::cluster::Facts;
use self::proxy::{Proxy, Upstream};
use self::server_api::ServerApi;
use crate::model::{DesiredBindings, DestinationRegistration};

#[derive(Clone, Debug, clap::Args)]
pub struct ConnectorConfig {
    /// URL of `infra server`.
    #[arg(long, env = "INFRA_SERVER")]
    pub server: String,

    /// The connector key the console made for this cluster.
    #[arg(long, env = "INFRA_ACCESS_KEY", hide_env_values = true)]
    pub access_key: String,

    /// The cluster's name in Infra (lowercase letters, digits and '-').
    #[arg(long, env = "INFRA_CONNECTOR_NAME")]
    pub name: String,

    /// A kubeconfig for the cluster. Default: in-cluster configuration, else $KUBECONFIG or ~/.kube/config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Where the proxy listens.
    #[arg(long, env = "INFRA_CONNECTOR_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// The proxy's URL as kubectl reaches it. Default: https://<listen address> (127.0.0.1 for 0.0.0.0).
    #[arg(long, env = "INFRA_CONNECTOR_ENDPOINT")]
    pub endpoint: Option<String>,

    /// Where the proxy's CA is kept, so kubeconfigs stay valid across restarts (in a cluster, mount a Secret here).
    #[arg(long, env = "INFRA_CONNECTOR_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,

    /// The Kubernetes API server's URL as users reach it, for break-glass client certificates (they go
    /// to the API server directly). Default: the URL the connector itself uses.
    #[arg(long, env = "INFRA_API_SERVER_URL")]
    pub api_server_url: Option<String>,

    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, env = "INFRA_SERVER_CA")]
    pub server_ca: Option<PathBuf>,

    /// Seconds between heartbeats (namespace and role changes are sent within seconds regardless).
    #[arg(long, default_value_t = 15)]
    pub heartbeat_secs: u64,

    /// Seconds between full reconciles that repair hand edits, besides the ones grant changes trigger.
    #[arg(long, default_value_t = 10)]
    pub resync_secs: u64,
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/infra-connector"),
        None => PathBuf::from(".infra-connector"),
    }
}

/// How often the connector looks for namespace and role changes.
const FACTS_EVERY: Duration = Duration::from_secs(3);
/// The bindings long poll waits this long for a change before it asks again.
const LONG_POLL: Duration = Duration::from_secs(25);

/// What the connector's loops share.
struct Shared {
    facts: Mutex<Facts>,
    problems: Mutex<Vec<String>>,
    /// wakes the heartbeat when the facts or problems change
    report_now: Notify,
    /// wakes the reconciler when the facts change (a namespace appeared, say)
    reconcile_now: Notify,
}

pub async fn run(config: ConnectorConfig) -> Result<(), String> {
    crate::tls::install_crypto_provider();
    let name = crate::server::services::destinations::validate_name(&config.name).map_err(|e| format!("--name: {e}"))?;
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await.map_err(|e| format!("cannot use {}: {e}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| format!("no cluster configuration found: {e}"))?,
    };
    let client = kube::Client::try_from(kube_config.clone()).map_err(|e| format!("cannot create the Kubernetes client: {e}"))?;
    let upstream = Upstream::from_kube_config(&kube_config)?;
    let direct = certificates::DirectAccess::new(&kube_config, config.api_server_url.as_deref());
    let cluster_id = cluster_id(&kube_config);

    let server_ca = match &config.server_ca {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
        None => None,
    };
    let api = ServerApi::new(&config.server, &config.access_key, server_ca.as_deref())?;
    let issuer = retry("ask the server for its token issuer", || api.discovery()).await.issuer;

    let endpoint = config.endpoint.clone().unwrap_or_else(|| {
        let host = if config.listen.ip().is_unspecified() { "127.0.0.1".to_string() } else { config.listen.ip().to_string() };
        format!("https://{host}:{}", config.listen.port())
    });
    let ca = crate::tls::Ca::load_or_create(&config.data_dir, &format!("proxy-{name}"), &format!("infra connector {name}"))?;
    let server_cert = ca.issue_server(&certificate_names(&endpoint))?;
    let tls = crate::tls::server_config(&server_cert)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;

    let created = retry("install the product's ClusterRoles", || cluster::ensure_product_roles(&client)).await;
    if !created.is_empty() {
        tracing::info!(roles = ?created, "installed ClusterRoles");
    }
    let version = retry("read the Kubernetes version", || cluster::kubernetes_version(&client)).await;
    let facts = retry("list namespaces and roles", || cluster::facts(&client)).await;
    let shared = Arc::new(Shared { facts: Mutex::new(facts), problems: Mutex::new(Vec::new()), report_now: Notify::new(), reconcile_now: Notify::new() });
    let registration = |shared: &Shared| DestinationRegistration {
        name: name.clone(),
        unique_id: cluster_id.clone(),
        endpoint: endpoint.clone(),
        ca: ca.cert_pem.clone(),
        kubernetes_version: version.clone(),
        connector_version: env!("CARGO_PKG_VERSION").to_string(),
        namespaces: shared.facts.lock().map(|f| f.namespaces.clone()).unwrap_or_default(),
        roles: shared.facts.lock().map(|f| f.roles.clone()).unwrap_or_default(),
        problems: shared.problems.lock().map(|p| p.clone()).unwrap_or_default(),
    };
    let first = registration(&shared);
    retry("register the cluster", || api.register(&first)).await;
    println!("infra connector: cluster {name} registered with {}; proxy at {endpoint}", config.server);

    let verifier = Arc::new(proxy::verify::Verifier::new(api.clone(), &issuer, &name));
    verifier.refresh().await;
    let audit = proxy::audit::spawn(api.clone(), name.clone());
    let proxy = Arc::new(Proxy::new(verifier, upstream, audit));
    tokio::spawn(proxy::serve(listener, tls, proxy.clone()));

    // namespaces and roles: looked at every few seconds, reported when they change
    {
        let (client, shared) = (client.clone(), shared.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FACTS_EVERY).await;
                match cluster::facts(&client).await {
                    Ok(fresh) => {
                        let changed = shared.facts.lock().map(|mut f| std::mem::replace(&mut *f, fresh.clone()) != fresh).unwrap_or(false);
                        if changed {
                            shared.report_now.notify_one();
                            shared.reconcile_now.notify_one();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot list namespaces and roles"),
                }
            }
        });
    }

    // grants -> bindings
    {
        let (client, shared, api, name) = (client.clone(), shared.clone(), api.clone(), name.clone());
        let resync = Duration::from_secs(config.resync_secs.max(1));
        tokio::spawn(async move { bindings_loop(client, api, name, shared, proxy, direct, resync).await });
    }

    // heartbeat
    let every = Duration::from_secs(config.heartbeat_secs.max(1));
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep(every) => {}
            _ = shared.report_now.notified() => {}
        }
        if let Err(e) = api.register(&registration(&shared)).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

/// Open streams are re-checked against RBAC at least this often, besides after every change.
const RECHECK_STREAMS_EVERY: Duration = Duration::from_secs(60);

/// Long-polls the server for the desired bindings and reconciles on every change, on every facts
/// change, and every `resync` to repair hand edits. Open streams through the proxy are closed at once
/// when their key or user is revoked, and re-checked against RBAC after each reconcile that follows a
/// change (and every `RECHECK_STREAMS_EVERY`).
async fn bindings_loop(
    client: kube::Client,
    api: ServerApi,
    name: String,
    shared: Arc<Shared>,
    proxy: Arc<Proxy>,
    direct: certificates::DirectAccess,
    resync: Duration,
) {
    let verifier = proxy.verifier.clone();
    let (tx, mut rx) = tokio::sync::watch::channel(DesiredBindings::default());
    {
        let (api, name, client, streams) = (api.clone(), name.clone(), client.clone(), proxy.streams.clone());
        tokio::spawn(async move {
            let mut version = String::new();
            let mut answered = std::collections::BTreeSet::new();
            loop {
                match api.bindings(&name, &version, LONG_POLL).await {
                    Ok(desired) => {
                        if desired.version != version {
                            // revocations first: the proxy refuses at once, before any reconcile
                            verifier.set_access(&desired);
                            streams.close_revoked(&verifier);
                            // break-glass certificate requests, each answered once
                            answered.retain(|id| desired.certificates.iter().any(|r| r.id == *id));
                            for request in desired.certificates.iter().filter(|r| answered.insert(r.id)) {
                                let task =
                                    certificates::answer(client.clone(), api.clone(), name.clone(), direct.clone(), request.clone(), desired.members.clone());
                                tokio::spawn(task);
                            }
                            version = desired.version.clone();
                            let _ = tx.send(desired);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot fetch the grants; retrying");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
    }
    let mut ready = false;
    let (mut rechecked_version, mut rechecked_at) = (None::<String>, tokio::time::Instant::now());
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() { return; }
                ready = true;
            }
            _ = shared.reconcile_now.notified() => {}
            _ = tokio::time::sleep(resync) => {}
        }
        if !ready {
            continue; // nothing from the server yet: never delete bindings on an empty guess
        }
        let desired = rx.borrow_and_update().clone();
        let facts = shared.facts.lock().map(|f| f.clone()).unwrap_or_default();
        match reconcile::reconcile(&client, &name, &desired.bindings, &facts).await {
            Ok(report) => {
                if report.changed() {
                    tracing::info!(created = report.created, updated = report.updated, deleted = report.deleted, "bindings reconciled");
                }
                // the cluster's RBAC now matches the grants: what it no longer allows, it no longer streams
                let fresh = rechecked_version.as_deref() != Some(desired.version.as_str());
                if fresh || report.changed() || rechecked_at.elapsed() >= RECHECK_STREAMS_EVERY {
                    proxy.recheck_streams().await;
                    (rechecked_version, rechecked_at) = (Some(desired.version.clone()), tokio::time::Instant::now());
                }
                let changed = shared.problems.lock().map(|mut p| std::mem::replace(&mut *p, report.problems.clone()) != report.problems).unwrap_or(false);
                if changed {
                    shared.report_now.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile failed; will retry"),
        }
    }
}

/// Keeps trying `what` (with a growing pause) until it succeeds: the server or the cluster may start later.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let mut pause = Duration::from_millis(500);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                eprintln!("infra connector: cannot {what}: {e}; retrying in {}s", pause.as_secs_f32());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(15));
            }
        }
    }
}

/// The cluster's identity: a hash of its CA, else of its URL.
fn cluster_id(config: &kube::Config) -> String {
    let material = config.root_cert.as_ref().and_then(|certs| certs.first().cloned()).unwrap_or_else(|| config.cluster_url.to_string().into_bytes());
    Sha256::digest(&material).iter().map(|b| format!("{b:02x}")).collect()
}

/// The names the proxy's certificate must carry: the endpoint's host, and the loopback names.
fn certificate_names(endpoint: &str) -> Vec<String> {
    // parsed, not split: an endpoint without a port, or with a path, still names just its host
    let host = reqwest::Url::parse(endpoint).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for name in [host.trim_matches(['[', ']']), "localhost", "127.0.0.1"] {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::certificate_names;

    #[test]
    fn the_proxy_certificate_names_the_endpoint_host_whatever_its_form() {
        let names = |endpoint: &str| certificate_names(endpoint);
        assert_eq!(names("https://proxy.example.com"), ["proxy.example.com", "localhost", "127.0.0.1"]);
        assert_eq!(names("https://proxy.example.com:8443/"), ["proxy.example.com", "localhost", "127.0.0.1"]);
        assert_eq!(names("https://proxy.example.com/some/path"), ["proxy.example.com", "localhost", "127.0.0.1"]);
        assert_eq!(names("https://[2001:db8::7]:8443"), ["2001:db8::7", "localhost", "127.0.0.1"]);
        assert_eq!(names("https://127.0.0.1:8443"), ["127.0.0.1", "localhost"]);
    }
}
