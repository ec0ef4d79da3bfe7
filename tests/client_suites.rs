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
