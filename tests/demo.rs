//! `tombstone demo` (issue 13 item 5), run as a user runs it: the built
//! binary with its output piped, from a directory without the repository.
//! Through the connection strings it prints: a delete as the app, the
//! project gone, a restore as the admin, the project back. Then SIGINT:
//! exit 0 within seconds, the temporary directory gone, the server's
//! process and ports gone. A startup that fails (no PostgreSQL binaries;
//! the proxy's port taken once the server runs) exits non-zero, says what
//! is wrong and leaves nothing behind.
//!
//! Each run gets its own `TMPDIR`, so "nothing left behind" is "that
//! directory is empty" and no other test's files are looked at.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, count, http};

/// Initdb, the scenario and migrate take a few seconds (debug build, a
/// shared machine: give it time).
const STARTUP: Duration = Duration::from_secs(180);
/// The banner's `label: value` lines.
const LABELS: [&str; 7] = [
    "app",
    "admin",
    "admin page",
    "page token",
    "database",
    "config",
    "directory",
];
/// How long the demo may take to stop after SIGINT.
const STOP: Duration = Duration::from_secs(15);

/// A `TMPDIR` of the test's own, which the `postgres` account can enter
/// (the demo hands its directory inside to that account when run as root).
fn private_tmpdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running `tombstone demo`: its stdout lines as they come, its stderr
/// collected.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Demo {
    fn start(tmpdir: &Path, args: &[&str]) -> Demo {
        let cwd = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tombstone"))
            .arg("demo")
            .args(args)
            .current_dir(cwd.path())
            .env("TMPDIR", tmpdir)
            .env_remove("TOMBSTONE_CONFIG")
            .env_remove("TOMBSTONE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Demo {
            child,
            lines,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The `label: value` lines of the banner, read until its last line.
    fn banner(&self) -> HashMap<String, String> {
        let deadline = Instant::now() + STARTUP;
        let mut fields = HashMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "no complete banner within {STARTUP:?}; got {fields:?}; stderr:\n{}",
                    self.stderr()
                ),
            };
            if line.starts_with("Ctrl-C stops") {
                return fields;
            }
            if let Some((label, value)) = line.trim().split_once(": ")
                && LABELS.contains(&label)
            {
                fields.insert(label.to_string(), value.trim().to_string());
            }
        }
    }

    /// Waits for the exit, at most `within`.
    fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn signal(&self, signal: i32) {
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // A failed test still lets the demo clean up after itself.
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            if self.wait(STOP).is_none() {
                let _ = self.child.kill();
            }
        }
    }
}

/// The port of a `postgres://user@host:port/db` URL.
fn url_port(url: &str) -> u16 {
    let after = url.rsplit_once('@').unwrap().1;
    let hostport = after.split('/').next().unwrap();
    hostport.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Alive: a process that exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            !matches!(state.and_then(|s| s.chars().next()), Some('Z') | Some('X'))
        }
        Err(_) => false,
    }
}

