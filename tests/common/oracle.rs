//! The twin-database oracle's generator and comparison (SPEC "The promise
//! in one line"), shared by the rewriter-level oracle (`tests/oracle.rs`)
//! and the over-the-wire one (`tests/oracle_wire.rs`): seeded random
//! statements over the scenario schema, and what a statement did in a
//! comparable form, through the simple or the extended protocol.
#![allow(dead_code)]

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, SimpleQueryMessage};

/// splitmix64: small, seedable, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A generated statement: its category and whether its order is total.
pub struct Stmt {
    pub category: &'static str,
    pub sql: String,
    pub ordered: bool,
    /// `volatile_delete`: the rows it deletes differ from run to run (a
    /// volatile predicate, `LIMIT` without `ORDER BY`), so the twin deletes
    /// exactly the rows tombstone's side returned; this query, run on the
    /// twin first, counts how many that must be (when it is knowable).
    pub expect: Option<String>,
}

/// Columns that are deterministic on both twins (no now()-based defaults).
pub const TABLES: &[(&str, &str, &str)] = &[
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

pub fn generate(r: &mut Rng, seq: u64) -> Stmt {
    let roll = r.below(112);
    if roll >= 100 {
        return generate_more(r, roll - 100);
    }
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
        expect: None,
    }
}

