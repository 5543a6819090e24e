//! Console benchmark: seeds a large directory (by default 100,000 users, 10,000 groups, 100,000 grants)
//! and prints the typeahead search latency and the time to first byte of the Users, Access and Cluster
//! pages, on SQLite and on PostgreSQL. It prints figures and compares them with the targets
//! (typeahead p99 ≤ 10 ms, pages ≤ 100 ms); it asserts nothing about timing. It does fail when a page
//! answers with anything but the page it measures (an error page or a redirect is not a measurement).
//!
//!     cargo bench --features ssr --bench console
//!     cargo bench --features ssr --bench console -- --users 2000 --groups 200 --grants 2000
//!     cargo bench --features ssr --bench console -- --sqlite-only     (or --postgres-only)
//!
//! Run it from the repository root (the page renderer links `target/site`; the files need not exist).
//! PostgreSQL is a throw-away server (`initdb`/`pg_ctl`, see crates/test-harness/src/pg.rs; `PG_BIN` overrides
//! where its programs are).
// a benchmark that cannot go on fails at once, with the value it choked on
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_harness::pg;

use std::collections::HashSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use infra::model::{NewAccessKey, TypeaheadSource};
use infra::server::auth::actor_for_user;
use infra::server::config::ServerConfig;
use infra::server::db;
use infra::server::services::{Actor, Ctx, keys, search, users};
use infra::server::state::AppState;
use infra::server::web;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TYPEAHEAD_TARGET_MS: f64 = 10.0;
const PAGE_TARGET_MS: f64 = 100.0;
const ADMIN_EMAIL: &str = test_harness::cluster::ADMIN;
const ADMIN_PASSWORD: &str = "bench-admin-password-1234";
/// Rows per multi-row INSERT.
const ROWS_PER_STATEMENT: usize = 500;
const PAGE_WARMUPS: usize = 5;
const TYPEAHEAD_WARMUPS: usize = 200;

// ---------------------------------------------------------------------------------------------------
// options

#[derive(Clone, Debug)]
struct Options {
    users: usize,
    groups: usize,
    grants: usize,
    clusters: usize,
    queries: usize,
    http_queries: usize,
    page_runs: usize,
    sqlite: bool,
    postgres: bool,
    dump: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            users: 100_000,
            groups: 10_000,
            grants: 100_000,
            clusters: 20,
            queries: 5_000,
            http_queries: 1_000,
            page_runs: 100,
            sqlite: true,
            postgres: true,
            dump: None,
        }
    }
}

const USAGE: &str = "usage: cargo bench --features ssr --bench console -- [options]
  --users N          users to seed (default 100000)
  --groups N         groups to seed (default 10000)
  --grants N         grants to seed (default 100000)
  --clusters N       clusters to seed (default 20)
  --queries N        typeahead service calls measured (default 5000)
  --http-queries N   typeahead calls through POST /_fn/typeahead (default 1000)
  --page-runs N      requests per page after warm-up (default 100)
  --sqlite-only      only SQLite
  --postgres-only    only PostgreSQL
  --dump DIR         also write each measured page's HTML to DIR/<backend>-<page>.html";

fn parse_options() -> Options {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> usize {
            let v = args.next().unwrap_or_else(|| die(&format!("{name} needs a number\n{USAGE}")));
            v.replace('_', "").parse().unwrap_or_else(|_| die(&format!("{name}: not a number: {v}\n{USAGE}")))
        };
        match arg.as_str() {
            "--users" => o.users = number("--users"),
            "--groups" => o.groups = number("--groups"),
            "--grants" => o.grants = number("--grants"),
            "--clusters" => o.clusters = number("--clusters"),
            "--queries" => o.queries = number("--queries"),
            "--http-queries" => o.http_queries = number("--http-queries"),
            "--page-runs" => o.page_runs = number("--page-runs"),
            "--sqlite-only" => o.postgres = false,
            "--postgres-only" => o.sqlite = false,
            "--dump" => o.dump = Some(PathBuf::from(args.next().unwrap_or_else(|| die(&format!("--dump needs a directory\n{USAGE}"))))),
            // cargo bench passes --bench to harness-less benchmarks
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => die(&format!("unknown option {other}\n{USAGE}")),
        }
    }
    if !o.sqlite && !o.postgres {
        die("--sqlite-only and --postgres-only together leave nothing to run");
    }
    if o.users < 10 || o.groups < 1 || o.clusters < 1 || o.page_runs < 1 || o.queries < 1 {
        die("need at least 10 users, 1 group, 1 cluster, 1 query and 1 page run");
    }
    o
}

