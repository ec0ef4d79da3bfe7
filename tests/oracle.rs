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
use tokio_postgres::{Client, SimpleQueryMessage};
use tombstone::rewrite::{ReplyPlan, SessionContext, rewrite};
use tombstone::schema::SchemaSnapshot;

/// splitmix64: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A generated statement: its category and whether its order is total.
struct Stmt {
    category: &'static str,
    sql: String,
    ordered: bool,
}

/// Columns that are deterministic on both twins (no now()-based defaults).
const TABLES: &[(&str, &str, &str)] = &[
    ("projects", "id, team_id, category_id, owner_id, name", "id"),
    ("tasks", "id, project_id, assignee_id, title, done", "id"),
    ("comments", "id, task_id, author_id, body", "id"),
    ("attachments", "id, task_id, filename, size_bytes", "id"),
    ("time_entries", "id, task_id, user_id, minutes", "id"),
    ("documents", "id, project_id, title", "id"),
    ("document_versions", "id, document_id, version", "id"),
    ("users", "id, email, name", "id"),
    ("teams", "id, name", "id"),
    ("team_members", "team_id, user_id, role", "team_id, user_id"),
    (
        "project_members",
        "project_id, user_id",
        "project_id, user_id",
    ),
    ("categories", "id, name", "id"),
    ("billing.invoices", "id, project_id, amount_cents", "id"),
];

fn task_id(r: &mut Rng) -> i64 {
    r.range(1, 1550)
}

