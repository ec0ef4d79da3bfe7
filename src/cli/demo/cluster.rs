//! The demo's throwaway PostgreSQL: the machine's own `initdb` and
//! `pg_ctl`, a temporary directory, a free port on 127.0.0.1, the Unix
//! socket inside the directory. Stopped (`pg_ctl stop -m fast`) and
//! deleted by [`Cluster::remove`], or on drop when a startup fails half way.
//!
//! `initdb` refuses to run as root. When the demo runs as root, the
//! directory is given to an unprivileged account (`postgres` by default)
//! and `initdb` and `pg_ctl` run as that account through `runuser`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECONDS: &str = "60";

/// Where PostgreSQL's server programs are: `explicit` (`--pg-bin`) when
/// given; else `pg_config --bindir`, the newest `/usr/lib/postgresql/*/bin`
/// (Debian, Ubuntu), the directories of `PATH`: the first that holds both
/// `initdb` and `pg_ctl`. The error names what is missing and where it
/// looked.
pub fn find_bindir(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        let missing: Vec<&str> = ["initdb", "pg_ctl"]
            .into_iter()
            .filter(|p| !dir.join(p).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(dir.to_path_buf());
        }
        return Err(format!(
            "--pg-bin {}: no {} there; name the directory that holds PostgreSQL's server programs (`pg_config --bindir` prints it)",
            dir.display(),
            missing.join(" or ")
        ));
    }
    let mut candidates = Vec::new();
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !dir.is_empty() {
            candidates.push(PathBuf::from(dir));
        }
    }
    candidates.extend(debian_bindirs());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or_else(|| {
            "cannot find PostgreSQL's server programs initdb and pg_ctl (looked in `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH): install the PostgreSQL server (Debian and Ubuntu: apt-get install postgresql) or pass --pg-bin DIR".to_string()
        })
}

/// `/usr/lib/postgresql/*/bin`, the newest major version first.
fn debian_bindirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The account the server runs as when the demo runs as root.
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

/// A private PostgreSQL cluster in a temporary directory.
pub struct Cluster {
    bindir: PathBuf,
    /// The temporary directory: `data/`, `server.log`, the socket, and the
    /// demo's `rules.toml`. `None` once removed.
    dir: Option<PathBuf>,
    /// Set when running as root.
    account: Option<Account>,
    pub port: u16,
}

impl Cluster {
    /// Creates the temporary directory (mode 0700, given to `pg_user` when
    /// running as root) for a cluster of `bindir`'s programs on `port`.
    pub fn create(bindir: PathBuf, port: u16, pg_user: &str) -> Result<Cluster, String> {
        let account = if running_as_root() {
            Some(account(pg_user)?)
        } else {
            None
        };
        let dir = make_temp_dir()?;
        let cluster = Cluster {
            bindir,
            dir: Some(dir.clone()),
            account,
            port,
        };
        if let Some(a) = &cluster.account {
            std::os::unix::fs::chown(&dir, Some(a.uid), Some(a.gid))
                .map_err(|e| format!("cannot give {} to account {}: {e}", dir.display(), a.name))?;
        }
        Ok(cluster)
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().unwrap_or(Path::new(""))
    }

    /// The account the server runs as, when it is not the caller's.
    pub fn account(&self) -> Option<&str> {
        self.account.as_ref().map(|a| a.name.as_str())
    }

    /// The server's version, as `initdb --version` says it (`initdb
    /// (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` gives `15.20`).
    pub async fn version(&self) -> String {
        let out = Command::new(self.bindir.join("initdb"))
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .await;
        match out {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .skip_while(|w| *w != "(PostgreSQL)")
                .nth(1)
                .unwrap_or("")
                .to_string(),
            Err(_) => String::new(),
        }
    }

