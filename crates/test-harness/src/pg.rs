//! A throw-away PostgreSQL server for tests and benchmarks: `initdb` and `pg_ctl` on a temporary
//! directory, listening only on a Unix socket in that directory. No Docker. Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    next_db: std::sync::atomic::AtomicU32,
}

fn find_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    for candidate in ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"] {
        if Path::new(candidate).join("initdb").exists() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("/usr/local/bin")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

impl TempPostgres {
    pub fn start() -> TempPostgres {
        let dir = tempfile::Builder::new().prefix("infra-pg").tempdir().expect("temp dir");
        let bin = find_bin();
        let data = dir.path().join("data");
        // initdb and postgres refuse to run as root: run them as the `postgres` user when we are root
        let as_root = unsafe_is_root();
        if as_root {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()), "chown");
        }
        let wrap = |program: PathBuf| -> Command {
            if as_root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        run(wrap(bin.join("initdb")).args(["-A", "trust", "-U", "postgres", "--locale=C", "-E", "UTF8", "-D"]).arg(&data), "initdb");
        let options = format!("-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir.path().display());
        run(wrap(bin.join("pg_ctl")).args(["-w", "-D"]).arg(&data).args(["-o", &options, "-l"]).arg(dir.path().join("log")).arg("start"), "pg_ctl start");
        // Statics are never dropped and a killed test run never drops anything: a watchdog stops the
        // server as soon as this process is gone.
        let stop = format!("{} -D {} -m immediate stop", bin.join("pg_ctl").display(), data.display());
        let stop = if as_root { format!("runuser -u postgres -- {stop}") } else { stop };
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {}", std::process::id(), dir.path().display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        TempPostgres { dir, bin, next_db: std::sync::atomic::AtomicU32::new(0) }
    }

    /// A new, empty database on this server, as a URL for `infra server --database-url`.
    pub fn new_database(&self) -> String {
        let n = self.next_db.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("infra_test_{}_{n}", std::process::id());
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args(["-h"]).arg(self.dir.path()).args(["-U", "postgres", &name]);
        run(&mut cmd, "createdb");
        format!("postgres://postgres@localhost/{name}?host={}", self.dir.path().display())
    }
}

fn unsafe_is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd.args(["-D"]).arg(&data).args(["-m", "immediate", "stop"]).output();
    }
}
