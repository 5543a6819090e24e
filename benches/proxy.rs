//! Benchmark of the connector (a command that prints figures; never part of the tests):
//!
//! 1. requests per second and latency of `GET /api/v1/namespaces/web/pods` sent straight to the
//!    Kubernetes API test server, through the connector's proxy, and through nginx as a plain reverse
//!    proxy doing the same forwarding (TLS in, TLS out, the connector's credential and impersonation
//!    headers), in one run;
//! 2. grant-to-binding propagation: the time from the API call that adds or removes a grant until the
//!    RoleBinding in the cluster shows it, over many changes.
//!
//! Placement: the proxy under test (the connector, or nginx) is its own process. With two or more
//! cores, the benchmark process (load client, API test server, `infra server`) is pinned to the first
//! half of them and the proxy to the other half, as in a cluster where the connector runs in its own
//! pod: the figures then show whether the proxy keeps up, not how an extra hop shares one CPU budget.
//! `--shared` leaves every process free to run on every core instead.
//!
//! `scripts/bench-proxy.sh` installs nginx if missing and runs
//! `cargo bench --features ssr --bench proxy -- [--seconds N] [--concurrency N] [--changes N] [--propagation-only] [--no-nginx] [--shared]`.
// a benchmark that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_harness::cluster as harness;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Infra, eventually, free_port, kube_client, test_api_server};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use serde_json::json;

struct Args {
    seconds: u64,
    concurrency: usize,
    changes: usize,
    nginx: bool,
    load: bool,
    shared: bool,
}

fn args() -> Args {
    let mut a = Args { seconds: 8, concurrency: 32, changes: 1000, nginx: true, load: true, shared: false };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let next = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--seconds" => a.seconds = next.parse().expect("--seconds N"),
            "--concurrency" => a.concurrency = next.parse().expect("--concurrency N"),
            "--changes" => a.changes = next.parse().expect("--changes N"),
            "--no-nginx" => {
                a.nginx = false;
                i += 1;
                continue;
            }
            "--shared" => {
                a.shared = true;
                i += 1;
                continue;
            }
            "--propagation-only" => {
                a.load = false;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Where requests go, and the headers they carry.
struct Target {
    name: &'static str,
    /// the proxy processes whose CPU time is counted (none for direct requests)
    pids: Vec<u32>,
    url: String,
    headers: Vec<(String, String)>,
    client: reqwest::Client,
}

fn client(ca_pems: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder().http1_only().pool_max_idle_per_host(1024).tcp_nodelay(true);
    for pem in ca_pems {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA"));
    }
    b.build().expect("client")
}

/// Latencies of every answered request over some one-second rounds, and the CPU time the proxy
/// process under test used meanwhile.
#[derive(Default)]
struct Samples {
    latencies_us: Vec<u64>,
    seconds: f64,
    proxy_cpu_secs: f64,
}

impl Samples {
    fn rps(&self) -> f64 {
        self.latencies_us.len() as f64 / self.seconds
    }
    fn pct_ms(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        self.latencies_us[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0
    }
    /// CPU milliseconds the proxy used per 1,000 requests.
    fn cpu_ms_per_1000(&self) -> f64 {
        self.proxy_cpu_secs * 1000.0 / (self.latencies_us.len() as f64 / 1000.0)
    }
}

/// `concurrency` loops sending the request for `seconds`; adds every answered request to `into`.
async fn load(target: &Target, concurrency: usize, seconds: f64, into: &mut Samples) {
    let cpu_before = cpu_secs(&target.pids);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = target.client.clone();
        let url = format!("{}/api/v1/namespaces/web/pods", target.url);
        let headers = target.headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut req = client.get(&url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let start = Instant::now();
                let res = req.send().await.expect("request");
                assert!(res.status().is_success(), "{} answered {}", url, res.status());
                res.bytes().await.expect("body");
                latencies.push(start.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    for t in tasks {
        into.latencies_us.extend(t.await.expect("task"));
    }
    into.seconds += started.elapsed().as_secs_f64();
    into.proxy_cpu_secs += cpu_secs(&target.pids) - cpu_before;
}

/// User plus system CPU seconds of these processes and of their child processes (nginx's workers),
/// from /proc.
fn cpu_secs(pids: &[u32]) -> f64 {
    let ticks: f64 = 100.0; // USER_HZ, 100 on Linux
    let stat = |pid: &str| -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // fields after the command name, which is in parentheses and may hold spaces
        let rest: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
        let ppid = rest.get(1)?.parse().ok()?;
        let cpu = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
        Some((ppid, cpu))
    };
    let mut total = 0;
    for pid in pids {
        total += stat(&pid.to_string()).map(|(_, cpu)| cpu).unwrap_or(0);
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some((ppid, cpu)) = name.parse::<u32>().ok().and_then(|_| stat(&name))
                && pids.contains(&ppid)
            {
                total += cpu;
            }
        }
    }
    total as f64 / ticks
}

/// Which cores the benchmark process and the proxy under test run on (`taskset -c` lists), or None
/// when they share every core.
struct Placement {
    bench: String,
    proxy: String,
    proxy_cores: usize,
}

fn placement(shared: bool) -> Option<Placement> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pinned_already = std::env::var("INFRA_BENCH_PLACEMENT").ok();
    if shared || (cores < 2 && pinned_already.is_none()) || Command::new("taskset").arg("-V").output().is_err() {
        return None;
    }
    if let Some(p) = pinned_already {
        let (bench, proxy) = p.split_once('/').expect("INFRA_BENCH_PLACEMENT is bench/proxy");
        let proxy_cores = proxy.split(',').count();
        return Some(Placement { bench: bench.into(), proxy: proxy.into(), proxy_cores });
    }
    let half = cores / 2;
    let list = |r: std::ops::Range<usize>| r.map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let (bench, proxy) = (list(0..cores - half), list(cores - half..cores));
    // run this benchmark again on its own cores; the proxies it starts get the others
    let err = Command::new("taskset")
        .args(["-c", &bench])
        .arg(std::env::current_exe().expect("own path"))
        .args(std::env::args().skip(1))
        .env("INFRA_BENCH_PLACEMENT", format!("{bench}/{proxy}"))
        .exec();
    panic!("cannot re-run under taskset: {err}");
}

/// A command for a proxy under test, on the proxy's cores when pinned.
fn proxy_command(placement: &Option<Placement>, program: &str) -> Command {
    match placement {
        Some(p) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &p.proxy, program]);
            c
        }
        None => Command::new(program),
    }
}