fn generate(r: &mut Rng, seq: u64) -> Stmt {
    let roll = r.below(100);
    let (category, sql, ordered) = match roll {
        0..=17 => {
            let j = match r.below(4) {
                0 => "JOIN",
                1 => "LEFT JOIN",
                2 => "RIGHT JOIN",
                _ => "FULL JOIN",
            };
            let sql = match r.below(9) {
                5 => format!(
                    "SELECT d.id, d.title, dv.version FROM documents d {j} document_versions dv USING (id) WHERE d.id < {k} OR dv.id < {k}",
                    k = r.range(1, 40)
                ),
                6 => format!(
                    "SELECT p.id, t.id AS tid, c.id AS cid FROM projects p {j} (tasks t JOIN comments c ON c.task_id = t.id AND c.id % 97 = 0) ON t.project_id = p.id AND t.id % {m} = 0",
                    m = r.range(2, 9)
                ),
                7 => format!(
                    "SELECT j.cid, j.afile FROM (comments c {j} attachments a ON a.task_id = c.task_id AND a.size_bytes % 11 = 0) AS j (cid, ctask, cauthor, cbody, cdel, aid, atask, afile, asize, adel) WHERE j.ctask BETWEEN {a} AND {b} OR j.atask BETWEEN {a} AND {b}",
                    a = task_id(r),
                    b = task_id(r) + 10
                ),
                8 => format!(
                    "SELECT u.email, te.minutes FROM users u {j} time_entries te ON te.user_id = u.id {j2} tasks t ON t.id = te.task_id WHERE u.email LIKE 'user{e}%' OR t.id < {k}",
                    j2 = r.pick(&["JOIN", "LEFT JOIN", "FULL JOIN", "RIGHT JOIN"]),
                    e = r.range(1, 20),
                    k = r.range(1, 40)
                ),
                0 => format!(
                    "SELECT t.id, t.title, c.id AS cid FROM tasks t {j} comments c ON c.task_id = t.id WHERE t.id BETWEEN {a} AND {b} OR c.id BETWEEN {c} AND {d}",
                    a = task_id(r),
                    b = task_id(r) + 5,
                    c = r.range(1, 6000),
                    d = r.range(1, 6000) + 10
                ),
                1 => format!(
                    "SELECT p.id, p.name, t.id AS tid FROM projects p {j} tasks t ON t.project_id = p.id AND t.id % {m} = 0",
                    m = r.range(20, 200)
                ),
                2 => format!(
                    "SELECT d.id, v.id AS vid, v.version FROM documents d {j} document_versions v ON v.document_id = d.id AND v.version = {v} WHERE d.project_id IS NOT NULL OR v.id IS NOT NULL",
                    v = r.range(1, 5)
                ),
                3 => format!(
                    "SELECT u.email, pm.project_id FROM users u {j} project_members pm ON pm.user_id = u.id AND pm.project_id = {p}",
                    p = r.range(1, 3)
                ),
                _ => format!(
                    "SELECT tm.team_id, u.email, t.name FROM team_members tm {j} users u ON u.id = tm.user_id LEFT JOIN teams t ON t.id = tm.team_id WHERE tm.team_id = {k} OR u.email LIKE 'user{e}%'",
                    k = r.range(1, 10),
                    e = r.range(1, 20)
                ),
            };
            ("select_join", sql, false)
        }
        18..=29 => {
            let sql = match r.below(5) {
                0 => format!(
                    "SELECT id, title FROM tasks t WHERE EXISTS (SELECT 1 FROM comments c WHERE c.task_id = t.id AND c.id % {m} = 0) AND t.project_id = {p} ORDER BY id",
                    m = r.range(2, 9),
                    p = r.range(1, 3)
                ),
                1 => format!(
                    "SELECT id FROM projects WHERE id IN (SELECT project_id FROM tasks WHERE id BETWEEN {a} AND {b}) ORDER BY id",
                    a = task_id(r),
                    b = task_id(r)
                ),
                2 => format!(
                    "SELECT id, (SELECT count(*) FROM comments c WHERE c.task_id = t.id) AS n FROM tasks t WHERE id BETWEEN {a} AND {b} ORDER BY id",
                    a = task_id(r),
                    b = task_id(r) + 20
                ),
                3 => format!(
                    "SELECT t.id, x.n FROM tasks t, LATERAL (SELECT count(*) AS n FROM attachments a WHERE a.task_id = t.id) x WHERE t.id < {a} ORDER BY t.id",
                    a = r.range(1, 60)
                ),
                _ => format!(
                    "SELECT u.email FROM users u WHERE NOT EXISTS (SELECT 1 FROM comments c WHERE c.author_id = u.id) AND u.email LIKE 'user{e}%' ORDER BY u.email",
                    e = r.range(1, 20)
                ),
            };
            ("select_subquery", sql, true)
        }
        30..=39 => {
            let sql = match r.below(3) {
                0 => format!(
                    "WITH x AS (SELECT project_id, count(*) AS n FROM tasks GROUP BY project_id) SELECT p.id, x.n FROM projects p LEFT JOIN x ON x.project_id = p.id WHERE p.id <= {k} ORDER BY p.id",
                    k = r.range(1, 3)
                ),
                1 => format!(
                    "WITH RECURSIVE r(id, depth) AS (SELECT id, 0 FROM projects WHERE id = {k} UNION ALL SELECT t.id, r.depth + 1 FROM r JOIN tasks t ON t.project_id = r.id AND r.depth = 0 AND t.id % 50 = 0) SELECT id, depth FROM r ORDER BY depth, id",
                    k = r.range(1, 3)
                ),
                _ => format!(
                    "WITH d AS (SELECT * FROM documents WHERE project_id = {k}) SELECT d.id, count(v.id) FROM d LEFT JOIN document_versions v ON v.document_id = d.id GROUP BY d.id ORDER BY d.id",
                    k = r.range(1, 3)
                ),
            };
            ("select_cte", sql, true)
        }
        40..=51 => {
            let sql = match r.below(5) {
                0 => "SELECT project_id, count(*), sum(CASE WHEN done THEN 1 ELSE 0 END) FROM tasks GROUP BY project_id ORDER BY project_id".to_string(),
                1 => "SELECT count(*), count(DISTINCT task_id), max(id) FROM comments".to_string(),
                2 => format!(
                    "SELECT t.project_id, count(c.id) FROM tasks t JOIN comments c ON c.task_id = t.id GROUP BY t.project_id HAVING count(c.id) > {n} ORDER BY 1",
                    n = r.range(0, 3000)
                ),
                3 => "SELECT i.project_id, sum(i.amount_cents) FROM billing.invoices i GROUP BY 1 ORDER BY 1".to_string(),
                _ => "SELECT id FROM tasks WHERE project_id = 1 UNION SELECT task_id FROM attachments ORDER BY 1 LIMIT 50".to_string(),
            };
            ("select_aggregate", sql, true)
        }
        52..=59 => {
            let (t, cols, key) = *r.pick(TABLES);
            (
                "select_table",
                format!("SELECT {cols} FROM {t} ORDER BY {key}"),
                true,
            )
        }
        60..=71 => {
            let sql = match r.below(14) {
                13 => format!(
                    "WITH d AS (DELETE FROM comments WHERE task_id BETWEEN {a} AND {b} RETURNING id, task_id) SELECT count(*), count(DISTINCT task_id) FROM d",
                    a = task_id(r),
                    b = task_id(r) + 3
                ),
                // Whole projects and teams go rarely, so later reads still see data.
                0 if r.below(12) == 0 => {
                    format!("DELETE FROM projects WHERE id = {}", r.range(1, 4))
                }
                0 => format!("DELETE FROM tasks WHERE id = {}", task_id(r)),
                1 | 2 => format!(
                    "DELETE FROM tasks WHERE id BETWEEN {a} AND {b}",
                    a = task_id(r),
                    b = task_id(r)
                ),
                3 => format!(
                    "DELETE FROM comments WHERE task_id = {} RETURNING id, task_id, body",
                    task_id(r)
                ),
                4 => format!(
                    "DELETE FROM documents WHERE project_id = {} AND id % 3 = 0",
                    r.range(1, 3)
                ),
                5 => format!(
                    "DELETE FROM users WHERE email = 'user{}@example.com'",
                    r.range(1, 200)
                ),
                6 => format!("DELETE FROM categories WHERE id = {}", r.range(1, 3)),
                7 if r.below(12) == 0 => format!("DELETE FROM teams WHERE id = {}", r.range(1, 10)),
                7 => format!(
                    "DELETE FROM document_versions WHERE document_id = {} AND version > 3",
                    r.range(1, 30)
                ),
                8 => format!(
                    "DELETE FROM attachments a USING tasks t WHERE a.task_id = t.id AND t.project_id = {} AND t.id % 7 = 0",
                    r.range(1, 3)
                ),
                _ => format!(
                    "DELETE FROM team_members WHERE team_id = {} RETURNING team_id, user_id",
                    r.range(1, 10)
                ),
            };
            ("delete", sql, false)
        }
        72..=85 => {
            let sql = match r.below(5) {
                0 => format!(
                    "UPDATE tasks SET done = NOT done WHERE project_id = {} AND id % 5 = 0",
                    r.range(1, 3)
                ),
                1 => format!(
                    "UPDATE comments SET body = body || '!' WHERE task_id = {} RETURNING id, body",
                    task_id(r)
                ),
                2 => format!(
                    "UPDATE projects SET name = name || '+' WHERE id = {}",
                    r.range(1, 3)
                ),
                3 => format!(
                    "UPDATE users SET name = 'renamed {seq}' WHERE email LIKE 'user{}%'",
                    r.range(1, 20)
                ),
                _ => format!(
                    "UPDATE time_entries te SET minutes = te.minutes + 1 FROM tasks t WHERE t.id = te.task_id AND t.project_id = {}",
                    r.range(1, 3)
                ),
            };
            ("update", sql, false)
        }
        _ => {
            let sql = match r.below(4) {
                0 | 1 => format!(
                    "INSERT INTO users (id, email, name) VALUES (md5('oracle{seq}')::uuid, 'user{}@example.com', 'again') ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING email, name",
                    r.range(1, 200)
                ),
                2 => format!(
                    "INSERT INTO users (id, email) VALUES (md5('oracle{seq}')::uuid, 'user{}@example.com') ON CONFLICT (email) DO NOTHING RETURNING email",
                    r.range(1, 220)
                ),
                _ => format!(
                    "INSERT INTO tasks (project_id, title) SELECT id, 'new ' || id FROM projects WHERE id = {} RETURNING title",
                    r.range(1, 3)
                ),
            };
            ("insert", sql, false)
        }
    };
    Stmt {
        category,
        sql,
        ordered,
    }
}

