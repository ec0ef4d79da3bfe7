//! `tombstone serve` refuses bad configuration with a message naming the
//! key, and a missing file with one naming the file.

use std::process::Command;

fn serve_with(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_key_stops_startup() {
    let (code, err) = serve_with("[upstream]\nprot = 5432\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("prot"), "{err}");
}

#[test]
fn bad_value_stops_startup_naming_the_key() {
    let (code, err) = serve_with("[timeouts]\nconnect = \"forever\"\n");
    assert_eq!(code, Some(2));
    assert!(err.contains("timeouts.connect"), "{err}");
}

#[test]
fn missing_file_stops_startup() {
    let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["serve", "--config", "/nonexistent/rules.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rules.toml"));
}

#[test]
fn port_in_use_names_listen_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, err) = serve_with(&format!("[listen]\naddress = \"127.0.0.1:{port}\"\n"));
    assert_eq!(code, Some(2));
    assert!(err.contains("listen.address"), "{err}");
}

#[test]
fn serve_refuses_a_database_without_the_tombstone_schema() {
    let name = format!("tombstone_nomigrate_{}", std::process::id());
    let admin = std::env::var("TOMBSTONE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let psql = |sql: &str| {
        Command::new("psql")
            .arg(&admin)
            .args(["-q", "-c", sql])
            .status()
            .unwrap()
    };
    assert!(psql(&format!("CREATE DATABASE \"{name}\"")).success());
    let url = format!(
        "{}/{name}",
        admin.rsplit_once('/').map(|(h, _)| h).unwrap_or(&admin)
    );
    let (code, err) = serve_with(&format!("[database]\nurl = \"{url}\"\n"));
    psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("lacks the tombstone schema") && err.contains("tombstone migrate"),
        "{err}"
    );
}

/// `tombstone check` validates a file offline: the same reasons as `serve`,
/// exit 2; a good file is "ok", exit 0; nothing is started.
#[test]
fn check_validates_a_file_offline() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tombstone"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = check("[upstream]\nport = 70000\n");
    assert_eq!(code, Some(2));
    assert!(
        err.contains("key `upstream.port`: invalid value: integer `70000`, expected u16"),
        "{err}"
    );
    // A port in use is no concern of check: it binds nothing.
    let (code, out, err) = check("[listen]\naddress = \"127.0.0.1:1\"\n[upstream]\nport = 5432\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with(": ok\n"), "{out}");
}

/// A reader that stops early (`tombstone migrate | head -1`) ends the
/// command quietly: no panic, no backtrace.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args([
            "migrate",
            "--database-url",
            "postgres://postgres@127.0.0.1:5432/postgres",
        ])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut first).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(first.trim(), "BEGIN;");
    assert!(!err.contains("panicked"), "{err}");
}
