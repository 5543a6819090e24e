//! Service rules and API authorization, through the real router (REST API, sign-in forms, Origin check),
//! each scenario run on SQLite and on a throw-away PostgreSQL.

use test_harness::cluster as harness;
use test_harness::pg;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use harness::{ADMIN, ADMIN_PASSWORD};
use http_body_util::BodyExt;
use infra::server::auth::actor_for_user;
use infra::server::config::ServerConfig;
use infra::server::db;
use infra::server::services::{Ctx, users};
use infra::server::state::AppState;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tower::ServiceExt;

static POSTGRES: OnceLock<pg::TempPostgres> = OnceLock::new();

/// Runs each scenario once per database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("infra.db").display());
                super::$name(super::Server::start(url, dir).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let url = super::POSTGRES.get_or_init(super::pg::TempPostgres::start).new_database();
                super::$name(super::Server::start(url, tempfile::tempdir().expect("temp dir")).await).await
            }
        }
    )*};
}

on_both_databases!(
    first_admin_must_change_password,
    users_rules,
    groups_rules,
    grants_rules,
    last_admin_cannot_be_removed,
    destinations_rules,
    connector_key_stays_in_its_cluster,
    access_keys_rules,
    sign_in_lockout_and_sessions,
    password_change_ends_other_sessions,
    failed_sign_ins_count_atomically_and_per_client,
    device_login_needs_the_typed_code,
    unauthenticated_writes_are_bounded,
    origin_check,
    bad_input_and_paging,
    audit_log,
    typeahead_search,
    concurrent_writes,
    concurrent_creates_of_one_name,
);

/// `infra server` as the harness prepares it, called through its router in this process (no port, no
/// TLS): requests are built as the tests like, with any headers and peer address.
struct Server {
    app: Router,
    state: AppState,
    db: DatabaseConnection,
    config: ServerConfig,
    /// an access key of the first admin
    admin: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    body: Value,
    headers: axum::http::HeaderMap,
}

impl Server {
    async fn start(url: String, dir: tempfile::TempDir) -> Server {
        let (state, one_time) = Self::prepare(&url, &dir).await;
        let one_time = one_time.expect("the first start creates the first admin");
        let (_, admin) = harness::first_admin(&state, &one_time).await;
        let db = state.db.clone();
        let config = (*state.config).clone();
        Server { app: infra::server::web::router(state.clone()), state, db, config, admin, _dir: dir }
    }

    async fn prepare(url: &str, dir: &tempfile::TempDir) -> (AppState, Option<String>) {
        harness::prepare(harness::server_config(dir.path(), Some(url.to_string()))).await
    }

    async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.expect("router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply { status, body, headers }
    }

