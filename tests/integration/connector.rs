//! The connector against real parts: `infra server` on a TCP port (SQLite), the Kubernetes API test
//! server over HTTPS, the connector as it runs in production (in this process), kube-rs, and the real
//! kubectl with a kubeconfig holding a token from `POST /api/tokens`.

use test_harness::cluster as harness;

use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{Infra, eventually, free_port, kube_client, kubeconfig, start_connector, test_api_server};
use infra::connector::cluster::Facts;
use infra::connector::reconcile::{self, binding_name};
use infra::model::{BindingSubject, ClusterClaims, DesiredBinding};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use serde_json::{Value, json};

fn facts(namespaces: &[&str], roles: &[&str]) -> Facts {
    Facts { namespaces: namespaces.iter().map(|s| s.to_string()).collect(), roles: roles.iter().map(|s| s.to_string()).collect() }
}

fn binding(role: &str, namespace: &str, subjects: &[(&str, &str)]) -> DesiredBinding {
    DesiredBinding {
        role: role.into(),
        namespace: namespace.into(),
        subjects: subjects.iter().map(|(k, n)| BindingSubject { kind: k.to_string(), name: n.to_string() }).collect(),
    }
}

fn subject_names(subjects: &Option<Vec<Subject>>) -> Vec<String> {
    let mut names: Vec<String> = subjects.iter().flatten().map(|s| format!("{}:{}", s.kind, s.name)).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_turns_grants_into_owned_bindings_and_converges() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(dir.path()).await;
    let client = kube_client(&k8s.connector_kubeconfig()).await;
    let crbs = Api::<ClusterRoleBinding>::all(client.clone());
    let web = Api::<RoleBinding>::namespaced(client.clone(), "web");
    let facts = facts(&["default", "web", "db"], &["cluster-admin", "admin", "edit", "view", "logs"]);

    // a binding somebody else made, with a name of ours in a namespace: never touched
    let foreign = RoleBinding {
        metadata: ObjectMeta { name: Some(binding_name("admin")), namespace: Some("web".into()), ..Default::default() },
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: "view".into() },
        subjects: Some(vec![Subject { kind: "User".into(), name: "someone".into(), api_group: Some("rbac.authorization.k8s.io".into()), namespace: None }]),
    };
    web.create(&PostParams::default(), &foreign).await.unwrap();

    let desired = vec![
        binding("edit", "web", &[("Group", "dev"), ("User", "alice@example.com")]),
        binding("view", "", &[("Group", "viewers")]),
        binding("admin", "web", &[("User", "bob@example.com")]),
        binding("edit", "ghost", &[("Group", "dev")]),
        binding("no-such-role", "", &[("Group", "dev")]),
    ];
    let first = reconcile::reconcile(&client, "prod", &desired, &facts).await.unwrap();
    assert_eq!(first.created, 2, "{first:?}");
    let edit = web.get(&binding_name("edit")).await.unwrap();
    assert_eq!(subject_names(&edit.subjects), ["Group:dev", "User:alice@example.com"]);
    assert_eq!(edit.role_ref.name, "edit");
    assert_eq!(edit.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "infra");
    let view = crbs.get(&binding_name("view")).await.unwrap();
    assert_eq!(subject_names(&view.subjects), ["Group:viewers"]);
    // grants that cannot be applied are reported in words, not dropped silently
    assert_eq!(first.problems.len(), 3, "{:?}", first.problems);
    assert!(first.problems.iter().any(|p| p.contains("namespace ghost does not exist")), "{:?}", first.problems);
    assert!(first.problems.iter().any(|p| p.contains("no role no-such-role")), "{:?}", first.problems);
    assert!(first.problems.iter().any(|p| p.contains("infra does not manage")), "{:?}", first.problems);
    assert_eq!(subject_names(&web.get(&binding_name("admin")).await.unwrap().subjects), ["User:someone"]);

    // idempotent
    let again = reconcile::reconcile(&client, "prod", &desired, &facts).await.unwrap();
    assert!(!again.changed(), "{again:?}");

    // hand edits are repaired: subjects changed, a binding deleted
    let mut edited = web.get(&binding_name("edit")).await.unwrap();
    edited.subjects = Some(vec![Subject { kind: "User".into(), name: "mallory".into(), api_group: Some("rbac.authorization.k8s.io".into()), namespace: None }]);
    web.replace(&binding_name("edit"), &PostParams::default(), &edited).await.unwrap();
    crbs.delete(&binding_name("view"), &DeleteParams::default()).await.unwrap();
    let repaired = reconcile::reconcile(&client, "prod", &desired, &facts).await.unwrap();
    assert_eq!((repaired.created, repaired.updated), (1, 1), "{repaired:?}");
    assert_eq!(subject_names(&web.get(&binding_name("edit")).await.unwrap().subjects), ["Group:dev", "User:alice@example.com"]);
    assert!(crbs.get_opt(&binding_name("view")).await.unwrap().is_some());

    // stale bindings go; the foreign one stays
    let fewer = vec![binding("edit", "web", &[("Group", "dev")])];
    let pruned = reconcile::reconcile(&client, "prod", &fewer, &facts).await.unwrap();
    assert_eq!(pruned.deleted, 1, "{pruned:?}");
    assert!(crbs.get_opt(&binding_name("view")).await.unwrap().is_none());
    assert_eq!(subject_names(&web.get(&binding_name("edit")).await.unwrap().subjects), ["Group:dev"]);
    assert!(web.get_opt(&binding_name("admin")).await.unwrap().is_some(), "bindings infra does not own are left alone");
    // the seeded bindings of the cluster itself are untouched too
    assert!(!crbs.list(&Default::default()).await.unwrap().items.is_empty());
    k8s.shutdown().await;
}

