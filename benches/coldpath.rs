//! The cold path, as percentiles: what a statement costs when the rewrite
//! cache does not have it, and what a hit costs, over the scenario's ORM
//! statements (the same ten as `examples/bench_rewrite.rs`).
//!
//! `cargo bench --bench coldpath` (release). No database needed: the
//! scenario snapshot is the unit tests' catalog (`benches/common/scenario.rs`).
//! Prints one line per measurement: p50, p99 and mean, in microseconds.
//! Rounds per statement: `COLDPATH_ROUNDS` (default 2000).
//!
//! - `rewrite, caller's thread`: `rewrite::rewrite` called from an
//!   ordinary thread (the CLI's and the tests' path).
//! - `rewrite, parser stack`: the same on a thread that already has the
//!   parser stack (what a parser-pool thread does on a miss).
//! - `miss through the pool`: `Protection::rewrite_async` on a statement
//!   the cache has not seen (distinct text each round): lookup, hand-off to
//!   the parser pool, parse + rewrite, cache fill, answer.
//! - `normalized miss`: a statement with literals whose shape is new.
//! - `exact hit`, `normalized hit`: `Protection::rewrite` served from the
//!   cache.

#[path = "common/scenario.rs"]
mod scenario;

use std::hint::black_box;
use std::time::{Duration, Instant};

use tombstone::config::Config;
use tombstone::protect::Protection;
use tombstone::rewrite::{SessionContext, rewrite};
use tombstone::schema::SchemaSnapshot;

const QUERIES: &[&str] = &[
    "SELECT * FROM tags WHERE id = $1",
    "SELECT id, title, done FROM tasks WHERE project_id = $1 ORDER BY id LIMIT 50",
    "SELECT t.id, t.title, c.body FROM tasks t LEFT JOIN comments c ON c.task_id = t.id WHERE t.project_id = $1",
    "SELECT p.name, count(t.id) FROM projects p JOIN tasks t ON t.project_id = p.id JOIN comments c ON c.task_id = t.id WHERE p.team_id = $1 GROUP BY p.name",
    "SELECT * FROM users WHERE email = $1",
    "SELECT * FROM projects p WHERE EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $1)",
    "UPDATE tasks SET done = true WHERE id = $1",
    "INSERT INTO users (email, name) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET name = excluded.name",
    "DELETE FROM projects WHERE id = $1",
    "DELETE FROM comments WHERE id = $1 RETURNING *",
];

/// The same statements as applications write them without parameters.
const WITH_LITERALS: &[&str] = &[
    "SELECT id, title, done FROM tasks WHERE project_id = 7 ORDER BY id LIMIT 50",
    "SELECT * FROM users WHERE email = 'a@example.com'",
    "UPDATE tasks SET done = true, title = 'x' WHERE id = 7",
    "DELETE FROM projects WHERE id = 7",
];

/// The same shapes with other literals.
const OTHER_LITERALS: &[&str] = &[
    "SELECT id, title, done FROM tasks WHERE project_id = 8 ORDER BY id LIMIT 20",
    "SELECT * FROM users WHERE email = 'b@example.com'",
    "UPDATE tasks SET done = false, title = 'y' WHERE id = 8",
    "DELETE FROM projects WHERE id = 8",
];

/// Stack of the thread the "parser stack" rows run on (the pool's).
const BIG_STACK: usize = 80 << 20;

fn rounds() -> usize {
    std::env::var("COLDPATH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000)
}

fn report(name: &str, times: &mut [Duration]) {
    if times.is_empty() {
        return;
    }
    times.sort();
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<44} p50 {:>8.2} µs   p99 {:>8.2} µs   mean {:>8.2} µs   (n = {})",
        us(at(50)),
        us(at(99)),
        us(mean),
        times.len()
    );
}

/// Times `f` once per round per statement, after a warm-up.
fn measure(statements: &[&str], rounds: usize, mut f: impl FnMut(&str, usize)) -> Vec<Duration> {
    for (i, q) in statements.iter().enumerate() {
        for r in 0..rounds / 10 {
            f(q, 1_000_000 + i * rounds + r);
        }
    }
    let mut all = Vec::with_capacity(statements.len() * rounds);
    for r in 0..rounds {
        for (i, q) in statements.iter().enumerate() {
            let t = Instant::now();
            f(q, i * rounds + r);
            all.push(t.elapsed());
        }
    }
    all
}

