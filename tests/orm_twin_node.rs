//! Real Node ORMs through the proxy against a hard-delete twin (issue 12,
//! "Tests"), like `tests/orm_twin.rs` for Django and SQLAlchemy: Sequelize 6
//! and TypeORM 1 create the same schema on two empty databases
//! (`tests/clients/node/orm_twin/schema.js`: `sync()`, `synchronize`), the
//! protected one gets `tombstone migrate --apply --fix` (which protects both
//! ORMs' many-to-many link tables) and a proxy, and the `node:test` suite
//! runs the same ORM deletes on both: results, what the ORM loads and every
//! table's live rows must be equal after each step, and restoring every
//! action (`tombstone restore --action`, newest first) must give back every
//! table exactly as it was before the deletes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::protected::Protected;
use common::{TestDb, run};

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node")
}

/// `schema.js` on one database: Sequelize's sync(), TypeORM's synchronize.
fn create_schema(url: &str) {
    let (ok, out, err) = run(Command::new("node")
        .args(["orm_twin/schema.js", url])
        .current_dir(node_dir()));
    assert!(ok, "schema.js failed on {url}:\n{out}\n{err}");
}

#[test]
fn sequelize_and_typeorm_equal_a_hard_delete_twin_and_restore_to_the_exact_state() {
    assert!(
        node_dir().join("node_modules/typeorm").exists(),
        "run `npm ci` in tests/clients/node first (.ci/run does)"
    );
    let twin = TestDb::new("orm_twin_node");
    create_schema(&twin.url);
    let p = Protected::start_with_schema("orm_protected_node", create_schema, "");
    let app = format!(
        "postgresql://{}@127.0.0.1:{}/{}?sslmode=disable",
        p.app, p.proxy.port, p.db.name
    );
    let (ok, out, err) = run(Command::new("npm")
        .args(["run", "test:orm-twin", "--silent"])
        .current_dir(node_dir())
        .env("ORM_TWIN_DSN", &twin.url)
        .env("ORM_APP_DSN", &app)
        .env("ORM_DIRECT_DSN", &p.db.url)
        .env("TOMBSTONE_BIN", env!("CARGO_BIN_EXE_tombstone")));
    assert!(
        ok,
        "Node ORM twin suite failed:\n{out}\n{err}\n--- proxy log ---\n{}",
        p.proxy.log()
    );
    assert!(out.contains("# pass 2"), "{out}");
    assert!(out.contains("# fail 0"), "{out}");
}