struct Kubectl {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Kubectl {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(kubeconfig.with_extension("cache"))
        .args(["--request-timeout", "10s"])
        .args(args)
        .output()
        .expect("kubectl runs");
    Kubectl { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
}

fn tamper(token: &str) -> String {
    // change one character of the signature
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_through_the_proxy_follows_the_grants() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s_dir = dir.path().join("k8s");
    let k8s = test_api_server(&k8s_dir).await;
    let k8s_admin = kube_client(&k8s.admin_kubeconfig()).await;
    let infra = Infra::start(&dir.path().join("server")).await;

    // the admin connects a cluster; the connector registers it with its namespaces and roles
    let (status, created) = infra.post("/api/destinations/prod/connector-key", &infra.admin, json!({})).await;
    assert_eq!(status, 201, "{created}");
    let connector_key = created["access_key"].as_str().unwrap().to_string();
    let port = free_port();
    let connector_dir = dir.path().join("connector");
    let connector = start_connector(&infra, &connector_key, "prod", &k8s.connector_kubeconfig(), port, &connector_dir);
    let prod = eventually("the cluster connects", Duration::from_secs(20), || async {
        let (_, d) = infra.get("/api/destinations/prod", &infra.admin).await;
        (d["status"] == "connected" && d["namespaces"].as_array().is_some_and(|n| n.len() >= 2)).then_some(d)
    })
    .await;
    let namespaces: Vec<&str> = prod["namespaces"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    assert!(namespaces.contains(&"web") && namespaces.contains(&"db"), "{namespaces:?}");
    let roles: Vec<&str> = prod["roles"].as_array().unwrap().iter().filter_map(|n| n.as_str()).collect();
    for role in ["edit", "view", "logs", "exec", "port-forward"] {
        assert!(roles.contains(&role), "{role} missing from {roles:?}");
    }
    let endpoint = prod["endpoint"].as_str().unwrap().to_string();
    let proxy_ca = prod["ca"].as_str().unwrap().to_string();
    assert_eq!(endpoint, format!("https://127.0.0.1:{port}"));

    // alice is in group dev; dev gets edit on prod.web
    let (alice_id, alice_key) = infra.user("alice@example.com").await;
    let (status, group) = infra.post("/api/groups", &infra.admin, json!({"name": "dev"})).await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_i64().unwrap();
    infra.post(&format!("/api/groups/{group_id}/members"), &infra.admin, json!({"user": alice_id.to_string()})).await;
    let (status, _) = infra.post("/api/tokens", &alice_key, json!({"destination": "prod"})).await;
    assert_eq!(status, 403, "no token without a grant");
    let (status, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "group:dev", "role": "edit", "resource": "prod.web"})).await;
    assert_eq!(status, 201, "{grant}");
    let token = infra.token(&alice_key, "prod").await;
    let config = kubeconfig(dir.path(), "alice.kubeconfig", &endpoint, &proxy_ca, &token);

    // the binding arrives within seconds, and kubectl can list pods in web
    let listed = eventually("kubectl may list pods in web", Duration::from_secs(10), || async {
        let r = kubectl(&config, &["get", "pods", "-n", "web", "-o", "name"]);
        r.ok.then_some(r.stdout)
    })
    .await;
    assert!(listed.contains("web-0"), "{listed}");
    let whoami = kubectl(&config, &["auth", "whoami"]);
    assert!(whoami.ok, "{}", whoami.stderr);
    assert!(whoami.stdout.contains("alice@example.com") && whoami.stdout.contains("dev"), "{}", whoami.stdout);
    let db = kubectl(&config, &["get", "pods", "-n", "db"]);
    assert!(!db.ok && db.stderr.contains("forbidden"), "{}", db.stderr);
    let can = kubectl(&config, &["auth", "can-i", "delete", "pods", "-n", "web"]);
    assert_eq!(can.stdout.trim(), "yes", "{}", can.stderr);

