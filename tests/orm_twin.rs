//! Real ORMs through the proxy against a hard-delete twin (issue 12,
//! "Tests"): Django 5.2 and SQLAlchemy 2.1 create the same schema on two
//! empty databases (`tests/clients/python/orm_twin/schema.py`), the
//! protected one gets `tombstone migrate --apply --fix` (which protects
//! Django's automatic many-to-many table) and a proxy, and the pytest suite
//! runs the same ORM deletes on both: results and rows must be equal after
//! each, and restoring every action (`tombstone restore --action`, newest
//! first) must give back every table exactly as it was before the deletes.

mod common;

use std::path::Path;
use std::process::Command;

use common::protected::Protected;
use common::{TestDb, run};

const SUITE: &str = "tests/clients/python/orm_twin";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `schema.py` on one database: Django's migrate, SQLAlchemy's create_all.
fn create_schema(url: &str) {
    let (ok, out, err) = run(Command::new("python3")
        .arg(repo().join(SUITE).join("schema.py"))
        .arg(url)
        .current_dir(repo()));
    assert!(ok, "schema.py failed on {url}:\n{out}\n{err}");
}

/// Both databases, the proxy, and the suite (`pytest_args` selects tests);
/// `binding` is Django's parameter binding (`ORM_DJANGO_BINDING`).
fn suite(binding: &str, pytest_args: &[&str]) -> String {
    let twin = TestDb::new("orm_twin");
    create_schema(&twin.url);
    let p = Protected::start_with_schema("orm_protected", create_schema, "");
    let app = format!(
        "postgresql://{}@127.0.0.1:{}/{}?sslmode=disable",
        p.app, p.proxy.port, p.db.name
    );
    let (ok, out, err) = run(Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE])
        .args(pytest_args)
        .current_dir(repo())
        .env("ORM_TWIN_DSN", &twin.url)
        .env("ORM_APP_DSN", &app)
        .env("ORM_DIRECT_DSN", &p.db.url)
        .env("ORM_DJANGO_BINDING", binding)
        .env("TOMBSTONE_BIN", env!("CARGO_BIN_EXE_tombstone")));
    assert!(
        ok,
        "ORM twin suite failed:\n{out}\n{err}\n--- proxy log ---\n{}",
        p.proxy.log()
    );
    out
}

#[test]
fn django_and_sqlalchemy_equal_a_hard_delete_twin_and_restore_to_the_exact_state() {
    let out = suite("client", &[]);
    assert!(out.contains("2 passed"), "{out}");
}

/// Django with psycopg's server-side binding: the same statements as
/// extended-protocol `$1` parameters, every one prepared.
#[test]
fn django_with_server_side_binding_equals_the_twin_and_restores_to_the_exact_state() {
    let out = suite("server", &["-k", "django"]);
    assert!(out.contains("1 passed"), "{out}");
}
