//! The CLI against a running server, the connector and the Kubernetes API test server: login with a
//! key and with a password, the kubeconfig merged into an existing one, `use`, `infra tokens` as an
//! ExecCredential (run by the real kubectl), `list`, `logout`, file permissions and error messages.

use test_harness::cluster as harness;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::{Infra, connected_prod, eventually, test_api_server};
use serde_json::{Value, json};

pub(crate) struct Cli {
    pub home: PathBuf,
    pub server: String,
}

pub(crate) struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    fn kubeconfig(&self) -> PathBuf {
        self.home.join("kubeconfig")
    }
    fn config_dir(&self) -> PathBuf {
        self.home.join("config")
    }
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("INFRA_CONFIG_DIR", self.config_dir())
            .env("KUBECONFIG", self.kubeconfig());
        c
    }
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
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
    pub fn kubectl(&self, args: &[&str]) -> Out {
        let out = self.command("kubectl").args(["--request-timeout", "10s"]).args(args).output().expect("kubectl runs");
        Out { ok: out.status.success(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into() }
    }
    /// What the shell completion offers after these words (the last one being typed), as fish asks.
    pub fn complete(&self, words: &[&str]) -> Vec<String> {
        let out = self.command(env!("CARGO_BIN_EXE_infra")).env("COMPLETE", "fish").arg("--").args(words).output().expect("infra runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
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
    assert!(r.ok && r.stdout.contains("COMPLETE=\"bash\"") && r.stdout.contains("complete -o nospace -o bashdefault -F"), "{} {}", r.stdout, r.stderr);
    let r = cli.run(&["completion", "fish"], None);
    assert!(r.ok && r.stdout.contains("complete --keep-order --exclusive --command infra"), "{}", r.stderr);
    // what the scripts ask: the commands, from the binary
    let words = cli.complete(&["infra", "lo"]);
    assert!(words.contains(&"login".to_string()) && words.contains(&"logout".to_string()), "{words:?}");
    let r = cli.run(&["version"], None);
    assert!(r.ok && r.stdout.starts_with("infra "), "{}", r.stdout);

    // not logged in: a sentence that says what to do
    let r = cli.run(&["tokens", "--cluster", "prod"], None);
    assert!(!r.ok && r.stderr.contains("not logged in: run infra login"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    // login with a key: contexts for prod and prod.web, the foreign context untouched and still current
    // the server's certificate comes from its own CA: without a terminal to ask on, login stops and
    // names the fingerprint; a wrong fingerprint is refused; nothing is saved either way
    let r = cli.run(&["login", &cli.server, "--key", &alice_key], None);
    assert!(!r.ok && r.stderr.contains(&infra.fingerprint) && r.stderr.contains("--tls-trusted-fingerprint"), "{}", r.stderr);
    let wrong = infra.fingerprint.replace(&infra.fingerprint[..2], if infra.fingerprint.starts_with("00") { "11" } else { "00" });
    let r = cli.run(&["login", &cli.server, "--key", &alice_key, "--tls-trusted-fingerprint", &wrong], None);
    assert!(!r.ok && r.stderr.contains("does not match"), "{}", r.stderr);
    assert!(!cli.config_dir().join("config.json").exists());
    let r = cli.run(&["login", &cli.server, "--key", &alice_key, "--tls-trusted-fingerprint", &infra.fingerprint.to_lowercase()], None);
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
    assert!(!r.ok && r.stderr.contains("[possible values: table, json, yaml]"), "{}", r.stderr);

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
    let row =
        keys.as_array().unwrap().iter().find(|k| k["name"].as_str().unwrap_or("").starts_with("kubeconfig token for prod")).expect("a key names the download");
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{}", row["id"]), &alice_key, None).await;
    assert_eq!(status, 204);
    let refused = eventually("the downloaded token is refused after its key is revoked", Duration::from_secs(5), || async {
        let r = with_file(&["get", "pods"]);
        (!r.ok && r.stderr.contains("You must be logged in")).then_some(r.stderr)
    })
    .await;
    // kubectl shows the proxy's sentence: the cause, and what to do
    let expected = format!("the token in this kubeconfig was revoked, or its user disabled: download a new kubeconfig from {}", infra.url);
    assert!(refused.contains(&expected), "{refused}");
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
    eventually("kubectl works with the exec plugin", Duration::from_secs(10), || async { cli.kubectl(&["get", "pods", "-n", "web"]).ok.then_some(()) }).await;
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_dir().join("config.json")).unwrap()).unwrap();
    let key = stored["access_key"].as_str().unwrap().to_string();
    let (_, keys) = infra.get("/api/keys", &key).await;
    let id = keys.as_array().unwrap().iter().find(|k| k["key_id"] == key.split('.').next().unwrap()).unwrap()["id"].clone();
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{id}"), &infra.admin, None).await;
    assert_eq!(status, 204);
    let refused = eventually("kubectl is refused after the CLI's key is revoked", Duration::from_secs(5), || async {
        let r = cli.kubectl(&["get", "pods", "-n", "web"]);
        (!r.ok && r.stderr.contains("You must be logged in")).then_some(r.stderr)
    })
    .await;
    assert!(refused.contains(&format!("your login to {0} was revoked, or your user disabled: run infra login {0}", infra.url)), "{refused}");
    // and `infra tokens`, which kubectl runs for a new token, says the same
    std::fs::remove_file(cli.config_dir().join("tokens.json")).unwrap();
    let r = cli.run(&["tokens", "--cluster", "prod"], None);
    assert!(!r.ok && r.stderr.contains(&format!("your login to {0} has expired or was revoked: run infra login {0}", infra.url)), "{}", r.stderr);
    let r = cli.run(&["list"], None);
    assert!(!r.ok && r.stderr.contains("expired or was revoked: run infra login"), "{}", r.stderr);
    connector.abort();
    k8s.shutdown().await;
}

/// Runs `infra` with a pseudo-terminal as its stdin, stdout and stderr; once the output contains
/// `question`, types `answer`. Returns the exit status and everything shown on the terminal.
#[allow(unsafe_code)] // the pseudo-terminal comes from libc; the one unsafe code in the package
fn run_in_terminal(cli: &Cli, args: &[&str], question: &str, answer: &str) -> (bool, String) {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new descriptors, which are owned by the Files made from them here
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) };
    let mut child = {
        let mut c = cli.command(env!("CARGO_BIN_EXE_infra"));
        c.args(args).stdin(slave.try_clone().unwrap()).stdout(slave.try_clone().unwrap()).stderr(slave);
        c.spawn().expect("infra runs")
    };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // read ends with EIO once the child has exited and closed the terminal
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !shown.contains(question) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => shown.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => panic!("no question {question:?} within 20 s; the terminal showed: {shown}"),
        }
    }
    (&master).write_all(answer.as_bytes()).unwrap();
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(2)) {
        shown.push_str(&String::from_utf8_lossy(&chunk));
    }
    (status.success(), shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_through_a_terminal() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let (_, bob_key) = infra.user("bob@example.com").await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home, server: infra.url.clone() };
    let question = "Trust this certificate? [y/N]";

    // the terminal shows the fingerprint `infra server` printed; answering no saves nothing
    let (ok, shown) = tokio::task::block_in_place(|| run_in_terminal(&cli, &["login", &cli.server, "--key", &bob_key], question, "n\n"));
    assert!(!ok, "{shown}");
    assert!(shown.contains(&infra.fingerprint) && shown.contains("not trusted; nothing was saved"), "{shown}");
    assert!(!cli.config_dir().join("config.json").exists());

    // answering yes logs in and stores the certificate with mode 0600
    let (ok, shown) = tokio::task::block_in_place(|| run_in_terminal(&cli, &["login", &cli.server, "--key", &bob_key], question, "y\n"));
    assert!(ok, "{shown}");
    assert!(shown.contains("Logged in to") && shown.contains("as bob@example.com"), "{shown}");
    let stored = std::fs::read_to_string(cli.config_dir().join("config.json")).unwrap();
    assert!(stored.contains("BEGIN CERTIFICATE"), "{stored}");
    assert_eq!(mode(&cli.config_dir().join("config.json")), 0o600);

    // from then on the CLI trusts the server without asking, also without a terminal
    let r = cli.run(&["list", "--format", "json"], None);
    assert!(r.ok, "{}", r.stderr);
    let r = cli.run(&["login", &cli.server, "--key", &bob_key], None);
    assert!(r.ok && !r.stderr.contains("fingerprint"), "{}", r.stderr);

    // --skip-tls-verify (throw-away setups): logs in without asking, says what it costs, and is remembered
    let careless = Cli { home: cli.home.join("careless"), server: infra.url.clone() };
    std::fs::create_dir_all(&careless.home).unwrap();
    let r = careless.run(&["login", &careless.server, "--key", &bob_key, "--skip-tls-verify"], None);
    assert!(r.ok && r.stderr.contains("not checked"), "{}", r.stderr);
    assert!(careless.run(&["list"], None).ok);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(careless.config_dir().join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["skip_tls_verify"], true);

    // a server that presents another certificate is asked about again, with a warning
    let mut config: Value = serde_json::from_str(&stored).unwrap();
    let other = infra::tls::Ca::create("another CA").unwrap();
    config["server_ca"] = json!(other.cert_pem);
    std::fs::write(cli.config_dir().join("config.json"), config.to_string()).unwrap();
    let r = cli.run(&["list"], None);
    assert!(!r.ok && r.stderr.contains("cannot reach"), "{}", r.stderr);
    let (ok, shown) = tokio::task::block_in_place(|| run_in_terminal(&cli, &["login", &cli.server, "--key", &bob_key], question, "y\n"));
    assert!(ok && shown.contains("has changed since you last trusted it"), "{shown}");
}

