//! The admin CLI through the real binary against a running server, a connector and the Kubernetes API
//! test server: the issue's own examples (`infra grants add -g Engineering prod --role view`, on-call
//! starts and ends) down to kubectl allowing and then refusing; each command in each format; the
//! confirmation of destructive commands and `--force`; refusals as sentences with a non-zero exit.

use std::time::Duration;

use serde_json::Value;
use test_harness::cluster::{Infra, connected_prod, eventually, test_api_server};

use super::cli::Cli;

fn logged_in_cli(infra: &Infra, home: &std::path::Path, key: &str) -> Cli {
    std::fs::create_dir_all(home).unwrap();
    let cli = Cli { home: home.to_path_buf(), server: infra.url.clone() };
    let r = cli.run(&["login", &cli.server, "--key", key, "--tls-trusted-fingerprint", &infra.fingerprint], None);
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    cli
}

/// Runs a command that must succeed; its standard output.
fn ok(cli: &Cli, args: &[&str]) -> String {
    let r = cli.run(args, None);
    assert!(r.ok, "infra {args:?} failed: {}", r.stderr);
    r.stdout
}

/// Runs a command that must fail; its one-line error.
fn refused(cli: &Cli, args: &[&str], stdin: Option<&str>) -> String {
    let r = cli.run(args, stdin);
    assert!(!r.ok, "infra {args:?} should fail: {}", r.stdout);
    assert!(r.stderr.starts_with("infra: ") && r.stderr.trim().lines().count() == 1 && !r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_cli_manages_access_end_to_end() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, _) = connected_prod(&infra, &k8s, dir.path()).await;
    let (_, suzie_key) = infra.user("suzie@infrahq.com").await;
    let admin = logged_in_cli(&infra, &dir.path().join("admin"), &infra.admin);

    // info: who and where
    let info = ok(&admin, &["info"]);
    assert!(info.contains(&infra.url) && info.contains("infra role:  admin") && info.contains(env!("CARGO_PKG_VERSION")), "{info}");
    assert_eq!(json(&ok(&admin, &["info", "--format", "json"]))["infra_role"], "admin");

    // users: add prints a one-time password; list in three formats; edit, disable, enable
    let added = ok(&admin, &["users", "add", "carl@example.com", "--name", "Carl"]);
    assert!(added.contains("Added carl@example.com.") && added.contains("One-time password: "), "{added}");
    let table = ok(&admin, &["users", "list"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("USER (3)") && header.contains("LAST SEEN"), "admin, suzie and carl: {table}");
    assert!(table.lines().any(|l| l.starts_with("carl@example.com") && l.contains("Carl") && l.contains("active")), "{table}");
    let listed = json(&ok(&admin, &["users", "list", "--format", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let yaml = ok(&admin, &["users", "list", "--format", "yaml"]);
    assert!(yaml.contains("email: carl@example.com"), "{yaml}");
    let r = admin.run(&["users", "edit", "carl@example.com", "--password"], Some("a-new-password-1\n"));
    assert!(r.ok && r.stdout.contains("Changed the password of carl@example.com"), "{}", r.stderr);
    assert!(ok(&admin, &["users", "disable", "carl@example.com"]).contains("Disabled carl@example.com"));
    assert!(ok(&admin, &["users", "list"]).lines().any(|l| l.starts_with("carl@example.com") && l.contains("disabled")));
    ok(&admin, &["users", "enable", "carl@example.com"]);
    let e = refused(&admin, &["users", "add", "carl@example.com"], None);
    assert!(e.contains("email a user with this email already exists"), "{e}");
    let e = refused(&admin, &["users", "disable", "nobody@example.com"], None);
    assert!(e.contains("no user nobody@example.com"), "{e}");

    // groups: add, adduser, list with counts and first members
    ok(&admin, &["groups", "add", "Engineering"]);
    ok(&admin, &["groups", "adduser", "carl@example.com", "Engineering"]);
    let table = ok(&admin, &["groups", "list"]);
    assert!(table.starts_with("GROUP (1)"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("Engineering") && l.contains(" 1 ") && l.ends_with("carl@example.com")), "{table}");
    let groups = json(&ok(&admin, &["groups", "list", "--format", "json"]));
    assert_eq!(groups[0]["members"][0]["email"], "carl@example.com");

    // the seed's examples, with the test cluster's names
    ok(&admin, &["grants", "add", "-g", "Engineering", "prod", "--role", "view"]);
    ok(&admin, &["grants", "add", "-g", "Engineering", "prod.web", "--role", "edit"]);
    let said = ok(&admin, &["grants", "add", "suzie@infrahq.com", "prod", "--role", "admin", "--expires", "8h"]);
    assert!(said.starts_with("Granted admin to suzie@infrahq.com on prod until "), "on-call starts: {said}");
    let table = ok(&admin, &["grants", "list"]);
    let (users, groups) = table.split_once("\n\n").unwrap_or_else(|| panic!("two tables: {table}"));
    assert!(users.starts_with("USER (3)"), "the admin's and the prod connector's infra grants, and suzie's: {users}");
    assert!(users.lines().any(|l| l.starts_with("suzie@infrahq.com") && l.contains("admin") && l.contains("prod") && l.contains("UTC")), "{users}");
    assert!(groups.starts_with("GROUP (2)") && groups.contains("prod.web") && groups.contains("edit"), "{groups}");
    let mine = ok(&admin, &["grants", "list", "--user", "carl@example.com"]);
    assert_eq!(mine.trim(), "No grants match.", "carl has no grant of his own");
    let inherited = ok(&admin, &["grants", "list", "--user", "carl@example.com", "--inherited"]);
    assert!(inherited.starts_with("GROUP (2)"), "his group's grants: {inherited}");
    let on_web = json(&ok(&admin, &["grants", "list", "--cluster", "prod", "--role", "edit", "--format", "json"]));
    assert_eq!(on_web.as_array().unwrap().len(), 1);
    assert_eq!(on_web[0]["resource"], "prod.web");
    let e = refused(&admin, &["grants", "add", "suzie@infrahq.com", "prod", "--role", "edti"], None);
    assert!(e.contains("role \"edti\" is not a role of prod (admin, cluster-admin, edit, exec, logs, port-forward, view)"), "{e}");
    let e = refused(&admin, &["grants", "add", "suzie@infrahq.com", "prod", "--role", "view", "--expires", "tomorrow"], None);
    assert!(e.contains("--expires \"tomorrow\""), "{e}");

    // suzie, on call, reaches the cluster with kubectl through the proxy
    let suzie = logged_in_cli(&infra, &dir.path().join("suzie"), &suzie_key);
    let get_pods = || suzie.kubectl(&["--context", "infra:prod", "get", "pods", "-n", "db"]);
    eventually("suzie's kubectl is allowed while on call", Duration::from_secs(15), || async {
        let r = get_pods();
        if !r.ok {
            eprintln!("not yet: {}", r.stderr);
        }
        r.ok.then_some(())
    })
    .await;
    // on-call ends: kubectl is refused, and says why
    let said = ok(&admin, &["grants", "remove", "suzie@infrahq.com", "prod", "--role", "admin"]);
    assert_eq!(said.trim(), "Removed admin from suzie@infrahq.com on prod.");
    let refusal = eventually("suzie's kubectl is refused once the grant is gone", Duration::from_secs(15), || async {
        let r = get_pods();
        (!r.ok).then_some(r.stderr)
    })
    .await;
    assert!(refusal.contains("forbidden") || refusal.contains("no access to prod: ask an admin for a grant"), "{refusal}");
    let e = refused(&admin, &["grants", "remove", "suzie@infrahq.com", "prod", "--role", "admin"], None);
    assert!(e.contains("suzie@infrahq.com has no admin grant on prod: see infra grants list"), "{e}");

    // an admin's command run by someone else is refused, and changes nothing
    let e = refused(&suzie, &["users", "add", "eve@example.com"], None);
    assert!(e.contains("you do not have permission to do that: ask an infra admin"), "{e}");
    assert!(!ok(&admin, &["users", "list"]).contains("eve@example.com"));

    // keys: add with an expiry, list, remove by name; a connector key adds a pending cluster
    let key = ok(&admin, &["keys", "add", "--name", "ci", "--expiry", "7d", "--inactivity-timeout", "1d"]);
    let key = key.trim();
    let (status, me) = infra.get("/api/me", key).await;
    assert_eq!((status, me["email"].as_str()), (200, Some(test_harness::cluster::ADMIN)), "the new key works");
    let keys = ok(&admin, &["keys", "list"]);
    assert!(keys.lines().any(|l| l.starts_with("ci ")), "{keys}");
    assert!(ok(&admin, &["keys", "remove", "ci"]).contains("Revoked the key \"ci\""));
    assert_eq!(infra.get("/api/me", key).await.0, 401, "the removed key is revoked");
    let e = refused(&admin, &["keys", "add", "--expiry", "forever"], None);
    assert!(e.contains("\"forever\" is not a duration"), "{e}");
    let connector_key = ok(&admin, &["keys", "add", "--connector", "staging"]);
    assert!(connector_key.trim().contains('.'), "{connector_key}");
    let all = json(&ok(&admin, &["keys", "list", "--all", "--format", "json"]));
    assert!(all.as_array().unwrap().iter().any(|k| k["owner"] == "suzie@infrahq.com"), "{all}");

    // shell completion offers the server's names
    assert!(admin.complete(&["infra", "grants", "list", "--cluster", ""]).contains(&"staging".to_string()));
    let resources = admin.complete(&["infra", "grants", "add", "carl@example.com", "prod."]);
    assert!(resources.contains(&"prod.web".to_string()) && resources.iter().all(|r| r.starts_with("prod.")), "{resources:?}");
    assert_eq!(admin.complete(&["infra", "users", "disable", "car"]), vec!["carl@example.com".to_string()]);
    assert_eq!(admin.complete(&["infra", "groups", "adduser", "carl@example.com", "Eng"]), vec!["Engineering".to_string()]);

    // destinations: list; remove asks, and without a terminal refuses unless --force
    let table = ok(&admin, &["destinations", "list"]);
    assert!(table.starts_with("NAME (2)"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("prod") && l.contains("connected")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("staging") && l.contains("pending")), "{table}");
    let e = refused(&admin, &["destinations", "remove", "staging"], None);
    assert!(e.contains("needs confirmation: run it on a terminal, or add --force"), "{e}");
    assert!(ok(&admin, &["destinations", "list"]).contains("staging"), "nothing was removed");
    ok(&admin, &["destinations", "remove", "staging", "--force"]);
    assert!(!ok(&admin, &["destinations", "list"]).contains("staging"));

    // providers: the secret from a file, never printed
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret-value\n").unwrap();
    let secret = secret_file.to_str().unwrap();
    ok(&admin, &["providers", "add", "corp", "--kind", "oidc", "--issuer", "https://idp.example.com", "--client-id", "infra", "--client-secret-file", secret]);
    let table = ok(&admin, &["providers", "list"]);
    assert!(table.starts_with("PROVIDER (1)") && table.contains("https://idp.example.com") && !table.contains("s3cret"), "{table}");
    ok(&admin, &["providers", "edit", "corp", "--client-id", "infra-2"]);
    let listed = ok(&admin, &["providers", "list", "--format", "json"]);
    assert!(json(&listed)[0]["client_id"] == "infra-2" && !listed.contains("s3cret"), "{listed}");
    refused(&admin, &["providers", "remove", "corp"], None);
    ok(&admin, &["providers", "remove", "corp", "--force"]);

    // groups and users: remove asks too
    refused(&admin, &["groups", "remove", "Engineering"], None);
    ok(&admin, &["groups", "removeuser", "carl@example.com", "Engineering"]);
    ok(&admin, &["groups", "remove", "Engineering", "--force"]);
    let e = refused(&admin, &["users", "remove", "carl@example.com"], None);
    assert!(e.contains("needs confirmation"), "{e}");
    ok(&admin, &["users", "remove", "carl@example.com", "--force"]);
    assert!(!ok(&admin, &["users", "list"]).contains("carl@example.com"));

    // scripts: INFRA_SERVER and INFRA_ACCESS_KEY instead of the stored login (suzie's home, the admin's key)
    let out = suzie
        .command(env!("CARGO_BIN_EXE_infra"))
        .env("INFRA_SERVER", &infra.url)
        .env("INFRA_ACCESS_KEY", &infra.admin)
        .args(["users", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout)).as_array().unwrap().len(), 2);

    connector.abort();
    k8s.shutdown().await;
}