/// Volatile and `LIMIT`-without-`ORDER BY` deletes (SPEC W10), constructs
/// with clause keywords inside expressions, and column alias lists.
fn generate_more(r: &mut Rng, roll: u64) -> Stmt {
    let stmt = |category, sql: String, ordered, expect: Option<String>| Stmt {
        category,
        sql,
        ordered,
        expect,
    };
    match roll {
        0..=3 => {
            let (a, b) = (task_id(r), task_id(r) % 40);
            let (sql, expect) = match r.below(7) {
                0 => (
                    format!(
                        "DELETE FROM comments WHERE id IN (SELECT id FROM comments WHERE task_id BETWEEN {a} AND {} ORDER BY random() LIMIT 3) RETURNING id",
                        a + 2
                    ),
                    Some(format!(
                        "SELECT count(*) FROM (SELECT 1 FROM comments WHERE task_id BETWEEN {a} AND {} LIMIT 3) x",
                        a + 2
                    )),
                ),
                1 => (
                    format!(
                        "DELETE FROM comments WHERE id IN (SELECT id FROM comments WHERE task_id BETWEEN {a} AND {} LIMIT 2) RETURNING id",
                        a + 3
                    ),
                    Some(format!(
                        "SELECT count(*) FROM (SELECT 1 FROM comments WHERE task_id BETWEEN {a} AND {} LIMIT 2) x",
                        a + 3
                    )),
                ),
                2 => (
                    format!(
                        "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE project_id = {p} AND id % 40 = {b} ORDER BY random() LIMIT 2) RETURNING id",
                        p = r.range(1, 3)
                    ),
                    None,
                ),
                3 => (
                    format!(
                        "DELETE FROM comments WHERE task_id BETWEEN {a} AND {} AND random() < 0.4 RETURNING id",
                        a + 4
                    ),
                    None,
                ),
                4 => (
                    format!(
                        "DELETE FROM attachments a USING tasks t WHERE a.task_id = t.id AND t.project_id = {} AND t.id % 30 = {b} AND random() < 0.5 RETURNING a.id",
                        r.range(1, 3)
                    ),
                    None,
                ),
                // RETURNING reads the USING items: the outer UPDATE joins
                // them again, pinned to the rows the target CTE chose.
                5 => (
                    format!(
                        "DELETE FROM tasks t USING projects p WHERE t.project_id = p.id AND p.id = {} AND t.id % 40 = {b} AND random() < 0.5 RETURNING t.id, p.name, t.title",
                        r.range(1, 3)
                    ),
                    None,
                ),
                _ => (
                    format!(
                        "DELETE FROM comments c USING tasks t JOIN projects p ON p.id = t.project_id WHERE c.task_id = t.id AND t.id BETWEEN {a} AND {} AND random() < 0.3 RETURNING c.id, t.title, p.name",
                        a + 3
                    ),
                    None,
                ),
            };
            stmt("volatile_delete", sql, false, expect)
        }
        4..=7 => {
            let a = task_id(r);
            let sql = match r.below(5) {
                0 => format!(
                    "SELECT id, title IS DISTINCT FROM 'x', SUBSTRING(title FROM 1 FOR 3), CASE WHEN done THEN 'y' ELSE 'n' END, title SIMILAR TO 'T%' ESCAPE '!', TRIM(BOTH ' ' FROM title), OVERLAY(title PLACING 'z' FROM 1 FOR 1) FROM tasks WHERE id BETWEEN {a} AND {} ORDER BY id",
                    a + 30
                ),
                1 => "SELECT project_id, count(*) FILTER (WHERE done), string_agg(SUBSTRING(title FROM 1 FOR 2), ',' ORDER BY id), percentile_cont(0.5) WITHIN GROUP (ORDER BY id) FROM tasks WHERE done IS DISTINCT FROM true OR id % 7 = 0 GROUP BY project_id ORDER BY 1".to_string(),
                2 => format!(
                    "SELECT c.id, row_number() OVER (PARTITION BY c.task_id ORDER BY c.id) FROM comments c LEFT JOIN tasks t ON t.id = c.task_id AND t.done IS NOT DISTINCT FROM false WHERE c.task_id BETWEEN {a} AND {} ORDER BY c.id",
                    a + 5
                ),
                3 => format!(
                    "UPDATE tasks SET done = done IS DISTINCT FROM true WHERE id BETWEEN {a} AND {} RETURNING id, done IS DISTINCT FROM false, SUBSTRING(title FROM 1 FOR 4)",
                    a + 3
                ),
                _ => format!(
                    "UPDATE comments c SET body = CASE WHEN c.body SIMILAR TO '%!' ESCAPE '#' THEN SUBSTRING(c.body FROM 1 FOR 10) ELSE c.body || '!' END FROM tasks t WHERE t.id = c.task_id AND t.id BETWEEN {a} AND {} RETURNING c.id, c.body",
                    a + 2
                ),
            };
            let ordered = sql.starts_with("SELECT");
            stmt("clause_keywords", sql, ordered, None)
        }
        _ => {
            let a = task_id(r);
            let sql = match r.below(3) {
                0 => format!(
                    "SELECT x.i, x.t FROM tasks AS x (i, p, who, t) WHERE x.i BETWEEN {a} AND {} ORDER BY x.i",
                    a + 20
                ),
                1 => format!(
                    "SELECT x.i, x.gone FROM tasks AS x (i, p, who, t, d, gone) WHERE x.i BETWEEN {a} AND {} ORDER BY x.i",
                    a + 20
                ),
                _ => format!(
                    "SELECT c.cid, t.i FROM comments c (cid, tid) JOIN tasks t (i) ON t.i = c.tid WHERE c.tid BETWEEN {a} AND {} ORDER BY c.cid",
                    a + 3
                ),
            };
            stmt("alias_list", sql, true, None)
        }
    }
}

