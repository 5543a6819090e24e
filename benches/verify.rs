//! Benchmark of continuous verification (a command that prints figures; never part of the tests): one
//! pass over `--users` identity-provider users against the test OpenID Provider (npm `oidc-provider`),
//! with `--latency-ms` added to each of its token answers, at most `--concurrency` requests at a time.
//! Each user first signs in for real (authorization code + PKCE) so that each has a real refresh token.
//!
//! `cargo bench --features ssr --bench verify -- [--users 10000] [--latency-ms 20] [--concurrency 8]`
// a benchmark that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_harness::cluster as harness;
use test_harness::idp;

use std::time::Instant;

use base64::Engine;
use futures::StreamExt;
use harness::Infra;
use idp::Idp;
use infra::server::oidc::{Identity, ProviderGroup};
use infra::server::services::providers;
use serde_json::{Value, json};
use sha2::Digest;

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// A real sign-in at the IdP for user `n`: the code flow with PKCE, then the token request.
async fn login(http: &reqwest::Client, issuer: &str, n: usize) -> Identity {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let verifier = format!("{}{n:08}", "v".repeat(40));
    let challenge = b64(&sha2::Sha256::digest(verifier.as_bytes()));
    let jar = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let go = |res: reqwest::Response| res.url().join(res.headers()["location"].to_str().unwrap()).unwrap();
    let auth = format!(
        "{issuer}/auth?response_type=code&client_id=infra&redirect_uri={}&scope=openid%20email%20profile%20groups%20offline_access&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    let interaction = go(jar.get(&auth).send().await.unwrap());
    let email = format!("u{n}@example.com");
    let resume = go(jar.post(format!("{interaction}/login")).form(&[("email", email.as_str()), ("password", "pw")]).send().await.unwrap());
    let callback = go(jar.get(resume).send().await.unwrap());
    let code = callback.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let tokens: Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("infra", Some("infra-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Identity {
        subject: format!("u{n}"),
        email,
        email_verified: Some(true),
        name: format!("User {n}"),
        groups: vec![ProviderGroup::from_claim(&format!("team-{}", n % 10))],
        refresh_token: Some(tokens["refresh_token"].as_str().expect("a refresh token").to_string()),
        access_token: tokens["access_token"].as_str().unwrap_or_default().to_string(),
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::main]
async fn main() {
    infra::tls::install_crypto_provider();
    let users = arg("--users", 10_000) as usize;
    let latency = arg("--latency-ms", 20);
    let concurrency = arg("--concurrency", 8) as usize;
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let people: Vec<Value> = (0..users).map(|n| json!({"sub": format!("u{n}"), "email": format!("u{n}@example.com"), "name": format!("User {n}"), "password": "pw", "groups": [format!("team-{}", n % 10)]})).collect();
    let idp = Idp::start(dir.path(), REDIRECT, json!(people), json!({}));
    let body = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let provider = providers::config(&infra.state.db, &infra.state.master, "corp").await.unwrap();

    eprintln!("signing in {users} users at the test provider (setup, not measured) ...");
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut done = 0;
    let mut logins = futures::stream::iter(0..users).map(|n| login(&http, &idp.issuer, n)).buffer_unordered(16);
    while let Some(who) = logins.next().await {
        providers::sign_in(&infra.state.db, &infra.state.master, &infra.state.oidc_http, &provider, &who).await.unwrap();
        done += 1;
        if done % 1000 == 0 {
            eprintln!("  {done} signed in ({:.0}/s)", done as f64 / started.elapsed().as_secs_f64());
        }
    }

    idp.admin("/latency", json!({"ms": latency})).await;
    let redirect = infra.state.oidc_redirect_url();
    let start = Instant::now();
    let report = providers::verify_all(&infra.state.db, &infra.state.master, &infra.state.oidc_http, &redirect, concurrency).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "verification pass: {users} users, {latency} ms provider latency, concurrency {concurrency}: {secs:.1} s, {:.0} users/s (floor from latency alone: {:.1} s); checked {}, groups changed {}, disabled {}, unreachable {}",
        report.checked as f64 / secs,
        users as f64 * latency as f64 / 1000.0 / concurrency as f64,
        report.checked,
        report.updated,
        report.disabled,
        report.unavailable
    );
}