    // exec and a followed log go through the proxy
    let exec = kubectl(&config, &["exec", "web-0", "-n", "web", "--", "echo", "hello"]);
    assert!(exec.ok && exec.stdout.contains("hello"), "{} {}", exec.stdout, exec.stderr);
    let mut follow = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&config)
        .args(["logs", "-f", "web-0", "-n", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().take(8).filter_map(Result::ok).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(lines.len(), 8, "logs -f keeps streaming: {lines:?}");

    // refused tokens: tampered, for another cluster, expired, none
    let tampered = kubeconfig(dir.path(), "tampered.kubeconfig", &endpoint, &proxy_ca, &tamper(&token));
    let r = kubectl(&tampered, &["get", "pods", "-n", "web"]);
    assert!(!r.ok && r.stderr.contains("You must be logged in"), "{}", r.stderr);
    let (status, _) = infra.post("/api/destinations/staging/connector-key", &infra.admin, json!({})).await;
    assert_eq!(status, 201);
    infra.post("/api/grants", &infra.admin, json!({"subject": "group:dev", "role": "edit", "resource": "staging"})).await;
    let staging_token = infra.token(&alice_key, "staging").await;
    let other = kubeconfig(dir.path(), "other.kubeconfig", &endpoint, &proxy_ca, &staging_token);
    let r = kubectl(&other, &["get", "pods", "-n", "web"]);
    assert!(!r.ok && r.stderr.contains("You must be logged in"), "a token for staging is refused by prod: {}", r.stderr);
    let now = infra::server::now() / 1000;
    let expired_claims = ClusterClaims {
        iss: infra.url.clone(),
        aud: "prod".into(),
        sub: "alice@example.com".into(),
        groups: vec!["dev".into()],
        iat: now - 900,
        exp: now - 600,
        jti: "expired".into(),
        uid: alice_id,
        sid: None,
        downloaded: false,
    };
    let expired = infra.state.signer.sign(&infra.state.db, &expired_claims).await.unwrap();
    let expired = kubeconfig(dir.path(), "expired.kubeconfig", &endpoint, &proxy_ca, &expired);
    let r = kubectl(&expired, &["get", "pods", "-n", "web"]);
    assert!(!r.ok && r.stderr.contains("You must be logged in"), "{}", r.stderr);
    // kubectl shows the proxy's reason for a request it makes (here without discovery first, whose
    // failure kubectl words itself when it has nothing cached)
    let r = kubectl(&expired, &["get", "--raw", "/api/v1/namespaces/web/pods"]);
    assert!(!r.ok && r.stderr.contains(&format!("(your token has expired: run infra login {})", infra.url)), "{}", r.stderr);

    // a rotated signing key: old tokens still work, new ones too, even when the proxy fetched the keys
    // a moment ago (here for a token naming a key that does not exist) and its rate limit applies
    let fresh_token = infra.token(&alice_key, "prod").await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "no-such-key"}).to_string();
    let unknown_kid = format!("{}.{}", b64.encode(header), fresh_token.split_once('.').unwrap().1);
    let unknown = kubeconfig(dir.path(), "unknown-kid.kubeconfig", &endpoint, &proxy_ca, &unknown_kid);
    let r = kubectl(&unknown, &["get", "pods", "-n", "web"]);
    assert!(!r.ok && r.stderr.contains("You must be logged in"), "a token naming an unknown key: {}", r.stderr);
    let (status, _) = infra.post("/api/signing-keys/rotate", &infra.admin, json!({})).await;
    assert_eq!(status, 200);
    assert!(kubectl(&config, &["get", "pods", "-n", "web"]).ok, "a token signed before the rotation");
    let fresh = kubeconfig(dir.path(), "fresh.kubeconfig", &endpoint, &proxy_ca, &infra.token(&alice_key, "prod").await);
    let r = kubectl(&fresh, &["get", "pods", "-n", "web"]);
    assert!(r.ok, "a token signed with the new key: {}", r.stderr);

    // every proxied request reaches the audit log
    eventually("proxied requests are audited", Duration::from_secs(10), || async {
        let (_, page) = infra.get("/api/audit?actor=alice@example.com&limit=200", &infra.admin).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let listed = items.iter().any(|e| e["action"] == "kubernetes.list" && e["target"] == "prod/web/pods" && e["outcome"] == "success");
        let denied = items.iter().any(|e| e["action"] == "kubernetes.list" && e["target"] == "prod/db/pods" && e["outcome"] == "denied");
        (listed && denied).then_some(())
    })
    .await;

    // a namespace that disappears turns a grant into a problem on the cluster page
    infra.post("/api/grants", &infra.admin, json!({"subject": "group:dev", "role": "view", "resource": "prod.db"})).await;
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(k8s_admin.clone());
    namespaces.delete("db", &DeleteParams::default()).await.unwrap();
    eventually("the missing namespace is reported", Duration::from_secs(15), || async {
        let (_, d) = infra.get("/api/destinations/prod", &infra.admin).await;
        d["problems"].as_array().is_some_and(|p| p.iter().any(|p| p.as_str().unwrap_or("").contains("namespace db does not exist"))).then_some(())
    })
    .await;

    // a restarted connector converges again, also after a hand edit made while it was down
    connector.abort();
    let _ = connector.await;
    let web = Api::<RoleBinding>::namespaced(k8s_admin.clone(), "web");
    web.delete(&binding_name("edit"), &DeleteParams::default()).await.unwrap();
    let connector = start_connector(&infra, &connector_key, "prod", &k8s.connector_kubeconfig(), port, &connector_dir);
    eventually("the restarted connector restores the binding", Duration::from_secs(15), || async {
        web.get_opt(&binding_name("edit")).await.ok().flatten().map(|_| ())
    })
    .await;
    assert!(kubectl(&config, &["get", "pods", "-n", "web"]).ok, "the proxy CA survived the restart");

    // the grant goes: kubectl is forbidden within seconds
    let grant_id = grant["id"].as_i64().unwrap();
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/grants/{grant_id}"), &infra.admin, None).await;
    assert_eq!(status, 204);
    eventually("kubectl is refused after the grant is removed", Duration::from_secs(10), || async {
        let r = kubectl(&config, &["get", "pods", "-n", "web"]);
        (!r.ok && r.stderr.contains("forbidden")).then_some(())
    })
    .await;
    connector.abort();
    k8s.shutdown().await;
}

/// The numeric id of an access key, from the owner's key list.
async fn key_row(infra: &Infra, key: &str) -> i64 {
    let key_id = key.split('.').next().unwrap();
    let (_, keys) = infra.get("/api/keys", key).await;
    keys.as_array().unwrap().iter().find(|k| k["key_id"] == key_id).and_then(|k| k["id"].as_i64()).expect("the key is listed")
}

/// Within the 5 seconds a user is promised: kubectl with `config` is refused with `refusal` in its
/// error ("You must be logged in" for a 401, "forbidden" for a 403).
async fn refused_within_5s(what: &str, config: &Path, refusal: &str) {
    eventually(what, Duration::from_secs(5), || async {
        let r = kubectl(config, &["get", "pods", "-n", "web"]);
        (!r.ok && r.stderr.contains(refusal)).then_some(())
    })
    .await;
}

