//! A Kubernetes API **test double** (not Kubernetes): an HTTPS server with its own CA that speaks the real
//! wire protocol for what the product and kubectl use: discovery, namespaces and pods (with `log`, `exec`
//! and `portforward`), RBAC objects with label selectors, watches and real RBAC evaluation of impersonated requests,
//! SelfSubjectReview / SelfSubjectAccessReview / SelfSubjectRulesReview, and CertificateSigningRequests with
//! approval and signing. State is in memory. See docs/kube-test-apiserver.md.
//!
//! - [`certs`]: the CA, the serving certificate, CSR signing, client-certificate identities
//! - [`tls`]: the HTTPS listener and connections
//! - [`identity`]: authentication (tokens, client certificates) and impersonation
//! - [`rbac`]: RBAC evaluation; [`request`]: request attributes from URLs
//! - [`store`]: objects, resourceVersions and events; [`seed`]: the initial objects
//! - [`handlers`]: the request pipeline; [`crud`]: the generic verbs; [`watch`], [`pods`], [`reviews`], [`csr`]: the rest
//! - [`spdy`]: port-forward's SPDY/3.1 over a websocket
//! - [`protobuf`]: kubectl's protobuf request bodies; [`discovery`], [`table`]: what kubectl reads besides objects

pub mod certs;
pub mod crud;
pub mod csr;
pub mod discovery;
pub mod handlers;
pub mod identity;
pub mod kubeconfig;
pub mod object;
pub mod patch;
pub mod pods;
pub mod protobuf;
pub mod rbac;
pub mod request;
pub mod resources;
pub mod reviews;
pub mod seed;
pub mod selector;
pub mod spdy;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod validate;
pub mod watch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use certs::Ca;
use identity::{Authenticator, Identity};
use kubeconfig::Credentials;
use rbac::Authorizer;
use store::Store;

/// The connector's service account: bound to cluster-admin, and so the only identity that may impersonate.
pub const CONNECTOR_USER: &str = "system:serviceaccount:infra:infra-connector";
/// The administrator: group `system:masters` (every permission except impersonation here).
pub const ADMIN_USER: &str = "kubernetes-admin";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("{0}")]
    Pem(String),
}

pub struct Options {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where to write ca.crt, ca.key and the kubeconfigs (created if missing).
    pub dir: PathBuf,
}

/// Shared by every request.
pub struct App {
    pub store: Arc<Store>,
    pub authn: Authenticator,
    pub authz: Authorizer,
    pub ca: Ca,
    pub discovery: discovery::Discovery,
}

pub struct TestApiServer {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub connector_token: String,
    pub admin_token: String,
    pub dir: PathBuf,
    app: Arc<App>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestApiServer {
    /// Binds, writes `ca.crt`, `ca.key`, `connector.kubeconfig` and `admin.kubeconfig` to `opts.dir`, and
    /// serves in a background task until [`TestApiServer::shutdown`] (or until dropped with the runtime).
    pub async fn start(opts: Options) -> Result<TestApiServer, Error> {
        let dir = opts.dir;
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
        let ca = Ca::load_or_create(&dir)?;
        let listener = tokio::net::TcpListener::bind(opts.listen).await.map_err(|source| Error::Bind { addr: opts.listen, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { addr: opts.listen, source })?;
        let config = tls::server_config(&ca, addr.ip())?;
        let url = match addr {
            SocketAddr::V6(a) if a.ip().is_unspecified() => format!("https://[::1]:{}", a.port()),
            SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
            SocketAddr::V4(a) if a.ip().is_unspecified() => format!("https://127.0.0.1:{}", a.port()),
            SocketAddr::V4(a) => format!("https://{a}"),
        };

        let store = Arc::new(Store::default());
        seed::seed(&store);
        let (connector_token, admin_token) = (random_token(), random_token());
        let authn = Authenticator::default();
        authn.add_token(connector_token.clone(), Identity::service_account(seed::CONNECTOR_NAMESPACE, seed::CONNECTOR_ACCOUNT));
        authn.add_token(admin_token.clone(), Identity::new(ADMIN_USER, [rbac::MASTERS]));
        let server_address = url.trim_start_matches("https://").to_string();
        let ca_pem = ca.cert_pem.clone();
        let app = Arc::new(App { authz: Authorizer::new(store.clone()), store, authn, discovery: discovery::Discovery::new(&server_address), ca });
        let write =
            |file: &str, user: &str, token: &str| certs::write_private(&dir.join(file), &kubeconfig::render(&url, &ca_pem, user, Credentials::Token(token)));
        write("connector.kubeconfig", "infra-connector", &connector_token)?;
        write("admin.kubeconfig", ADMIN_USER, &admin_token)?;

        let router = axum::Router::new().fallback(handlers::handle).with_state(app.clone());
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(tls::serve(listener, config, router, stop));
        tracing::info!(%url, dir = %dir.display(), "kube-test-apiserver: serving (a Kubernetes API test double)");
        Ok(TestApiServer { url, addr, ca_pem, connector_token, admin_token, dir, app, shutdown, task })
    }

    pub fn connector_kubeconfig(&self) -> PathBuf {
        self.dir.join("connector.kubeconfig")
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// Accepts another bearer token for `user` (plus `system:authenticated`): a direct identity for tests
    /// that do not go through impersonation.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        self.app.authn.add_token(token.to_string(), Identity::new(user, groups.iter().copied()));
    }

    /// Writes a kubeconfig for this server with the given credentials (e.g. a client certificate).
    pub fn write_kubeconfig(&self, path: &Path, user: &str, credentials: Credentials) -> Result<(), Error> {
        certs::write_private(path, &kubeconfig::render(&self.url, &self.ca_pem, user, credentials))
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}