/// The promise of both revocable credential styles (the `infra tokens` exec plugin and a downloaded
/// token): whatever ends a user's access (the grant removed, the user disabled, the user removed from
/// the granting group, the key revoked), kubectl is refused within 5 seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_revocation_refuses_both_credential_styles_within_seconds() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, _) = connected_prod(&infra, &k8s, dir.path()).await;

    for cause in ["grant removed", "user disabled", "removed from the group", "key revoked"] {
        // a user whose access comes from a group's grant, with the CLI logged in and a downloaded token
        let slug = cause.replace(' ', "-");
        let email = format!("{slug}@example.com");
        let (user_id, key) = infra.user(&email).await;
        let (_, group) = infra.post("/api/groups", &infra.admin, json!({"name": slug})).await;
        let group_id = group["id"].as_i64().unwrap();
        infra.post(&format!("/api/groups/{group_id}/members"), &infra.admin, json!({"user": user_id.to_string()})).await;
        let (_, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": format!("group:{slug}"), "role": "view", "resource": "prod.web"})).await;
        let home = dir.path().join(&slug);
        std::fs::create_dir_all(&home).unwrap();
        let cli = Cli { home, server: infra.url.clone() };
        let r = cli.run(&["login", &cli.server, "--key", &key, "--tls-trusted-fingerprint", &infra.fingerprint], None);
        assert!(r.ok, "{}", r.stderr);
        assert!(cli.run(&["use", "prod.web"], None).ok);
        let (status, file) = infra.post("/api/kubeconfig", &key, json!({"style": "token", "lifetime_secs": 3600})).await;
        assert_eq!(status, 200, "{file}");
        let downloaded = cli.home.join("downloaded.kubeconfig");
        std::fs::write(&downloaded, file["kubeconfig"].to_string()).unwrap();
        let exec_style = || cli.kubectl(&["get", "pods", "-n", "web"]);
        let token_style = || cli.kubectl(&["--kubeconfig", downloaded.to_str().unwrap(), "--context", "infra:prod.web", "get", "pods"]);
        eventually(&format!("{cause}: both styles work first"), Duration::from_secs(10), || async { (exec_style().ok && token_style().ok).then_some(()) })
            .await;

        match cause {
            "grant removed" => {
                let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/grants/{}", grant["id"]), &infra.admin, None).await;
                assert_eq!(status, 204);
            }
            "user disabled" => {
                let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{user_id}"), &infra.admin, Some(json!({"disabled": true}))).await;
                assert_eq!(status, 200);
            }
            "removed from the group" => {
                let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/groups/{group_id}/members/{user_id}"), &infra.admin, None).await;
                assert_eq!(status, 200);
            }
            _ => {
                // the CLI's key, and the key the download made
                let (_, keys) = infra.get("/api/keys", &key).await;
                let stored: Value = serde_json::from_str(&std::fs::read_to_string(cli.config_dir().join("config.json")).unwrap()).unwrap();
                let cli_key_id = stored["access_key"].as_str().unwrap().split('.').next().unwrap().to_string();
                let rows: Vec<i64> = keys
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|k| k["key_id"] == cli_key_id.as_str() || k["name"].as_str().unwrap_or("").starts_with("kubeconfig token"))
                    .filter_map(|k| k["id"].as_i64())
                    .collect();
                assert_eq!(rows.len(), 2, "{keys}");
                for row in rows {
                    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{row}"), &infra.admin, None).await;
                    assert_eq!(status, 204);
                }
            }
        }
        let refused = |r: Out| !r.ok && (r.stderr.contains("forbidden") || r.stderr.contains("You must be logged in"));
        eventually(&format!("{cause}: kubectl is refused with both styles"), Duration::from_secs(5), || async {
            (refused(exec_style()) && refused(token_style())).then_some(())
        })
        .await;
    }
    connector.abort();
    k8s.shutdown().await;
}