fn die(message: &str) -> ! {
    eprintln!("console bench: {message}");
    std::process::exit(2);
}

// ---------------------------------------------------------------------------------------------------
// deterministic data

/// splitmix64: the same data on every run and on both databases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIRST_NAMES: &[&str] = &[
    "Aaron", "Abigail", "Adam", "Aisha", "Alice", "Amelia", "Ben", "Bella", "Bruno", "Carlos", "Chloe", "Chen", "Daniel", "Diana", "Dmitri", "Elena", "Ethan",
    "Emma", "Fatima", "Felix", "Freya", "George", "Grace", "Gabriel", "Hannah", "Henry", "Hiro", "Isaac", "Isabel", "Ivan", "Jack", "Julia", "Jamal", "Kai",
    "Karen", "Kofi", "Liam", "Lucy", "Leila", "Mateo", "Mia", "Mohammed", "Noah", "Nora", "Nadia", "Oliver", "Olivia", "Omar", "Pablo", "Priya", "Peter",
    "Quentin", "Quinn", "Rafael", "Rosa", "Ravi", "Samuel", "Sofia", "Sven", "Thomas", "Tara", "Tomasz", "Uma", "Umar", "Ursula", "Victor", "Vera", "Vikram",
    "William", "Wen", "Wanda", "Xavier", "Xin", "Yusuf", "Yara", "Yuki", "Zoe", "Zane", "Zeynep",
];

const LAST_NAMES: &[&str] = &[
    "Anderson",
    "Abe",
    "Brown",
    "Becker",
    "Chen",
    "Costa",
    "Davis",
    "Dubois",
    "Evans",
    "Eriksen",
    "Fischer",
    "Fernandez",
    "Garcia",
    "Gupta",
    "Hughes",
    "Hansen",
    "Ito",
    "Ivanova",
    "Jones",
    "Jensen",
    "Kim",
    "Kowalski",
    "Lopez",
    "Larsen",
    "Martin",
    "Muller",
    "Nguyen",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Petrov",
    "Quinn",
    "Rossi",
    "Rodriguez",
    "Smith",
    "Silva",
    "Tanaka",
    "Taylor",
    "Usman",
    "Ulrich",
    "Vargas",
    "Volkov",
    "Walker",
    "Wang",
    "Xu",
    "Young",
    "Yilmaz",
    "Zhang",
    "Zimmermann",
];

const GROUP_AREAS: &[&str] = &[
    "Platform",
    "Payments",
    "Data Science",
    "Security",
    "Mobile",
    "Growth",
    "Infrastructure",
    "Billing",
    "Support",
    "Research",
    "Operations",
    "Analytics",
    "Frontend",
    "Backend",
    "Quality",
    "Kernel",
    "Networking",
    "Web",
    "Identity",
    "Jobs",
    "Ledger",
    "Email",
    "Video",
    "Search",
    "Checkout",
    "Logistics",
    "Marketing",
    "Compliance",
    "Observability",
    "Storage",
    "Ads",
    "Yield",
    "Zephyr",
    "Umbrella",
    "Xenon",
    "Design",
];

const GROUP_KINDS: &[&str] = &["team", "oncall", "admins", "readers", "devs", "sre", "leads", "contractors"];

const ENVIRONMENTS: &[&str] = &["prod", "staging", "dev", "qa", "sandbox"];
const REGIONS: &[&str] = &["eu-west", "us-east", "us-west", "ap-south", "sa-east", "eu-north", "ap-east"];

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "payments",
    "checkout",
    "search",
    "billing",
    "identity",
    "ledger",
    "monitoring",
    "logging",
    "ingress",
    "cert-manager",
    "data",
    "ml",
    "batch",
    "web",
    "api",
    "mobile-api",
    "email",
    "video",
    "ads",
    "growth",
    "support",
    "analytics",
    "storage",
    "security",
    "ci",
    "platform",
    "jobs",
    "frontend",
];

const CLUSTER_ROLES: &[&str] = &["cluster-admin", "admin", "edit", "view"];

