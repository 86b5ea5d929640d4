//! A throwaway PostgreSQL for tests, one cluster per test binary and one database per test.
//!
//! - `VENDORGATE_PG_URL=postgres://user@host:port/db` uses that server instead (each test
//!   still gets a database of its own);
//! - otherwise the system's PostgreSQL binaries (`pg_config --bindir`) start a cluster in a
//!   temp dir, as the `postgres` user when running as root (`initdb` refuses root), on a
//!   free loopback port, with `fsync=off` (safe here: only an OS crash loses commits) and the
//!   default `synchronous_commit=on` (vendorgate refuses `off`);
//! - a watchdog stops the cluster and removes the dir when the test process exits;
//! - if neither works the PostgreSQL tests skip with the reason, unless
//!   `VENDORGATE_REQUIRE_PG=1` (set by `.ci/run`), which makes a skip a failure.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub struct Server {
    /// `postgres://user@host:port` (no database).
    base: String,
    psql: PathBuf,
    /// The cluster's directory, when we started it.
    pub dir: Option<PathBuf>,
    pgbin: Option<PathBuf>,
    /// The server options, for a restart.
    options: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The server, or `None` (with the reason printed) when the tests must skip.
pub fn server() -> Option<&'static Server> {
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(why) => {
            if std::env::var("VENDORGATE_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("VENDORGATE_REQUIRE_PG=1 but no PostgreSQL: {why}");
            }
            eprintln!("SKIP (no PostgreSQL: {why}; set VENDORGATE_PG_URL or install postgresql)");
            None
        }
    }
}

impl Server {
    /// A fresh, empty database: its URL.
    pub fn database(&self) -> String {
        let name = format!(
            "vg_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(&self.psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!("{}/postgres", self.base))
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/{name}", self.base)
    }

    /// Run SQL against a database (for tests that inspect or break things).
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stop the server (only one this harness started): to test what happens when the
    /// database goes away.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Start it again after [`Server::stop`].
    pub fn restart(&self) {
        let options = self.options.clone();
        self.pg_ctl(&["-w", "-t", "30", "-o", &options, "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let (Some(dir), Some(bin)) = (&self.dir, &self.pgbin) else {
            panic!("only a server the harness started can be stopped");
        };
        let status = as_postgres(bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root.
fn as_postgres(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("VENDORGATE_PG_URL") {
        let base = match url.rfind('/') {
            Some(i) if i > "postgres://".len() => url[..i].to_string(),
            _ => url.clone(),
        };
        let psql = which("psql").ok_or("VENDORGATE_PG_URL is set but psql is not on PATH")?;
        return Ok(Server {
            base,
            psql,
            dir: None,
            pgbin: None,
            options: String::new(),
        });
    }
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|e| format!("pg_config: {e}"))?;
    let bin = PathBuf::from(String::from_utf8_lossy(&bindir.stdout).trim());
    if !bin.join("initdb").exists() {
        return Err(format!("no initdb in {}", bin.display()));
    }
    let dir = std::env::temp_dir().join(format!("vendorgate-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if is_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("chown to postgres failed (is there a postgres user?)".into());
        }
    }
    let out = as_postgres(bin.join("initdb"))
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off -c full_page_writes=off -c max_connections=400",
        dir.display()
    );
    let out = as_postgres(bin.join("pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "30", "-o", &options, "start"])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {log}"));
    }
    let runuser = if is_root() {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let watchdog = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {runuser}'{ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        ctl = bin.join("pg_ctl").display(),
        data = dir.join("data").display(),
        dir = dir.display(),
    );
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    Ok(Server {
        base: format!("postgres://postgres@127.0.0.1:{port}"),
        psql: bin.join("psql"),
        dir: Some(dir),
        pgbin: Some(bin),
        options,
    })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}
