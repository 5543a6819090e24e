//! The Kubernetes API test double, driven by the real clients: kube-rs and the kubectl on this machine.
//! Each test starts its own server on a free port in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_test_apiserver::kubeconfig::Credentials;
use kube_test_apiserver::{Options, TestApiServer};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

const ALICE: &[&str] = &["--as", "alice@example.com", "--as-group", "dev"];

struct Fixture {
    server: TestApiServer,
    home: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let opts = Options { listen: "127.0.0.1:0".parse().expect("addr"), dir: dir.path().join("server") };
    let server = TestApiServer::start(opts).await.expect("server starts");
    Fixture { server, home, _dir: dir }
}

impl Fixture {
    async fn client(&self, kubeconfig: &Path) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("config");
        kube::Client::try_from(config).expect("client")
    }

    async fn connector(&self) -> kube::Client {
        self.client(&self.server.connector_kubeconfig()).await
    }

    /// Runs kubectl with a kubeconfig and a private HOME (so its discovery cache is the test's own).
    async fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let run = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("kubectl finishes").expect("kubectl runs")
    }

    async fn connector_kubectl(&self, args: &[&str]) -> Output {
        self.kubectl(&self.server.connector_kubeconfig(), args).await
    }

    async fn admin_kubectl(&self, args: &[&str]) -> Output {
        self.kubectl(&self.server.admin_kubeconfig(), args).await
    }

    fn https(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.server.ca_pem.as_bytes()).expect("CA");
        reqwest::Client::builder().add_root_certificate(ca).build().expect("http client")
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "kubectl failed: {}\n{}", stdout(o), stderr(o));
}

fn binding(name: &str, labels: Value, role: &str, user: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": labels },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    })
}

