//! Column alias lists rename a table's columns by position: the predicate
//! names the soft-delete column by its alias wherever a reference has one.

use super::*;

#[test]
fn column_alias_lists() {
    // tasks: id, project_id, assignee_id, title, done, deleted_at.
    let cases: &[(&str, &str)] = &[
        // The list gives the column's name to another column before
        // reaching it: `t.deleted_at` would be ambiguous, so the filter
        // goes inside.
        (
            "SELECT title FROM tasks AS t(id, project_id, deleted_at, title)",
            "SELECT title FROM (SELECT * FROM tasks WHERE deleted_at IS NULL) AS t(id, project_id, deleted_at, title)",
        ),
        (
            "SELECT * FROM projects p LEFT JOIN tasks t(deleted_at) ON t.deleted_at = p.id",
            "SELECT * FROM projects p LEFT JOIN (SELECT * FROM tasks WHERE deleted_at IS NULL) t(deleted_at) ON t.deleted_at = p.id WHERE p.deleted_at IS NULL",
        ),
        (
            "SELECT a FROM tasks AS t(a, b, c, d, e, gone)",
            "SELECT a FROM tasks AS t(a, b, c, d, e, gone) WHERE t.gone IS NULL",
        ),
        (
            "SELECT a FROM tasks t(a, b, c, d, e, \"Gone Away\") WHERE a > 1",
            "SELECT a FROM tasks t(a, b, c, d, e, \"Gone Away\") WHERE (a > 1) AND t.\"Gone Away\" IS NULL",
        ),
        (
            "SELECT a FROM tasks t(a, b, c, d, e, deleted_at)",
            "SELECT a FROM tasks t(a, b, c, d, e, deleted_at) WHERE t.deleted_at IS NULL",
        ),
        // A list that stops before the column leaves its name.
        (
            "SELECT a FROM tasks t(a)",
            "SELECT a FROM tasks t(a) WHERE t.deleted_at IS NULL",
        ),
        // Joins: inner, outer (ON), and another alias list on the other side.
        (
            "SELECT t.a FROM tasks t(a, b, c, d, e, x) JOIN projects p(i, j, k, l, m, n, y) ON p.i = t.b",
            "SELECT t.a FROM tasks t(a, b, c, d, e, x) JOIN projects p(i, j, k, l, m, n, y) ON p.i = t.b WHERE t.x IS NULL AND p.y IS NULL",
        ),
        (
            "SELECT t.a FROM projects p LEFT JOIN tasks t(a, b, c, d, e, x) ON t.b = p.id",
            "SELECT t.a FROM projects p LEFT JOIN tasks t(a, b, c, d, e, x) ON (t.b = p.id) AND t.x IS NULL WHERE p.deleted_at IS NULL",
        ),
        // LATERAL and subqueries.
        (
            "SELECT * FROM projects p, LATERAL (SELECT a FROM tasks t(a, b, c, d, e, x) WHERE t.b = p.id) s",
            "SELECT * FROM projects p, LATERAL (SELECT a FROM tasks t(a, b, c, d, e, x) WHERE (t.b = p.id) AND t.x IS NULL) s WHERE p.deleted_at IS NULL",
        ),
        (
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM tasks t(a, b, c, d, e, x))",
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM tasks t(a, b, c, d, e, x) WHERE t.x IS NULL)",
        ),
        // UPDATE … FROM.
        (
            "UPDATE projects SET name = 'x' FROM tasks t(a, b, c, d, e, x) WHERE t.b = projects.id",
            "UPDATE projects SET name = 'x' FROM tasks t(a, b, c, d, e, x) WHERE (t.b = projects.id) AND projects.deleted_at IS NULL AND t.x IS NULL",
        ),
        // USING without an ON to extend: the reference becomes a filtered
        // subquery, which keeps the table's column order for the alias list.
        (
            "SELECT * FROM projects JOIN tasks t(a, project_id) USING (project_id)",
            "SELECT * FROM projects JOIN tasks t(a, project_id) USING (project_id) WHERE projects.deleted_at IS NULL AND t.deleted_at IS NULL",
        ),
        (
            "SELECT * FROM projects LEFT JOIN tasks t(a, project_id, c, d, e, x) USING (project_id)",
            "SELECT * FROM projects LEFT JOIN (SELECT * FROM tasks WHERE deleted_at IS NULL) t(a, project_id, c, d, e, x) USING (project_id) WHERE projects.deleted_at IS NULL",
        ),
    ];
    for (sql, expected) in cases {
        check(sql, expected);
    }
}

#[test]
fn alias_lists_in_deletes_and_merges() {
    let snap = scenario();
    let s = session();
    // DELETE … USING: the USING item's filter uses its alias.
    let out = rewrite(
        "DELETE FROM projects USING tasks t(a, b, c, d, e, x) WHERE t.b = projects.id",
        &snap,
        &s,
    )
    .unwrap()
    .sql
    .into_owned();
    assert!(out.contains("t.x IS NULL"), "{out}");
    assert!(!out.contains("t.deleted_at"), "{out}");
    // MERGE source: wrapped, the alias list applies to the subquery.
    check(
        "MERGE INTO tags g USING tasks t(a, b, c, d, e, x) ON g.id = t.a WHEN MATCHED THEN UPDATE SET name = t.d",
        "MERGE INTO tags g USING (SELECT * FROM tasks WHERE deleted_at IS NULL) t(a, b, c, d, e, x) ON g.id = t.a WHEN MATCHED THEN UPDATE SET name = t.d",
    );
    // Bypass sessions' setting-driven predicate uses the alias too.
    let out = rewrite(
        "SELECT a FROM tasks t(a, b, c, d, e, x)",
        &snap,
        &bypass(Visibility::Setting),
    )
    .unwrap()
    .sql
    .into_owned();
    assert!(out.contains("THEN t.x IS NOT NULL"), "{out}");
}

#[test]
fn the_position_skips_nothing_the_catalog_does_not_list() {
    // A table whose soft-delete column comes first.
    let cat = Catalog::default().table(
        "public.notes",
        &[
            "deleted_at timestamp with time zone",
            "id bigint",
            "body text",
        ],
        &["id"],
    );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    check_in(
        &snap,
        "SELECT * FROM notes n(gone, id)",
        "SELECT * FROM notes n(gone, id) WHERE n.gone IS NULL",
        &session(),
    );
}
