//! Parse+rewrite time per statement for scenario-style queries.
//! `cargo run --release --example bench_rewrite` (schema from
//! `TOMBSTONE_DATABASE_URL`, a database loaded with tests/scenario).

use std::time::{Duration, Instant};

use tombstone::rewrite::{SessionContext, rewrite};
use tombstone::schema::{SnapshotOptions, load};

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("TOMBSTONE_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let snap = load::load(&client, &SnapshotOptions::default()).await?;
    let session = SessionContext::normal("app");
    let rounds = 2000;
    let mut all = Vec::new();
    println!("{:<100} {:>10} {:>10}", "statement", "median", "p99");
    for q in QUERIES {
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let out = rewrite(q, &snap, &session);
            times.push(t.elapsed());
            std::hint::black_box(&out);
        }
        times.sort();
        all.extend_from_slice(&times);
        let short: String = q.chars().take(98).collect();
        println!(
            "{short:<100} {:>10.1?} {:>10.1?}",
            times[rounds / 2],
            times[rounds * 99 / 100]
        );
    }
    all.sort();
    let pct = |p: usize| all[all.len() * p / 100];
    println!(
        "all statements: median {:.1?}, p99 {:.1?}",
        pct(50),
        pct(99)
    );
    let mut spawn = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(tombstone::rewrite::parse::on_big_stack(|| 1));
        spawn.push(t.elapsed());
    }
    spawn.sort();
    println!(
        "of which growing the stack to the parser's 64 MiB (stacker): median {:.1?}, p99 {:.1?}",
        spawn[rounds / 2],
        spawn[rounds * 99 / 100]
    );
    let mean: Duration = all.iter().sum::<Duration>() / all.len() as u32;
    println!("mean {mean:.1?}");
    Ok(())
}