fn rewrite_rows(snap: &SchemaSnapshot, session: &SessionContext, rounds: usize) {
    let mut times = measure(QUERIES, rounds, |q, _| {
        black_box(rewrite(black_box(q), snap, session).ok());
    });
    report("rewrite, caller's thread", &mut times);
    let mut times = measure(&QUERIES[1..], rounds, |q, _| {
        black_box(rewrite(black_box(q), snap, session).ok());
    });
    report("  the nine that name a protected table", &mut times);
}

fn main() {
    let rounds = rounds();
    let snap = scenario::scenario();
    let session = SessionContext::normal("app");
    println!("cold path, scenario ORM statements, {rounds} rounds each");

    rewrite_rows(&snap, &session, rounds);

    // On a thread that has the parser stack already.
    let parser_stack = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(BIG_STACK)
            .spawn_scoped(s, || {
                measure(QUERIES, rounds, |q, _| {
                    black_box(
                        tombstone::rewrite::rewrite_on_parser_stack(black_box(q), &snap, &session)
                            .ok(),
                    );
                })
            })
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    });
    report("rewrite, parser stack", &mut parser_stack.clone());
    // Its parts: PostgreSQL's parser and scanner alone, and the check of
    // the rewritten text (`verify`: parse it again, coverage, tree
    // comparison) alone, over the nine that are rewritten.
    let rewritten: Vec<(&str, String)> = QUERIES
        .iter()
        .filter_map(|q| {
            let out = tombstone::rewrite::rewrite(q, &snap, &session).ok()?;
            let text = out.sql.into_owned();
            (text != *q).then_some((*q, text))
        })
        .collect();
    let (parse_only, verify_only) = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(BIG_STACK)
            .spawn_scoped(s, || {
                let originals: Vec<&str> = rewritten.iter().map(|(q, _)| *q).collect();
                let parse = measure(&originals, rounds, |q, _| {
                    black_box(tombstone::rewrite::parse::parse(black_box(q)).ok());
                });
                let mut verify = Vec::new();
                for _ in 0..rounds {
                    for (q, out) in &rewritten {
                        let t = Instant::now();
                        black_box(tombstone::rewrite::verify_rewrite(q, out, &snap, &session).ok());
                        verify.push(t.elapsed());
                    }
                }
                (parse, verify)
            })
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    });
    report(
        "  of which: parse + scan of the client's text",
        &mut parse_only.clone(),
    );
    report(
        "  parse of the client's text + the check of its rewrite",
        &mut verify_only.clone(),
    );
    // Without the first statement (pre-check only): every tenth time.
    let mut nine: Vec<Duration> = parser_stack
        .iter()
        .enumerate()
        .filter(|(i, _)| i % QUERIES.len() != 0)
        .map(|(_, d)| *d)
        .collect();
    report("  the nine that name a protected table", &mut nine);

    let config = Config::default();
    let Ok(protection) = Protection::new("db".into(), snap.clone(), &config) else {
        eprintln!("parser threads could not start");
        return;
    };
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    else {
        eprintln!("no runtime");
        return;
    };
    // Distinct text per round: a trailing comment.
    let mut pool_miss = measure(QUERIES, rounds, |q, r| {
        let sql = format!("{q} /* {r} */");
        black_box(
            runtime
                .block_on(protection.rewrite_async(&sql, &session))
                .ok(),
        );
    });
    report("miss through the pool", &mut pool_miss);

    let mut normalized_miss = measure(WITH_LITERALS, rounds, |q, r| {
        let sql = format!("{q} /* {r} */");
        black_box(protection.rewrite(&sql, &session).ok());
    });
    report(
        "normalized miss (new shape), caller's thread",
        &mut normalized_miss,
    );

    for q in QUERIES.iter().chain(WITH_LITERALS) {
        let _ = protection.rewrite(q, &session);
    }
    let mut exact = measure(QUERIES, rounds, |q, _| {
        black_box(protection.rewrite(black_box(q), &session).ok());
    });
    report("exact hit", &mut exact);
    let mut normalized = measure(OTHER_LITERALS, rounds, |q, _| {
        black_box(protection.rewrite(black_box(q), &session).ok());
    });
    report("normalized hit", &mut normalized);
    let (e, n, m) = protection.cache_counts();
    println!("cache counts: exact hits {e}, normalized hits {n}, misses {m}");
}