fn api_code(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn names<T: kube::Resource>(items: &[T]) -> Vec<String> {
    items.iter().map(|i| i.meta().name.clone().unwrap_or_default()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reads_discovery_and_namespaces() {
    let f = start().await;
    let client = f.connector().await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.33.0");
    let namespaces = Api::<Namespace>::all(client).list(&ListParams::default()).await.expect("list");
    let names = names(&namespaces.items);
    for ns in ["default", "kube-system", "web", "db"] {
        assert!(names.contains(&ns.to_string()), "{ns} missing from {names:?}");
    }
    assert!(namespaces.metadata.resource_version.is_some_and(|rv| !rv.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_manages_cluster_role_bindings() {
    let f = start().await;
    let api = Api::<ClusterRoleBinding>::all(f.connector().await);
    let pp = PostParams::default();
    let make = |name: &str, labels: Value| serde_json::from_value::<ClusterRoleBinding>(binding(name, labels, "view", "alice")).expect("binding");
    api.create(&pp, &make("a", json!({ "managed-by": "infra", "tier": "gold" }))).await.expect("create a");
    api.create(&pp, &make("b", json!({ "managed-by": "infra", "tier": "silver" }))).await.expect("create b");
    api.create(&pp, &make("c", json!({ "managed-by": "other" }))).await.expect("create c");
    assert_eq!(api_code(api.create(&pp, &make("a", json!({}))).await.expect_err("duplicate")), (409, "AlreadyExists".into()));

    let select = |selector: &str| {
        let api = api.clone();
        let selector = selector.to_string();
        async move {
            let mut n = names(&api.list(&ListParams::default().labels(&selector)).await.expect("list").items);
            n.retain(|n| ["a", "b", "c"].contains(&n.as_str()));
            n
        }
    };
    assert_eq!(select("managed-by=infra").await, ["a", "b"]);
    assert_eq!(select("managed-by!=infra").await, ["c"]);
    assert_eq!(select("tier in (gold,bronze)").await, ["a"]);
    assert_eq!(select("managed-by,tier notin (gold)").await, ["b", "c"]);
    assert_eq!(select("tier").await, ["a", "b"]);
    assert_eq!(select("!tier,managed-by").await, ["c"]);

    // Replace with the current resourceVersion works; with the old one it is a conflict.
    let current = api.get("a").await.expect("get");
    let mut changed = current.clone();
    changed.subjects.as_mut().expect("subjects")[0].name = "bob".into();
    let replaced = api.replace("a", &pp, &changed).await.expect("replace");
    assert_ne!(replaced.metadata.resource_version, current.metadata.resource_version);
    assert_eq!(replaced.metadata.uid, current.metadata.uid);
    assert_eq!(api_code(api.replace("a", &pp, &changed).await.expect_err("stale")), (409, "Conflict".into()));

    // Merge, strategic-merge (as merge), JSON patch, and server-side apply (create or merge).
    let p = PatchParams::default();
    let merged = api.patch("a", &p, &Patch::Merge(json!({ "metadata": { "labels": { "tier": null, "extra": "1" } } }))).await.expect("merge");
    let labels = merged.metadata.labels.clone().unwrap_or_default();
    assert_eq!((labels.get("tier"), labels.get("extra").map(String::as_str)), (None, Some("1")));
    let strategic = api.patch("a", &p, &Patch::Strategic(json!({ "metadata": { "annotations": { "note": "x" } } }))).await.expect("strategic");
    assert_eq!(strategic.metadata.annotations.unwrap_or_default().get("note").map(String::as_str), Some("x"));
    // JSON patch (kube-rs needs an extra feature for it; plain HTTPS will do).
    let res = f
        .https()
        .patch(format!("{}/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/a", f.server.url))
        .bearer_auth(&f.server.connector_token)
        .header("Content-Type", "application/json-patch+json")
        .body(json!([{ "op": "replace", "path": "/subjects/0/name", "value": "carol" }]).to_string())
        .send()
        .await
        .expect("json patch");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(api.get("a").await.expect("get").subjects.expect("subjects")[0].name, "carol");
    let roleref = api.patch("a", &p, &Patch::Merge(json!({ "roleRef": { "name": "edit" } }))).await.expect_err("roleRef is immutable");
    assert_eq!(api_code(roleref).0, 422);
    let apply = PatchParams::apply("infra-test");
    let applied = api.patch("d", &apply, &Patch::Apply(binding("d", json!({ "managed-by": "infra" }), "edit", "dave"))).await.expect("apply creates");
    assert_eq!(applied.role_ref.name, "edit");
    let reapplied = api.patch("d", &apply, &Patch::Apply(json!({ "metadata": { "name": "d", "labels": { "x": "y" } } }))).await.expect("apply merges");
    assert_eq!(reapplied.metadata.labels.unwrap_or_default().len(), 2);

    api.delete("a", &DeleteParams::default()).await.expect("delete");
    assert_eq!(api_code(api.get("a").await.expect_err("gone")), (404, "NotFound".into()));
    assert_eq!(api_code(api.delete("a", &DeleteParams::default()).await.expect_err("gone")).0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_manages_role_bindings_in_a_namespace() {
    let f = start().await;
    let client = f.connector().await;
    let web = Api::<RoleBinding>::namespaced(client.clone(), "web");
    let rb: RoleBinding = serde_json::from_value(binding("alice-edit", json!({ "managed-by": "infra" }), "edit", "alice")).expect("rb");
    let created = web.create(&PostParams::default(), &rb).await.expect("create");
    assert_eq!(created.metadata.namespace.as_deref(), Some("web"));
    assert_eq!(names(&web.list(&ListParams::default().labels("managed-by=infra")).await.expect("list").items), ["alice-edit"]);
    let db = Api::<RoleBinding>::namespaced(client.clone(), "db");
    assert!(db.list(&ListParams::default()).await.expect("list db").items.is_empty());
    let all = Api::<RoleBinding>::all(client.clone()).list(&ListParams::default()).await.expect("list all");
    assert_eq!(names(&all.items), ["alice-edit"]);
    let nowhere = Api::<RoleBinding>::namespaced(client, "nowhere");
    assert_eq!(api_code(nowhere.create(&PostParams::default(), &rb).await.expect_err("no namespace")).0, 404);
    web.delete("alice-edit", &DeleteParams::default()).await.expect("delete");
    assert!(web.list(&ListParams::default()).await.expect("list").items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watches_from_a_resource_version() {
    let f = start().await;
    let api = Api::<ClusterRoleBinding>::all(f.connector().await);
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    let mut events = api.watch(&WatchParams::default().labels("team=blue").timeout(30), &rv).await.expect("watch").boxed();
    let pp = PostParams::default();
    let rb: ClusterRoleBinding = serde_json::from_value(binding("w", json!({ "team": "blue" }), "view", "alice")).expect("rb");
    api.create(&pp, &rb).await.expect("create");
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "annotations": { "a": "b" } } }))).await.expect("patch");
    // Leaving the selection reads as DELETED for this watcher.
    api.patch("w", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "team": "red" } } }))).await.expect("relabel");
    let other: ClusterRoleBinding = serde_json::from_value(binding("x", json!({ "team": "red" }), "view", "bob")).expect("rb");
    api.create(&pp, &other).await.expect("create other");
    api.patch("x", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "team": "blue" } } }))).await.expect("relabel x");
    api.delete("x", &DeleteParams::default()).await.expect("delete");

    let mut seen = Vec::new();
    while seen.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.try_next()).await.expect("event in time").expect("ok").expect("open");
        seen.push(match event {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap_or_default()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap_or_default()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap_or_default()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED w", "MODIFIED w", "DELETED w", "ADDED x", "DELETED x"]);

    // From resourceVersion 0: the current objects first.
    let mut initial = api.watch(&WatchParams::default().timeout(5), "0").await.expect("watch").boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), initial.try_next()).await.expect("event").expect("ok").expect("open");
    assert!(matches!(first, WatchEvent::Added(_)), "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_namespaces_and_pods() {
    let f = start().await;
    let out = f.connector_kubectl(&["get", "namespaces"]).await;
    assert_ok(&out);
    for ns in ["default", "kube-system", "web", "db"] {
        assert!(stdout(&out).contains(ns), "{}", stdout(&out));
    }
    let out = f.connector_kubectl(&["get", "pods", "-n", "web"]).await;
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("web-0") && text.contains("web-1") && text.contains("Running"), "{text}");
    assert!(!text.contains("db-0"), "{text}");
    let out = f.connector_kubectl(&["get", "pod", "db-0", "-n", "db", "-o", "jsonpath={.status.phase}"]).await;
    assert_eq!(stdout(&out), "Running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_impersonation_follows_rbac() {
    let f = start().await;
    let list_web = [&["get", "pods", "-n", "web"][..], ALICE].concat();
    let list_db = [&["get", "pods", "-n", "db"][..], ALICE].concat();
    let out = f.connector_kubectl(&list_web).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(r#"pods is forbidden: User "alice@example.com" cannot list resource "pods" in API group "" in the namespace "web""#),
        "{}",
        stderr(&out)
    );
    let out = f.connector_kubectl(&[&["auth", "can-i", "list", "pods", "-n", "web"][..], ALICE].concat()).await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(1), "no"));

    // A RoleBinding to the group, made with kubectl (protobuf on the wire) through the connector.
    assert_ok(&f.connector_kubectl(&["create", "rolebinding", "dev-edit", "-n", "web", "--clusterrole", "edit", "--group", "dev"]).await);
    let out = f.connector_kubectl(&list_web).await;
    assert_ok(&out);
    assert!(stdout(&out).contains("web-0"));
    let out = f.connector_kubectl(&list_db).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("forbidden") && stderr(&out).contains(r#"in the namespace "db""#), "{}", stderr(&out));

    let out = f.connector_kubectl(&[&["auth", "can-i", "list", "pods", "-n", "web"][..], ALICE].concat()).await;
    assert_eq!((out.status.code(), stdout(&out).trim()), (Some(0), "yes"));
    let out = f.connector_kubectl(&[&["exec", "web-0", "-n", "web"][..], ALICE, &["--", "echo", "as alice"]].concat()).await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "as alice\n");
    let out = f.connector_kubectl(&[&["auth", "can-i", "create", "pods/exec", "-n", "db"][..], ALICE].concat()).await;
    assert_eq!(stdout(&out).trim(), "no");
    let out = f.connector_kubectl(&[&["auth", "can-i", "delete", "rolebindings", "-n", "web"][..], ALICE].concat()).await;
    assert_eq!(stdout(&out).trim(), "no", "edit does not manage RBAC");

    let out = f.connector_kubectl(&[&["auth", "whoami"][..], ALICE].concat()).await;
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("alice@example.com") && text.contains("[dev system:authenticated]"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_connector_may_impersonate() {
    let f = start().await;
    let out = f.admin_kubectl(&["get", "pods", "-n", "web"]).await;
    assert_ok(&out);
    let out = f.admin_kubectl(&["get", "pods", "-n", "web", "--as", "alice"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains(r#"users "alice" is forbidden: User "kubernetes-admin" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{}",
        stderr(&out)
    );
    let out = f.admin_kubectl(&["auth", "whoami"]).await;
    assert!(stdout(&out).contains("kubernetes-admin") && stdout(&out).contains("system:masters"), "{}", stdout(&out));
    let out = f.connector_kubectl(&["auth", "whoami"]).await;
    assert!(stdout(&out).contains("system:serviceaccount:infra:infra-connector"), "{}", stdout(&out));
    assert!(stdout(&out).contains("system:serviceaccounts:infra"), "{}", stdout(&out));
    // A user the connector impersonates gets no impersonation rights of its own from that.
    f.server.add_token("alice-token", "alice", &[]);
    let res = f
        .https()
        .get(format!("{}/api/v1/namespaces/web/pods", f.server.url))
        .bearer_auth("alice-token")
        .header("Impersonate-User", "bob")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_kubernetes_status_objects() {
    let f = start().await;
    // With nothing cached, kubectl's first request is discovery, whose 401 it words generically; once
    // discovery is cached (as after any earlier use), the 401 of the list itself is reported.
    let out = f.admin_kubectl(&["--token", "wrong", "get", "namespaces"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: You must be logged in to the server"), "{}", stderr(&out));
    assert_ok(&f.admin_kubectl(&["get", "namespaces"]).await);
    let out = f.admin_kubectl(&["--token", "wrong", "get", "namespaces"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: You must be logged in to the server (Unauthorized)"), "{}", stderr(&out));

    let http = f.https();
    let res = http.get(format!("{}/api/v1/namespaces", f.server.url)).bearer_auth("wrong").send().await.expect("request");
    assert_eq!(res.status().as_u16(), 401);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body,
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401, "details": {} })
    );

    f.server.add_token("alice-token", "alice", &["dev"]);
    let res = http.get(format!("{}/api/v1/namespaces/db/pods", f.server.url)).bearer_auth("alice-token").send().await.expect("request");
    assert_eq!(res.status().as_u16(), 403);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["message"], r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "db""#);
    assert_eq!((&body["reason"], &body["details"]), (&json!("Forbidden"), &json!({ "kind": "pods" })));
    // Discovery is open to every authenticated user.
    let res = http.get(format!("{}/version", f.server.url)).bearer_auth("alice-token").send().await.expect("request");
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_follow_streams_lines() {
    let f = start().await;
    let out = f.connector_kubectl(&["logs", "web-0", "-n", "web", "--tail", "2"]).await;
    assert_ok(&out);
    assert_eq!(stdout(&out).lines().count(), 2);

    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(f.server.connector_kubeconfig())
        .args(["logs", "-f", "web-0", "-n", "web"])
        .env("HOME", &f.home)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    while seen.len() < 8 {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.expect("a line in time").expect("read");
        seen.push(line.expect("stream still open"));
    }
    child.kill().await.expect("kill kubectl");
    // Five lines exist, then new ones keep coming while the client stays.
    assert_eq!(seen[0], "web-0 web: log line 1");
    assert_eq!(seen[7], "web-0 web: log line 8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_exec_runs_over_websockets() {
    let f = start().await;
    let out = f.connector_kubectl(&["exec", "web-0", "-n", "web", "--", "echo", "hello"]).await;
    assert_ok(&out);
    assert_eq!(stdout(&out), "hello\n");
    let exec_db = [&["exec", "db-0", "-n", "db"][..], ALICE, &["--", "echo", "hi"]].concat();
    let out = f.connector_kubectl(&exec_db).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(r#"pods "db-0" is forbidden"#), "{}", stderr(&out));
    // `get` on pods/exec is not enough for a websocket exec: it also takes `create`.
    assert_ok(&f.connector_kubectl(&["create", "role", "exec-get", "-n", "db", "--verb", "get", "--resource", "pods,pods/exec"]).await);
    assert_ok(&f.connector_kubectl(&["create", "rolebinding", "exec-get", "-n", "db", "--role", "exec-get", "--group", "dev"]).await);
    let out = f.connector_kubectl(&exec_db).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(r#"cannot create resource "pods/exec" in API group "" in the namespace "db""#), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_csr_yields_a_working_client_certificate() {
    let f = start().await;
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "carol");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "ops");
    let csr_pem = params.serialize_request(&key).expect("csr").pem().expect("pem");
    use base64::Engine;
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": { "name": "carol" },
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(&csr_pem),
            "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 3600, "usages": ["client auth"],
        },
    });
    let file = f.home.join("csr.json");
    std::fs::write(&file, csr.to_string()).expect("write csr");
    assert_ok(&f.admin_kubectl(&["create", "-f", file.to_str().expect("path")]).await);
    let out = f.admin_kubectl(&["get", "csr"]).await;
    assert!(stdout(&out).contains("Pending"), "{}", stdout(&out));
    assert_ok(&f.admin_kubectl(&["certificate", "approve", "carol"]).await);

    let api = Api::<CertificateSigningRequest>::all(f.connector().await);
    let csr = api.get("carol").await.expect("get csr");
    assert_eq!(csr.spec.username.as_deref(), Some("kubernetes-admin"));
    let status = csr.status.expect("status");
    assert!(status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Approved" && c.status == "True"));
    let cert_pem = String::from_utf8(status.certificate.expect("issued").0).expect("pem");
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert");
    let (_, cert) = x509_parser::prelude::X509Certificate::from_der(&der).expect("parse");
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(lifetime, 3600 + 300, "expirationSeconds plus the 5 minutes of backdating");

    let kubeconfig = f.home.join("carol.kubeconfig");
    let key_pem = key.serialize_pem();
    f.server.write_kubeconfig(&kubeconfig, "carol", Credentials::ClientCertificate { cert_pem: &cert_pem, key_pem: &key_pem }).expect("kubeconfig");
    let out = f.kubectl(&kubeconfig, &["auth", "whoami"]).await;
    assert_ok(&out);
    assert!(stdout(&out).contains("carol") && stdout(&out).contains("[ops system:authenticated]"), "{}", stdout(&out));
    let out = f.kubectl(&kubeconfig, &["get", "pods", "-n", "web"]).await;
    assert!(stderr(&out).contains(r#"User "carol" cannot list resource "pods""#), "{}", stderr(&out));

    // A certificate from another CA does not authenticate (and is not a reason to accept anything else).
    let stranger = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, "mallory");
    let self_signed = params.self_signed(&stranger).expect("cert").pem();
    let kubeconfig = f.home.join("mallory.kubeconfig");
    let stranger_key = stranger.serialize_pem();
    f.server.write_kubeconfig(&kubeconfig, "mallory", Credentials::ClientCertificate { cert_pem: &self_signed, key_pem: &stranger_key }).expect("kubeconfig");
    let out = f.kubectl(&kubeconfig, &["auth", "whoami"]).await;
    assert!(!out.status.success(), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_survives_a_restart_in_the_same_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = || Options { listen: "127.0.0.1:0".parse().expect("addr"), dir: dir.path().to_path_buf() };
    let first = TestApiServer::start(opts()).await.expect("start");
    let (ca, token) = (first.ca_pem.clone(), first.connector_token.clone());
    first.shutdown().await;
    let second = TestApiServer::start(opts()).await.expect("restart");
    assert_eq!(second.ca_pem, ca);
    assert_ne!(second.connector_token, token);
    assert_eq!(std::fs::read_to_string(second.ca_path()).expect("ca.crt"), ca);
    second.shutdown().await;
}

use rustls::pki_types::pem::PemObject;
use x509_parser::prelude::FromDer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_utf8_exec_cat_stays_open_and_hop_by_hop_headers_go() {
    let f = start().await;
    // impersonated names are read as UTF-8, as kube-apiserver reads them
    let out = f.connector_kubectl(&["auth", "whoami", "-o", "json", "--as", "jürgen", "--as-group", "Ops-SRE 東京", "--as-group", "Équipe"]).await;
    assert_ok(&out);
    let review: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(review["status"]["userInfo"]["username"], "jürgen");
    assert_eq!(review["status"]["userInfo"]["groups"], json!(["Ops-SRE 東京", "Équipe", "system:authenticated"]));

    // `exec -i ... cat` echoes stdin until it closes
    let mut cat = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(f.server.connector_kubeconfig())
        .args(["exec", "-i", "web-0", "-n", "web", "--", "cat"])
        .env("HOME", &f.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut stdin = cat.stdin.take().expect("stdin");
    let mut lines = tokio::io::BufReader::new(cat.stdout.take().expect("stdout")).lines();
    for line in ["one", "two"] {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write");
        let echoed = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.expect("echo in time").expect("read");
        assert_eq!(echoed.as_deref(), Some(line));
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), cat.wait()).await.expect("cat ends with stdin").expect("status");
    assert!(status.success());

    // headers named in Connection are dropped, as a hop in front of kube-apiserver drops them
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(f.server.ca_pem.as_bytes()).expect("CA"))
        .http1_only()
        .build()
        .expect("client");
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let whoami = |connection: &'static str| {
        client
            .post(format!("{}/apis/authentication.k8s.io/v1/selfsubjectreviews", f.server.url))
            .bearer_auth(&f.server.connector_token)
            .header("Impersonate-User", "alice")
            .header("Connection", connection)
            .json(&review)
            .send()
    };
    let named: Value = whoami("keep-alive, Impersonate-User").await.expect("request").json().await.expect("json");
    assert_eq!(named["status"]["userInfo"]["username"], "system:serviceaccount:infra:infra-connector", "{named}");
    let plain: Value = whoami("keep-alive").await.expect("request").json().await.expect("json");
    assert_eq!(plain["status"]["userInfo"]["username"], "alice", "{plain}");
}

/// `kubectl port-forward` (SPDY over a websocket, kubectl's default since 1.31): every port echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_port_forward_reaches_an_echoing_port() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = start().await;
    let mut forward = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(f.server.connector_kubeconfig())
        .args(["port-forward", "-n", "web", "pod/web-0", ":80"])
        .env("HOME", &f.home)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut lines = tokio::io::BufReader::new(forward.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.expect("forwarding in time").expect("read").expect("a line");
    let port = line.strip_prefix("Forwarding from 127.0.0.1:").and_then(|rest| rest.split_once(' ')).map(|(p, _)| p.to_string()).expect(&line);
    for round in ["first", "second"] {
        let mut conn = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.expect("connect");
        conn.write_all(round.as_bytes()).await.expect("write");
        let mut echoed = vec![0u8; round.len()];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut echoed)).await.expect("echo in time").expect("read");
        assert_eq!(echoed, round.as_bytes());
    }
    assert!(forward.try_wait().expect("status").is_none(), "port-forward keeps running");
}
