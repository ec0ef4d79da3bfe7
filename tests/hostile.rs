//! Hostile sizes: each gets a result or a clean error, and the process lives.

use std::time::Instant;

use tombstone::rewrite::{SessionContext, rewrite};
use tombstone::schema::{Catalog, SchemaSnapshot, SnapshotOptions};

fn snap() -> SchemaSnapshot {
    let cat = Catalog::default()
        .table(
            "public.tasks",
            &[
                "id bigint",
                "title text",
                "deleted_at timestamp with time zone",
            ],
            &["id"],
        )
        .table("public.tags", &["id int"], &["id"]);
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

#[test]
fn in_list_of_100000_elements() {
    let list: Vec<String> = (1..=100_000).map(|i| i.to_string()).collect();
    let sql = format!("SELECT * FROM tasks WHERE id IN ({})", list.join(", "));
    let t = Instant::now();
    let out = rewrite(&sql, &snap(), &SessionContext::normal("app"));
    eprintln!(
        "100,000-element IN list ({} bytes): {:?} in {:?}",
        sql.len(),
        out.as_ref().map(|_| "ok").map_err(|e| e.sqlstate()),
        t.elapsed()
    );
    let out = out.expect("rewritten");
    assert!(out.sql.ends_with(")) AND tasks.deleted_at IS NULL"));
}

#[test]
fn nesting_1000_levels_deep() {
    for sql in [
        format!(
            "SELECT * FROM tasks WHERE id = {}1{}",
            "(".repeat(1000),
            ")".repeat(1000)
        ),
        format!(
            "SELECT * FROM tasks WHERE id IN {}SELECT 1{}",
            "(SELECT * FROM (".repeat(500),
            ") s)".repeat(500)
        ),
        format!(
            "SELECT {}1{} FROM tasks",
            "(SELECT ".repeat(1000),
            ")".repeat(1000)
        ),
        format!("SELECT * FROM tasks WHERE {} true", "NOT ".repeat(1000)),
    ] {
        let t = Instant::now();
        let out = rewrite(&sql, &snap(), &SessionContext::normal("app"));
        eprintln!(
            "nesting: {:?} in {:?}",
            out.as_ref().map(|_| "ok").map_err(|e| e.sqlstate()),
            t.elapsed()
        );
        if let Err(e) = out {
            assert!(matches!(e.sqlstate(), "54001" | "54000"), "{e}");
        }
    }
}

#[test]
fn statement_of_50_megabytes() {
    let big = format!(
        "SELECT * FROM tasks WHERE title = '{}'",
        "x".repeat(50 << 20)
    );
    let t = Instant::now();
    let err = rewrite(&big, &snap(), &SessionContext::normal("app")).expect_err("over the limit");
    eprintln!(
        "50 MB naming a protected table: {} in {:?}",
        err.sqlstate(),
        t.elapsed()
    );
    assert_eq!(err.sqlstate(), "54000");
    let other = format!("SELECT * FROM tags WHERE 'x' = '{}'", "x".repeat(50 << 20));
    let t = Instant::now();
    let out = rewrite(&other, &snap(), &SessionContext::normal("app")).expect("passes through");
    eprintln!(
        "50 MB naming nothing protected: unchanged in {:?}",
        t.elapsed()
    );
    assert!(out.is_unchanged());
    // Raised limit: the parser itself must cope (or fail cleanly).
    let mut session = SessionContext::normal("app");
    session.limits.max_statement_bytes = 64 << 20;
    let t = Instant::now();
    let out = rewrite(&big, &snap(), &session);
    eprintln!(
        "50 MB parsed: {:?} in {:?}",
        out.as_ref().map(|_| "ok").map_err(|e| e.sqlstate()),
        t.elapsed()
    );
}

#[test]
fn long_operator_chains() {
    for n in [10_000usize, 100_000, 1_000_000] {
        let sql = format!("SELECT * FROM tasks WHERE id = 1{}", "+1".repeat(n));
        let t = Instant::now();
        let out = rewrite(&sql, &snap(), &SessionContext::normal("app"));
        eprintln!(
            "{n} chained additions ({} bytes): {:?} in {:?}",
            sql.len(),
            out.as_ref().map(|_| "ok").map_err(|e| e.sqlstate()),
            t.elapsed()
        );
        if let Err(e) = out {
            assert!(matches!(e.sqlstate(), "54001" | "54000"), "{e}");
        }
    }
}