fn cluster_names(n: usize) -> Vec<String> {
    let mut names = Vec::with_capacity(n);
    'outer: for round in 1.. {
        for env in ENVIRONMENTS {
            for region in REGIONS {
                if names.len() == n {
                    break 'outer;
                }
                names.push(if round == 1 { format!("{env}-{region}") } else { format!("{env}-{region}-{round}") });
            }
        }
    }
    names
}

struct Seeded {
    /// emails and lowercase names of the seeded users, for typeahead prefixes
    user_keys: Vec<(String, String)>,
    group_names: Vec<String>,
    /// the cluster with the most grants, for the cluster page
    busiest_cluster: String,
    busiest_cluster_grants: u64,
}

fn progress(message: &str) {
    print!("{message}");
    let _ = std::io::stdout().flush();
}

/// Inserts rows with multi-row VALUES, `ROWS_PER_STATEMENT` at a time, inside the given transaction.
async fn bulk_insert(txn: &impl ConnectionTrait, table: &str, columns: &[&str], rows: impl IntoIterator<Item = Vec<Value>>) -> Result<u64, String> {
    let one_row = format!("({})", vec!["?"; columns.len()].join(","));
    let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut batch: Vec<Value> = Vec::with_capacity(columns.len() * ROWS_PER_STATEMENT);
    let mut in_batch = 0usize;
    let mut total = 0u64;
    let flush = |batch: Vec<Value>, n: usize| {
        let sql = format!("{head}{}", vec![one_row.as_str(); n].join(","));
        async move { db::execute(txn, &sql, batch).await.map_err(|e| format!("insert into {table}: {e}")) }
    };
    for row in rows {
        debug_assert_eq!(row.len(), columns.len());
        batch.extend(row);
        in_batch += 1;
        if in_batch == ROWS_PER_STATEMENT {
            total += flush(std::mem::take(&mut batch), in_batch).await?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        total += flush(batch, in_batch).await?;
    }
    Ok(total)
}

async fn ids_of(db: &DatabaseConnection, sql: &str) -> Result<Vec<i64>, String> {
    let rows = db::query_all(db, sql, []).await.map_err(|e| e.to_string())?;
    rows.into_iter().map(|r| r.try_get_by_index::<i64>(0).map_err(|e| e.to_string())).collect()
}

async fn seed(db: &DatabaseConnection, o: &Options, admin_id: i64) -> Result<Seeded, String> {
    let mut rng = Rng(0x1F2E_3D4C_5B6A_7988);
    let now = infra::server::now();
    let day = 86_400_000i64;
    let err = |e: sea_orm::DbErr| e.to_string();

    // users
    let t = Instant::now();
    progress(&format!("  seeding {} users ...", o.users));
    let mut user_keys = Vec::with_capacity(o.users);
    let mut user_rows = Vec::with_capacity(o.users);
    for i in 0..o.users {
        let first = *rng.pick(FIRST_NAMES);
        let last = *rng.pick(LAST_NAMES);
        let email = format!("{}.{}{}@example.com", first.to_lowercase(), last.to_lowercase(), i);
        let name = format!("{first} {last}");
        let name_lc = name.to_lowercase();
        let disabled = rng.chance(2);
        let last_seen: Option<i64> = if rng.chance(90) { Some(now - rng.below(30 * 24) as i64 * 3_600_000) } else { None };
        user_rows.push(vec![
            Value::from("user"),
            email.clone().into(),
            name.into(),
            name_lc.clone().into(),
            false.into(),
            Value::from("local"),
            disabled.into(),
            0i32.into(),
            last_seen.into(),
            (now - rng.below(365) as i64 * day).into(),
        ]);
        user_keys.push((email, name_lc));
    }
    let txn = db.begin().await.map_err(err)?;
    let mut done = 0usize;
    for chunk in user_rows.chunks(20_000) {
        bulk_insert(
            &txn,
            "users",
            &["kind", "email", "name", "name_lc", "must_change_password", "provider", "disabled", "failed_logins", "last_seen_at", "created_at"],
            chunk.iter().cloned(),
        )
        .await?;
        done += chunk.len();
        if done < o.users {
            progress(&format!(" {done}"));
        }
    }
    txn.commit().await.map_err(err)?;
    drop(user_rows);
    println!(" done in {:.1} s", t.elapsed().as_secs_f64());
    let user_ids = ids_of(db, &format!("SELECT id FROM users WHERE kind = 'user' AND id <> {admin_id} ORDER BY id")).await?;

    // groups
    let t = Instant::now();
    progress(&format!("  seeding {} groups ...", o.groups));
    let mut group_names = Vec::with_capacity(o.groups);
    let group_rows: Vec<Vec<Value>> = (0..o.groups)
        .map(|i| {
            let name = format!("{} {} {}", rng.pick(GROUP_AREAS), rng.pick(GROUP_KINDS), i);
            group_names.push(name.clone());
            vec![name.to_lowercase().into(), name.into(), Value::from("local"), (now - rng.below(365) as i64 * day).into()]
        })
        .collect();
    let txn = db.begin().await.map_err(err)?;
    bulk_insert(&txn, "groups", &["name_lc", "name", "source", "created_at"], group_rows).await?;
    txn.commit().await.map_err(err)?;
    println!(" done in {:.1} s", t.elapsed().as_secs_f64());
    let group_ids = ids_of(db, "SELECT id FROM groups ORDER BY id").await?;

    // memberships: every user in 1 to 3 groups
    let t = Instant::now();
    progress("  seeding memberships (1-3 groups per user) ...");
    let mut member_rows = Vec::with_capacity(user_ids.len() * 2);
    for &uid in &user_ids {
        let mut mine: Vec<i64> = Vec::with_capacity(3);
        for _ in 0..1 + rng.below(3) {
            let g = *rng.pick(&group_ids);
            if !mine.contains(&g) {
                mine.push(g);
                member_rows.push(vec![g.into(), uid.into(), (now - rng.below(365) as i64 * day).into()]);
            }
        }
    }
    let memberships = member_rows.len();
    let txn = db.begin().await.map_err(err)?;
    bulk_insert(&txn, "group_members", &["group_id", "user_id", "created_at"], member_rows).await?;
    txn.commit().await.map_err(err)?;
    println!(" {memberships} in {:.1} s", t.elapsed().as_secs_f64());

    // clusters
    let t = Instant::now();
    progress(&format!("  seeding {} clusters ...", o.clusters));
    let clusters = cluster_names(o.clusters);
    let mut cluster_namespaces: Vec<Vec<&str>> = Vec::with_capacity(clusters.len());
    let roles_json = serde_json::to_string(CLUSTER_ROLES).unwrap();
    let cluster_rows: Vec<Vec<Value>> = clusters
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut ns: Vec<&str> = NAMESPACES.iter().copied().filter(|_| rng.chance(60)).collect();
            if ns.is_empty() {
                ns.push("default");
            }
            ns.sort();
            let json = serde_json::to_string(&ns).unwrap();
            cluster_namespaces.push(ns);
            vec![
                name.clone().into(),
                format!("{:064x}", rng.next() as u128 * (i as u128 + 1)).into(),
                format!("https://{name}.proxy.example.com:8443").into(),
                Value::from("-----BEGIN CERTIFICATE-----\nMIIBbench\n-----END CERTIFICATE-----\n"),
                Value::from("v1.31.2"),
                Value::from("0.1.0"),
                json.into(),
                roles_json.clone().into(),
                (now - rng.below(20_000) as i64).into(),
                (now - 90 * day).into(),
            ]
        })
        .collect();
    let txn = db.begin().await.map_err(err)?;
    bulk_insert(
        &txn,
        "destinations",
        &["name", "unique_id", "endpoint", "ca", "kubernetes_version", "connector_version", "namespaces", "roles", "last_seen_at", "created_at"],
        cluster_rows,
    )
    .await?;
    txn.commit().await.map_err(err)?;
    println!(" done in {:.1} s", t.elapsed().as_secs_f64());

    // grants: 70% to users, 30% to groups; a third on whole clusters; one in ten expiring
    let t = Instant::now();
    progress(&format!("  seeding {} grants ...", o.grants));
    let mut seen: HashSet<(bool, i64, usize, usize, usize)> = HashSet::with_capacity(o.grants);
    let mut grant_rows = Vec::with_capacity(o.grants);
    let mut attempts = 0usize;
    while grant_rows.len() < o.grants {
        attempts += 1;
        if attempts > o.grants * 20 + 1000 {
            return Err(format!("could only make {} distinct grants; seed more users, groups or clusters", grant_rows.len()));
        }
        let to_group = rng.chance(30);
        let subject = if to_group { *rng.pick(&group_ids) } else { *rng.pick(&user_ids) };
        let role = rng.below(CLUSTER_ROLES.len());
        let cluster = rng.below(clusters.len());
        let ns = if rng.chance(33) { 0 } else { 1 + rng.below(cluster_namespaces[cluster].len()) };
        if !seen.insert((to_group, subject, role, cluster, ns)) {
            continue;
        }
        let namespace = if ns == 0 { "" } else { cluster_namespaces[cluster][ns - 1] };
        let expires: Option<i64> = if rng.chance(10) { Some(now + (1 + rng.below(90)) as i64 * day) } else { None };
        grant_rows.push(vec![
            Value::from(if to_group { "group" } else { "user" }),
            subject.into(),
            Value::from(CLUSTER_ROLES[role]),
            clusters[cluster].clone().into(),
            Value::from(namespace),
            admin_id.into(),
            (now - rng.below(365) as i64 * day).into(),
            expires.into(),
        ]);
    }
    let txn = db.begin().await.map_err(err)?;
    let mut done = 0usize;
    let total_grants = grant_rows.len();
    let mut rows = grant_rows.into_iter();
    loop {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(20_000).collect();
        if chunk.is_empty() {
            break;
        }
        done += chunk.len();
        bulk_insert(&txn, "grants", &["subject_kind", "subject_id", "role", "destination", "namespace", "created_by", "created_at", "expires_at"], chunk)
            .await?;
        if done < total_grants {
            progress(&format!(" {done}"));
        }
    }
    txn.commit().await.map_err(err)?;
    println!(" done in {:.1} s", t.elapsed().as_secs_f64());

    // statistics for the planner; on PostgreSQL also VACUUM (hint bits, visibility map) and a checkpoint,
    // so that neither autovacuum nor the first reads of fresh pages run during the measurements
    let t = Instant::now();
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        progress("  VACUUM ANALYZE, CHECKPOINT ...");
        db.execute_unprepared("VACUUM ANALYZE").await.map_err(err)?;
        db.execute_unprepared("CHECKPOINT").await.map_err(err)?;
    } else {
        progress("  ANALYZE, WAL checkpoint ...");
        db.execute_unprepared("ANALYZE").await.map_err(err)?;
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.map_err(err)?;
    }
    println!(" done in {:.1} s", t.elapsed().as_secs_f64());

    let busiest =
        db::query_one(db, "SELECT destination, COUNT(*) FROM grants WHERE destination <> 'infra' GROUP BY destination ORDER BY 2 DESC, 1 LIMIT 1", [])
            .await
            .map_err(err)?
            .ok_or("no grants on any cluster")?;
    let busiest_cluster: String = busiest.try_get_by_index(0).map_err(err)?;
    let busiest_cluster_grants: i64 = busiest.try_get_by_index(1).map_err(err)?;

    Ok(Seeded { user_keys, group_names, busiest_cluster, busiest_cluster_grants: busiest_cluster_grants as u64 })
}

