//! Rewriter micro-benchmarks (criterion): for the scenario's typical ORM
//! statements — a three-table SELECT with a LEFT JOIN, a DELETE with a
//! cascade, an UPDATE, an INSERT … ON CONFLICT — the cost through the
//! rewrite cache on a miss (parse + rewrite + fill), on an exact hit, and on
//! a literal-normalized hit (same shape, other literals).
//!
//! `cargo bench --bench rewrite_cache`. No database needed: the snapshot is
//! the scenario's catalog written out (tests/scenario/catalog.rs), which
//! tests/scenario_catalog.rs proves equal to tests/scenario/schema.sql.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tombstone::config::Config;
use tombstone::protect::Protection;
use tombstone::rewrite::SessionContext;
use tombstone::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

// `scenario_catalog()`: the scenario's catalog, the one the rewriter's
// unit tests use, proven equal to tests/scenario/schema.sql by
// tests/scenario_catalog.rs.
include!("../tests/scenario/catalog.rs");

fn snapshot() -> SchemaSnapshot {
    SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default())
}

/// (name, statement with literals, the same shape with other literals, the
/// same statement with parameters as ORMs send it in the extended protocol)
const STATEMENTS: &[(&str, &str, &str, &str)] = &[
    (
        "select_3_join_left",
        "SELECT t.id, t.title, p.name, c.body FROM tasks t JOIN projects p ON p.id = t.project_id LEFT JOIN comments c ON c.task_id = t.id WHERE p.id = 7 ORDER BY t.id LIMIT 50",
        "SELECT t.id, t.title, p.name, c.body FROM tasks t JOIN projects p ON p.id = t.project_id LEFT JOIN comments c ON c.task_id = t.id WHERE p.id = 8 ORDER BY t.id LIMIT 20",
        "SELECT t.id, t.title, p.name, c.body FROM tasks t JOIN projects p ON p.id = t.project_id LEFT JOIN comments c ON c.task_id = t.id WHERE p.id = $1 ORDER BY t.id LIMIT $2",
    ),
    (
        "delete_cascade",
        "DELETE FROM projects WHERE id = 7",
        "DELETE FROM projects WHERE id = 8",
        "DELETE FROM projects WHERE id = $1",
    ),
    (
        "update",
        "UPDATE tasks SET done = true, title = 'x' WHERE id = 7",
        "UPDATE tasks SET done = false, title = 'y' WHERE id = 8",
        "UPDATE tasks SET done = $1, title = $2 WHERE id = $3",
    ),
    (
        "insert_on_conflict",
        "INSERT INTO users (id, email, name) VALUES ('5f0c8c1e-0000-0000-0000-000000000001', 'a@example.com', 'A') ON CONFLICT (email) DO UPDATE SET name = excluded.name",
        "INSERT INTO users (id, email, name) VALUES ('5f0c8c1e-0000-0000-0000-000000000002', 'b@example.com', 'B') ON CONFLICT (email) DO UPDATE SET name = excluded.name",
        "INSERT INTO users (id, email, name) VALUES ($1, $2, $3) ON CONFLICT (email) DO UPDATE SET name = excluded.name",
    ),
];

fn bench(c: &mut Criterion) {
    let session = SessionContext::normal("app");
    let config = Config::default();
    for (name, sql, other, parameterized) in STATEMENTS {
        let mut group = c.benchmark_group(*name);
        // A miss: parse, rewrite (once: the statement; its shape waits for
        // a second statement) and fill the cache. An empty cache every
        // iteration.
        group.bench_function("miss", |b| {
            b.iter_batched(
                || Protection::new("db".into(), snapshot(), &config).expect("parser threads"),
                |protection| black_box(protection.rewrite(sql, &session).ok()),
                BatchSize::SmallInput,
            )
        });
        let protection = Protection::new("db".into(), snapshot(), &config).expect("parser threads");
        let _ = protection.rewrite(sql, &session);
        let _ = protection.rewrite(parameterized, &session);
        // The second statement of the shape builds its template.
        let _ = protection.rewrite(other, &session);
        // The same text again (a prepared or ORM statement with $n).
        group.bench_function("exact_hit", |b| {
            b.iter(|| black_box(protection.rewrite(black_box(parameterized), &session).ok()))
        });
        group.bench_function("normalized_hit", |b| {
            b.iter(|| black_box(protection.rewrite(black_box(other), &session).ok()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
