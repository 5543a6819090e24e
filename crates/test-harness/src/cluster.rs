//! `infra server` in this process with its first admin: on a real port over HTTPS ([`Infra`]), or
//! prepared only ([`server_config`], [`prepare`], [`first_admin`]) for tests that call its router
//! directly; the Kubernetes API test server, and the connector as it runs in production (in this process).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use infra::model::NewAccessKey;
use infra::server::auth::actor_for_user;
use infra::server::config::ServerConfig;
use infra::server::services::{Ctx, keys, users};
use infra::server::state::AppState;
use kube::Client;
use kube_test_apiserver::{Options, TestApiServer};
use serde_json::{Value, json};

pub const ADMIN: &str = "admin@infra.local";
/// The first admin's password, set at the first start in place of the one-time password.
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub async fn test_api_server(dir: &Path) -> TestApiServer {
    TestApiServer::start(Options { listen: "127.0.0.1:0".parse().unwrap(), dir: dir.to_path_buf() }).await.expect("the Kubernetes API test server starts")
}

pub async fn kube_client(kubeconfig: &Path) -> Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default()).await.expect("config");
    Client::try_from(config).expect("client")
}

/// `infra server` on a real port, with its first admin and an admin key.
pub struct Infra {
    pub url: String,
    pub state: AppState,
    pub admin: String,
    pub http: reqwest::Client,
    /// the server's own CA, which it serves HTTPS with, and that CA's fingerprint
    pub ca_file: PathBuf,
    pub fingerprint: String,
}

impl Infra {
    pub async fn start(dir: &Path) -> Infra {
        Infra::start_on(dir, None).await
    }

    /// On the given database (`postgres://…`); SQLite in `dir` when `None`.
    pub async fn start_on(dir: &Path, database_url: Option<String>) -> Infra {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let config = ServerConfig { url: Some(url.clone()), no_tls: false, ..server_config(dir, database_url) };
        let https = infra::server::https::setup(&config, listener.local_addr().unwrap()).expect("HTTPS setup").expect("HTTPS");
        let ca_file = https.ca_file.clone().expect("the server's own CA");
        let (state, one_time) = prepare(config).await;
        let (_, admin) = first_admin(&state, &one_time.expect("the first start creates the first admin")).await;
        let app = infra::server::web::router(state.clone());
        tokio::spawn(infra::server::https::serve(listener, app, Some(https.rustls), std::future::pending()));
        let http = trusting(&ca_file).build().unwrap();
        Infra { url, state, admin, http, ca_file, fingerprint: https.fingerprint }
    }

    /// An HTTP client builder that trusts the server's CA.
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        trusting(&self.ca_file)
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("server answers");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    /// A user with a password, and an access key of theirs.
    pub async fn user(&self, email: &str) -> (i64, String) {
        let (status, body) = self.post("/api/users", &self.admin, json!({"email": email, "password": "user-password-1"})).await;
        assert_eq!(status, 201, "{body}");
        let id = body["user"]["id"].as_i64().unwrap();
        (id, key_for(&self.state, id).await)
    }

    pub async fn token(&self, key: &str, cluster: &str) -> String {
        let (status, body) = self.post("/api/tokens", key, json!({"destination": cluster})).await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

fn trusting(ca_file: &Path) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_file).expect("the server's CA")).expect("a PEM certificate");
    reqwest::Client::builder().add_root_certificate(ca)
}

/// The harness' server settings: data in `dir`, the given database (`postgres://…`, or SQLite in `dir`
/// when `None`), plain HTTP and no public URL (what a router called in process needs; [`Infra`] sets both).
pub fn server_config(dir: &Path, database_url: Option<String>) -> ServerConfig {
    ServerConfig {
        data_dir: dir.to_path_buf(),
        database_url,
        listen: None,
        url: None,
        admin_email: ADMIN.into(),
        leptos_config: "Leptos.toml".into(),
        secure_cookies: None,
        tls_cert: None,
        tls_key: None,
        no_tls: true,
        verify_interval_secs: 300,
        trusted_proxies: Vec::new(),
        session_max_age_hours: 168,
        verify_grace_period_secs: 86_400,
    }
}

/// What `infra server` does before it serves (migrations, keys, the first admin at the first start):
/// the state, and the first admin's one-time password if this start created them.
pub async fn prepare(config: ServerConfig) -> (AppState, Option<String>) {
    let leptos = leptos::config::LeptosOptions::builder().output_name("infra").build();
    infra::server::web::prepare(config, leptos).await.expect("server prepares")
}

/// Replaces the first admin's one-time password with [`ADMIN_PASSWORD`]; their id and an access key.
pub async fn first_admin(state: &AppState, one_time: &str) -> (i64, String) {
    let db = &state.db;
    let admin_id = users::find_by_email(db, ADMIN).await.unwrap().expect("first admin").id;
    let actor = actor_for_user(db, admin_id, "test").await.unwrap();
    users::change_own_password(Ctx::new(db, &actor), one_time, ADMIN_PASSWORD).await.unwrap();
    (admin_id, key_for(state, admin_id).await)
}

/// A new access key of this user.
pub async fn key_for(state: &AppState, user_id: i64) -> String {
    let actor = actor_for_user(&state.db, user_id, "test").await.unwrap();
    keys::create(Ctx::new(&state.db, &actor), &NewAccessKey { name: "k".into(), ttl_secs: None, inactivity_timeout_secs: None }).await.unwrap().access_key
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn start_connector(infra: &Infra, key: &str, name: &str, kubeconfig: &Path, port: u16, data_dir: &Path) -> tokio::task::JoinHandle<()> {
    let config = infra::connector::ConnectorConfig {
        server: infra.url.clone(),
        access_key: key.to_string(),
        name: name.into(),
        kubeconfig: Some(kubeconfig.to_path_buf()),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        endpoint: None,
        data_dir: data_dir.to_path_buf(),
        server_ca: Some(infra.ca_file.clone()),
        api_server_url: None,
        heartbeat_secs: 2,
        resync_secs: 2,
    };
    tokio::spawn(async move {
        if let Err(e) = infra::connector::run(config).await {
            panic!("connector failed: {e}");
        }
    })
}

/// A cluster `prod` whose connector (in this process) has registered: the connector's task, the
/// connector key, and the cluster as the API shows it (endpoint, proxy CA, namespaces ...).
pub async fn connected_prod(infra: &Infra, k8s: &TestApiServer, dir: &Path) -> (tokio::task::JoinHandle<()>, String, Value) {
    let (status, created) = infra.post("/api/destinations/prod/connector-key", &infra.admin, json!({})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["access_key"].as_str().unwrap().to_string();
    let connector = start_connector(infra, &key, "prod", &k8s.connector_kubeconfig(), free_port(), &dir.join("connector"));
    let prod = eventually("the cluster connects", Duration::from_secs(30), || async {
        let (_, d) = infra.get("/api/destinations/prod", &infra.admin).await;
        (d["status"] == "connected").then_some(d)
    })
    .await;
    (connector, key, prod)
}

/// Polls `check` until it returns Some, or fails after `limit` with `what`.
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, limit: Duration, mut check: impl FnMut() -> F) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A kubeconfig for the proxy with this token, as the console and the CLI will write it.
pub fn kubeconfig(dir: &Path, file: &str, endpoint: &str, ca_pem: &str, token: &str) -> PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let path = dir.join(file);
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: {endpoint}\n    certificate-authority-data: {ca}\n\
         users:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: infra:prod\n  context:\n    cluster: prod\n    user: user\n\
         current-context: infra:prod\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}
