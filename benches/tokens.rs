//! Benchmark of cluster credentials (a command that prints figures; never part of the tests):
//!
//! 1. token issuance: `POST /api/tokens` per second, with `--concurrency` clients for `--seconds`;
//! 2. `infra tokens` (the credential plugin kubectl runs) answered from its cache: runs per second
//!    and latency, one process after another, as kubectl calls it;
//! 3. revocation latency over `--revocations` revocations: an access key mints a token, the proxy
//!    accepts it, the key is revoked, and the time until the proxy first refuses the same request
//!    (`GET /api/v1/namespaces/web/pods`, what `kubectl get pods -n web` sends) is taken.
//!
//! `cargo bench --features ssr --bench tokens -- [--seconds N] [--concurrency N] [--revocations N]`
// a benchmark that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_harness::cluster as harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{Infra, connected_prod, eventually, key_for, test_api_server};
use serde_json::json;

fn arg(name: &str, default: u64) -> u64 {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    infra::tls::install_crypto_provider();
    let seconds = arg("--seconds", 5);
    let concurrency = arg("--concurrency", 16) as usize;
    let revocations = arg("--revocations", 200) as usize;
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (_connector, _, prod) = connected_prod(&infra, &k8s, dir.path()).await;
    let (alice_id, alice_key) = infra.user("alice@example.com").await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "user:alice@example.com", "role": "edit", "resource": "prod.web"})).await;
    let proxy =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(prod["ca"].as_str().unwrap().as_bytes()).unwrap()).build().unwrap();
    let pods = format!("{}/api/v1/namespaces/web/pods", prod["endpoint"].as_str().unwrap());

    // 1. issuance
    let http = infra.http_builder().pool_max_idle_per_host(256).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, key) = (http.clone(), format!("{}/api/tokens", infra.url), alice_key.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                let res = http.post(&url).bearer_auth(&key).json(&json!({"destination": "prod"})).send().await.expect("request");
                assert_eq!(res.status(), 201);
                res.bytes().await.unwrap();
                latencies.push(start.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    println!(
        "\nPOST /api/tokens, {concurrency} clients, {seconds} s, SQLite: {:.0} tokens/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len() as f64 / seconds as f64,
        pct(&all, 0.5),
        pct(&all, 0.99)
    );

    // 2. `infra tokens` from its cache
    let cli_dir = dir.path().join("cli");
    let infra_bin = env!("CARGO_BIN_EXE_infra");
    let run = |args: &[&str]| {
        Command::new(infra_bin).args(args).env("INFRA_CONFIG_DIR", &cli_dir).env("KUBECONFIG", cli_dir.join("kubeconfig")).output().expect("infra runs")
    };
    assert!(run(&["login", &infra.url, "--key", &alice_key, "--tls-trusted-fingerprint", &infra.fingerprint]).status.success());
    assert!(run(&["tokens", "--cluster", "prod"]).status.success());
    let mut runs = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let start = Instant::now();
        assert!(run(&["tokens", "--cluster", "prod"]).status.success());
        runs.push(start.elapsed().as_micros() as u64);
    }
    runs.sort_unstable();
    println!(
        "infra tokens (cached), one process after another: {:.0} runs/s, p50 {:.2} ms, p99 {:.2} ms",
        runs.len() as f64 / started.elapsed().as_secs_f64(),
        pct(&runs, 0.5),
        pct(&runs, 0.99)
    );

    // 3. revocation latency
    let mut latencies = Vec::with_capacity(revocations);
    for i in 0..revocations {
        let key = key_for(&infra.state, alice_id).await;
        let token = infra.token(&key, "prod").await;
        eventually("the proxy accepts the token", Duration::from_secs(10), || async {
            let r = proxy.get(&pods).bearer_auth(&token).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
        let (_, keys) = infra.get("/api/keys", &key).await;
        let id = keys.as_array().unwrap().iter().find(|k| k["key_id"] == key.split('.').next().unwrap()).unwrap()["id"].clone();
        let start = Instant::now();
        let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/keys/{id}"), &key, None).await;
        assert_eq!(status, 204, "revocation {i}");
        loop {
            let r = proxy.get(&pods).bearer_auth(&token).send().await.expect("proxy answers");
            if r.status() == 401 {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "revocation {i} did not reach the proxy");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(start.elapsed().as_micros() as u64);
    }
    latencies.sort_unstable();
    println!(
        "revocation -> first refused request, over {revocations} revocations: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        *latencies.last().unwrap() as f64 / 1000.0
    );
    k8s.shutdown().await;
}