/// Processes whose command line mentions `path`.
fn processes_mentioning(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && alive(pid) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_the_scenario_and_cleans_up_on_sigint() {
    let tmpdir = private_tmpdir();
    let mut demo = Demo::start(tmpdir.path(), &[]);
    let banner = demo.banner();
    let field = |name: &str| -> String {
        banner
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}:` line in the banner: {banner:?}"))
            .clone()
    };
    let (app, admin, database) = (field("app"), field("admin"), field("database"));
    let dir = PathBuf::from(field("directory"));
    let config = field("config");
    let admin_page = field("admin page");
    assert!(dir.starts_with(tmpdir.path()), "{dir:?}");
    assert!(app.starts_with("postgres://app@127.0.0.1:"), "{app}");

    // The server of the demo: its postmaster, its port.
    let pid_file = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap();
    let postmaster: i32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    assert!(alive(postmaster));
    let pg_port = url_port(&database);
    let proxy_port = url_port(&app);
    assert!(accepts(pg_port));

    // The admin listener answers.
    let admin_addr: SocketAddr = admin_page
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let admin_port = admin_addr.port();
    let ready = http::get(admin_addr, "/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);

    // The app deletes project 1 through the proxy: gone, its tasks too.
    {
        let app = connect(&app).await;
        let deleted = app
            .execute("DELETE FROM projects WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(
            count(&app, "SELECT count(*) FROM projects WHERE id = 1").await,
            0
        );
        assert_eq!(
            count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
            0
        );
    }

    // The CLI line the banner prints finds it in the trash.
    let trash = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["trash", "--config", &config, "--table", "projects"])
        .env_remove("TOMBSTONE_DATABASE_URL")
        .output()
        .unwrap();
    let trash_out = String::from_utf8_lossy(&trash.stdout);
    assert!(trash.status.success(), "{trash:?}");
    assert!(trash_out.contains("public.projects"), "{trash_out}");
    assert!(trash_out.contains("public.tasks 500"), "{trash_out}");

    // The printed token logs in to the trash page, which lists it.
    let token = field("page token");
    assert_eq!(token.len(), 32, "{token}");
    let origin = format!("http://{admin_addr}");
    let login = http::request(
        admin_addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
        ],
        &format!("token={token}"),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let page = http::request(admin_addr, "GET", "/trash", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("public.projects"), "{}", page.body);

    // The admin restores it through the proxy; the app sees it again.
    {
        let admin = connect(&admin).await;
        let restored: String = admin
            .query_one(
                "SELECT tombstone.restore_row('projects', '{\"id\": 1}')::text",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let restored: serde_json::Value = serde_json::from_str(&restored).unwrap();
        assert_eq!(restored["status"], "restored", "{restored}");
        assert_eq!(restored["rows"], 3122, "{restored}");
        let app = connect(&app).await;
        assert_eq!(
            count(&app, "SELECT count(*) FROM projects WHERE id = 1").await,
            1
        );
        assert_eq!(
            count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
            500
        );
    }

    // Ctrl-C: exit 0 within seconds, nothing left.
    let asked = Instant::now();
    demo.signal(libc::SIGINT);
    let status = demo
        .wait(STOP)
        .unwrap_or_else(|| panic!("still running {STOP:?} after SIGINT:\n{}", demo.stderr()));
    assert!(status.success(), "{status:?}\n{}", demo.stderr());
    eprintln!("demo stopped {:?} after SIGINT", asked.elapsed());
    assert!(!dir.exists(), "{dir:?} left behind");
    assert!(
        entries(tmpdir.path()).is_empty(),
        "{:?}",
        entries(tmpdir.path())
    );
    assert!(!alive(postmaster), "postmaster {postmaster} still runs");
    assert!(
        processes_mentioning(&dir).is_empty(),
        "{:?}",
        processes_mentioning(&dir)
    );
    for port in [pg_port, proxy_port, admin_port] {
        assert!(!accepts(port), "port {port} still accepts");
    }
    assert!(demo.stderr().contains("removed"), "{}", demo.stderr());
}

#[test]
fn missing_postgres_binaries_are_named_and_nothing_is_left() {
    let tmpdir = private_tmpdir();
    let mut demo = Demo::start(tmpdir.path(), &["--pg-bin", "/nonexistent"]);
    let status = demo
        .wait(Duration::from_secs(30))
        .expect("demo did not exit");
    let err = demo.stderr();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    assert!(err.contains("initdb"), "{err}");
    assert!(err.starts_with("tombstone: "), "{err}");
    assert!(
        entries(tmpdir.path()).is_empty(),
        "{:?}",
        entries(tmpdir.path())
    );
}

/// The proxy's port taken: the demo fails after PostgreSQL started and the
/// scenario loaded, and stops and deletes all of it.
#[test]
fn a_startup_failing_half_way_stops_postgres_and_deletes_its_directory() {
    let tmpdir = private_tmpdir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut demo = Demo::start(tmpdir.path(), &["--port", &port]);
    let status = demo.wait(STARTUP).expect("demo did not exit");
    let err = demo.stderr();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    // It got as far as a running server.
    assert!(err.contains("loading the scenario"), "{err}");
    assert!(err.contains("PostgreSQL stopped"), "{err}");
    assert!(
        entries(tmpdir.path()).is_empty(),
        "{:?}",
        entries(tmpdir.path())
    );
    assert!(
        processes_mentioning(tmpdir.path()).is_empty(),
        "{:?}",
        processes_mentioning(tmpdir.path())
    );
    drop(taken);
}