/// Realistic typeahead input: the first 1 to 4 letters of an email, a name or a group name.
fn typeahead_prefixes(seeded: &Seeded, n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let source = match rng.below(10) {
                0..=3 => &rng.pick(&seeded.user_keys).0,
                4..=6 => &rng.pick(&seeded.user_keys).1,
                _ => rng.pick(&seeded.group_names),
            };
            let len = 1 + rng.below(4);
            source.chars().take(len).collect::<String>()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// figures

#[derive(Clone, Copy, Debug)]
struct Stats {
    n: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Nearest-rank percentiles.
fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort();
    let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Stats { n: v.len(), p50: rank(0.50), p99: rank(0.99), max: *v.last().unwrap() }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt_ms(d: Duration) -> String {
    let m = ms(d);
    if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 100.0 {
        format!("{m:.1} ms")
    } else {
        format!("{m:.0} ms")
    }
}

fn fmt_bytes(n: usize) -> String {
    if n >= 1 << 20 { format!("{:.1} MB", n as f64 / (1 << 20) as f64) } else { format!("{:.0} KB", n as f64 / 1024.0) }
}

struct Line {
    label: String,
    stats: Stats,
    note: String,
    target_ms: f64,
}

struct Report {
    backend: &'static str,
    seed_time: Duration,
    lines: Vec<Line>,
}

impl Report {
    fn print(&self, o: &Options) {
        println!();
        println!(
            "{} — {} users, {} groups, {} grants, {} clusters (seeded in {:.1} s)",
            self.backend,
            o.users,
            o.groups,
            o.grants,
            o.clusters,
            self.seed_time.as_secs_f64()
        );
        println!("  {:<44} {:>6} {:>10} {:>10} {:>10}   ", "measurement", "n", "p50", "p99", "max");
        for l in &self.lines {
            println!("  {:<44} {:>6} {:>10} {:>10} {:>10}   {}", l.label, l.stats.n, fmt_ms(l.stats.p50), fmt_ms(l.stats.p99), fmt_ms(l.stats.max), l.note);
        }
        println!("  against the targets (p99):");
        for l in &self.lines {
            let p99 = ms(l.stats.p99);
            let verdict = if p99 <= l.target_ms { "OK" } else { "OVER TARGET" };
            println!("    {:<44} p99 {:>10} (target ≤ {} ms)  {verdict}", l.label, fmt_ms(l.stats.p99), l.target_ms);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// a minimal HTTP/1.1 client: time to first byte, then the whole response

struct HttpResponse {
    ttfb: Duration,
    total: Duration,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn http(addr: SocketAddr, request: &[u8]) -> Result<HttpResponse, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256 * 1024];
        // the clock starts when the request is sent (connecting on loopback is not the server's time)
        let start = Instant::now();
        stream.write_all(request).await.map_err(|e| format!("send: {e}"))?;
        let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        let ttfb = start.elapsed();
        if n == 0 {
            return Err("the server closed the connection without answering".to_string());
        }
        let mut data = buf[..n].to_vec();
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let total = start.elapsed();
        parse_response(ttfb, total, data)
    };
    tokio::time::timeout(Duration::from_secs(60), exchange).await.map_err(|_| "no complete answer within 60 s".to_string())?
}

fn parse_response(ttfb: Duration, total: Duration, data: Vec<u8>) -> Result<HttpResponse, String> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n").ok_or("response without a header end")?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let raw = data[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(&raw)? } else { raw };
    Ok(HttpResponse { ttfb, total, status, headers, body })
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunked body")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn get_request(addr: SocketAddr, path: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: infra-console-bench\r\nAccept: text/html\r\n\
         Authorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn typeahead_request(addr: SocketAddr, q: &str, key: &str) -> Vec<u8> {
    let body = format!("source=subjects&scope=&q={}", infra::app::components::encode(q));
    format!(
        "POST /_fn/typeahead HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: infra-console-bench\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------------------
// one backend

async fn admin_actor(db: &DatabaseConnection) -> Result<Actor, String> {
    let admin = users::find_by_email(db, ADMIN_EMAIL).await.map_err(|e| e.to_string())?.ok_or("no first admin")?;
    actor_for_user(db, admin.id, "bench").await.map_err(|e| e.to_string())
}

/// The server as `infra server` runs it, on an ephemeral port, with a bearer key for the first admin.
async fn start(url: &str, data_dir: PathBuf) -> Result<(AppState, Actor, String), String> {
    // the harness' settings (plain HTTP, no public URL), with cookies a plain-HTTP client keeps
    let config = ServerConfig { secure_cookies: Some(false), ..test_harness::cluster::server_config(&data_dir, Some(url.to_string())) };
    let leptos_options = leptos::config::LeptosOptions::builder().output_name("infra").site_root("target/site").env(leptos::config::Env::PROD).build();
    let (state, one_time) = web::prepare(config, leptos_options).await?;
    let one_time = one_time.ok_or("the database was not empty: no first admin was created")?;
    // the first admin must change the one-time password before anything else works; do it as they would
    let actor = admin_actor(&state.db).await?;
    users::change_own_password(Ctx::new(&state.db, &actor), &one_time, ADMIN_PASSWORD)
        .await
        .map_err(|e| format!("changing the first admin's password: {e}"))?;
    let actor = admin_actor(&state.db).await?;
    if !actor.is_admin() || actor.must_change_password {
        return Err("the first admin is not a usable admin".into());
    }
    let key = keys::create(Ctx::new(&state.db, &actor), &NewAccessKey { name: "console-bench".into(), ttl_secs: None, inactivity_timeout_secs: None })
        .await
        .map_err(|e| format!("creating an access key: {e}"))?;
    Ok((state, actor, key.access_key))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "unknown".into())
}

async fn run_backend(backend: &'static str, url: &str, data_dir: PathBuf, o: &Options) -> Result<Report, String> {
    println!();
    println!("== {backend} == (load average {})", load_average());
    let t = Instant::now();
    let (state, actor, key) = start(url, data_dir).await?;
    let db = state.db.clone();
    let seeded = seed(&db, o, actor.user_id).await?;
    let seed_time = t.elapsed();
    let mut lines = Vec::new();

    // typeahead: the service call the server makes per keystroke
    let ctx = Ctx::new(&db, &actor);
    progress(&format!("  typeahead: {} service calls ...", o.queries));
    for q in typeahead_prefixes(&seeded, TYPEAHEAD_WARMUPS, 7) {
        search::typeahead(ctx, TypeaheadSource::Subjects, "", &q).await.map_err(|e| format!("typeahead {q:?}: {e}"))?;
    }
    let prefixes = typeahead_prefixes(&seeded, o.queries, 11);
    let mut samples = Vec::with_capacity(prefixes.len());
    let mut empty = 0usize;
    let mut slowest: Vec<(Duration, &str)> = Vec::new();
    for q in &prefixes {
        let t = Instant::now();
        let found = search::typeahead(ctx, TypeaheadSource::Subjects, "", q).await.map_err(|e| format!("typeahead {q:?}: {e}"))?;
        let d = t.elapsed();
        samples.push(d);
        slowest.push((d, q));
        if found.is_empty() {
            empty += 1;
        }
    }
    if empty == prefixes.len() {
        return Err("typeahead found nothing for any prefix: the measurement is meaningless".into());
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    let worst: Vec<String> = slowest.iter().take(3).map(|(d, q)| format!("{q:?} {}", fmt_ms(*d))).collect();
    println!(" done");
    lines.push(Line {
        label: "typeahead subjects, service call".into(),
        stats: stats(&samples),
        note: format!("{} without match; slowest {}", empty, worst.join(", ")),
        target_ms: TYPEAHEAD_TARGET_MS,
    });

    // the server
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = web::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });

    // typeahead through HTTP: authentication, the server function, JSON
    if o.http_queries > 0 {
        progress(&format!("  typeahead: {} POST /_fn/typeahead ...", o.http_queries));
        let check = http(addr, &typeahead_request(addr, "a", &key)).await?;
        if check.status != 200 || !check.text().trim_start().starts_with('[') {
            return Err(format!(
                "POST /_fn/typeahead answered {} {:?}, not a list of suggestions",
                check.status,
                check.text().chars().take(300).collect::<String>()
            ));
        }
        for q in typeahead_prefixes(&seeded, 50, 13) {
            http(addr, &typeahead_request(addr, &q, &key)).await?;
        }
        let mut samples = Vec::with_capacity(o.http_queries);
        for q in typeahead_prefixes(&seeded, o.http_queries, 17) {
            let r = http(addr, &typeahead_request(addr, &q, &key)).await?;
            if r.status != 200 {
                return Err(format!("POST /_fn/typeahead q={q:?} answered {}: {}", r.status, r.text()));
            }
            samples.push(r.total);
        }
        println!(" done");
        lines.push(Line {
            label: "typeahead subjects, POST /_fn/typeahead".into(),
            stats: stats(&samples),
            note: "whole response, incl. access key check".into(),
            target_ms: TYPEAHEAD_TARGET_MS,
        });
    }

    // pages: time to first byte of the server-rendered page
    let cluster_path = format!("/clusters/{}", seeded.busiest_cluster);
    let pages: [(&str, &str, &str, String); 3] = [
        ("Users", "/users", "data-testid=\"users\"", "first page of 25".to_string()),
        ("Access", "/access", "data-testid=\"grants\"", "first page of 50".to_string()),
        ("Cluster", cluster_path.as_str(), "data-testid=\"cluster-access\"", format!("busiest cluster, {} grants", seeded.busiest_cluster_grants)),
    ];
    for (title, path, marker, what) in pages {
        progress(&format!("  page {path}: {} requests ...", o.page_runs));
        let request = get_request(addr, path, &key);
        let first = http(addr, &request).await?;
        let body = first.text();
        if first.status != 200 || !body.contains(marker) || !body.contains("data-testid=\"signed-in-as\"") {
            return Err(format!(
                "GET {path} is not the {title} page: status {}, location {:?}, body starts {:?}",
                first.status,
                first.header("location"),
                body.chars().take(400).collect::<String>()
            ));
        }
        let rows = body.matches("<tr").count().saturating_sub(1);
        let size = first.body.len();
        if let Some(dir) = &o.dump {
            let file = dir.join(format!("{}-{}.html", backend.to_lowercase(), title.to_lowercase()));
            std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&file, &first.body)).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        for _ in 1..PAGE_WARMUPS {
            http(addr, &request).await?;
        }
        let mut ttfb = Vec::with_capacity(o.page_runs);
        let mut total = Vec::with_capacity(o.page_runs);
        for _ in 0..o.page_runs {
            let r = http(addr, &request).await?;
            if r.status != 200 {
                return Err(format!("GET {path} answered {}", r.status));
            }
            ttfb.push(r.ttfb);
            total.push(r.total);
        }
        println!(" done");
        let total = stats(&total);
        lines.push(Line {
            label: format!("TTFB GET {path}"),
            stats: stats(&ttfb),
            note: format!("{what}; {rows} rows, {}; whole page p50 {}", fmt_bytes(size), fmt_ms(total.p50)),
            target_ms: PAGE_TARGET_MS,
        });
    }

    println!("  load average after the measurements: {}", load_average());
    server.abort();
    let _ = server.await;
    let _ = state.db.clone().close().await;
    Ok(Report { backend, seed_time, lines })
}

fn main() {
    let o = parse_options();
    if !std::path::Path::new("Leptos.toml").exists() {
        eprintln!("console bench: note: run from the repository root (no Leptos.toml here)");
    }
    println!(
        "console benchmark: {} users, {} groups, {} grants, {} clusters; {} typeahead calls ({} over HTTP), {} requests per page",
        o.users, o.groups, o.grants, o.clusters, o.queries, o.http_queries, o.page_runs
    );
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("{cpus} CPUs, load average {} (other work on the machine shows in the tails)", load_average());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let mut reports = Vec::new();
    let mut failed = false;

    if o.sqlite {
        let dir = tempfile::Builder::new().prefix("infra-bench").tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("infra.db").display());
        match runtime.block_on(run_backend("SQLite", &url, dir.path().to_path_buf(), &o)) {
            Ok(r) => {
                r.print(&o);
                reports.push(r);
            }
            Err(e) => {
                eprintln!("\nconsole bench: SQLite: {e}");
                failed = true;
            }
        }
    }
    if o.postgres {
        let server = pg::TempPostgres::start();
        let url = server.new_database();
        let dir = tempfile::Builder::new().prefix("infra-bench").tempdir().expect("temp dir");
        match runtime.block_on(run_backend("PostgreSQL", &url, dir.path().to_path_buf(), &o)) {
            Ok(r) => {
                r.print(&o);
                reports.push(r);
            }
            Err(e) => {
                eprintln!("\nconsole bench: PostgreSQL: {e}");
                failed = true;
            }
        }
        drop(server);
    }

    if reports.len() > 1 {
        println!();
        println!("summary (p99; typeahead target ≤ {TYPEAHEAD_TARGET_MS} ms, pages ≤ {PAGE_TARGET_MS} ms)");
        print!("  {:<44}", "");
        for r in &reports {
            print!(" {:>14}", r.backend);
        }
        println!();
        for (i, line) in reports[0].lines.iter().enumerate() {
            print!("  {:<44}", line.label);
            for r in &reports {
                match r.lines.get(i) {
                    Some(l) => {
                        let mark = if ms(l.stats.p99) <= l.target_ms { " " } else { "!" };
                        print!(" {:>13}{mark}", fmt_ms(l.stats.p99));
                    }
                    None => print!(" {:>14}", "-"),
                }
            }
            println!();
        }
        println!("  (! = over target)");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    if failed {
        std::process::exit(1);
    }
}
