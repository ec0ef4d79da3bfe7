//! The Python (psycopg 3, asyncpg) and Node (`pg`) client suites under
//! `tests/clients/`, run through a live proxy. Their dependencies are
//! installed by `.ci/run` (pip -r tests/clients/requirements.txt; npm ci).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Proxy, TestDb, run};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn python_suite_through_the_proxy() {
    let db = TestDb::new("clients_py");
    let proxy = Proxy::start();
    let (ok, out, err) = run(Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/clients/python",
        ])
        .current_dir(repo())
        .env("TOMBSTONE_TEST_DSN", proxy.url(&db.name)));
    assert!(
        ok,
        "python client suite failed (dependencies: pip install -r tests/clients/requirements.txt):\n{out}\n{err}\n--- proxy log ---\n{}",
        proxy.log()
    );
    assert!(out.contains("passed"), "{out}");
}

#[test]
fn node_suite_through_the_proxy() {
    let db = TestDb::new("clients_node");
    let proxy = Proxy::start();
    let dir = repo().join("tests/clients/node");
    assert!(
        dir.join("node_modules/pg").exists(),
        "run `npm ci` in tests/clients/node first (.ci/run does)"
    );
    let (ok, out, err) = run(Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(&dir)
        .env("TOMBSTONE_TEST_DSN", proxy.url(&db.name)));
    assert!(
        ok,
        "node client suite failed:\n{out}\n{err}\n--- proxy log ---\n{}",
        proxy.log()
    );
    assert!(out.contains("# fail 0"), "{out}");
}

/// The DSNs the protected suites read.
fn protected_env(p: &common::protected::Protected) -> Vec<(&'static str, String)> {
    let url = |role: &str| {
        format!(
            "postgresql://{role}@127.0.0.1:{}/{}?sslmode=disable",
            p.proxy.port, p.db.name
        )
    };
    vec![
        ("TOMBSTONE_APP_DSN", url(&p.app)),
        ("TOMBSTONE_ADMIN_DSN", url(&p.admin)),
        ("TOMBSTONE_DIRECT_DSN", p.db.url.clone()),
    ]
}

#[test]
fn protected_python_suite_through_the_proxy() {
    let p = common::protected::Protected::start("clients_protected_py", 3, "");
    let (ok, out, err) = run(Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/clients/python/protected",
        ])
        .current_dir(repo())
        .envs(protected_env(&p)));
    assert!(
        ok,
        "protected python suite failed:\n{out}\n{err}\n--- proxy log ---\n{}",
        p.proxy.log()
    );
    assert!(out.contains("passed"), "{out}");
}

#[test]
fn protected_node_suite_through_the_proxy() {
    let p = common::protected::Protected::start("clients_protected_node", 3, "");
    let (ok, out, err) = run(Command::new("npm")
        .args(["run", "test:protected", "--silent"])
        .current_dir(repo().join("tests/clients/node"))
        .envs(protected_env(&p)));
    assert!(
        ok,
        "protected node suite failed:\n{out}\n{err}\n--- proxy log ---\n{}",
        p.proxy.log()
    );
    assert!(out.contains("# fail 0"), "{out}");
}
