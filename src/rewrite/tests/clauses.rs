//! Constructs that contain clause keywords (`IS DISTINCT FROM`, `SIMILAR
//! TO … ESCAPE`, `EXTRACT(… FROM …)`, `CASE`, `FILTER (WHERE …)`, window
//! `ORDER BY` …), in every statement position: the predicate goes where the
//! clause really ends, found from the parser's locations, not from the
//! first keyword that looks like the next clause.

use super::*;

/// Expressions whose text holds FROM, WHERE, ORDER BY, ON, RETURNING …
const CONSTRUCTS: &[&str] = &[
    "done IS DISTINCT FROM true",
    "done IS NOT DISTINCT FROM false",
    "title SIMILAR TO 'a%' ESCAPE '!'",
    "OVERLAY(title PLACING 'x' FROM 1 FOR 1)",
    "SUBSTRING(title FROM 1 FOR 2)",
    "EXTRACT(year FROM created_at)",
    "TRIM(BOTH 'x' FROM title)",
    "CASE WHEN done THEN 'a' ELSE 'b' END",
    "(ARRAY['a', 'b'])[1:2]",
    "created_at AT TIME ZONE 'UTC'",
    "created_at::timestamp with time zone",
    "done IS NOT TRUE",
    "title IS NOT NULL",
];

/// Aggregate forms (SELECT list only).
const AGGREGATES: &[&str] = &[
    "count(*) FILTER (WHERE done)",
    "row_number() OVER (ORDER BY id)",
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY id)",
    "string_agg(title, ',' ORDER BY id)",
];

#[test]
fn the_issue_example_keeps_its_operator() {
    check(
        "UPDATE tasks SET done = done IS DISTINCT FROM true",
        "UPDATE tasks SET done = done IS DISTINCT FROM true WHERE tasks.deleted_at IS NULL",
    );
}

#[test]
fn clause_keywords_inside_expressions_in_every_position() {
    for c in CONSTRUCTS {
        let cases: Vec<(String, String)> = vec![
            (
                format!("SELECT {c} FROM tasks"),
                format!("SELECT {c} FROM tasks WHERE tasks.deleted_at IS NULL"),
            ),
            (
                format!("SELECT id FROM tasks WHERE {c}"),
                format!("SELECT id FROM tasks WHERE ({c}) AND tasks.deleted_at IS NULL"),
            ),
            (
                format!("SELECT id FROM tasks WHERE {c} ORDER BY id LIMIT 1"),
                format!(
                    "SELECT id FROM tasks WHERE ({c}) AND tasks.deleted_at IS NULL ORDER BY id LIMIT 1"
                ),
            ),
            (
                format!("SELECT t.id FROM projects p LEFT JOIN tasks t ON {c} WHERE p.id = 1"),
                format!(
                    "SELECT t.id FROM projects p LEFT JOIN tasks t ON ({c}) AND t.deleted_at IS NULL WHERE (p.id = 1) AND p.deleted_at IS NULL"
                ),
            ),
            (
                format!("UPDATE tasks SET title = {c}"),
                format!("UPDATE tasks SET title = {c} WHERE tasks.deleted_at IS NULL"),
            ),
            (
                format!("UPDATE tasks SET title = {c} RETURNING id"),
                format!("UPDATE tasks SET title = {c} WHERE tasks.deleted_at IS NULL RETURNING id"),
            ),
            (
                format!("UPDATE tasks SET title = 'x' RETURNING {c}"),
                format!(
                    "UPDATE tasks SET title = 'x' WHERE tasks.deleted_at IS NULL RETURNING {c}"
                ),
            ),
            (
                format!("UPDATE tasks SET title = 'x' WHERE {c} RETURNING {c}"),
                format!(
                    "UPDATE tasks SET title = 'x' WHERE ({c}) AND tasks.deleted_at IS NULL RETURNING {c}"
                ),
            ),
            (
                format!(
                    "UPDATE tasks SET title = {c} FROM projects WHERE projects.id = tasks.project_id"
                ),
                format!(
                    "UPDATE tasks SET title = {c} FROM projects WHERE (projects.id = tasks.project_id) AND tasks.deleted_at IS NULL AND projects.deleted_at IS NULL"
                ),
            ),
            (
                format!(
                    "MERGE INTO tasks t USING projects p ON {c} WHEN MATCHED THEN UPDATE SET title = p.name"
                ),
                format!(
                    "MERGE INTO tasks t USING (SELECT * FROM projects WHERE deleted_at IS NULL) p ON ({c}) AND t.deleted_at IS NULL WHEN MATCHED THEN UPDATE SET title = p.name"
                ),
            ),
            (
                format!(
                    "MERGE INTO tasks t USING projects p ON p.id = t.project_id WHEN MATCHED AND {c} THEN UPDATE SET title = {c}"
                ),
                format!(
                    "MERGE INTO tasks t USING (SELECT * FROM projects WHERE deleted_at IS NULL) p ON (p.id = t.project_id) AND t.deleted_at IS NULL WHEN MATCHED AND {c} THEN UPDATE SET title = {c}"
                ),
            ),
        ];
        for (sql, expected) in &cases {
            check(sql, expected);
        }
        // A soft delete keeps the client's WHERE whole, once.
        let delete = format!("DELETE FROM tasks WHERE {c}");
        let out = rewrite(&delete, &scenario(), &session()).unwrap_or_else(|e| panic!("{c}: {e}"));
        assert!(
            out.sql.contains(&format!(
                "FROM tasks WHERE ({c}) AND tasks.deleted_at IS NULL FOR UPDATE OF tasks"
            )),
            "{c}: {}",
            out.sql
        );
    }
}

