//! The twin-database oracle over the wire: the same seeded statements as
//! `tests/oracle.rs`, but sent *unchanged* through a running tombstone (as
//! the application role) on one database and directly, with real deletes,
//! on its twin; each statement goes through the simple or the extended
//! protocol, chosen by the seed. Every result (rows, column names and
//! types, tags, SQLSTATEs) must match.
//!
//! `TOMBSTONE_ORACLE_STATEMENTS=N` (default 400), `TOMBSTONE_ORACLE_SEED=S`.

mod common;

use std::collections::BTreeMap;

use common::oracle::{Outcome, Rng, TABLES, generate, run, run_extended, seed, truncate};
use common::protected::Protected;
use tokio_postgres::Client;

async fn outcome(c: &Client, sql: &str, ordered: bool, extended: bool) -> Outcome {
    if extended {
        run_extended(c, sql, ordered).await
    } else {
        run(c, sql, ordered).await
    }
}

async fn compare_tables(proxied: &Client, twin: &Client, seed: u64, at: u64) {
    for (t, cols, key) in TABLES {
        let sql = format!("SELECT {cols} FROM {t} ORDER BY {key}");
        let a = run(proxied, &sql, true).await;
        let b = run(twin, &sql, true).await;
        assert!(
            a == b,
            "seed {seed}: table {t} differs after statement {at}"
        );
    }
}

#[tokio::test]
async fn twin_databases_agree_through_the_proxy() {
    let seed = seed();
    let statements: u64 = std::env::var("TOMBSTONE_ORACLE_STATEMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    eprintln!(
        "oracle over the wire: seed {seed}, {statements} statements (replay with TOMBSTONE_ORACLE_SEED={seed})"
    );
    let p = Protected::start("oracle_wire", 3, "");
    let twin_db = common::TestDb::twin("oracle_wire_twin", 3);
    let proxied = p.connect_as(&p.app).await;
    let twin = twin_db.connect().await;
    twin.batch_execute(
        "DROP INDEX users_email_active; CREATE UNIQUE INDEX users_email ON users (email)",
    )
    .await
    .expect("twin index");
    let mut rng = Rng(seed);
    let mut protocol = Rng(seed ^ 0x5151);
    let mut per_category: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for i in 0..statements {
        let stmt = generate(&mut rng, i);
        let extended = protocol.below(2) == 1 && stmt.category != "volatile_delete";
        let (a, b) = if stmt.category == "volatile_delete" {
            common::oracle::volatile_delete(&proxied, &stmt.sql, &twin, &stmt, seed, i).await
        } else {
            (
                outcome(&proxied, &stmt.sql, stmt.ordered, extended).await,
                outcome(&twin, &stmt.sql, stmt.ordered, extended).await,
            )
        };
        if a != b {
            panic!(
                "seed {seed}, statement {i} ({}, {} protocol) differs\n  sql: {}\n  through tombstone: {:?}\n  twin: {:?}\n--- proxy log ---\n{}",
                stmt.category,
                if extended { "extended" } else { "simple" },
                stmt.sql,
                truncate(&a),
                truncate(&b),
                p.proxy.log()
            );
        }
        *per_category
            .entry((stmt.category, if extended { "extended" } else { "simple" }))
            .or_default() += 1;
        if i % 100 == 99 {
            compare_tables(&proxied, &twin, seed, i).await;
        }
    }
    compare_tables(&proxied, &twin, seed, statements).await;
    eprintln!("oracle over the wire: {statements} statements agreed; per category and protocol:");
    for ((cat, proto), n) in &per_category {
        eprintln!("  {cat:<18} {proto:<9} {n:>6}");
    }
}