/// A child process killed when the benchmark ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM, so that nginx's master stops its workers too; SIGKILL would orphan them
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// `infra connector` as its own process, as it runs in a cluster.
fn start_connector(placement: &Option<Placement>, infra: &Infra, key: &str, kubeconfig: &Path, port: u16, data_dir: &Path) -> Running {
    let child = proxy_command(placement, env!("CARGO_BIN_EXE_infra"))
        .args(["connector", "--server", &infra.url, "--name", "prod", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--server-ca")
        .arg(&infra.ca_file)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--heartbeat-secs", "2", "--resync-secs", "2"])
        .env("INFRA_ACCESS_KEY", key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("infra connector starts");
    Running(child)
}

fn start_nginx(placement: &Option<Placement>, dir: &Path, upstream_port: u16, upstream_ca: &str, connector_token: &str) -> (Running, String, String) {
    let ca = infra::tls::Ca::create("nginx bench CA").expect("CA");
    let cert = ca.issue_server(&["127.0.0.1".into()]).expect("cert");
    std::fs::write(dir.join("nginx.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("nginx.key"), &cert.key_pem).unwrap();
    std::fs::write(dir.join("upstream-ca.crt"), upstream_ca).unwrap();
    let port = free_port();
    let d = dir.display();
    let workers = placement.as_ref().map(|p| p.proxy_cores.to_string()).unwrap_or_else(|| "auto".into());
    let conf = format!(
        "worker_processes {workers}; daemon off; pid {d}/nginx.pid; error_log stderr warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           upstream k8s {{ server 127.0.0.1:{upstream_port}; keepalive 256; }}\n\
           server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/nginx.crt; ssl_certificate_key {d}/nginx.key;\n\
             location / {{\n      proxy_pass https://k8s;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n\
               proxy_ssl_trusted_certificate {d}/upstream-ca.crt; proxy_ssl_verify on; proxy_ssl_name localhost; proxy_ssl_session_reuse on;\n\
               proxy_set_header Authorization \"Bearer {connector_token}\";\n\
               proxy_set_header Impersonate-User \"alice@example.com\";\n      proxy_set_header Impersonate-Group \"dev\";\n\
               proxy_buffering off;\n    }}\n  }}\n}}\n"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = proxy_command(placement, "nginx")
        .args(["-p", &d.to_string(), "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx runs (scripts/bench-proxy.sh installs it)");
    // the client trusts nginx's CA, as kubectl trusts the connector's
    (Running(child), format!("https://127.0.0.1:{port}"), ca.cert_pem)
}

fn main() {
    let args = args();
    // before any thread starts: this may re-run the benchmark under taskset
    let placement = placement(args.shared);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(bench(args, placement));
}

async fn bench(args: Args, placement: Option<Placement>) {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (_, created) = infra.post("/api/destinations/prod/connector-key", &infra.admin, json!({})).await;
    let key = created["access_key"].as_str().unwrap().to_string();
    let port = free_port();
    let connector = start_connector(&placement, &infra, &key, &k8s.connector_kubeconfig(), port, &dir.path().join("connector"));
    let prod = eventually("the cluster connects", Duration::from_secs(30), || async {
        let (_, d) = infra.get("/api/destinations/prod", &infra.admin).await;
        (d["status"] == "connected").then_some(d)
    })
    .await;
    let (alice_id, alice_key) = infra.user("alice@example.com").await;
    let (_, group) = infra.post("/api/groups", &infra.admin, json!({"name": "dev"})).await;
    let group_id = group["id"].as_i64().unwrap();
    infra.post(&format!("/api/groups/{group_id}/members"), &infra.admin, json!({"user": alice_id.to_string()})).await;
    infra.post("/api/grants", &infra.admin, json!({"subject": "group:dev", "role": "edit", "resource": "prod.web"})).await;
    let token = infra.token(&alice_key, "prod").await;
    let proxy_ca = prod["ca"].as_str().unwrap().to_string();

    let direct = Target {
        name: "direct to the API server",
        pids: vec![],
        url: k8s.url.clone(),
        headers: vec![
            ("authorization".into(), format!("Bearer {}", k8s.connector_token)),
            ("impersonate-user".into(), "alice@example.com".into()),
            ("impersonate-group".into(), "dev".into()),
        ],
        client: client(&[&k8s.ca_pem]),
    };
    let proxy = Target {
        name: "through the connector's proxy",
        pids: vec![connector.0.id()],
        url: prod["endpoint"].as_str().unwrap().to_string(),
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        client: client(&[&proxy_ca]),
    };
    // wait until the grant has reached the cluster
    eventually("the proxy allows the request", Duration::from_secs(30), || async {
        let res = proxy.client.get(format!("{}/api/v1/namespaces/web/pods", proxy.url)).bearer_auth(&token).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    let mut targets = vec![direct, proxy];
    let mut nginx = None;
    if args.nginx && args.load {
        let port = k8s.url.rsplit(':').next().unwrap().parse().unwrap();
        let (child, url, ca) = start_nginx(&placement, dir.path(), port, &k8s.ca_pem, &k8s.connector_token);
        let pids = vec![child.0.id()];
        nginx = Some(child);
        targets.push(Target { name: "through nginx (plain reverse proxy)", pids, url, headers: vec![], client: client(&[&ca]) });
        let t = targets.last().unwrap();
        eventually("nginx answers", Duration::from_secs(10), || async {
            match t.client.get(format!("{}/version", t.url)).send().await {
                Ok(r) if r.status().is_success() => Some(()),
                Ok(r) => panic!("nginx answered {}", r.status()),
                Err(e) if format!("{e:?}").contains("ConnectionRefused") => None, // not listening yet
                Err(e) => panic!("nginx: {e:?}"),
            }
        })
        .await;
    }

    match &placement {
        Some(p) => println!(
            "\nGET /api/v1/namespaces/web/pods, HTTP/1.1 keep-alive over TLS; load client, API server and infra server on core(s) {}, the proxy under test on core(s) {}",
            p.bench, p.proxy
        ),
        None => println!(
            "\nGET /api/v1/namespaces/web/pods, HTTP/1.1 keep-alive over TLS; every process shares the {} cores (--shared)",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        ),
    }
    if args.load {
        // one-second rounds, taking the targets in turn, so that a slow spell on this shared machine
        // falls on all of them alike
        let mut busy: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
        let mut quiet: Vec<Samples> = targets.iter().map(|_| Samples::default()).collect();
        for t in &targets {
            load(t, args.concurrency, 1.0, &mut Samples::default()).await;
        }
        for _ in 0..args.seconds {
            for (t, into) in targets.iter().zip(busy.iter_mut()) {
                load(t, args.concurrency, 1.0, into).await;
            }
        }
        for _ in 0..args.seconds {
            for (t, into) in targets.iter().zip(quiet.iter_mut()) {
                load(t, 1, 1.0, into).await;
            }
        }
        println!(
            "{:<38} {:>12} {:>8} {:>8} {:>14}   {:>10} {:>10}",
            "",
            format!("req/s (c={})", args.concurrency),
            "p50 ms",
            "p99 ms",
            "proxy CPU ms",
            "p50 ms c=1",
            "p99 ms c=1"
        );
        println!("{:<38} {:>12} {:>8} {:>8} {:>14}", "", "", "", "", "per 1,000 req");
        for ((t, b), q) in targets.iter().zip(busy.iter_mut()).zip(quiet.iter_mut()) {
            let cpu = if t.pids.is_empty() { "-".to_string() } else { format!("{:.0}", b.cpu_ms_per_1000()) };
            println!(
                "{:<38} {:>12.0} {:>8.2} {:>8.2} {:>14}   {:>10.3} {:>10.3}",
                t.name,
                b.rps(),
                b.pct_ms(0.50),
                b.pct_ms(0.99),
                cpu,
                q.pct_ms(0.50),
                q.pct_ms(0.99)
            );
        }
        let direct_p50 = quiet[0].pct_ms(0.50);
        let direct_p99 = quiet[0].pct_ms(0.99);
        println!();
        for (i, label) in [(1, "proxy"), (2, "nginx")] {
            if i < targets.len() {
                println!(
                    "{label}: {:.0}% of direct throughput; added latency at c=1: p50 {:.3} ms, p99 {:.3} ms",
                    100.0 * busy[i].rps() / busy[0].rps(),
                    quiet[i].pct_ms(0.50) - direct_p50,
                    quiet[i].pct_ms(0.99) - direct_p99
                );
            }
        }
    }
    drop(nginx);

    // propagation: add and remove a grant of view on prod.db for bob, watching the RoleBinding
    let (_bob, _) = infra.user("bob@example.com").await;
    let bindings = Api::<RoleBinding>::namespaced(kube_client(&k8s.admin_kubeconfig()).await, "db");
    let has_bob = |b: Option<RoleBinding>| b.and_then(|b| b.subjects).is_some_and(|s| s.iter().any(|s| s.name == "bob@example.com"));
    let mut latencies = Vec::with_capacity(args.changes);
    let mut grant_id = None;
    let started = Instant::now();
    for i in 0..args.changes {
        let start = Instant::now();
        let adding = grant_id.is_none();
        if adding {
            let (status, g) = infra.post("/api/grants", &infra.admin, json!({"subject": "user:bob@example.com", "role": "view", "resource": "prod.db"})).await;
            assert_eq!(status, 201, "change {i}: {g}");
            grant_id = g["id"].as_i64();
        } else {
            let (status, body) = infra.call(reqwest::Method::DELETE, &format!("/api/grants/{}", grant_id.take().unwrap()), &infra.admin, None).await;
            assert_eq!(status, 204, "change {i}: {body}");
        }
        loop {
            let current = bindings.get_opt("infra:view").await.expect("get");
            if has_bob(current) == adding {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "change {i} did not reach the cluster");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(start.elapsed().as_micros() as u64);
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)] as f64 / 1000.0;
    println!(
        "\ngrant -> binding propagation over {} changes (add and remove alternately): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({:.1} s in all)",
        args.changes,
        pct(0.50),
        pct(0.99),
        *latencies.last().unwrap() as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );
    k8s.shutdown().await;
}
