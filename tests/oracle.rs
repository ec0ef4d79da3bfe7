//! The twin-database oracle (SPEC "The promise in one line"): two databases
//! loaded alike; random statements run rewritten on one and verbatim (with
//! real DELETEs) on the other; every result must match: rows (in order when
//! the query orders), column names and types, affected-row counts, SQLSTATEs.
//!
//! `TOMBSTONE_ORACLE_STATEMENTS=N` (default 600) sets the length,
//! `TOMBSTONE_ORACLE_SEED=S` replays a run. The seed is printed on failure.

mod common;

use std::collections::BTreeMap;

use common::TestDb;
use common::oracle::{Outcome, Rng, TABLES, generate, run, seed, truncate};
use tokio_postgres::Client;
use tombstone::rewrite::{ReplyPlan, SessionContext, rewrite};
use tombstone::schema::SchemaSnapshot;

async fn compare_tables(rw: &Client, twin: &Client, snap: &SchemaSnapshot, seed: u64, at: u64) {
    for (t, cols, key) in TABLES {
        let sql = format!("SELECT {cols} FROM {t} ORDER BY {key}");
        let rewritten =
            rewrite(&sql, snap, &SessionContext::normal("postgres")).expect("rewrite table scan");
        let a = run(rw, &rewritten.sql, true).await;
        let b = run(twin, &sql, true).await;
        assert!(
            a == b,
            "seed {seed}: table {t} differs after statement {at}"
        );
    }
}

#[tokio::test]
async fn twin_databases_agree() {
    let seed = seed();
    let statements: u64 = std::env::var("TOMBSTONE_ORACLE_STATEMENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    eprintln!(
        "oracle: seed {seed}, {statements} statements (replay with TOMBSTONE_ORACLE_SEED={seed})"
    );
    let rw_db = TestDb::create("oracle_rw", 3);
    let twin_db = TestDb::twin("oracle_twin", 3);
    let rw = rw_db.connect().await;
    let twin = twin_db.connect().await;
    let snap = rw_db.snapshot(&rw).await;
    // In the hard-delete world the application's uniqueness needs no
    // predicate: the twin has a plain unique index where tombstone's side
    // has the partial one.
    twin.batch_execute(
        "DROP INDEX users_email_active; CREATE UNIQUE INDEX users_email ON users (email)",
    )
    .await
    .expect("twin index");
    let session = SessionContext::normal("postgres");
    let mut rng = Rng(seed);
    let mut per_category: BTreeMap<&str, (u64, u64, usize)> = BTreeMap::new();
    for i in 0..statements {
        let stmt = generate(&mut rng, i);
        let out = match rewrite(&stmt.sql, &snap, &session) {
            Ok(o) => o,
            Err(e) => panic!(
                "seed {seed}, statement {i}: rewrite refused {:?}: {e}",
                stmt.sql
            ),
        };
        if stmt.category == "delete" && stmt.sql.starts_with("DELETE") {
            assert_eq!(
                out.statements.first().map(|p| &p.reply),
                Some(&ReplyPlan::RenameTag {
                    from: "UPDATE",
                    to: "DELETE"
                })
            );
        }
        let (a, b) = if stmt.category == "volatile_delete" {
            common::oracle::volatile_delete(&rw, &out.sql, &twin, &stmt, seed, i).await
        } else {
            (
                run(&rw, &out.sql, stmt.ordered).await,
                run(&twin, &stmt.sql, stmt.ordered).await,
            )
        };
        if a != b {
            panic!(
                "seed {seed}, statement {i} ({}) differs\n  sql: {}\n  rewritten: {}\n  through tombstone: {:?}\n  twin: {:?}",
                stmt.category,
                stmt.sql,
                out.sql,
                truncate(&a),
                truncate(&b)
            );
        }
        let entry = per_category.entry(stmt.category).or_default();
        entry.0 += 1;
        match &b {
            Outcome::Error(_) => entry.1 += 1,
            Outcome::Done { rows, .. } => entry.2 += rows.len(),
        }
        if i % 200 == 199 {
            compare_tables(&rw, &twin, &snap, seed, i).await;
        }
    }
    compare_tables(&rw, &twin, &snap, seed, statements).await;
    eprintln!(
        "oracle: {statements} statements agreed; per category (share, same error on both sides, rows compared):"
    );
    for (cat, (n, errors, rows)) in &per_category {
        eprintln!(
            "  {cat:<18} {n:>6}  {:>5.1}%  {errors:>4} errors  {rows:>8} rows",
            100.0 * *n as f64 / statements as f64
        );
    }
}