    /// `initdb`: superuser `postgres`, trust authentication (the server
    /// listens on 127.0.0.1 and a socket in a 0700 directory only).
    pub async fn init(&self) -> Result<(), String> {
        let data = self.dir().join("data");
        let data = data.to_string_lossy();
        self.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )
        .await
    }

    /// `pg_ctl -w start` on 127.0.0.1 and the directory's socket; the
    /// error carries the end of the server's log.
    pub async fn start(&self) -> Result<(), String> {
        let dir = self.dir().to_string_lossy().into_owned();
        if dir.contains('\'') {
            return Err(format!(
                "the temporary directory {dir} has a quote in its name: set TMPDIR to another directory"
            ));
        }
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{dir}' -c fsync=off",
            self.port
        );
        let data = self.dir().join("data");
        let log = self.dir().join("server.log");
        let result = self
            .run(
                "pg_ctl",
                &[
                    "-D",
                    &data.to_string_lossy(),
                    "-o",
                    &options,
                    "-l",
                    &log.to_string_lossy(),
                    "-w",
                    "-t",
                    PG_CTL_WAIT_SECONDS,
                    "start",
                ],
            )
            .await;
        result.map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!(
                "{e}\n  server log ({}):\n{}",
                self.dir().join("server.log").display(),
                tail.join("\n")
            )
        })
    }

    /// Runs one of the server programs (as the account, when root), its
    /// output captured; the error names the program and gives its output.
    async fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bindir.join(program);
        let mut command = match &self.account {
            Some(a) => {
                let mut c = Command::new("runuser");
                c.args(["-u", &a.name, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .current_dir(self.dir())
            .kill_on_drop(true);
        let out = command.output().await.map_err(|e| match &self.account {
            Some(a) => format!(
                "cannot run {} as {} through runuser: {e}",
                path.display(),
                a.name
            ),
            None => format!("cannot run {}: {e}", path.display()),
        })?;
        if out.status.success() {
            return Ok(());
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Err(format!(
            "{program} failed ({}): {}",
            out.status,
            said.trim_end()
        ))
    }

    /// Stops the server if it runs (`pg_ctl stop -m fast`: sessions are
    /// ended, then `-m immediate` if that fails) and deletes the
    /// directory. Blocking: it runs at exit, after the proxy stopped.
    pub fn remove(&mut self) -> Result<(), String> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let data = dir.join("data");
        let mut stopped = Ok(());
        if data.join("postmaster.pid").exists() {
            stopped = self.stop_blocking(&data, "fast");
            if stopped.is_err() {
                let _ = self.stop_blocking(&data, "immediate");
            }
        }
        let removed = std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()));
        stopped.and(removed)
    }

    fn stop_blocking(&self, data: &Path, mode: &str) -> Result<(), String> {
        let path = self.bindir.join("pg_ctl");
        let mut command = match &self.account {
            Some(a) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", &a.name, "--"]).arg(&path);
                c
            }
            None => std::process::Command::new(&path),
        };
        command
            .arg("-D")
            .arg(data)
            .args(["-m", mode, "-w", "-t", PG_CTL_WAIT_SECONDS, "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        match command.output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "pg_ctl stop -m {mode} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            )),
            Err(e) => Err(format!("cannot run {}: {e}", path.display())),
        }
    }
}

impl Drop for Cluster {
    /// A startup that fails half way (or a panic) leaves nothing behind.
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            super::super::fail(&e);
        }
    }
}

/// A new directory `tombstone-demo-…` under the system's temporary
/// directory (`TMPDIR`), readable by its owner only.
fn make_temp_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..8 {
        let name = format!(
            "tombstone-demo-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        let dir = base.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(format!(
                    "cannot create a temporary directory in {}: {e}",
                    base.display()
                ));
            }
        }
    }
    Err(format!(
        "cannot create a temporary directory in {}: {}",
        base.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of `name`, which must exist when running as root.
fn account(name: &str) -> Result<Account, String> {
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, name])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) if uid != 0 => Ok(Account {
            name: name.to_string(),
            uid,
            gid,
        }),
        _ => Err(format!(
            "running as root, and PostgreSQL refuses to run as root: no unprivileged account `{name}` to run it as; create one (useradd --system {name}), pass --pg-user ACCOUNT, or run tombstone demo as an ordinary user"
        )),
    }
}