#[test]
fn aggregates_with_clause_keywords_in_the_select_list() {
    for a in AGGREGATES {
        check(
            &format!("SELECT {a} FROM tasks"),
            &format!("SELECT {a} FROM tasks WHERE tasks.deleted_at IS NULL"),
        );
        check(
            &format!("SELECT {a} FROM tasks GROUP BY project_id HAVING {a} > 0"),
            &format!(
                "SELECT {a} FROM tasks WHERE tasks.deleted_at IS NULL GROUP BY project_id HAVING {a} > 0"
            ),
        );
    }
}

#[test]
fn on_conflict_updates_with_clause_keywords() {
    for c in CONSTRUCTS {
        let sql = format!(
            "INSERT INTO tags (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = {c} RETURNING {c}"
        );
        let out = rewrite(&sql, &scenario(), &session()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(pg_query::parse(&out.sql, 0).is_ok(), "{}", out.sql);
        assert!(out.sql.ends_with(&format!("RETURNING {c}")), "{}", out.sql);
    }
}

/// Every statement of the corpus that the rewriter accepts comes out
/// verified (the check runs inside `rewrite`); none panics.
#[test]
fn the_corpus_rewrites_or_is_refused_cleanly() {
    let snap = scenario();
    for sql in super::corpus::corpus() {
        for s in [
            session(),
            bypass(Visibility::Deleted),
            bypass(Visibility::Setting),
        ] {
            if let Err(e) = rewrite(sql, &snap, &s) {
                assert_ne!(e.sqlstate(), "TS001", "{sql}: {e}");
            }
        }
    }
}

/// A USING item whose alias list gives the soft-delete column's name to
/// another column is wrapped; the check still sees the client's USING.
#[test]
fn a_wrapped_using_item_verifies() {
    let out = rewrite(
        "DELETE FROM time_entries e USING tasks AS t(tid, pid, deleted_at) WHERE e.task_id = t.tid AND t.pid = 2",
        &scenario(),
        &session(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.sql
            .contains("(SELECT * FROM tasks WHERE deleted_at IS NULL) AS t(tid, pid, deleted_at)"),
        "{}",
        out.sql
    );
}