/// What a malicious (or taken over) server answers to `POST /api/kubeconfig`: its own infra entries
/// with a shell command as the credential plugin, and foreign entries that replace the user's own
/// (`other`) or send the user's own credentials to the server's address (`infra:steal`).
fn malicious_kubeconfig(pwned: &Path) -> Value {
    let shell = json!({"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh",
        "args": ["-c", format!("touch {}", pwned.display())], "interactiveMode": "Never",
    }});
    json!({
        "filename": "infra.kubeconfig",
        "contexts": ["infra:prod", "infra:steal", "other"],
        "expires_at": null,
        "kubeconfig": {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [
                {"name": "infra:prod", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": true, "proxy-url": "http://127.0.0.1:9"}},
                {"name": "other", "cluster": {"server": "https://evil.example.com"}},
            ],
            "users": [
                {"name": "infra:prod", "user": shell},
                {"name": "other-admin", "user": {"token": "planted-token"}},
            ],
            "contexts": [
                {"name": "infra:prod", "context": {"cluster": "infra:prod", "user": "infra:prod"}},
                {"name": "infra:steal", "context": {"cluster": "infra:prod", "user": "other-admin"}},
                {"name": "other", "context": {"cluster": "other", "user": "other-admin"}},
            ],
            "current-context": "other",
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malicious_server_cannot_plant_entries_or_commands_in_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let pwned = dir.path().join("pwned");
    let answer = malicious_kubeconfig(&pwned);
    let app = axum::Router::new()
        .route("/api/me", axum::routing::get(|| async { axum::Json(json!({"id": 1, "email": "alice@example.com", "name": "", "provider": "local", "disabled": false, "must_change_password": false, "last_seen_at": null, "created_at": 0})) }))
        .route("/api/kubeconfig", axum::routing::post(move || async move { axum::Json(answer) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cli = Cli { home, server: server.clone() };
    std::fs::write(cli.kubeconfig(), FOREIGN).unwrap();

    let r = cli.run(&["login", &server, "--key", "some.key"], None);
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    let written: Value = serde_saphyr::from_str(&cli.kubeconfig_yaml()).unwrap();
    let names = |section: &str| -> Vec<String> { written[section].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect() };
    // the user's own entries are as they were, once each; of the server's, only infra: ones that
    // point at infra: entries
    assert_eq!(names("clusters"), ["other", "infra:prod"], "{written}");
    assert_eq!(names("users"), ["other-admin", "infra:prod"], "{written}");
    assert_eq!(names("contexts"), ["other", "infra:prod"], "{written}");
    assert_eq!(written["current-context"], "other");
    let yaml = cli.kubeconfig_yaml();
    assert!(yaml.contains("foreign-token") && !yaml.contains("planted-token") && !yaml.contains("evil.example.com"), "{yaml}");
    assert!(!yaml.contains("insecure-skip-tls-verify") && !yaml.contains("proxy-url"), "{yaml}");
    // the credential plugin is this CLI itself, whatever the server said
    let exec = &written["users"][1]["user"]["exec"];
    let own = std::fs::canonicalize(env!("CARGO_BIN_EXE_infra")).unwrap();
    assert_eq!(std::fs::canonicalize(exec["command"].as_str().unwrap()).ok(), Some(own), "{exec}");
    assert_eq!(exec["args"], json!(["tokens", "--cluster", "prod"]), "{exec}");
    assert!(!yaml.contains("/bin/sh"), "{yaml}");
    // kubectl on infra's context runs no shell
    cli.kubectl(&["--context", "infra:prod", "get", "pods"]);
    assert!(!pwned.exists(), "kubectl ran the server's command");
}

/// `infra completion bash | head -3`, `infra list | head -1`: when the reader goes away, the CLI ends
/// quietly, without a panic's message and backtrace.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for args in [&["completion", "bash"][..], &["version"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_infra")).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // the reader goes away before the CLI has written anything
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "infra {args:?} into a closed pipe: {:?}, stderr {stderr:?}", out.status);
    }
}