/// What a statement did, in a comparable form.
#[derive(Debug, PartialEq)]
enum Outcome {
    Error(String),
    Done {
        columns: Vec<(String, String)>,
        rows: Vec<Vec<Option<String>>>,
        affected: Option<u64>,
    },
}

async fn run(c: &Client, sql: &str, ordered: bool) -> Outcome {
    let columns = match c.prepare(sql).await {
        Ok(st) => st
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().name().to_string()))
            .collect(),
        Err(e) => {
            return Outcome::Error(
                e.code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_else(|| e.to_string()),
            );
        }
    };
    match c.simple_query(sql).await {
        Ok(msgs) => {
            let mut rows = Vec::new();
            let mut affected = None;
            for m in msgs {
                match m {
                    SimpleQueryMessage::Row(row) => {
                        rows.push(
                            (0..row.len())
                                .map(|i| row.get(i).map(str::to_string))
                                .collect(),
                        );
                    }
                    SimpleQueryMessage::CommandComplete(n) => affected = Some(n),
                    _ => {}
                }
            }
            if !ordered {
                rows.sort();
            }
            Outcome::Done {
                columns,
                rows,
                affected,
            }
        }
        Err(e) => Outcome::Error(
            e.code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| e.to_string()),
        ),
    }
}

fn seed() -> u64 {
    std::env::var("TOMBSTONE_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

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
    let twin_db = TestDb::create("oracle_twin", 3);
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
        let a = run(&rw, &out.sql, stmt.ordered).await;
        let b = run(&twin, &stmt.sql, stmt.ordered).await;
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

fn truncate(o: &Outcome) -> String {
    let s = format!("{o:?}");
    if s.len() > 2000 {
        format!("{}…", &s[..2000])
    } else {
        s
    }
}
