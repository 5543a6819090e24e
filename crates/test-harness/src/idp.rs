//! The test OpenID Provider (npm `oidc-provider`, run by `end2end/idp/idp.mjs`) for the Rust tests and
//! benchmarks: one confidential client `infra` (secret `infra-secret`) and the users given.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

/// The test OpenID Provider, stopped when dropped.
pub struct Idp {
    child: Child,
    pub issuer: String,
    http: reqwest::Client,
}

impl Idp {
    /// `users` as `[{sub, email, name, password, groups}]`; `extra` is merged into the configuration.
    pub fn start(dir: &std::path::Path, redirect_uri: &str, users: Value, extra: Value) -> Idp {
        let mut config = json!({
            "clients": [{
                "client_id": "infra",
                "client_secret": "infra-secret",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
            }],
            "users": users,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            config[k] = v.clone();
        }
        let file = dir.join("idp.json");
        std::fs::write(&file, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../end2end/idp/idp.mjs"))
            .arg(&file)
            .env("IDP_EXIT_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the test OpenID Provider (scripts/setup.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("the IdP did not start: {line:?}"));
        Idp { child, issuer: ready["issuer"].as_str().unwrap().to_string(), http: reqwest::Client::new() }
    }

    pub async fn admin(&self, path: &str, body: Value) {
        let res = self.http.post(format!("{}/admin{path}", self.issuer)).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
