//! The CLI against a running server, the connector and the Kubernetes API test server: login with a
//! key and with a password, the kubeconfig merged into an existing one, `use`, `infra tokens` as an
//! ExecCredential (run by the real kubectl), `list`, `logout`, file permissions and error messages.

#[path = "support/cluster.rs"]
mod harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{connected_prod, eventually, test_api_server, Infra};
use serde_json::{json, Value};

struct Cli {
    home: PathBuf,
    server: String,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Cli {
    fn kubeconfig(&self) -> PathBuf {
        self.home.join("kubeconfig")
    }
    fn config_dir(&self) -> PathBuf {
        self.home.join("config")
    }
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("INFRA_CONFIG_DIR", self.config_dir())
            .env("KUBECONFIG", self.kubeconfig());
        c
    }
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut c = self.command(env!("CARGO_BIN_EXE_infra"));
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("infra runs");
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    }
    fn kubectl(&self, args: &[&str]) -> Out {
        let out = self.command("kubectl").args(["--request-timeout", "10s"]).args(args).output().expect("kubectl runs");
        Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    }
    fn kubeconfig_yaml(&self) -> String {
        std::fs::read_to_string(self.kubeconfig()).unwrap()
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const FOREIGN: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://other.example.com:6443\nusers:\n- name: other-admin\n  user:\n    token: foreign-token\ncontexts:\n- name: other\n  context:\n    cluster: other\n    user: other-admin\n    namespace: kube-system\ncurrent-context: other\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_kubeconfig_tokens_and_logout() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, _) = connected_prod(&infra, &k8s, dir.path()).await;
    let (_, alice_key) = infra.user("alice@example.com").await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "edit", "resource": "prod.web"})).await;

    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home, server: infra.url.clone() };
    std::fs::write(cli.kubeconfig(), FOREIGN).unwrap();

    // completion scripts name the commands; version prints one line
    let r = cli.run(&["completion", "bash"], None);
    assert!(r.ok && r.stdout.contains("_infra") && r.stdout.contains("login") && r.stdout.contains("tokens"), "{}", r.stderr);
    let r = cli.run(&["completion", "fish"], None);
    assert!(r.ok && r.stdout.contains("complete -c infra"), "{}", r.stderr);
    let r = cli.run(&["version"], None);
    assert!(r.ok && r.stdout.starts_with("infra "), "{}", r.stdout);

    // not logged in: a sentence that says what to do
    let r = cli.run(&["tokens", "--cluster", "prod"], None);
    assert!(!r.ok && r.stderr.contains("not logged in: run infra login"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    // login with a key: contexts for prod and prod.web, the foreign context untouched and still current
    let r = cli.run(&["login", &cli.server, "--key", &alice_key], None);
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("as alice@example.com") && r.stdout.contains("infra:prod.web"), "{}", r.stdout);
    assert_eq!(mode(&cli.config_dir().join("config.json")), 0o600);
    assert_eq!(mode(&cli.kubeconfig()), 0o600);
    let yaml = cli.kubeconfig_yaml();
    assert!(yaml.contains("foreign-token") && yaml.contains("kube-system") && yaml.contains("current-context: other"), "{yaml}");
    assert!(yaml.contains("name: infra:prod") && yaml.contains("name: infra:prod.web"), "{yaml}");

    // infra use switches kubectl; kubectl runs `infra tokens` and reaches the cluster through the proxy
    let r = cli.run(&["use", "prod.web"], None);
    assert!(r.ok, "{}", r.stderr);
    assert!(cli.kubeconfig_yaml().contains("current-context: infra:prod.web"));
    let pods = eventually("kubectl lists pods in web with the exec plugin", Duration::from_secs(10), || async {
        let r = cli.kubectl(&["get", "pods", "-o", "name"]);
        r.ok.then_some(r.stdout)
    })
    .await;
    assert!(pods.contains("web-0"), "{pods}");
    let r = cli.kubectl(&["get", "pods", "-n", "db"]);
    assert!(!r.ok && r.stderr.contains("forbidden"), "the grant covers web only: {}", r.stderr);
    let r = cli.run(&["use", "staging"], None);
    assert!(!r.ok && r.stderr.contains("no context infra:staging"), "{}", r.stderr);

    // infra tokens: an ExecCredential, cached
    let r = cli.run(&["tokens", "--cluster", "prod"], None);
    assert!(r.ok, "{}", r.stderr);
    let credential: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(credential["kind"], "ExecCredential");
    let token = credential["status"]["token"].as_str().unwrap().to_string();
    let stamp = credential["status"]["expirationTimestamp"].as_str().unwrap();
    let expires = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
    let left = expires.unix_timestamp() - infra::server::now() / 1000;
    assert!((200..=300).contains(&left), "about 5 minutes left: {left}");
    let again: Value = serde_json::from_str(&cli.run(&["tokens", "--cluster", "prod"], None).stdout).unwrap();
    assert_eq!(again["status"]["token"], token.as_str(), "the cached token is reused");
    assert_eq!(mode(&cli.config_dir().join("tokens.json")), 0o600);
    let r = cli.run(&["tokens", "--cluster", "staging"], None);
    assert!(!r.ok && r.stderr.contains("no access to staging: ask an admin"), "{}", r.stderr);

    // list, as a table and as JSON
    let r = cli.run(&["list"], None);
    assert!(r.ok && r.stdout.contains("prod.web") && r.stdout.contains("edit"), "{} {}", r.stdout, r.stderr);
    let r = cli.run(&["list", "--format", "json"], None);
    let listed: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(listed[0]["resource"], "prod.web");
    let r = cli.run(&["list", "--format", "xml"], None);
    assert!(!r.ok && r.stderr.contains("use table, json or yaml"), "{}", r.stderr);

    // access changes reach the kubeconfig: a new grant on db adds a context, list rewrites it
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "view", "resource": "prod.db"})).await;
    assert!(cli.run(&["list"], None).ok);
    assert!(cli.kubeconfig_yaml().contains("name: infra:prod.db"));

    // a password login from a script; a wrong password is refused and changes nothing
    let r = cli.run(&["login", &cli.server, "--email", "alice@example.com"], Some("wrong-password\n"));
    assert!(!r.ok && r.stderr.contains("wrong email or password"), "{}", r.stderr);
    let r = cli.run(&["login", &cli.server, "--email", "alice@example.com"], Some("user-password-1\n"));
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_dir().join("config.json")).unwrap()).unwrap();
    assert_ne!(stored["access_key"], alice_key.as_str(), "the password login made the CLI its own key");

    // a downloaded kubeconfig with a token (for people without the CLI): kubectl works with it alone,
    // and revoking the key made for it refuses it within seconds
    let (status, file) = infra.post("/api/kubeconfig", &alice_key, json!({"style": "token", "lifetime_secs": 600})).await;
    assert_eq!(status, 200, "{file}");
    let left = file["expires_at"].as_i64().unwrap() / 1000 - infra::server::now() / 1000;
    assert!((590..=600).contains(&left), "the chosen lifetime: {left}");
    let downloaded = cli.home.join("downloaded.kubeconfig");
    std::fs::write(&downloaded, file["kubeconfig"].to_string()).unwrap();
    let with_file = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", downloaded.to_str().unwrap(), "--context", "infra:prod.web"];
        all.extend_from_slice(args);
        cli.kubectl(&all)
    };
    let r = with_file(&["get", "pods", "-o", "name"]);
    assert!(r.ok && r.stdout.contains("web-0"), "{}", r.stderr);
    let (_, keys) = infra.get("/api/keys", &alice_key).await;
    let row = keys.as_array().unwrap().iter().find(|k| k["name"].as_str().unwrap_or("").starts_with("kubeconfig token for prod")).expect("a key names the download");
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{}", row["id"]), &alice_key, None).await;
    assert_eq!(status, 204);
    eventually("the downloaded token is refused after its key is revoked", Duration::from_secs(5), || async {
        let r = with_file(&["get", "pods"]);
        (!r.ok && r.stderr.contains("You must be logged in")).then_some(())
    })
    .await;
    let (_, audit) = infra.get("/api/audit?action=kubeconfig.download", &infra.admin).await;
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["detail"] == "token for 10 minutes"), "{audit}");

    // the lifetime is capped by the admin's maximum (a day unless changed); only an admin changes it
    let (status, body) = infra.post("/api/kubeconfig", &alice_key, json!({"style": "token", "lifetime_secs": 172800})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = infra.call(reqwest::Method::PATCH, "/api/settings", &alice_key, Some(json!({"token_max_lifetime_secs": 172800}))).await;
    assert_eq!(status, 403);
    let (status, _) = infra.call(reqwest::Method::PATCH, "/api/settings", &infra.admin, Some(json!({"token_max_lifetime_secs": 172800}))).await;
    assert_eq!(status, 200);
    let (status, _) = infra.post("/api/kubeconfig", &alice_key, json!({"style": "token", "lifetime_secs": 172800})).await;
    assert_eq!(status, 200);
    let (status, body) = infra.post("/api/kubeconfig", &alice_key, json!({"clusters": ["staging"]})).await;
    assert_eq!(status, 403, "{body}");

    // logout: infra's contexts and the key go, the foreign context stays; the key is revoked
    let key = stored["access_key"].as_str().unwrap().to_string();
    let r = cli.run(&["logout"], None);
    assert!(r.ok, "{}", r.stderr);
    let yaml = cli.kubeconfig_yaml();
    assert!(!yaml.contains("infra:") && yaml.contains("foreign-token"), "{yaml}");
    let (status, _) = infra.get("/api/me", &key).await;
    assert_eq!(status, 401, "logout revoked the CLI's key");
    let r = cli.run(&["tokens", "--cluster", "prod"], None);
    assert!(!r.ok && r.stderr.contains("not logged in"), "{}", r.stderr);

    // the exec plugin style and revocation: logged in again, kubectl works; once the CLI's key is
    // revoked, kubectl is refused within seconds although its cached token has minutes left
    let r = cli.run(&["login", "--email", "alice@example.com"], Some("user-password-1\n"));
    assert!(r.ok, "login again to the remembered server: {} {}", r.stdout, r.stderr);
    let r = cli.run(&["use", "prod"], None);
    assert!(r.ok, "{}", r.stderr);
    eventually("kubectl works with the exec plugin", Duration::from_secs(10), || async {
        cli.kubectl(&["get", "pods", "-n", "web"]).ok.then_some(())
    })
    .await;
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_dir().join("config.json")).unwrap()).unwrap();
    let key = stored["access_key"].as_str().unwrap().to_string();
    let (_, keys) = infra.get("/api/keys", &key).await;
    let id = keys.as_array().unwrap().iter().find(|k| k["key_id"] == key.split('.').next().unwrap()).unwrap()["id"].clone();
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{id}"), &infra.admin, None).await;
    assert_eq!(status, 204);
    eventually("kubectl is refused after the CLI's key is revoked", Duration::from_secs(5), || async {
        let r = cli.kubectl(&["get", "pods", "-n", "web"]);
        (!r.ok && r.stderr.contains("You must be logged in")).then_some(())
    })
    .await;
    let r = cli.run(&["list"], None);
    assert!(!r.ok && r.stderr.contains("expired or was revoked: run infra login"), "{}", r.stderr);
    connector.abort();
    k8s.shutdown().await;
}