/// Alice holds edit on prod.web herself and has two keys; Bob holds it through the group dev. Each key
/// has a kubeconfig with a fresh token (`alice1`, `alice2`, `bob`), and kubectl works with each.
struct AliceAndBob {
    alice_id: i64,
    alice_key: String,
    alice_key2: String,
    bob_id: i64,
    group_id: i64,
    dev_grant: Value,
    alice1: PathBuf,
    alice2: PathBuf,
    bob: PathBuf,
}

async fn alice_and_bob(infra: &Infra, prod: &Value, dir: &Path) -> AliceAndBob {
    let (endpoint, ca) = (prod["endpoint"].as_str().unwrap().to_string(), prod["ca"].as_str().unwrap().to_string());
    let (alice_id, alice_key) = infra.user("alice@example.com").await;
    let alice_key2 = harness::key_for(&infra.state, alice_id).await;
    let (bob_id, bob_key) = infra.user("bob@example.com").await;
    let (_, group) = infra.post("/api/groups", &infra.admin, json!({"name": "dev"})).await;
    let group_id = group["id"].as_i64().unwrap();
    infra.post(&format!("/api/groups/{group_id}/members"), &infra.admin, json!({"user": bob_id.to_string()})).await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "edit", "resource": "prod.web"})).await;
    let (_, dev_grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "group:dev", "role": "edit", "resource": "prod.web"})).await;
    let alice1 = kubeconfig(dir, "alice1", &endpoint, &ca, &infra.token(&alice_key, "prod").await);
    let alice2 = kubeconfig(dir, "alice2", &endpoint, &ca, &infra.token(&alice_key2, "prod").await);
    let bob = kubeconfig(dir, "bob", &endpoint, &ca, &infra.token(&bob_key, "prod").await);
    for config in [&alice1, &alice2, &bob] {
        eventually("kubectl works", Duration::from_secs(10), || async { kubectl(config, &["get", "pods", "-n", "web"]).ok.then_some(()) }).await;
    }
    AliceAndBob { alice_id, alice_key, alice_key2, bob_id, group_id, dev_grant, alice1, alice2, bob }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_keys_and_users_are_refused_within_seconds() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, connector_key, prod) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let (endpoint, ca) = (prod["endpoint"].as_str().unwrap().to_string(), prod["ca"].as_str().unwrap().to_string());
    let AliceAndBob { alice_id, alice_key, alice_key2, bob_id, group_id, alice1, alice2, bob, .. } = alice_and_bob(&infra, &prod, dir.path()).await;

    // a revoked key: the tokens minted with it are refused, tokens from her other key are not
    let row = key_row(&infra, &alice_key).await;
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{row}"), &alice_key2, None).await;
    assert_eq!(status, 204);
    refused_within_5s("a token minted with a revoked key is refused", &alice1, "You must be logged in").await;
    assert!(kubectl(&alice2, &["get", "pods", "-n", "web"]).ok, "her other key's token still works");

    // a disabled user: all her tokens are refused; enabled again, a fresh token works
    let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{alice_id}"), &infra.admin, Some(json!({"disabled": true}))).await;
    assert_eq!(status, 200);
    refused_within_5s("a disabled user's token is refused", &alice2, "You must be logged in").await;
    let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{alice_id}"), &infra.admin, Some(json!({"disabled": false}))).await;
    assert_eq!(status, 200);
    let again = kubeconfig(dir.path(), "alice3", &endpoint, &ca, &infra.token(&alice_key2, "prod").await);
    eventually("an enabled user's new token works", Duration::from_secs(5), || async { kubectl(&again, &["get", "pods", "-n", "web"]).ok.then_some(()) }).await;

    // removed from the granting group: forbidden, though his token still names the group (the proxy
    // impersonates the groups the server reports now)
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/groups/{group_id}/members/{bob_id}"), &infra.admin, None).await;
    assert_eq!(status, 200);
    refused_within_5s("a user removed from the granting group is forbidden", &bob, "forbidden").await;

    // a deleted user: refused outright
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/users/{alice_id}"), &infra.admin, None).await;
    assert_eq!(status, 204);
    refused_within_5s("a deleted user's token is refused", &again, "You must be logged in").await;

    // the connector was told by id, which a new user with the same email would not have
    let (_, revoked) = infra.get("/api/destinations/prod/bindings", &connector_key).await;
    assert!(revoked["revoked"]["users"].as_array().unwrap().iter().any(|u| u.as_i64() == Some(alice_id)), "{revoked}");
    connector.abort();
    k8s.shutdown().await;
}

