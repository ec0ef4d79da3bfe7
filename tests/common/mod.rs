//! Test harness shared by the integration tests: throwaway databases on the
//! local PostgreSQL, a `tombstone serve` process on a free port, a private
//! PostgreSQL cluster for authentication tests, and self-signed
//! certificates.
//!
//! The server URL comes from `TOMBSTONE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Scenario databases are
//! loaded from `tests/scenario` (a copy of `shared/scenario`).
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use tombstone::schema::{SchemaSnapshot, SnapshotOptions, load};

pub mod cluster;
pub mod http;
pub mod oracle;
pub mod protected;

/// The admin URL of the PostgreSQL the tests run against.
pub fn admin_url() -> String {
    std::env::var("TOMBSTONE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Host, port and user of [`admin_url`].
pub fn admin_config() -> tokio_postgres::Config {
    admin_url()
        .parse()
        .expect("TOMBSTONE_TEST_DATABASE_URL is not a valid URL")
}

pub fn upstream_host_port() -> (String, u16) {
    let cfg = admin_config();
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    (host, cfg.get_ports().first().copied().unwrap_or(5432))
}

/// A name no other test run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs psql against the admin URL with the given arguments.
pub fn psql_admin(sql: &str) {
    let status = Command::new("psql")
        .arg(admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .status()
        .expect("psql not found: install postgresql-client");
    assert!(status.success(), "psql failed: {sql}");
}

/// `admin_url` with its database replaced by `name`.
pub fn url_for(name: &str) -> String {
    let base = admin_url();
    let (head, tail) = match base.find('?') {
        Some(q) => (&base[..q], &base[q..]),
        None => (base.as_str(), ""),
    };
    let cut = head
        .rfind('/')
        .filter(|&i| i > "postgres://".len())
        .unwrap_or(head.len());
    format!("{}/{}{}", &head[..cut], name, tail)
}

pub fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("scenario")
}

/// Runs psql against `url`, failing the test on error.
pub fn psql(url: &str, args: &[&str]) {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url])
        .args(args)
        .output()
        .expect("psql must be installed to run the integration tests");
    assert!(
        out.status.success(),
        "psql {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database created for one test and dropped (with FORCE) when it ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// An empty database.
    pub fn new(prefix: &str) -> TestDb {
        let name = unique_name(prefix);
        psql_admin(&format!("CREATE DATABASE \"{name}\""));
        TestDb {
            url: url_for(&name),
            name,
        }
    }

    /// A database loaded with the scenario (`projects` projects) and the
    /// tombstone schema `migrate --apply` installs.
    pub fn create(tag: &str, projects: u32) -> TestDb {
        let db = TestDb::twin(tag, projects);
        // The tombstone schema as `migrate` installs it: operations are
        // recorded by its triggers.
        db.migrate();
        db
    }

    /// Runs `tombstone migrate --apply` on this database; panics with its
    /// output when it fails.
    pub fn migrate(&self) {
        let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
            .args(["migrate", "--apply", "--database-url", &self.url])
            .output()
            .expect("run tombstone migrate");
        assert!(
            out.status.success(),
            "migrate: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The scenario without tombstone: a hard-delete twin.
    pub fn twin(tag: &str, projects: u32) -> TestDb {
        let db = TestDb::new(&format!("tombstone_test_{tag}"));
        let dir = scenario_dir();
        let schema = dir.join("schema.sql");
        let data = dir.join("data.sql");
        psql(
            &db.url,
            &[
                "-v",
                &format!("projects={projects}"),
                "-f",
                schema.to_str().unwrap_or_default(),
                "-f",
                data.to_str().unwrap_or_default(),
            ],
        );
        db
    }

    /// Installs what `migrate --apply` installs for `snap` (its triggers,
    /// policies and registry) on tables created after [`TestDb::create`]
    /// or protected with other snapshot options.
    pub async fn install(&self, snap: &SchemaSnapshot) {
        let mut client = connect(&self.url).await;
        let config =
            tombstone::config::Config::parse("").unwrap_or_else(|e| panic!("empty config: {e}"));
        let steps = tombstone::migrate::plan(&config, Some(snap));
        tombstone::migrate::apply(&mut client, &steps)
            .await
            .unwrap_or_else(|e| panic!("install: {e:?}"));
    }

    /// A direct (not proxied) connection.
    pub async fn connect(&self) -> Client {
        connect(&self.url).await
    }

    pub async fn snapshot(&self, client: &Client) -> SchemaSnapshot {
        load::load(client, &SnapshotOptions::default())
            .await
            .expect("load snapshot")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(admin_url())
            .args([
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// A running `tombstone serve`.
pub struct Proxy {
    pub port: u16,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
}

/// What goes into a test proxy's rules.toml besides the listen address.
#[derive(Default)]
pub struct ProxyOptions {
    /// Extra TOML appended to the config (e.g. a `[listen.tls]` table).
    pub extra_toml: String,
    /// Upstream host and port; default: the test server's.
    pub upstream: Option<(String, u16)>,
    /// `[listen]` keys.
    pub listen_toml: String,
}

impl Proxy {
    pub fn start() -> Proxy {
        Proxy::start_with(ProxyOptions::default())
    }

    /// Starts a proxy on a free port. The port is only known to be free
    /// when it was picked, so another test may take it first; the proxy
    /// then fails to bind, and a connection to the port would reach that
    /// other test's proxy (which relays a database it does not protect
    /// unchanged). So this waits for *this* proxy's own "listening" line
    /// and retries on another port when the bind failed.
    pub fn start_with(opts: ProxyOptions) -> Proxy {
        for _ in 0..10 {
            if let Some(proxy) = Proxy::try_start(&opts) {
                return proxy;
            }
        }
        panic!("tombstone could not bind a free port in 10 tries");
    }

    fn try_start(opts: &ProxyOptions) -> Option<Proxy> {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let (host, up_port) = opts.upstream.clone().unwrap_or_else(upstream_host_port);
        let config = format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\nshutdown_grace = \"5s\"\n{}\n[upstream]\nhost = \"{host}\"\nport = {up_port}\n{}\n",
            opts.listen_toml, opts.extra_toml
        );
        let config_path = dir.path().join("rules.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("proxy.log")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tombstone"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "tombstone=debug,info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tombstone");
        let mut proxy = Proxy {
            port,
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let exited = proxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
                .is_some();
            if exited {
                let log = proxy.log();
                if log.contains("cannot listen on") {
                    return None;
                }
                panic!("tombstone exited before listening:\n{log}");
            }
            if proxy.log().contains("tombstone listening")
                && TcpStream::connect(proxy.addr()).is_ok()
            {
                return Some(proxy);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tombstone did not start listening:\n{}", proxy.log());
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The proxy's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// A libpq-style connection string through the proxy.
    pub fn conninfo(&self, db: &str) -> String {
        let user = admin_config().get_user().unwrap_or("postgres").to_string();
        format!(
            "host=127.0.0.1 port={} user={user} dbname={db} sslmode=disable",
            self.port
        )
    }

    /// A `postgresql://` URL through the proxy.
    pub fn url(&self, db: &str) -> String {
        let user = admin_config().get_user().unwrap_or("postgres").to_string();
        format!(
            "postgresql://{user}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// A tokio-postgres client through the proxy.
    pub async fn connect(&self, db: &str) -> Client {
        connect(&self.conninfo(db)).await
    }

    /// Sends `signal` (e.g. "TERM") to the proxy process.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status();
        }
    }

    /// Waits for the process to exit, returning its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The proxy's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Moves scenario project `project`'s soft delete (the project, its
/// cascade and its operation) `days` days into the past.
pub async fn backdate_project(direct: &Client, days: i32, project: i64) {
    direct
        .batch_execute(&format!(
            "UPDATE projects SET deleted_at = deleted_at - interval '{days} days' WHERE id = {project};
             UPDATE project_members SET deleted_at = deleted_at - interval '{days} days' WHERE project_id = {project};
             UPDATE tasks SET deleted_at = deleted_at - interval '{days} days' WHERE project_id = {project};
             UPDATE comments c SET deleted_at = c.deleted_at - interval '{days} days' FROM tasks t
              WHERE t.id = c.task_id AND t.project_id = {project};
             UPDATE attachments a SET deleted_at = a.deleted_at - interval '{days} days' FROM tasks t
              WHERE t.id = a.task_id AND t.project_id = {project};
             UPDATE time_entries e SET deleted_at = e.deleted_at - interval '{days} days' FROM tasks t
              WHERE t.id = e.task_id AND t.project_id = {project};
             UPDATE documents SET deleted_at = deleted_at - interval '{days} days' WHERE project_id = {project};
             UPDATE document_versions v SET deleted_at = v.deleted_at - interval '{days} days' FROM documents d
              WHERE d.id = v.document_id AND d.project_id = {project};
             UPDATE billing.invoices SET deleted_at = deleted_at - interval '{days} days' WHERE project_id = {project};
             UPDATE tombstone.operations SET created_at = created_at - interval '{days} days'
              WHERE id IN (SELECT op_id FROM tombstone.operation_rows
                            WHERE table_name = 'projects' AND pk = jsonb_build_object('id', {project}));"
        ))
        .await
        .unwrap();
}

/// The one value `sql` returns (a `count(*)`, say); panics with the error.
pub async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// Runs the tombstone binary with `args`: (success, stdout, stderr).
pub fn tombstone(args: &[&str]) -> (bool, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_tombstone")).args(args))
}

/// Connects with tokio-postgres (no TLS) and drives the connection.
pub async fn connect(conninfo: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conninfo}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The SQLSTATE of a tokio-postgres error.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no sqlstate: {e}"))
}

/// A self-signed certificate for 127.0.0.1/localhost, written as PEM files.
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("generate certificate");
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::File::create(&cert_path)
        .and_then(|mut f| f.write_all(cert.cert.pem().as_bytes()))
        .expect("write cert");
    std::fs::File::create(&key_path)
        .and_then(|mut f| f.write_all(cert.signing_key.serialize_pem().as_bytes()))
        .expect("write key");
    (cert_path, key_path)
}

/// Runs a program, returning (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a `tombstone` command did: its exit code, stdout and stderr.
pub struct CliRun {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

/// Runs `tombstone ARGS` in `dir` with `env` set and none of the
/// `TOMBSTONE_CONFIG` / `TOMBSTONE_DATABASE_URL` of the test's own
/// environment, so only what the test gives decides where the config and
/// the database are.
pub fn tombstone_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tombstone"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("TOMBSTONE_CONFIG")
        .env_remove("TOMBSTONE_DATABASE_URL")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run tombstone {args:?}: {e}"));
    CliRun {
        code: out.status.code(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
