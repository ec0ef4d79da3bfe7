//! A private PostgreSQL cluster (initdb + pg_ctl) with password
//! authentication, for tests of SCRAM and md5 relaying that the shared
//! trust-auth server cannot exercise.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{free_port, run};

/// Where PostgreSQL's server binaries live: `TOMBSTONE_PG_BINDIR`, else the
/// newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("TOMBSTONE_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("no /usr/lib/postgresql: set TOMBSTONE_PG_BINDIR")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect("no PostgreSQL server binaries found")
}

/// A running private cluster; stopped and deleted on drop.
pub struct Cluster {
    pub port: u16,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

impl Cluster {
    /// Starts a cluster whose `hba` lines replace pg_hba.conf.
    pub fn start(hba: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        // initdb refuses to run as root; use the postgres account then.
        let as_postgres = running_as_root();
        if as_postgres {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
        }
        let data = dir.path().join("data");
        let bindir = pg_bindir();
        let cluster = Cluster {
            port: free_port(),
            dir,
            as_postgres,
        };
        let (ok, out, err) = run(&mut cluster.command(
            bindir.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ));
        assert!(ok, "initdb failed: {out}{err}");
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        cluster.start_server();
        cluster
    }

    /// Starts the (stopped) server again, on the same port.
    pub fn start_server(&self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let (ok, out, err) = run(&mut self.command(
            pg_bindir().join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap_or_default(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        ));
        assert!(
            ok,
            "pg_ctl start failed: {out}{err}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are terminated).
    pub fn stop_server(&self) {
        let data = self.dir.path().join("data");
        let (ok, out, err) = run(&mut self.command(
            pg_bindir().join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        ));
        assert!(ok, "pg_ctl stop failed: {out}{err}");
    }

    fn command(&self, program: PathBuf, args: &[&str]) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program).args(args);
            c
        } else {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    }

    /// Runs SQL as the superuser over the Unix socket (trusted).
    pub fn psql(&self, sql: &str) {
        let socket = self.dir.path().display().to_string();
        let port = self.port.to_string();
        let (ok, out, err) = run(Command::new("psql").args([
            "-h",
            &socket,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]));
        assert!(ok, "psql on private cluster failed: {out}{err}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut stop = self.command(
            pg_bindir().join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = stop
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running_as_root() -> bool {
    // `id -u` avoids a libc dependency for one check.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