    /// A JSON API call with an access key (or none).
    async fn call(&self, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = Request::builder().method(method).uri(path).header(header::HOST, "infra.test");
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let req = match body {
            Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }
    async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }
    async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates a user with a password (as the admin) and returns their id and an access key of theirs.
    async fn user(&self, email: &str) -> (i64, String) {
        let r = self.post("/api/users", &self.admin.clone(), json!({"email": email, "password": "user-password-1"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let id = r.body["user"]["id"].as_i64().unwrap();
        (id, self.key_for(id).await)
    }

    async fn key_for(&self, user_id: i64) -> String {
        harness::key_for(&self.state, user_id).await
    }

    async fn count(&self, table: &str) -> u64 {
        db::count(&self.db, &format!("SELECT COUNT(*) FROM {table}"), []).await.unwrap()
    }

    /// Registers a cluster through the API with a fresh connector key.
    async fn cluster(&self, name: &str, namespaces: &[&str]) -> String {
        let r = self.post(&format!("/api/destinations/{name}/connector-key"), &self.admin.clone(), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let key = r.body["access_key"].as_str().unwrap().to_string();
        let r = self.post("/api/destinations/register", &key, registration(name, namespaces)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        key
    }
}

fn registration(name: &str, namespaces: &[&str]) -> Value {
    json!({
        "name": name, "unique_id": format!("sha256:{name}"), "endpoint": "https://127.0.0.1:8443",
        "ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "kubernetes_version": "v1.32.0",
        "connector_version": "0.1.0", "namespaces": namespaces,
        "roles": ["cluster-admin", "admin", "edit", "view", "logs", "exec", "port-forward"]
    })
}

fn field(r: &Reply) -> &str {
    r.body["fields"][0]["field"].as_str().unwrap_or("")
}

async fn first_admin_must_change_password(s: Server) {
    // a second start on the same database (a replica with the same master key) creates nobody
    let (_, again) = Server::prepare(&s.config.database_url(), &s._dir).await;
    assert_eq!(again, None);
    // a replica with another master key cannot open the signing keys, and says so
    let other = tempfile::tempdir().unwrap();
    let config = ServerConfig { data_dir: other.path().to_path_buf(), ..s.config.clone() };
    let leptos = leptos::config::LeptosOptions::builder().output_name("infra").build();
    match infra::server::web::prepare(config, leptos).await {
        Ok(_) => panic!("a server with another master key must not start"),
        Err(message) => assert!(message.contains("master key does not open"), "{message}"),
    }
    assert_eq!(s.count("users").await, 1);
    // a user created without a password gets a one-time password and is held at the password change
    let r = s.post("/api/users", &s.admin, json!({"email": "new@example.com"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let one_time = r.body["one_time_password"].as_str().expect("one-time password").to_string();
    assert!(r.body["user"]["must_change_password"].as_bool().unwrap());
    let id = r.body["user"]["id"].as_i64().unwrap();
    let key = s.key_for(id).await;
    let r = s.get("/api/me/access", &key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["message"], "change your one-time password first");
    let actor = actor_for_user(&s.db, id, "test").await.unwrap();
    users::change_own_password(Ctx::new(&s.db, &actor), &one_time, "brand-new-pass").await.unwrap();
    assert_eq!(s.get("/api/me/access", &key).await.status, StatusCode::OK);
}

async fn users_rules(s: Server) {
    let r = s.post("/api/users", &s.admin, json!({"email": "Alice@Example.com", "name": "Alice", "password": "alice-pass-1"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["user"]["email"], "alice@example.com", "emails are stored lowercase");
    assert!(r.body.get("one_time_password").is_none());
    let alice = r.body["user"]["id"].as_i64().unwrap();
    let before = s.count("users").await;
    let r = s.post("/api/users", &s.admin, json!({"email": "ALICE@example.com"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "a taken email: {:?}", r.body);
    assert_eq!((r.body["code"].as_str(), field(&r)), (Some("conflict"), "email"));
    for (body, bad_field) in [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "x@example.com", "password": "short"}), "password"),
        (json!({"email": "y@example.com", "name": "n".repeat(101)}), "name"),
    ] {
        let r = s.post("/api/users", &s.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
        assert_eq!(r.body["code"], "invalid");
        assert_eq!(field(&r), bad_field);
    }
    assert_eq!(s.count("users").await, before, "refused requests change nothing");

    // a user without infra admin cannot manage users, and sees only themselves
    let alice_key = s.key_for(alice).await;
    let r = s.post("/api/users", &alice_key, json!({"email": "mallory@example.com"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/users", &alice_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get(&format!("/api/users/{alice}"), &alice_key).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/users/1", &alice_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.call(Method::DELETE, "/api/users/1", Some(&alice_key), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("users").await, before);

    // disable: her key stops working; enable: it works again
    let r = s.call(Method::PATCH, &format!("/api/users/{alice}"), Some(&s.admin), Some(json!({"disabled": true}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["disabled"], true);
    assert_eq!(s.get("/api/me", &alice_key).await.status, StatusCode::UNAUTHORIZED);
    s.call(Method::PATCH, &format!("/api/users/{alice}"), Some(&s.admin), Some(json!({"disabled": false}))).await;
    assert_eq!(s.get("/api/me", &alice_key).await.status, StatusCode::OK);

    // an admin-set password must be changed at next sign-in
    let r = s.call(Method::PATCH, &format!("/api/users/{alice}"), Some(&s.admin), Some(json!({"password": "reset-pass-1"}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["must_change_password"], true);

    // delete removes the user, their keys and grants
    s.cluster("prod", &["web"]).await;
    s.post("/api/grants", &s.admin, json!({"subject": "alice@example.com", "role": "view", "resource": "prod"})).await;
    assert_eq!(s.delete(&format!("/api/users/{alice}"), &s.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&format!("/api/users/{alice}"), &s.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/me", &alice_key).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(db::count(&s.db, "SELECT COUNT(*) FROM grants WHERE subject_kind = 'user' AND subject_id = ?", [alice.into()]).await.unwrap(), 0);
}

async fn groups_rules(s: Server) {
    let r = s.post("/api/groups", &s.admin, json!({"name": "Engineering"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let eng = r.body["id"].as_i64().unwrap();
    let r = s.post("/api/groups", &s.admin, json!({"name": "engineering"})).await;
    assert_eq!((r.status, field(&r)), (StatusCode::CONFLICT, "name"), "a taken name: {:?}", r.body);
    for name in ["", "a:b", "x@y", &"n".repeat(65)] {
        let r = s.post("/api/groups", &s.admin, json!({"name": name})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?} must be refused");
        assert_eq!(field(&r), "name");
    }
    assert_eq!(s.count("groups").await, 1);

    let (bob, bob_key) = s.user("bob@example.com").await;
    assert_eq!(s.post("/api/groups", &bob_key, json!({"name": "Ops"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post(&format!("/api/groups/{eng}/members"), &bob_key, json!({"user": "bob@example.com"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("group_members").await, 0);

    // members: by email, idempotent, unknown user refused
    let r = s.post(&format!("/api/groups/{eng}/members"), &s.admin, json!({"user": "bob@example.com"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["members"][0]["email"], "bob@example.com");
    s.post(&format!("/api/groups/{eng}/members"), &s.admin, json!({"user": bob.to_string()})).await;
    assert_eq!(s.count("group_members").await, 1);
    let r = s.post(&format!("/api/groups/{eng}/members"), &s.admin, json!({"user": "nobody@example.com"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // rename, and a clash is refused
    s.post("/api/groups", &s.admin, json!({"name": "Ops"})).await;
    let r = s.call(Method::PATCH, &format!("/api/groups/{eng}"), Some(&s.admin), Some(json!({"name": "OPS"}))).await;
    assert_eq!((r.status, field(&r)), (StatusCode::CONFLICT, "name"), "{:?}", r.body);
    let r = s.call(Method::PATCH, &format!("/api/groups/{eng}"), Some(&s.admin), Some(json!({"name": "Platform"}))).await;
    assert_eq!(r.body["name"], "Platform");

    // a group's grants reach its members; removing the member or the group ends them
    s.cluster("prod", &["web"]).await;
    let r = s.post("/api/grants", &s.admin, json!({"subject": "Platform", "role": "edit", "resource": "prod.web"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let access = s.get("/api/me/access", &bob_key).await.body;
    assert_eq!(access[0]["resource"], "prod.web");
    assert_eq!(access[0]["via"], "group Platform");
    assert_eq!(s.get("/api/destinations", &bob_key).await.body[0]["name"], "prod");
    s.delete(&format!("/api/groups/{eng}/members/{bob}"), &s.admin).await;
    assert_eq!(s.get("/api/me/access", &bob_key).await.body, json!([]));
    assert_eq!(s.get("/api/destinations", &bob_key).await.body, json!([]));
    assert_eq!(s.get("/api/destinations/prod", &bob_key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.delete(&format!("/api/groups/{eng}"), &s.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.count("grants").await, 2, "the admin's grant and the connector's remain; the group's went with it");
}

async fn grants_rules(s: Server) {
    s.cluster("prod", &["web", "db"]).await;
    let (_, carol_key) = s.user("carol@example.com").await;
    let before = s.count("grants").await;
    for (body, bad_field) in [
        (json!({"subject": "carol@example.com", "role": "edit", "resource": "staging"}), "resource"),
        (json!({"subject": "carol@example.com", "role": "owner", "resource": "prod"}), "role"),
        (json!({"subject": "carol@example.com", "role": "edit", "resource": "infra"}), "role"),
        (json!({"subject": "carol@example.com", "role": "edit", "resource": "prod.Bad_NS"}), "resource"),
        (json!({"subject": "carol@example.com", "role": "edit", "resource": "prod.web.x"}), "resource"),
        (json!({"subject": "carol@example.com", "role": "admin", "resource": "infra.web"}), "resource"),
        (json!({"subject": "nobody@example.com", "role": "edit", "resource": "prod"}), "subject"),
        (json!({"subject": "NoSuchGroup", "role": "edit", "resource": "prod"}), "subject"),
        (json!({"subject": "carol@example.com", "role": "edit", "resource": "prod", "expires_at": 1000}), "expires_at"),
    ] {
        let r = s.post("/api/grants", &s.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body} gave {:?}", r.body);
        assert_eq!(field(&r), bad_field, "{body}");
    }
    assert_eq!(s.count("grants").await, before);

    // a non-admin cannot grant, not even to themselves
    let r = s.post("/api/grants", &carol_key, json!({"subject": "carol@example.com", "role": "admin", "resource": "infra"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("grants").await, before);

    // namespace scope; a duplicate is idempotent
    let r = s.post("/api/grants", &s.admin, json!({"subject": "user:carol@example.com", "role": "edit", "resource": "prod.web"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["created_by"], ADMIN);
    let r = s.post("/api/grants", &s.admin, json!({"subject": "carol@example.com", "role": "edit", "resource": "prod.web"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"].as_i64(), Some(id));
    assert_eq!(s.count("grants").await, before + 1);

    // an expired grant gives no access
    let future = infra::server::now() + 3_600_000;
    let r = s.post("/api/grants", &s.admin, json!({"subject": "carol@example.com", "role": "view", "resource": "prod.db", "expires_at": future})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let access: Vec<String> = serde_json::from_value::<Vec<Value>>(s.get("/api/me/access", &carol_key).await.body)
        .unwrap()
        .iter()
        .map(|e| e["resource"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(access, vec!["prod.db", "prod.web"]);
    // each entry says how its cluster is doing: connected, pending (no connector yet), none for infra
    s.post("/api/destinations", &s.admin, json!({"name": "edge"})).await;
    s.post("/api/grants", &s.admin, json!({"subject": "carol@example.com", "role": "view", "resource": "edge"})).await;
    s.post("/api/grants", &s.admin, json!({"subject": "carol@example.com", "role": "view", "resource": "infra"})).await;
    let status: Vec<(String, Value)> = serde_json::from_value::<Vec<Value>>(s.get("/api/me/access", &carol_key).await.body)
        .unwrap()
        .iter()
        .map(|e| (e["resource"].as_str().unwrap().to_string(), e["cluster_status"].clone()))
        .collect();
    let expected = [("edge", json!("pending")), ("infra", Value::Null), ("prod.db", json!("connected")), ("prod.web", json!("connected"))];
    assert_eq!(status, expected.map(|(r, v)| (r.to_string(), v)));
    db::execute(&s.db, "DELETE FROM grants WHERE destination = 'edge' OR (destination = 'infra' AND role = 'view')", []).await.unwrap();
    db::execute(&s.db, "UPDATE grants SET expires_at = ? WHERE role = 'view'", [1000i64.into()]).await.unwrap();
    assert_eq!(s.get("/api/me/access", &carol_key).await.body.as_array().unwrap().len(), 1);

    // view on infra reads everything and changes nothing
    assert_eq!(s.get("/api/grants", &carol_key).await.status, StatusCode::FORBIDDEN);
    s.post("/api/grants", &s.admin, json!({"subject": "carol@example.com", "role": "view", "resource": "infra"})).await;
    let r = s.get("/api/grants?cluster=prod&role=edit", &carol_key).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 1);
    assert_eq!(r.body["items"][0]["resource"], "prod.web");
    assert_eq!(s.get("/api/grants?subject=carol@example.com", &carol_key).await.body["total"], 3);
    assert_eq!(s.delete(&format!("/api/grants/{id}"), &carol_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.delete(&format!("/api/grants/{id}"), &s.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.delete(&format!("/api/grants/{id}"), &s.admin).await.status, StatusCode::NOT_FOUND);
}

async fn last_admin_cannot_be_removed(s: Server) {
    let admin_id = users::find_by_email(&s.db, ADMIN).await.unwrap().unwrap().id;
    let admin_grant = db::query_one(&s.db, "SELECT id FROM grants WHERE role = 'admin'", []).await.unwrap().unwrap();
    let admin_grant: i64 = admin_grant.try_get_by_index(0).unwrap();
    let grants = s.count("grants").await;
    for r in [
        s.delete(&format!("/api/grants/{admin_grant}"), &s.admin).await,
        s.delete(&format!("/api/users/{admin_id}"), &s.admin).await,
        s.call(Method::PATCH, &format!("/api/users/{admin_id}"), Some(&s.admin), Some(json!({"disabled": true}))).await,
    ] {
        assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
        assert_eq!(r.body["message"], "the last infra admin cannot be removed");
    }
    assert_eq!(s.count("grants").await, grants);
    assert_eq!(s.get("/api/me", &s.admin).await.body["disabled"], false);
    // one PATCH is one transaction: the refused half (disabling the last admin) takes the password change
    // with it, and the sessions the new password would have ended go on
    let session = sign_in_cookie(&s, ADMIN, ADMIN_PASSWORD).await;
    let both = json!({"password": "another-password-2", "disabled": true});
    let r = s.call(Method::PATCH, &format!("/api/users/{admin_id}"), Some(&s.admin), Some(both)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert_eq!(me_with_cookie(&s, &session).await, StatusCode::OK, "the refused password change ended no session");
    sign_in_cookie(&s, ADMIN, ADMIN_PASSWORD).await;

    // admin through a group: removing the direct grant is fine then; removing the group's last admin is not
    let r = s.post("/api/groups", &s.admin, json!({"name": "Admins"})).await;
    let group = r.body["id"].as_i64().unwrap();
    s.post(&format!("/api/groups/{group}/members"), &s.admin, json!({"user": ADMIN})).await;
    s.post("/api/grants", &s.admin, json!({"subject": "Admins", "role": "admin", "resource": "infra"})).await;
    assert_eq!(s.delete(&format!("/api/grants/{admin_grant}"), &s.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.delete(&format!("/api/groups/{group}/members/{admin_id}"), &s.admin).await.status, StatusCode::CONFLICT);
    assert_eq!(s.delete(&format!("/api/groups/{group}"), &s.admin).await.status, StatusCode::CONFLICT);
    assert_eq!(s.count("group_members").await, 1);
    // with a second admin, the first may go
    let (dave, dave_key) = s.user("dave@example.com").await;
    s.post("/api/grants", &s.admin, json!({"subject": "dave@example.com", "role": "admin", "resource": "infra"})).await;
    assert_eq!(s.delete(&format!("/api/users/{admin_id}"), &dave_key).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.delete(&format!("/api/users/{dave}"), &dave_key).await.status, StatusCode::CONFLICT);
}

async fn destinations_rules(s: Server) {
    // a user's own key is not a connector key
    let (_, erin_key) = s.user("erin@example.com").await;
    let r = s.post("/api/destinations/register", &erin_key, registration("prod", &["web"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("destinations").await, 0);

    let key = s.cluster("prod", &["web", "db"]).await;
    let d = s.get("/api/destinations/prod", &s.admin).await.body;
    assert_eq!(d["status"], "connected");
    assert_eq!(d["namespaces"], json!(["db", "web"]));
    let first_seen = d["last_seen_at"].as_i64().unwrap();
    // heartbeat: the same call, later; namespaces follow the cluster
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = s.post("/api/destinations/heartbeat", &key, registration("prod", &["web", "db", "cache"])).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["last_seen_at"].as_i64().unwrap() > first_seen);
    assert_eq!(r.body["namespaces"], json!(["cache", "db", "web"]));

    // the connector key registers its own cluster only, and can do nothing else
    let r = s.post("/api/destinations/register", &key, registration("staging", &["web"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    s.post("/api/destinations", &s.admin, json!({"name": "edge2"})).await;
    let r = s.post("/api/destinations/register", &key, registration("edge2", &["web"])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a key cannot take over another (pending) cluster");
    assert_eq!(s.get("/api/destinations/edge2", &s.admin).await.body["status"], "pending");
    s.delete("/api/destinations/edge2", &s.admin).await;
    assert_eq!(s.post("/api/keys", &key, json!({"name": "escape"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/users", &key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/grants", &key, json!({"subject": "erin@example.com", "role": "edit", "resource": "prod"})).await.status, StatusCode::FORBIDDEN);

    // another cluster may not take the name; bad names are refused
    let mut other = registration("prod", &[]);
    other["unique_id"] = json!("sha256:someone-else");
    assert_eq!(s.post("/api/destinations/register", &key, other).await.status, StatusCode::CONFLICT);
    for name in ["prod.eu", "infra", "Prod", ""] {
        let r = s.post("/api/destinations/register", &s.admin, registration(name, &[])).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?}");
    }
    let mut bad_ns = registration("stage", &[]);
    bad_ns["namespaces"] = json!(["Not_Valid"]);
    assert_eq!(s.post("/api/destinations/register", &s.admin, bad_ns).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.count("destinations").await, 1);
    // a proxy without TLS would carry users' tokens in the clear: refused for a new cluster and for
    // a registered one, which keeps its https endpoint
    for (name, key) in [("stage", &s.admin), ("prod", &key)] {
        let mut plain = registration(name, &["web", "db", "cache"]);
        plain["endpoint"] = json!("http://127.0.0.1:8443");
        let r = s.post("/api/destinations/register", key, plain).await;
        assert_eq!((r.status, field(&r)), (StatusCode::BAD_REQUEST, "endpoint"), "{name}: {:?}", r.body);
    }
    assert_eq!(s.count("destinations").await, 1);
    assert_eq!(s.get("/api/destinations/prod", &s.admin).await.body["endpoint"], "https://127.0.0.1:8443");

    // a pending cluster: created by an admin, never seen
    let r = s.post("/api/destinations", &s.admin, json!({"name": "edge"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["status"], "pending");
    // a disconnected one: not seen within the window
    db::execute(&s.db, "UPDATE destinations SET last_seen_at = ? WHERE name = 'prod'", [1000i64.into()]).await.unwrap();
    assert_eq!(s.get("/api/destinations/prod", &s.admin).await.body["status"], "disconnected");

    // non-admins see only what their grants cover
    assert_eq!(s.get("/api/destinations", &erin_key).await.body, json!([]));
    s.post("/api/grants", &s.admin, json!({"subject": "erin@example.com", "role": "view", "resource": "prod.web"})).await;
    let names: Vec<Value> = serde_json::from_value(s.get("/api/destinations", &erin_key).await.body).unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(s.get("/api/destinations/edge", &erin_key).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.delete("/api/destinations/prod", &erin_key).await.status, StatusCode::FORBIDDEN);

    // the cluster's access list is paginated and readable by viewers only
    s.post("/api/grants", &s.admin, json!({"subject": "erin@example.com", "role": "edit", "resource": "prod.db"})).await;
    let r = s.get("/api/destinations/prod/grants?limit=1", &s.admin).await;
    assert_eq!((r.body["total"].as_u64(), r.body["items"].as_array().unwrap().len()), (Some(2), 1));
    assert_eq!(r.body["items"][0]["resource"], "prod.db", "newest first");
    assert_eq!(s.get("/api/destinations/prod/grants", &erin_key).await.status, StatusCode::FORBIDDEN);

    // removing a cluster removes its grants
    assert_eq!(s.delete("/api/destinations/prod", &s.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(db::count(&s.db, "SELECT COUNT(*) FROM grants WHERE destination = 'prod'", []).await.unwrap(), 0);
}

/// A request with a bearer key and no cookie: what a connector (or a script) sends.
fn bearer_form(path: &str, body: &str, key: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "infra.test")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn connector_key_stays_in_its_cluster(s: Server) {
    let key_a = s.cluster("alpha", &["web"]).await;
    let key_b = s.cluster("beta", &["web"]).await;
    let (_, user_key) = s.user("ivy@example.com").await;
    let keys_before = s.count("access_keys").await;
    let denied = || async { db::count(&s.db, "SELECT COUNT(*) FROM audit_events WHERE outcome = 'denied'", []).await.unwrap() };
    let denied_before = denied().await;

    // the attack of the review: A's key approves a device login, to get a key of its own
    let started = s.call(Method::POST, "/api/device", None, Some(json!({"name": "attacker"}))).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let user_code = started.body["user_code"].as_str().unwrap().to_string();
    let device_code = started.body["device_code"].as_str().unwrap().to_string();
    let r = s.send(bearer_form("/device/approve", &format!("code={user_code}"), &key_a)).await;
    assert_ne!(r.headers.get(header::LOCATION).and_then(|l| l.to_str().ok()).map(|l| l.contains("approved=1")), Some(true));
    let polled = s.call(Method::POST, "/api/device/token", None, Some(json!({"device_code": device_code}))).await;
    assert_eq!(polled.status, StatusCode::ACCEPTED, "a connector key approved a device login: {:?}", polled.body);

    // nor may it list, create or revoke keys (B's connector key among them)
    let b_key_row = db::query_one(&s.db, "SELECT id FROM access_keys WHERE destination = 'beta'", []).await.unwrap().unwrap();
    let b_key_row: i64 = b_key_row.try_get_by_index(0).unwrap();
    assert_eq!(s.get("/api/keys", &key_a).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/keys", &key_a, json!({"name": "escape"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.delete(&format!("/api/keys/{b_key_row}"), &key_a).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/destinations/beta/bindings", &key_b).await.status, StatusCode::OK, "B's key still works");

    // it acts for its own cluster only: not B's bindings, registration, audit or certificates
    assert_eq!(s.get("/api/destinations/beta/bindings", &key_a).await.status, StatusCode::FORBIDDEN);
    let mut hijack = registration("beta", &["web"]);
    hijack["endpoint"] = json!("https://attacker.example:443");
    assert_eq!(s.post("/api/destinations/register", &key_a, hijack.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/destinations/heartbeat", &key_a, hijack).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/destinations/beta", &s.admin).await.body["endpoint"], "https://127.0.0.1:8443");
    assert_eq!(s.post("/api/destinations/beta/audit", &key_a, json!([])).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.post("/api/destinations/beta/certificates/1", &key_a, json!({"error": "no"})).await.status, StatusCode::FORBIDDEN);

    // and no endpoint meant for people: not even its own view of the product
    for path in ["/api/me", "/api/me/access", "/api/destinations", "/api/destinations/alpha", "/api/users", "/api/audit", "/api/settings"] {
        assert_eq!(s.get(path, &key_a).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(s.post("/api/tokens", &key_a, json!({"destination": "alpha"})).await.status, StatusCode::FORBIDDEN);
    let r = s.send(bearer_form("/kubeconfig/download", "cluster.alpha=on&style=token", &key_a)).await;
    assert_ne!(r.status, StatusCode::OK, "a connector key downloaded a kubeconfig");
    // its own cluster's endpoints still work
    assert_eq!(s.get("/api/destinations/alpha/bindings", &key_a).await.status, StatusCode::OK);
    assert_eq!(s.post("/api/destinations/heartbeat", &key_a, registration("alpha", &["web"])).await.status, StatusCode::OK);

    // "no cluster" never means "any cluster": a connector key bound to none is refused everywhere
    db::execute(&s.db, "UPDATE access_keys SET destination = NULL WHERE destination = 'beta'", []).await.unwrap();
    assert_eq!(s.get("/api/destinations/beta/bindings", &key_b).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.post("/api/destinations/register", &key_b, registration("gamma", &[])).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.count("destinations").await, 2);
    // a person holding the connector role acts for no cluster either
    s.post("/api/grants", &s.admin, json!({"subject": "ivy@example.com", "role": "connector", "resource": "infra"})).await;
    assert_eq!(s.post("/api/destinations/register", &user_key, registration("gamma", &[])).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/destinations/alpha/bindings", &user_key).await.status, StatusCode::FORBIDDEN);

    // nothing changed, and every refusal is in the audit log
    assert_eq!(s.count("access_keys").await, keys_before);
    assert_eq!(s.count("destinations").await, 2);
    assert!(denied().await >= denied_before + 15, "refusals are audited");
}

/// Signs in through the console's form and returns the session cookie.
async fn sign_in_cookie(s: &Server, email: &str, password: &str) -> String {
    let body = format!("email={}&password={password}", email.replace('@', "%40"));
    let r = s.send(form_request("/auth/login", &body, None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{:?}", r.body);
    session_cookie(&r).expect("a session cookie")
}

async fn me_with_cookie(s: &Server, cookie: &str) -> StatusCode {
    s.send(Request::get("/api/me").header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await.status
}

async fn password_change_ends_other_sessions(s: Server) {
    let (jun, _) = s.user("jun@example.com").await;
    let laptop = sign_in_cookie(&s, "jun@example.com", "user-password-1").await;
    let stolen = sign_in_cookie(&s, "jun@example.com", "user-password-1").await;
    assert_eq!(me_with_cookie(&s, &stolen).await, StatusCode::OK);

    // changing one's own password ends every other session and gives this one a new id
    let body = "current_password=user-password-1&new_password=new-password-22&confirm_password=new-password-22&from=%2Fsettings";
    let r = s.send(form_request("/auth/password", body, Some(&laptop))).await;
    assert_eq!(r.headers[header::LOCATION], "/?password=changed", "{:?}", r.headers);
    let cycled = session_cookie(&r).expect("the current session is cycled");
    assert_ne!(cycled, laptop);
    assert_eq!(me_with_cookie(&s, &stolen).await, StatusCode::UNAUTHORIZED, "another session survived the password change");
    assert_eq!(me_with_cookie(&s, &laptop).await, StatusCode::UNAUTHORIZED, "the old session id still works");
    assert_eq!(me_with_cookie(&s, &cycled).await, StatusCode::OK);

    // an admin setting the password ends all of the user's sessions
    let r = s.call(Method::PATCH, &format!("/api/users/{jun}"), Some(&s.admin), Some(json!({"password": "admin-set-pass-3"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(me_with_cookie(&s, &cycled).await, StatusCode::UNAUTHORIZED);
    assert_eq!(db::count(&s.db, "SELECT COUNT(*) FROM sessions WHERE user_id = ?", [jun.into()]).await.unwrap(), 0);

    // a session has an absolute lifetime (7 days by default), however busy it is
    s.call(Method::PATCH, &format!("/api/users/{jun}"), Some(&s.admin), Some(json!({"password": "user-password-1"}))).await;
    db::execute(&s.db, "UPDATE users SET must_change_password = ? WHERE id = ?", [false.into(), jun.into()]).await.unwrap();
    let old = sign_in_cookie(&s, "jun@example.com", "user-password-1").await;
    assert_eq!(me_with_cookie(&s, &old).await, StatusCode::OK);
    let rows = db::query_all(&s.db, "SELECT id_hash, data FROM sessions WHERE user_id = ?", [jun.into()]).await.unwrap();
    for row in rows {
        let id: String = row.try_get_by_index(0).unwrap();
        let mut data: Value = serde_json::from_str(&row.try_get_by_index::<String>(1).unwrap()).unwrap();
        assert!(data.get("signed_in_at").is_some(), "the session remembers when its sign-in was: {data}");
        data["signed_in_at"] = json!(infra::server::now() - 7 * 24 * 3600 * 1000 - 60_000);
        db::execute(&s.db, "UPDATE sessions SET data = ? WHERE id_hash = ?", [data.to_string().into(), id.into()]).await.unwrap();
    }
    assert_eq!(me_with_cookie(&s, &old).await, StatusCode::UNAUTHORIZED, "a session older than its absolute lifetime");
}

/// A router on the same database as `s` with other server settings (a second replica, say).
async fn replica(s: &Server, change: impl FnOnce(&mut ServerConfig)) -> Router {
    let (mut state, _) = Server::prepare(&s.config.database_url(), &s._dir).await;
    let mut config = (*state.config).clone();
    change(&mut config);
    state.config = std::sync::Arc::new(config);
    infra::server::web::router(state)
}

/// The CLI's password login from a client address, with an optional `X-Forwarded-For`.
async fn cli_login_from(app: &Router, peer: &str, forwarded: Option<&str>, email: &str, password: &str) -> StatusCode {
    let body = json!({"email": email, "password": password}).to_string();
    let mut req = Request::post("/api/login").header(header::HOST, "infra.test").header(header::CONTENT_TYPE, "application/json");
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    let mut req = req.body(Body::from(body)).unwrap();
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    app.clone().oneshot(req).await.unwrap().status()
}

async fn failed_sign_ins_count_atomically_and_per_client(s: Server) {
    // concurrent guesses each count: five at once lock the account
    s.user("kai@example.com").await;
    let guesses: Vec<_> = (0..5)
        .map(|i| {
            let app = s.app.clone();
            tokio::spawn(async move { cli_login_from(&app, &format!("192.0.2.{}:4000", 10 + i), None, "kai@example.com", "wrong-guess-1").await })
        })
        .collect();
    for g in guesses {
        assert_eq!(g.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        cli_login_from(&s.app, "192.0.2.99:4000", None, "kai@example.com", "user-password-1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "five concurrent wrong guesses must lock the account"
    );

    // behind a trusted load balancer each client has its own limit; nobody else's X-Forwarded-For counts
    let app = replica(&s, |c| c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let unknown = |i: u32| format!("nobody{i}@example.com");
    for i in 0..infra::server::auth::ATTEMPTS_PER_ADDRESS {
        assert_eq!(cli_login_from(&app, "10.0.0.1:5000", Some("198.51.100.7"), &unknown(i), "x").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(cli_login_from(&app, "10.0.0.1:5000", Some("198.51.100.7"), &unknown(99), "x").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        cli_login_from(&app, "10.0.0.1:5000", Some("198.51.100.8"), &unknown(99), "x").await,
        StatusCode::UNAUTHORIZED,
        "one client behind the load balancer locked out another"
    );
    // a client that is not a trusted proxy cannot pick its address with X-Forwarded-For
    for i in 0..infra::server::auth::ATTEMPTS_PER_ADDRESS {
        cli_login_from(&app, "192.0.2.50:5000", Some(&format!("203.0.113.{i}")), &unknown(i), "x").await;
    }
    assert_eq!(cli_login_from(&app, "192.0.2.50:5000", Some("203.0.113.200"), &unknown(99), "x").await, StatusCode::TOO_MANY_REQUESTS);
    // IPv6 clients are limited per /64: another address of the same network does not get a fresh limit
    for i in 0..infra::server::auth::ATTEMPTS_PER_ADDRESS {
        cli_login_from(&app, &format!("[2001:db8:1:2::{:x}]:5000", i + 1), None, &unknown(i), "x").await;
    }
    assert_eq!(cli_login_from(&app, "[2001:db8:1:2::ffff]:5000", None, &unknown(99), "x").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(cli_login_from(&app, "[2001:db8:1:3::1]:5000", None, &unknown(99), "x").await, StatusCode::UNAUTHORIZED);
}

async fn device_login_needs_the_typed_code(s: Server) {
    s.user("lea@example.com").await;
    let cookie = sign_in_cookie(&s, "lea@example.com", "user-password-1").await;
    let mut req = Request::post("/api/device")
        .header(header::HOST, "infra.test")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": "infra CLI on build-7"}).to_string()))
        .unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo("203.0.113.9:40000".parse::<std::net::SocketAddr>().unwrap()));
    let started = s.send(req).await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let code = started.body["user_code"].as_str().unwrap().to_string();
    let device_code = started.body["device_code"].as_str().unwrap().to_string();
    // the link the CLI prints does not carry the code: the person types it
    let link = started.body["verification_uri"].as_str().unwrap();
    assert!(!link.contains(&code) && !link.contains(&code.replace('-', "")), "{link}");
    let poll = || s.call(Method::POST, "/api/device/token", None, Some(json!({"device_code": device_code})));

    // a phishing link that names a code shows no approval, and approving a code not typed here does nothing
    let page = s.send(Request::get(format!("/device?code={code}")).header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let html = page.body.as_str().unwrap_or_default().to_string();
    assert!(!html.contains("action=\"/device/approve\""), "a link pre-filled the approval");
    let r = s.send(form_request("/device/approve", &format!("code={code}"), Some(&cookie))).await;
    assert!(!r.headers[header::LOCATION].to_str().unwrap().contains("approved=1"));
    assert_eq!(poll().await.status, StatusCode::ACCEPTED, "approved without the person typing the code");

    // typed: the page shows the client, its address and when it asked; then the approval works
    let r = s.send(form_request("/device/confirm", &format!("code={}", code.to_lowercase().replace('-', "")), Some(&cookie))).await;
    let landing = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert_eq!(landing, format!("/device?code={code}"));
    let page = s.send(Request::get(&landing).header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    let html = page.body.as_str().unwrap_or_default().to_string();
    assert!(html.contains("infra CLI on build-7") && html.contains("203.0.113.9") && html.contains("action=\"/device/approve\""), "{html}");
    let r = s.send(form_request("/device/approve", &format!("code={code}"), Some(&cookie))).await;
    assert!(r.headers[header::LOCATION].to_str().unwrap().contains("approved=1"), "{:?}", r.headers);
    let key = poll().await;
    assert_eq!(key.status, StatusCode::CREATED, "{:?}", key.body);
    // the key has the CLI's login lifetime (12 hours by default), not 30 days
    let lifetime = key.body["key"]["expires_at"].as_i64().unwrap() - key.body["key"]["created_at"].as_i64().unwrap();
    assert_eq!(lifetime, 12 * 3600 * 1000, "device login key lifetime");
    // and so has a password login's key
    let r = s.call(Method::POST, "/api/login", None, Some(json!({"email": "lea@example.com", "password": "user-password-1"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["key"]["expires_at"].as_i64().unwrap() - r.body["key"]["created_at"].as_i64().unwrap(), 12 * 3600 * 1000);
    // an admin may set another lifetime
    let r = s.call(Method::PATCH, "/api/settings", Some(&s.admin), Some(json!({"cli_login_lifetime_secs": 3600}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = s.call(Method::POST, "/api/login", None, Some(json!({"email": "lea@example.com", "password": "user-password-1"}))).await;
    assert_eq!(r.body["key"]["expires_at"].as_i64().unwrap() - r.body["key"]["created_at"].as_i64().unwrap(), 3600 * 1000);
}

async fn unauthenticated_writes_are_bounded(s: Server) {
    let from = |req: Request<Body>, peer: &str| {
        let mut req = req;
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer.parse::<std::net::SocketAddr>().unwrap()));
        req
    };
    let audited = |action: &'static str| {
        let db = s.db.clone();
        async move { db::count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = ? AND outcome = 'denied'", [action.into()]).await.unwrap() }
    };
    // a flood of bad keys from one client: every one refused, only the first few written down
    let before = audited("auth.key").await;
    for i in 0..60 {
        let req = Request::get("/api/me").header(header::AUTHORIZATION, format!("Bearer bad{i}.secret")).body(Body::empty()).unwrap();
        assert_eq!(s.send(from(req, "198.51.100.20:1000")).await.status, StatusCode::UNAUTHORIZED);
    }
    let written = audited("auth.key").await - before;
    assert!(written >= 1 && written <= infra::server::auth::AUDITED_REFUSALS_PER_MINUTE as u64, "{written} audit rows for 60 bad keys");
    // another client's refusals are still recorded
    let req = Request::get("/api/me").header(header::AUTHORIZATION, "Bearer other.secret").body(Body::empty()).unwrap();
    s.send(from(req, "198.51.100.21:1000")).await;
    assert_eq!(audited("auth.key").await, before + written + 1);

    // failed identity-provider callbacks likewise
    let before = audited("auth.provider.login").await;
    for _ in 0..40 {
        let req = Request::get("/auth/oidc/callback?code=x&state=y").body(Body::empty()).unwrap();
        s.send(from(req, "198.51.100.22:1000")).await;
    }
    let written = audited("auth.provider.login").await - before;
    assert!(written >= 1 && written <= infra::server::auth::AUDITED_REFUSALS_PER_MINUTE as u64, "{written} audit rows for 40 failed callbacks");

    // started device logins are limited per client
    let start = |peer: &'static str| {
        let req = Request::post("/api/device")
            .header(header::HOST, "infra.test")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"name": "flood"}).to_string()))
            .unwrap();
        s.send(from(req, peer))
    };
    let mut statuses = Vec::new();
    for _ in 0..(infra::server::auth::DEVICE_LOGINS_PER_MINUTE + 5) {
        statuses.push(start("198.51.100.23:1000").await.status);
    }
    let created = statuses.iter().filter(|st| **st == StatusCode::CREATED).count() as u32;
    assert_eq!(created, infra::server::auth::DEVICE_LOGINS_PER_MINUTE, "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(s.count("device_logins").await, u64::from(created));
    assert_eq!(start("198.51.100.24:1000").await.status, StatusCode::CREATED, "another client is not limited");
}

async fn access_keys_rules(s: Server) {
    let (frank, frank_key) = s.user("frank@example.com").await;
    let r = s.post("/api/keys", &frank_key, json!({"name": "laptop", "ttl_secs": 3600, "inactivity_timeout_secs": 600})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let key = r.body["access_key"].as_str().unwrap().to_string();
    let key_db_id = r.body["key"]["id"].as_i64().unwrap();
    let (key_id, secret) = key.split_once('.').unwrap();
    assert_eq!(s.get("/api/me", &key).await.body["email"], "frank@example.com");
    // only a hash of the secret is stored
    let stored = db::query_one(&s.db, "SELECT secret_hash FROM access_keys WHERE key_id = ?", [key_id.into()]).await.unwrap().unwrap();
    let stored: String = stored.try_get_by_index(0).unwrap();
    assert_ne!(stored, secret);
    assert!(!stored.contains(secret));

    // bad key input
    for body in [
        json!({"name": ""}),
        json!({"name": "x", "ttl_secs": 0}),
        json!({"name": "x", "ttl_secs": 999_999_999}),
        json!({"name": "x", "inactivity_timeout_secs": 5}),
    ] {
        assert_eq!(s.post("/api/keys", &frank_key, body).await.status, StatusCode::BAD_REQUEST);
    }

    // tampered, unknown, malformed
    let mut tampered = key.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let refused_before = db::count(&s.db, "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.key' AND outcome = 'denied'", []).await.unwrap();
    for bad in [tampered.as_str(), "nokey", "abc.def", ""] {
        let r = s.get("/api/me", bad).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}");
    }
    // refusals are audited with the key id, never the secret
    let refused = db::query_all(&s.db, "SELECT target, detail FROM audit_events WHERE action = 'auth.key' AND outcome = 'denied'", []).await.unwrap();
    assert_eq!(refused.len() as u64, refused_before + 4);
    assert!(refused.iter().any(|r| r.try_get_by_index::<String>(0).unwrap() == key_id));
    assert!(refused.iter().all(|r| !r.try_get_by_index::<String>(0).unwrap().contains(secret)));
    // idle too long
    db::execute(&s.db, "UPDATE access_keys SET last_used_at = ? WHERE key_id = ?", [(infra::server::now() - 601_000).into(), key_id.into()]).await.unwrap();
    assert_eq!(s.get("/api/me", &key).await.status, StatusCode::UNAUTHORIZED);
    db::execute(&s.db, "UPDATE access_keys SET last_used_at = ? WHERE key_id = ?", [infra::server::now().into(), key_id.into()]).await.unwrap();
    assert_eq!(s.get("/api/me", &key).await.status, StatusCode::OK);
    // expired
    db::execute(&s.db, "UPDATE access_keys SET expires_at = ? WHERE key_id = ?", [1000i64.into(), key_id.into()]).await.unwrap();
    assert_eq!(s.get("/api/me", &key).await.status, StatusCode::UNAUTHORIZED);

    // someone else's key cannot be revoked by a non-admin; the owner and admins can
    let (_, gina_key) = s.user("gina@example.com").await;
    let frank_keys = s.get("/api/keys", &frank_key).await.body;
    let other = frank_keys.as_array().unwrap().iter().find(|k| k["id"].as_i64() != Some(key_db_id)).unwrap()["id"].as_i64().unwrap();
    assert_eq!(s.delete(&format!("/api/keys/{other}"), &gina_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/me", &frank_key).await.status, StatusCode::OK);
    assert_eq!(s.get("/api/keys?all=true", &gina_key).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.delete(&format!("/api/keys/{other}"), &frank_key).await.status, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/me", &frank_key).await.status, StatusCode::UNAUTHORIZED, "a revoked key is refused");
    let _ = frank;
}

fn form_request(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "infra.test")
        .header(header::ORIGIN, "http://infra.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

fn session_cookie(r: &Reply) -> Option<String> {
    let set = r.headers.get(header::SET_COOKIE)?.to_str().ok()?;
    Some(set.split(';').next()?.to_string())
}

async fn sign_in_lockout_and_sessions(s: Server) {
    s.user("hana@example.com").await;
    // a good sign-in sets an HttpOnly, SameSite=Lax session cookie and leads to the console
    let r = s.send(form_request("/auth/login", "email=hana%40example.com&password=user-password-1", None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/");
    let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = session_cookie(&r).unwrap();
    let me = s.send(Request::get("/api/me").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(me.body["email"], "hana@example.com");
    // the session id itself is not in the database
    let id = cookie.split_once('=').unwrap().1;
    assert_eq!(db::count(&s.db, "SELECT COUNT(*) FROM sessions WHERE id_hash = ? OR data LIKE ?", [id.into(), format!("%{id}%").into()]).await.unwrap(), 0);
    assert_eq!(s.count("sessions").await, 1);
    // sign out ends the session
    let r = s.send(form_request("/auth/logout", "", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let me = s.send(Request::get("/api/me").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);

    // five wrong passwords lock the account: then even the right one is refused for a while
    for _ in 0..5 {
        let r = s.send(form_request("/auth/login", "email=hana%40example.com&password=wrong-guess", None)).await;
        assert!(r.headers[header::LOCATION].to_str().unwrap().starts_with("/login?error=wrong"));
    }
    let r = s.send(form_request("/auth/login", "email=hana%40example.com&password=user-password-1", None)).await;
    let location = r.headers[header::LOCATION].to_str().unwrap();
    assert!(location.contains("too%20many%20failed%20sign-ins"), "{location}");
    assert!(session_cookie(&r).is_none(), "no session for a locked account");
    db::execute(&s.db, "UPDATE users SET locked_until = ? WHERE email = 'hana@example.com'", [1000i64.into()]).await.unwrap();
    let r = s.send(form_request("/auth/login", "email=hana%40example.com&password=user-password-1", None)).await;
    assert_eq!(r.headers[header::LOCATION], "/", "the lockout ends");

    // a disabled user's sessions end at once
    let cookie = session_cookie(&r).unwrap();
    let hana = users::find_by_email(&s.db, "hana@example.com").await.unwrap().unwrap().id;
    s.call(Method::PATCH, &format!("/api/users/{hana}"), Some(&s.admin), Some(json!({"disabled": true}))).await;
    let me = s.send(Request::get("/api/me").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let r = s.send(form_request("/auth/login", "email=hana%40example.com&password=user-password-1", None)).await;
    assert!(r.headers[header::LOCATION].to_str().unwrap().contains("disabled"));
    // unknown accounts get the same answer as wrong passwords
    let r = s.send(form_request("/auth/login", "email=ghost%40example.com&password=whatever-1", None)).await;
    assert_eq!(r.headers[header::LOCATION], "/login?error=wrong%20email%20or%20password");
    let denied = db::count(&s.db, "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.login' AND outcome = 'denied'", []).await.unwrap();
    assert!(denied >= 8, "failed sign-ins are audited ({denied})");
}

async fn origin_check(s: Server) {
    let r = s.send(form_request("/auth/login", &format!("email=admin%40infra.local&password={ADMIN_PASSWORD}"), None)).await;
    let cookie = session_cookie(&r).unwrap();
    let create = |origin: Option<&str>, name: &str| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/groups")
            .header(header::HOST, "infra.test")
            .header(header::COOKIE, &cookie)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.body(Body::from(json!({"name": name}).to_string())).unwrap()
    };
    assert_eq!(s.send(create(None, "A")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.send(create(Some("https://evil.example"), "B")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.send(create(Some("http://infra.test.evil.example"), "C")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("groups").await, 0, "refused requests change nothing");
    assert_eq!(s.send(create(Some("http://infra.test"), "D")).await.status, StatusCode::CREATED);
    // server functions are covered too
    let fn_call = Request::builder()
        .method(Method::POST)
        .uri("/_fn/groups_create")
        .header(header::HOST, "infra.test")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("name=E"))
        .unwrap();
    assert_eq!(s.send(fn_call).await.status, StatusCode::FORBIDDEN);
    // a cross-site sign-in attempt is refused before it is tried
    let mut login = form_request("/auth/login", &format!("email=admin%40infra.local&password={ADMIN_PASSWORD}"), None);
    login.headers_mut().insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(s.send(login).await.status, StatusCode::FORBIDDEN);
    assert_eq!(s.count("groups").await, 1);
}

async fn bad_input_and_paging(s: Server) {
    let r = s.call(Method::POST, "/api/groups", Some(&s.admin), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "invalid");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/users")
        .header(header::AUTHORIZATION, format!("Bearer {}", s.admin))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let r = s.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["code"], "invalid");
    let r = s.get("/api/users?page=abc", &s.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.call(Method::PATCH, "/api/users/1", Some(&s.admin), Some(json!({"role": "god"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused");
    let r = s.get("/api/nothing-here", &s.admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["code"], "not_found");
    assert_eq!(s.call(Method::GET, "/api/users", None, None).await.status, StatusCode::UNAUTHORIZED);

    for i in 0..7 {
        s.post("/api/users", &s.admin, json!({"email": format!("p{i}@example.com"), "password": "password-123"})).await;
    }
    let r = s.get("/api/users?limit=3&page=2", &s.admin).await.body;
    assert_eq!((r["total"].as_u64(), r["page"].as_u64(), r["limit"].as_u64()), (Some(8), Some(2), Some(3)));
    let emails: Vec<&str> = r["items"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    // ordered by email: admin@infra.local, p0, p1 | p2, p3, p4 | p5, p6
    assert_eq!(emails, vec!["p2@example.com", "p3@example.com", "p4@example.com"]);
    assert_eq!(s.get("/api/users?limit=100000", &s.admin).await.body["limit"], 200, "limits are capped");
}

async fn audit_log(s: Server) {
    let (_, ivan_key) = s.user("ivan@example.com").await;
    s.post("/api/groups", &s.admin, json!({"name": "Audited"})).await;
    s.post("/api/groups", &ivan_key, json!({"name": "Sneaky"})).await;
    let r = s.get("/api/audit", &s.admin).await.body;
    let items = r["items"].as_array().unwrap();
    assert_eq!(items[0]["action"], "groups.create");
    assert_eq!(items[0]["actor"], "ivan@example.com");
    assert_eq!(items[0]["outcome"], "denied");
    assert_eq!(items[1]["action"], "groups.create");
    assert_eq!(items[1]["actor"], ADMIN);
    assert_eq!(items[1]["target"], "Audited");
    assert_eq!(items[1]["outcome"], "success");
    assert!(items.windows(2).all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()), "newest first");
    let r = s.get("/api/audit?action=users.&actor=admin@infra.local", &s.admin).await.body;
    assert!(r["items"].as_array().unwrap().iter().all(|e| e["action"].as_str().unwrap().starts_with("users.") && e["actor"] == ADMIN));
    assert!(r["total"].as_u64().unwrap() >= 1);
    assert_eq!(s.get("/api/audit", &ivan_key).await.status, StatusCode::FORBIDDEN);
}

async fn typeahead_search(s: Server) {
    let admin_id = users::find_by_email(&s.db, ADMIN).await.unwrap().unwrap().id;
    let actor = actor_for_user(&s.db, admin_id, "test").await.unwrap();
    let ctx = Ctx::new(&s.db, &actor);
    for (email, name) in [("jane.doe@example.com", "Jane Doe"), ("john@example.com", "Johnny Walker"), ("kim@example.com", "Jolene Kim")] {
        s.post("/api/users", &s.admin, json!({"email": email, "name": name, "password": "password-123"})).await;
    }
    s.post("/api/groups", &s.admin, json!({"name": "Jobs"})).await;
    s.post("/api/groups", &s.admin, json!({"name": "Kernel"})).await;
    let values = |opts: Vec<infra::model::TypeaheadOption>| opts.into_iter().map(|o| o.value).collect::<Vec<_>>();
    use infra::model::TypeaheadSource;
    use infra::server::services::search::typeahead;
    // email prefix, name prefix, case-insensitive; groups too for subjects
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Users, "", "JO").await.unwrap()), vec!["john@example.com", "kim@example.com"]);
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Subjects, "", "jo").await.unwrap()), vec!["Jobs", "john@example.com", "kim@example.com"]);
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Subjects, "", "ja").await.unwrap()), vec!["jane.doe@example.com"]);
    assert!(typeahead(ctx, TypeaheadSource::Users, "", "   ").await.unwrap().is_empty());
    // disabled users are not suggested
    let john = users::find_by_email(&s.db, "john@example.com").await.unwrap().unwrap().id;
    s.call(Method::PATCH, &format!("/api/users/{john}"), Some(&s.admin), Some(json!({"disabled": true}))).await;
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Users, "", "jo").await.unwrap()), vec!["kim@example.com"]);
    // roles: what the cluster offers
    s.cluster("prod", &["web"]).await;
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Roles, "prod", "e").await.unwrap()), vec!["edit", "exec"]);
    assert_eq!(values(typeahead(ctx, TypeaheadSource::Roles, "infra", "").await.unwrap()), vec!["admin", "view", "connector"]);
    assert!(typeahead(ctx, TypeaheadSource::Roles, "nope", "").await.is_err());
    // only for those who may read
    let (kid, _) = s.user("nora@example.com").await;
    let nora = actor_for_user(&s.db, kid, "test").await.unwrap();
    assert!(typeahead(Ctx::new(&s.db, &nora), TypeaheadSource::Users, "", "j").await.is_err());
}

/// One JSON request on a clone of the router, for scenarios that run requests in parallel tasks.
async fn status_of(app: Router, method: Method, path: String, key: String, body: Option<Value>) -> StatusCode {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "infra.test")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json");
    let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    app.oneshot(req).await.expect("router answers").status()
}

/// Grant changes keep working while a connector's audit batches are written at the same time: no
/// "database is locked", nothing lost on either side.
async fn concurrent_writes(s: Server) {
    let connector = s.cluster("prod", &["web"]).await;
    let mut users = Vec::new();
    for i in 0..4 {
        s.user(&format!("writer{i}@example.com")).await;
        users.push(format!("writer{i}@example.com"));
    }
    let grant_changes = "SELECT COUNT(*) FROM audit_events WHERE action IN ('grants.add', 'grants.remove') AND outcome = 'success'";
    let changes_before = db::count(&s.db, grant_changes, []).await.unwrap();
    let mut tasks = Vec::new();
    for user in users.clone() {
        let (app, admin) = (s.app.clone(), s.admin.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/grants")
                    .header(header::HOST, "infra.test")
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(json!({"subject": format!("user:{user}"), "role": "view", "resource": "prod.web"}).to_string()))
                    .unwrap();
                let res = app.clone().oneshot(req).await.unwrap();
                assert_eq!(res.status(), StatusCode::CREATED, "adding a grant for {user}");
                let body: Value = serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
                let id = body["id"].as_i64().expect("grant id");
                let status = status_of(app.clone(), Method::DELETE, format!("/api/grants/{id}"), admin.clone(), None).await;
                assert_eq!(status, StatusCode::NO_CONTENT, "removing a grant of {user}");
            }
        }));
    }
    for batch in 0..4 {
        let (app, key) = (s.app.clone(), connector.clone());
        tasks.push(tokio::spawn(async move {
            let events: Vec<Value> = (0..1000)
                .map(|i| {
                    json!({"at": 1_700_000_000 + i, "user": "alice@example.com", "verb": "list", "resource": "pods",
                               "namespace": "web", "name": "", "status": 200, "source": format!("10.0.{batch}.1")})
                })
                .collect();
            let status = status_of(app, Method::POST, "/api/destinations/prod/audit".into(), key, Some(Value::Array(events))).await;
            assert!(status.is_success(), "audit batch {batch}: {status}");
        }));
    }
    for t in tasks {
        t.await.expect("no write failed");
    }
    let proxied = db::count(&s.db, "SELECT COUNT(*) FROM audit_events WHERE action = 'kubernetes.list'", []).await.unwrap();
    assert_eq!(proxied, 4000, "every proxied request is recorded");
    let changes = db::count(&s.db, grant_changes, []).await.unwrap();
    assert_eq!(changes - changes_before, 80, "every grant change is audited");
    assert_eq!(db::count(&s.db, "SELECT COUNT(*) FROM grants WHERE destination = 'prod' AND namespace = 'web'", []).await.unwrap(), 0);
}

/// The SQLite database holds password hashes, sealed secrets and key hashes: its files (the database
/// and its WAL and shared-memory files) are readable by the server's user only, whatever the umask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("infra.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let s = Server::start(url, dir).await;
    assert_eq!(s.post("/api/groups", &s.admin, json!({"name": "written"})).await.status, StatusCode::CREATED);
    let files = ["infra.db", "infra.db-wal", "infra.db-shm"].map(|f| path.with_file_name(f));
    for file in &files {
        let mode = std::fs::metadata(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    }
}

/// Creates of the same name at the same time: exactly one is created, every other one is told the name
/// is taken (409, with the field), never an internal error; a later duplicate is told the same.
async fn concurrent_creates_of_one_name(s: Server) {
    let cases = [
        ("/api/providers", json!({"name": "corp", "kind": "google", "client_id": "id", "client_secret": "secret"}), "name"),
        ("/api/destinations", json!({"name": "edge"}), "name"),
        ("/api/groups", json!({"name": "Racers"}), "name"),
        ("/api/users", json!({"email": "racer@example.com", "password": "racer-pass-1"}), "email"),
    ];
    for (path, body, taken_field) in cases {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (app, admin, body) = (s.app.clone(), s.admin.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let req = Request::builder()
                    .method(Method::POST)
                    .uri(path)
                    .header(header::HOST, "infra.test")
                    .header(header::AUTHORIZATION, format!("Bearer {admin}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
                let res = app.oneshot(req).await.unwrap();
                let status = res.status();
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
            }));
        }
        let mut replies = Vec::new();
        for t in tasks {
            replies.push(t.await.unwrap());
        }
        replies.push({
            let r = s.post(path, &s.admin, body.clone()).await;
            (r.status, r.body)
        });
        let created = replies.iter().filter(|(status, _)| *status == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{path}: exactly one create succeeds: {replies:?}");
        for (status, body) in replies.iter().filter(|(status, _)| *status != StatusCode::CREATED) {
            assert_eq!(*status, StatusCode::CONFLICT, "{path}: {body:?}");
            assert_eq!(body["code"], "conflict", "{path}: {body:?}");
            assert_eq!(body["fields"][0]["field"], taken_field, "{path}: {body:?}");
        }
    }
}