/// Puts the first admin in the group oncall, which holds edit on prod.web; the admin's id.
async fn admin_in_oncall(infra: &Infra) -> i64 {
    let admin_id = infra.get("/api/me", &infra.admin).await.1["id"].as_i64().unwrap();
    let (_, group) = infra.post("/api/groups", &infra.admin, json!({"name": "oncall"})).await;
    infra.post(&format!("/api/groups/{}/members", group["id"]), &infra.admin, json!({"user": admin_id.to_string()})).await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "group:oncall", "role": "edit", "resource": "prod.web"})).await;
    admin_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn break_glass_certificates_reach_the_api_server_directly() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, connector_key, _) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    admin_in_oncall(&infra).await;
    let (_, alice_key) = infra.user("alice@example.com").await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "edit", "resource": "prod.web"})).await;
    let csrs: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> = Api::all(kube_client(&k8s.admin_kubeconfig()).await);
    let cert_request = |lifetime: i64| json!({"clusters": ["prod"], "style": "certificate", "lifetime_secs": lifetime});
    let rows = |infra: &Infra| {
        let db = infra.state.db.clone();
        async move { infra::server::db::query_one(&db, "SELECT COUNT(*) FROM certificate_requests", []).await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap() }
    };

    // refused, with nothing asked of the cluster: a user who is not an admin, a lifetime under the
    // 10 minutes Kubernetes requires or over the admin-set maximum, the answer route for anyone but
    // the cluster's connector
    let (status, body) = infra.post("/api/kubeconfig", &alice_key, cert_request(3600)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = infra.post("/api/kubeconfig", &infra.admin, cert_request(300)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("10 minutes"), "{body}");
    let (status, _) = infra.post("/api/kubeconfig", &infra.admin, cert_request(2 * 86_400)).await;
    assert_eq!(status, 400);
    let (status, _) = infra.post("/api/destinations/prod/certificates/1", &alice_key, json!({"certificate": "x"})).await;
    assert_eq!(status, 403);
    let (status, _) = infra.post("/api/destinations/prod/certificates/999", &connector_key, json!({"error": "no"})).await;
    assert_eq!(status, 404);
    assert_eq!(rows(&infra).await, 0);
    assert!(csrs.list(&Default::default()).await.unwrap().items.is_empty(), "no CSR reached the cluster");

    // the admin's certificate: signed by the cluster, CN = email, O = groups, pointing at the API
    // server itself with its CA; kubectl with it can do what the grants allow and nothing more
    let (status, file) = infra.post("/api/kubeconfig", &infra.admin, cert_request(900)).await;
    assert_eq!(status, 200, "{file}");
    let kubeconfig = &file["kubeconfig"];
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"].as_str().unwrap().trim_end_matches('/'), k8s.url.trim_end_matches('/'));
    let user = &kubeconfig["users"][0]["user"];
    assert!(user["client-certificate-data"].is_string() && user["client-key-data"].is_string() && user.get("token").is_none(), "{user}");
    let path = dir.path().join("break-glass.kubeconfig");
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    let whoami = kubectl(&path, &["--context", "infra:prod.web", "auth", "whoami", "-o", "json"]);
    assert!(whoami.ok, "{}", whoami.stderr);
    let whoami: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], harness::ADMIN, "{whoami}");
    assert!(whoami["status"]["userInfo"]["groups"].as_array().unwrap().iter().any(|g| g == "oncall"), "{whoami}");
    let pods = eventually("the cluster binds oncall's grant", Duration::from_secs(10), || async {
        let r = kubectl(&path, &["--context", "infra:prod.web", "get", "pods", "-o", "name"]);
        r.ok.then_some(r.stdout)
    })
    .await;
    assert!(pods.contains("web-0"), "{pods}");
    let db = kubectl(&path, &["--context", "infra:prod.web", "get", "pods", "-n", "db"]);
    assert!(!db.ok && db.stderr.contains("forbidden"), "{}", db.stderr);

    // the certificate lives as long as asked; the request is gone; the download is audited as
    // one that cannot be revoked
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD.decode(user["client-certificate-data"].as_str().unwrap()).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    // (NotBefore is backdated for clock skew, as Kubernetes does; NotAfter is what counts)
    let lifetime = cert.validity().not_after.timestamp() - infra::server::now() / 1000;
    assert!((840..=960).contains(&lifetime), "it expires in {lifetime} s");
    assert_eq!(rows(&infra).await, 0);
    let (_, events) = infra.get("/api/audit?action=kubeconfig.download", &infra.admin).await;
    assert!(events.to_string().contains("cannot be revoked"), "{events}");
    connector.abort();
    k8s.shutdown().await;
}

/// The subject of a PEM client certificate: its CN and its O values.
fn subject_of(pem: &[u8]) -> (String, Vec<String>) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
    let o = cert.subject().iter_organization().map(|o| o.as_str().unwrap().to_string()).collect();
    (cn, o)
}