/// A delete whose rows differ from run to run: tombstone's side runs
/// first; its tag, its RETURNING and (when knowable) the expected count
/// must agree, and the twin then deletes exactly the returned rows, so
/// the cascades and every later statement are compared as usual.
/// `sent` is what tombstone's side runs (the rewritten text, or the
/// client's through the proxy); simple protocol, so the ids are text.
pub async fn volatile_delete(
    rw: &Client,
    sent: &str,
    twin: &Client,
    stmt: &Stmt,
    seed: u64,
    i: u64,
) -> (Outcome, Outcome) {
    let expected = match &stmt.expect {
        Some(q) => match run(twin, q, true).await {
            Outcome::Done { rows, .. } => rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|n| n.parse::<u64>().ok()),
            Outcome::Error(e) => panic!("seed {seed}, statement {i}: count query: {e}"),
        },
        None => None,
    };
    let a = run(rw, sent, false).await;
    let Outcome::Done { rows, affected, .. } = &a else {
        panic!("seed {seed}, statement {i}: {} failed: {a:?}", stmt.sql);
    };
    assert_eq!(
        *affected,
        Some(rows.len() as u64),
        "seed {seed}, statement {i}: the tag and RETURNING disagree\n  sql: {}\n  sent: {sent}",
        stmt.sql
    );
    if let Some(n) = expected {
        assert_eq!(
            *affected,
            Some(n),
            "seed {seed}, statement {i}: deleted another number of rows than the statement chose\n  sql: {}\n  sent: {sent}",
            stmt.sql
        );
    }
    let mut words = stmt
        .sql
        .trim_start_matches("DELETE FROM ")
        .split_whitespace();
    let table = words.next().unwrap_or("");
    let qual = match words.next() {
        Some(w) if !matches!(w, "WHERE" | "USING") => w,
        _ => table,
    };
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.first().cloned().flatten())
        .map(|id| format!("'{id}'"))
        .collect();
    let chosen = if ids.is_empty() {
        "false".to_string()
    } else {
        format!("{qual}.id::text IN ({})", ids.join(", "))
    };
    // The twin deletes exactly the rows tombstone's side returned: the
    // volatile condition (`random() < …`) is replaced by their ids, the
    // rest of the statement (USING, RETURNING) kept.
    let twin_sql = match stmt.sql.find("random() < ") {
        Some(at) => {
            let rest = &stmt.sql[at..];
            let end = rest.find(" RETURNING").unwrap_or(rest.len());
            format!("{}{chosen}{}", &stmt.sql[..at], &rest[end..])
        }
        None => format!("DELETE FROM {table} WHERE {chosen} RETURNING id"),
    };
    (a, run(twin, &twin_sql, false).await)
}

/// What a statement did, in a comparable form.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Error(String),
    Done {
        columns: Vec<(String, String)>,
        rows: Vec<Vec<Option<String>>>,
        affected: Option<u64>,
    },
}

/// Runs `sql` with the simple protocol (columns from a Describe).
pub async fn run(c: &Client, sql: &str, ordered: bool) -> Outcome {
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

pub fn seed() -> u64 {
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

/// Runs `sql` with the extended protocol only: Parse/Describe, then
/// Bind/Execute with binary results, compared as raw bytes.
pub async fn run_extended(c: &Client, sql: &str, ordered: bool) -> Outcome {
    let statement = match c.prepare(sql).await {
        Ok(st) => st,
        Err(e) => return Outcome::Error(code(&e)),
    };
    let columns = statement
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().name().to_string()))
        .collect();
    let none: [&(dyn tokio_postgres::types::ToSql + Sync); 0] = [];
    let stream = match c.query_raw(&statement, none).await {
        Ok(s) => s,
        Err(e) => return Outcome::Error(code(&e)),
    };
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    loop {
        match futures_util::StreamExt::next(&mut stream).await {
            Some(Ok(row)) => rows.push(
                (0..row.len())
                    .map(|i| match row.try_get::<_, Raw>(i) {
                        Ok(Raw(Some(bytes))) => Some(format!("{bytes:02x?}")),
                        _ => None,
                    })
                    .collect(),
            ),
            Some(Err(e)) => return Outcome::Error(code(&e)),
            None => break,
        }
    }
    if !ordered {
        rows.sort();
    }
    Outcome::Done {
        columns,
        rows,
        affected: stream.rows_affected(),
    }
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// A column value as the raw bytes the server sent.
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

pub fn truncate(o: &Outcome) -> String {
    let s = format!("{o:?}");
    if s.len() > 2000 {
        format!("{}…", &s[..2000])
    } else {
        s
    }
}
