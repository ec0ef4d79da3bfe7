//! psql and pgbench through the proxy, as real users run them.

mod common;

use std::process::Command;

use common::{Proxy, TestDb, run};

#[test]
fn psql_runs_scripts_and_multi_statement_queries() {
    let db = TestDb::new("tools_psql");
    let proxy = Proxy::start();
    let script = "\
CREATE TABLE notes (id serial PRIMARY KEY, body text);
INSERT INTO notes (body) VALUES ('one'), ('twö');
\\copy notes (body) FROM stdin
three
four
\\.
SELECT count(*) AS n FROM notes \\gset
\\echo notes=:n
SELECT 1 AS a; SELECT 2 AS b;
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sql");
    std::fs::write(&file, script).unwrap();
    let (ok, out, err) = run(Command::new("psql")
        .arg(proxy.conninfo(&db.name))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file));
    assert!(ok, "psql failed: {err}\n{}", proxy.log());
    assert!(out.contains("notes=4"), "{out}");
    assert!(
        out.contains("1\n2"),
        "multi-statement query lost a result: {out}"
    );

    // An error reported by the server reaches psql unchanged.
    let (ok, _, err) = run(Command::new("psql").arg(proxy.conninfo(&db.name)).args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "SELECT * FROM missing_table",
    ]));
    assert!(!ok);
    assert!(
        err.contains("relation \"missing_table\" does not exist"),
        "{err}"
    );
}

fn pgbench(proxy: &Proxy, db: &str, args: &[&str]) -> String {
    let port = proxy.port.to_string();
    let (ok, out, err) = run(Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
        .args(args)
        .arg(db));
    assert!(
        ok,
        "pgbench {args:?} failed:\n{out}\n{err}\n{}",
        proxy.log()
    );
    out
}

#[test]
fn pgbench_in_every_protocol_mode_has_no_failures() {
    let db = TestDb::new("tools_pgbench");
    let proxy = Proxy::start();
    pgbench(&proxy, &db.name, &["-i", "-q", "-s", "1"]);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(
            &proxy,
            &db.name,
            &["-M", mode, "-c", "8", "-j", "2", "-T", "5"],
        );
        let failed = out
            .lines()
            .find(|l| l.starts_with("number of failed transactions"))
            .unwrap_or_else(|| panic!("no failure count in pgbench output:\n{out}"));
        assert!(failed.contains(": 0 "), "mode {mode}: {failed}");
        let processed = out
            .lines()
            .find(|l| l.starts_with("number of transactions actually processed"))
            .unwrap_or_default();
        let count: u64 = processed
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            count > 100,
            "mode {mode}: too few transactions: {processed}"
        );
    }
}

#[test]
fn large_objects_use_function_call_through_the_proxy() {
    // psql's \lo_import and \lo_export use libpq's fast-path FunctionCall.
    let db = TestDb::new("tools_lo");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let output = dir.path().join("out.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&input, &payload).unwrap();
    let script = format!(
        "\\lo_import '{}'\nSELECT max(oid) AS lo FROM pg_largeobject_metadata \\gset\n\\lo_export :lo '{}'\n",
        input.display(),
        output.display()
    );
    let (ok, out, err) = run(Command::new("psql")
        .arg(proxy.conninfo(&db.name))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 1"])
        .arg("-f")
        .arg({
            let f = dir.path().join("lo.sql");
            std::fs::write(&f, script).unwrap();
            f
        }));
    assert!(ok, "{out}{err}\n{}", proxy.log());
    assert_eq!(std::fs::read(&output).unwrap(), payload);
}

#[test]
fn latin1_client_encoding_bytes_survive() {
    let db = TestDb::new("tools_latin1");
    let proxy = Proxy::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.sql");
    // 0xE9 is 'é' in LATIN1 and not valid UTF-8 on its own.
    let mut script = b"CREATE TABLE l (v text);\nINSERT INTO l VALUES ('caf".to_vec();
    script.extend_from_slice(&[0xE9]);
    script.extend_from_slice(
        b"');\nSELECT encode(convert_to(v, 'UTF8'), 'hex') FROM l;\nSELECT v FROM l;\n",
    );
    std::fs::write(&file, script).unwrap();
    let out = Command::new("psql")
        .arg(proxy.conninfo(&db.name))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file)
        .env("PGCLIENTENCODING", "LATIN1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stored as UTF-8 'é' (c3 a9), returned to the client as LATIN1 0xE9.
    assert!(
        out.stdout.windows(10).any(|w| w == b"636166c3a9"),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .windows(5)
            .any(|w| w == [b'c', b'a', b'f', 0xE9, b'\n']),
        "{:?}",
        out.stdout
    );
}