/// Makes `user_id` a member of a group an identity provider named `name` (a provider may name its
/// groups anything, `system:masters` too), as a provider login records it; the group's id.
async fn provider_group(infra: &Infra, name: &str, user_id: i64) -> i64 {
    let db = &infra.state.db;
    let now = infra::server::now();
    infra::server::db::execute(
        db,
        "INSERT INTO groups (name, name_lc, source, external_id, created_at) VALUES (?, ?, 'corp', ?, ?)",
        [name.into(), name.to_lowercase().into(), name.into(), now.into()],
    )
    .await
    .unwrap();
    let row = infra::server::db::query_one(db, "SELECT id FROM groups WHERE source = 'corp' AND external_id = ?", [name.into()]).await.unwrap().unwrap();
    let id: i64 = row.try_get_by_index(0).unwrap();
    infra::server::db::execute(db, "INSERT INTO group_members (group_id, user_id, created_at) VALUES (?, ?, ?)", [id.into(), user_id.into(), now.into()])
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn break_glass_certificates_carry_only_groups_granted_on_the_cluster() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, _) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let admin_id = infra.get("/api/me", &infra.admin).await.1["id"].as_i64().unwrap();
    // the admin is in oncall (a grant on prod), in bystanders (no grant on prod), and in a provider's
    // group named system:masters, which even holds a grant on prod.web
    for name in ["oncall", "bystanders"] {
        let (_, group) = infra.post("/api/groups", &infra.admin, json!({"name": name})).await;
        infra.post(&format!("/api/groups/{}/members", group["id"]), &infra.admin, json!({"user": admin_id.to_string()})).await;
    }
    infra.post("/api/grants", &infra.admin, json!({"subject": "group:oncall", "role": "edit", "resource": "prod.web"})).await;
    let masters = provider_group(&infra, "system:masters", admin_id).await;
    infra::server::db::execute(
        &infra.state.db,
        "INSERT INTO grants (subject_kind, subject_id, role, destination, namespace, created_at) VALUES ('group', ?, 'view', 'prod', 'web', ?)",
        [masters.into(), infra::server::now().into()],
    )
    .await
    .unwrap();

    let (status, file) = infra.post("/api/kubeconfig", &infra.admin, json!({"clusters": ["prod"], "style": "certificate", "lifetime_secs": 900})).await;
    assert_eq!(status, 200, "{file}");
    let user = &file["kubeconfig"]["users"][0]["user"];
    let pem = base64::engine::general_purpose::STANDARD.decode(user["client-certificate-data"].as_str().unwrap()).unwrap();
    let (cn, o) = subject_of(&pem);
    assert_eq!(cn, harness::ADMIN);
    // the provider's group reaches the cluster as `corp:system:masters` (provider groups are named by their
    // provider there), never as Kubernetes' own system:masters
    assert_eq!(o, vec!["corp:system:masters".to_string(), "oncall".to_string()], "O holds only the groups granted on prod, never a system: group");
    let path = dir.path().join("break-glass.kubeconfig");
    std::fs::write(&path, file["kubeconfig"].to_string()).unwrap();
    let whoami = kubectl(&path, &["--context", "infra:prod", "auth", "whoami", "-o", "json"]);
    assert!(whoami.ok, "{}", whoami.stderr);
    let whoami: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    let groups = whoami["status"]["userInfo"]["groups"].as_array().unwrap();
    assert!(!groups.iter().any(|g| g == "system:masters" || g == "bystanders"), "{whoami}");
    let db = kubectl(&path, &["--context", "infra:prod", "get", "pods", "-n", "db"]);
    assert!(!db.ok && db.stderr.contains("forbidden"), "only oncall's grant applies: {}", db.stderr);
    connector.abort();
    k8s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connector_refuses_certificate_requests_unlike_what_they_say() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, _) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let admin_id = admin_in_oncall(&infra).await;
    let csrs: Api<k8s_openapi::api::certificates::v1::CertificateSigningRequest> = Api::all(kube_client(&k8s.admin_kubeconfig()).await);
    let db = infra.state.db.clone();

    // a request row written straight into the database (as whoever can write it would), for the
    // admin, its CSR naming someone else or other groups, or its lifetime past the admin's maximum;
    // the connector's answer (certificate, error)
    let crafted = |cn: &str, o: &[&str], lifetime: i64| {
        let (csr, _) = infra::tls::client_csr(cn, &o.iter().map(|g| g.to_string()).collect::<Vec<_>>()).unwrap();
        let db = db.clone();
        async move {
            infra::server::db::execute(
                &db,
                "INSERT INTO certificate_requests (destination, user_id, csr, expiration_secs, created_at) VALUES ('prod', ?, ?, ?, ?)",
                [admin_id.into(), csr.clone().into(), lifetime.into(), infra::server::now().into()],
            )
            .await
            .unwrap();
            infra::server::services::changes::notify();
            eventually("the connector answers the request", Duration::from_secs(20), || async {
                let row = infra::server::db::query_one(&db, "SELECT certificate, error FROM certificate_requests WHERE csr = ?", [csr.clone().into()])
                    .await
                    .unwrap()
                    .unwrap();
                let (certificate, error): (String, String) = (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap());
                (!certificate.is_empty() || !error.is_empty()).then_some((certificate, error))
            })
            .await
        }
    };
    for (cn, o, lifetime, why) in [
        (harness::ADMIN, &["oncall", "system:masters"][..], 900, "subject"),
        (harness::ADMIN, &[][..], 900, "subject"),
        ("alice@example.com", &["oncall"][..], 900, "subject"),
        (harness::ADMIN, &["oncall"][..], 30 * 86_400, "lifetime"),
        (harness::ADMIN, &["oncall"][..], 60, "lifetime"),
    ] {
        let (certificate, error) = crafted(cn, o, lifetime).await;
        assert!(certificate.is_empty(), "the connector had a certificate signed for CN={cn} O={o:?} for {lifetime} s");
        assert!(error.contains(why), "{error}");
    }
    assert!(csrs.list(&Default::default()).await.unwrap().items.is_empty(), "no CSR reached the cluster");
    let (_, events) = infra.get("/api/audit?action=destinations.certificate", &infra.admin).await;
    assert!(events.to_string().contains("system:masters") && events.to_string().contains("denied"), "{events}");

    // what the request says, the connector has signed
    let (certificate, error) = crafted(harness::ADMIN, &["oncall"], 900).await;
    assert!(error.is_empty() && certificate.contains("BEGIN CERTIFICATE"), "{error}");
    connector.abort();
    k8s.shutdown().await;
}

/// One HTTP/1.1 request written byte for byte to the proxy (no client library normalises the path or
/// the headers); the response's status line and headers.
async fn raw_request(endpoint: &str, ca_pem: &str, request: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
    let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let address = endpoint.trim_start_matches("https://");
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)).connect(name, tcp).await.unwrap();
    stream.write_all(request.replace('\n', "\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the proxy answers");
    String::from_utf8_lossy(&head).into_owned()
}

