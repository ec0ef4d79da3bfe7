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