async fn audited(infra: &Infra, actor: &str, what: impl Fn(&serde_json::Value) -> bool) {
    eventually("the request is audited", Duration::from_secs(10), || async {
        let (_, page) = infra.get(&format!("/api/audit?actor={actor}&limit=200"), &infra.admin).await;
        page["items"].as_array().is_some_and(|items| items.iter().any(&what)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_forwards_no_hop_by_hop_tricks_and_no_dot_segments() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, prod) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let (endpoint, ca) = (prod["endpoint"].as_str().unwrap().to_string(), prod["ca"].as_str().unwrap().to_string());
    let (_, alice_key) = infra.user("alice@example.com").await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "edit", "resource": "prod.web"})).await;
    let token = infra.token(&alice_key, "prod").await;
    let config = kubeconfig(dir.path(), "alice", &endpoint, &ca, &token);
    eventually("alice may list pods in web", Duration::from_secs(10), || async { kubectl(&config, &["get", "pods", "-n", "web"]).ok.then_some(()) }).await;
    let host = endpoint.trim_start_matches("https://");

    // an exec in db, where alice has no grant, whose Connection header names the impersonation headers
    // as hop-by-hop: an intermediary in front of the API server (the test server acts as one) would
    // strip them, and the command would run as the connector itself
    let exec = format!(
        "GET /api/v1/namespaces/db/pods/db-0/exec?command=echo&command=owned&stdout=true HTTP/1.1\nHost: {host}\nAuthorization: Bearer {token}\n\
         Connection: Upgrade, Impersonate-User, Impersonate-Group\nUpgrade: websocket\nSec-WebSocket-Version: 13\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Protocol: v5.channel.k8s.io\n\n"
    );
    let answer = raw_request(&endpoint, &ca, &exec).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "the exec must run as alice, who may not: {answer}");
    audited(&infra, "alice@example.com", |e| e["target"] == "prod/db/pods/exec/db-0" && e["outcome"] == "denied").await;

    // `..` segments, plain and percent-encoded, are refused by the proxy before anything is forwarded
    for path in ["/api/v1/namespaces/web/pods/../../db/pods", "/api/v1/namespaces/web/pods/%2e%2e/%2E%2e/db/pods", "/api/v1/namespaces/web/./pods"] {
        let request = format!("GET {path} HTTP/1.1\nHost: {host}\nAuthorization: Bearer {token}\nConnection: close\n\n");
        let answer = raw_request(&endpoint, &ca, &request).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    audited(&infra, "alice@example.com", |e| e["outcome"] == "denied" && e["detail"] == "status 400").await;
    // and a plain path still works
    let request = format!("GET /api/v1/namespaces/web/pods HTTP/1.1\nHost: {host}\nAuthorization: Bearer {token}\nConnection: close\n\n");
    assert!(raw_request(&endpoint, &ca, &request).await.starts_with("HTTP/1.1 200"));
    connector.abort();
    k8s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn names_beyond_ascii_reach_the_cluster() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, prod) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let (endpoint, ca) = (prod["endpoint"].as_str().unwrap().to_string(), prod["ca"].as_str().unwrap().to_string());

    // jürgen is in "Ops-SRE 東京" (edit on prod.web) and "Équipe réseau" (view on prod.db)
    let (user_id, key) = infra.user("jürgen@example.com").await;
    for (group, resource) in [("Ops-SRE 東京", "prod.web"), ("Équipe réseau", "prod.db")] {
        let (status, created) = infra.post("/api/groups", &infra.admin, json!({"name": group})).await;
        assert_eq!(status, 201, "{created}");
        infra.post(&format!("/api/groups/{}/members", created["id"]), &infra.admin, json!({"user": user_id.to_string()})).await;
        let (status, grant) = infra
            .post(
                "/api/grants",
                &infra.admin,
                json!({"subject": format!("group:{group}"), "role": if resource == "prod.web" { "edit" } else { "view" }, "resource": resource}),
            )
            .await;
        assert_eq!(status, 201, "{grant}");
    }
    let config = kubeconfig(dir.path(), "jurgen", &endpoint, &ca, &infra.token(&key, "prod").await);
    let whoami = eventually("kubectl auth whoami works", Duration::from_secs(10), || async {
        let r = kubectl(&config, &["auth", "whoami", "-o", "json"]);
        r.ok.then_some(r.stdout)
    })
    .await;
    let whoami: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "jürgen@example.com", "{whoami}");
    let groups = whoami["status"]["userInfo"]["groups"].as_array().unwrap();
    for group in ["Ops-SRE 東京", "Équipe réseau"] {
        assert!(groups.iter().any(|g| g == group), "{group} missing from {groups:?}");
    }
    // and the grants through them hold: the bindings name the groups as they are
    for namespace in ["web", "db"] {
        eventually("kubectl may list pods through the group grants", Duration::from_secs(10), || async {
            kubectl(&config, &["get", "pods", "-n", namespace]).ok.then_some(())
        })
        .await;
    }
    connector.abort();
    k8s.shutdown().await;
}

/// A kubectl that keeps running (a watch, `logs -f`, `exec -i ... cat`), its output lines as they come.
struct Running {
    what: &'static str,
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Running {
    fn start(what: &'static str, config: &Path, args: &[&str]) -> Running {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(config)
            .arg("--cache-dir")
            .arg(config.with_extension("cache"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl runs");
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Running { what, child, stdin, lines }
    }

    /// Waits for a line with `text` (for at most 10 seconds).
    async fn shows(&mut self, text: &str) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(text) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "{}: no line with {text:?}", self.what);
    }

    async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// `exec -i ... cat` still answers.
    async fn echoes(&mut self, line: &str) {
        self.send(line).await;
        self.shows(line).await;
    }

    /// `kubectl port-forward ... :80`: the local port it listens on.
    async fn forwarded_port(&mut self) -> u16 {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.recv()).await.ok().flatten().unwrap_or_default();
        let port = line.strip_prefix("Forwarding from 127.0.0.1:").and_then(|rest| rest.split_once(' ')).and_then(|(p, _)| p.parse().ok());
        port.unwrap_or_else(|| panic!("{}: {line:?}", self.what))
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    async fn ends_within(&mut self, why: &str, limit: Duration) {
        let ended = tokio::time::timeout(limit, self.child.wait()).await;
        assert!(ended.is_ok(), "{} is still running {}s after {why}", self.what, limit.as_secs());
    }
}

/// A connection through a `kubectl port-forward` answers (the test server's pods echo on every port).
async fn forwards(port: u16, text: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        conn.write_all(text.as_bytes()).await.ok()?;
        let mut echoed = vec![0u8; text.len()];
        conn.read_exact(&mut echoed).await.ok()?;
        (echoed == text.as_bytes()).then_some(())
    };
    tokio::time::timeout(Duration::from_secs(10), attempt).await.ok().flatten().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_streams_end_when_their_access_ends() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, prod) = harness::connected_prod(&infra, &k8s, dir.path()).await;
    let (endpoint, ca) = (prod["endpoint"].as_str().unwrap().to_string(), prod["ca"].as_str().unwrap().to_string());
    let AliceAndBob { alice_id, alice_key, alice_key2, dev_grant, alice1, alice2, bob, .. } = alice_and_bob(&infra, &prod, dir.path()).await;
    let watch = ["get", "pods", "-n", "web", "--watch"];
    let cat = ["exec", "-i", "web-0", "-n", "web", "--", "cat"];
    let follow = ["logs", "-f", "web-0", "-n", "web"];
    let mut bob_watch = Running::start("bob's watch", &bob, &watch);
    bob_watch.shows("web-0").await;
    let mut bob_exec = Running::start("bob's exec", &bob, &cat);
    bob_exec.echoes("bob was here").await;
    let mut alice_watch = Running::start("alice's watch", &alice1, &watch);
    alice_watch.shows("web-0").await;
    let mut alice_exec = Running::start("alice's exec", &alice1, &cat);
    alice_exec.echoes("alice was here").await;
    let mut alice_logs = Running::start("alice's logs -f", &alice1, &follow);
    alice_logs.shows("log line 6").await;
    let mut alice_other_key = Running::start("the watch with alice's other key", &alice2, &watch);
    alice_other_key.shows("web-0").await;
    let forward = ["port-forward", "-n", "web", "pod/web-0", ":80"];
    let mut bob_forward = Running::start("bob's port-forward", &bob, &forward);
    let bob_port = bob_forward.forwarded_port().await;
    assert!(forwards(bob_port, "bob's bytes").await);
    let mut alice_forward = Running::start("alice's port-forward", &alice1, &forward);
    let alice_port = alice_forward.forwarded_port().await;
    assert!(forwards(alice_port, "alice's bytes").await);

    // (1) the grant is removed: bob's streams end. The re-check that ended them also looked at
    // alice's, which her own grant still allows: they keep running
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/grants/{}", dev_grant["id"]), &infra.admin, None).await;
    assert_eq!(status, 204);
    bob_watch.ends_within("the grant was removed", Duration::from_secs(10)).await;
    bob_exec.ends_within("the grant was removed", Duration::from_secs(10)).await;
    bob_forward.ends_within("the grant was removed", Duration::from_secs(10)).await;
    assert!(alice_watch.running() && alice_other_key.running(), "an unrelated grant change closed alice's watches");
    alice_exec.echoes("alice is still here").await;
    assert!(forwards(alice_port, "alice's bytes again").await, "alice's port-forward still forwards");
    alice_logs.shows("log line").await;

    // (2) her key is revoked: the streams opened with its token end; the one with her other key does not
    let row = key_row(&infra, &alice_key).await;
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{row}"), &alice_key2, None).await;
    assert_eq!(status, 204);
    for stream in [&mut alice_watch, &mut alice_exec, &mut alice_logs, &mut alice_forward] {
        stream.ends_within("the key was revoked", Duration::from_secs(5)).await;
    }
    assert!(alice_other_key.running(), "revoking one key closed a stream of her other key");

    // (3) she is disabled: the rest end
    let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{alice_id}"), &infra.admin, Some(json!({"disabled": true}))).await;
    assert_eq!(status, 200);
    alice_other_key.ends_within("the user was disabled", Duration::from_secs(5)).await;
    let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{alice_id}"), &infra.admin, Some(json!({"disabled": false}))).await;
    assert_eq!(status, 200);

    // (4) the token expires: a token living 15 seconds (signed here: the server mints none that short)
    let now = infra::server::now() / 1000;
    let claims = ClusterClaims {
        iss: infra.url.clone(),
        aud: "prod".into(),
        sub: "alice@example.com".into(),
        groups: vec![],
        iat: now,
        exp: now + 15,
        jti: "short".into(),
        uid: alice_id,
        sid: None,
        downloaded: false,
    };
    let short = infra.state.signer.sign(&infra.state.db, &claims).await.unwrap();
    let short = kubeconfig(dir.path(), "short", &endpoint, &ca, &short);
    let mut short_watch = Running::start("the watch with a short-lived token", &short, &watch);
    short_watch.shows("web-0").await;
    let mut short_exec = Running::start("the exec with a short-lived token", &short, &cat);
    short_exec.echoes("for now").await;
    short_watch.ends_within("the token expired", Duration::from_secs(25)).await;
    short_exec.ends_within("the token expired", Duration::from_secs(25)).await;
    connector.abort();
    k8s.shutdown().await;
}
