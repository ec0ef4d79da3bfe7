//! UPDATE, INSERT … ON CONFLICT, MERGE, COPY, TRUNCATE, DO, fail-closed and
//! hostile inputs.

use super::*;
use crate::rewrite::{Limits, RewriteError};

#[test]
fn update_touches_live_rows_only() {
    let cases: &[(&str, &str)] = &[
        (
            "UPDATE tasks SET done = true WHERE id = 1",
            "UPDATE tasks SET done = true WHERE (id = 1) AND tasks.deleted_at IS NULL",
        ),
        (
            "UPDATE tasks SET done = true",
            "UPDATE tasks SET done = true WHERE tasks.deleted_at IS NULL",
        ),
        (
            "UPDATE tasks SET done = true RETURNING id",
            "UPDATE tasks SET done = true WHERE tasks.deleted_at IS NULL RETURNING id",
        ),
        (
            "UPDATE tasks t SET done = NOT t.done WHERE t.id = $1 RETURNING t.*",
            "UPDATE tasks t SET done = NOT t.done WHERE (t.id = $1) AND t.deleted_at IS NULL RETURNING t.*",
        ),
        (
            "UPDATE public.tasks SET (title, done) = ('x', false) WHERE id = 2",
            "UPDATE public.tasks SET (title, done) = ('x', false) WHERE (id = 2) AND public.tasks.deleted_at IS NULL",
        ),
        (
            "UPDATE tasks t SET title = p.name FROM projects p WHERE p.id = t.project_id",
            "UPDATE tasks t SET title = p.name FROM projects p WHERE (p.id = t.project_id) AND t.deleted_at IS NULL AND p.deleted_at IS NULL",
        ),
        (
            "UPDATE tasks SET title = (SELECT name FROM projects WHERE projects.id = tasks.project_id)",
            "UPDATE tasks SET title = (SELECT name FROM projects WHERE (projects.id = tasks.project_id) AND projects.deleted_at IS NULL) WHERE tasks.deleted_at IS NULL",
        ),
        (
            "UPDATE tags SET name = 'x' FROM tasks WHERE tasks.id = tags.id",
            "UPDATE tags SET name = 'x' FROM tasks WHERE (tasks.id = tags.id) AND tasks.deleted_at IS NULL",
        ),
        (
            "UPDATE tasks SET done = true WHERE CURRENT OF c",
            "UPDATE tasks SET done = true WHERE CURRENT OF c",
        ),
        (
            "WITH u AS (UPDATE tasks SET done = true RETURNING id) SELECT count(*) FROM u",
            "WITH u AS (UPDATE tasks SET done = true WHERE tasks.deleted_at IS NULL RETURNING id) SELECT count(*) FROM u",
        ),
        (
            "UPDATE billing.invoices i SET amount_cents = 0",
            "UPDATE billing.invoices i SET amount_cents = 0 WHERE i.deleted_at IS NULL",
        ),
        (
            "UPDATE users SET name = $1 WHERE id = $2 /* sqlcommenter */",
            "UPDATE users SET name = $1 WHERE (id = $2) AND users.deleted_at IS NULL /* sqlcommenter */",
        ),
    ];
    for (i, e) in cases {
        check(i, e);
    }
}

#[test]
fn insert_on_conflict_gets_the_partial_index_predicate() {
    let cases: &[(&str, &str)] = &[
        (
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT (email) DO NOTHING",
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING",
        ),
        (
            "INSERT INTO users (email, name) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET name = excluded.name RETURNING id",
            "INSERT INTO users (email, name) VALUES ($1, $2) ON CONFLICT (email) WHERE deleted_at IS NULL DO UPDATE SET name = excluded.name RETURNING id",
        ),
        (
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING",
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING",
        ),
        (
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT DO NOTHING",
            "INSERT INTO users (email) VALUES ('a') ON CONFLICT DO NOTHING",
        ),
        (
            "INSERT INTO categories (name) VALUES ('a') ON CONFLICT (name) DO NOTHING",
            "INSERT INTO categories (name) VALUES ('a') ON CONFLICT (name) DO NOTHING",
        ),
        (
            "INSERT INTO users (email) SELECT email FROM users WHERE name = 'x' ON CONFLICT (email) DO NOTHING",
            "INSERT INTO users (email) SELECT email FROM users WHERE (name = 'x') AND users.deleted_at IS NULL ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING",
        ),
        (
            "INSERT INTO users (email) SELECT email FROM users ON CONFLICT (email) DO NOTHING",
            "INSERT INTO users (email) SELECT email FROM users WHERE users.deleted_at IS NULL ON CONFLICT (email) WHERE deleted_at IS NULL DO NOTHING",
        ),
        (
            "INSERT INTO tasks (project_id, title) VALUES (1, 'x') RETURNING *",
            "INSERT INTO tasks (project_id, title) VALUES (1, 'x') RETURNING *",
        ),
        (
            "INSERT INTO tasks (project_id, title) SELECT id, name FROM projects",
            "INSERT INTO tasks (project_id, title) SELECT id, name FROM projects WHERE projects.deleted_at IS NULL",
        ),
        (
            "INSERT INTO users AS u (email) VALUES ('a') ON CONFLICT (email) DO UPDATE SET name = u.name || 'x' WHERE u.name IS NOT NULL",
            "INSERT INTO users AS u (email) VALUES ('a') ON CONFLICT (email) WHERE deleted_at IS NULL DO UPDATE SET name = u.name || 'x' WHERE u.name IS NOT NULL",
        ),
    ];
    for (i, e) in cases {
        check(i, e);
    }
}

#[test]
fn merge() {
    check(
        "MERGE INTO tasks t USING projects p ON t.project_id = p.id WHEN MATCHED THEN UPDATE SET done = true",
        "MERGE INTO tasks t USING (SELECT * FROM projects WHERE deleted_at IS NULL) p ON (t.project_id = p.id) AND t.deleted_at IS NULL WHEN MATCHED THEN UPDATE SET done = true",
    );
    check(
        "MERGE INTO tags g USING (SELECT title FROM tasks) s ON g.name = s.title WHEN NOT MATCHED THEN INSERT (name) VALUES (s.title)",
        "MERGE INTO tags g USING (SELECT title FROM tasks WHERE tasks.deleted_at IS NULL) s ON g.name = s.title WHEN NOT MATCHED THEN INSERT (name) VALUES (s.title)",
    );
    refused(
        "MERGE INTO tasks t USING projects p ON t.project_id = p.id WHEN MATCHED THEN DELETE",
        "0A000",
    );
    refused(
        "MERGE INTO tasks t USING tags p ON t.id = p.id WHEN MATCHED AND t.done THEN DELETE WHEN MATCHED THEN UPDATE SET done = true",
        "0A000",
    );
}

#[test]
fn copy() {
    check(
        "COPY tasks TO STDOUT",
        "COPY (SELECT * FROM tasks WHERE deleted_at IS NULL) TO STDOUT",
    );
    check(
        "COPY public.tasks (id, title) TO STDOUT (FORMAT binary)",
        "COPY (SELECT id, title FROM public.tasks WHERE deleted_at IS NULL) TO STDOUT (FORMAT binary)",
    );
    check("COPY tasks FROM STDIN", "COPY tasks FROM STDIN");
    unchanged("COPY tags TO STDOUT");
}

#[test]
fn truncate_and_fail_closed() {
    refused("TRUNCATE tasks", "42501");
    refused("TRUNCATE TABLE tags, billing.invoices", "42501");
    refused("truncate ONLY comments RESTART IDENTITY", "42501");
    unchanged("TRUNCATE tags");
    unchanged("TRUNCATE task_tags");
    refused("DO $$ BEGIN DELETE FROM tasks; END $$", "42501");
    refused(
        "DO $body$ BEGIN PERFORM 1 FROM Projects; END $body$ LANGUAGE plpgsql",
        "42501",
    );
    unchanged("DO $$ BEGIN RAISE NOTICE 'hi'; END $$");
    refused("SELECT * FROM tasks WHERE", "42601");
    refused("SELECT * FROM tasks WHERE id = ", "42601");
}

#[test]
fn errors_carry_sqlstate_message_and_hint() {
    let snap = scenario();
    let err = rewrite("TRUNCATE tasks", &snap, &session()).unwrap_err();
    assert_eq!(err.sqlstate(), "42501");
    assert!(err.message().contains("public.tasks"));
    assert!(err.hint().is_some());
    let err = rewrite("SELECT * FROM tasks WHERE", &snap, &session()).unwrap_err();
    assert!(matches!(err, RewriteError::Syntax { .. }));
}

#[test]
fn size_limit_and_hostile_inputs() {
    let snap = scenario();
    let mut s = session();
    s.limits = Limits {
        max_statement_bytes: 1000,
    };
    let long = format!("SELECT * FROM tasks WHERE title = '{}'", "x".repeat(2000));
    assert_eq!(rewrite(&long, &snap, &s).unwrap_err().sqlstate(), "54000");
    // Over the limit but naming nothing protected: untouched, never parsed.
    let other = format!("SELECT '{}'", "x".repeat(2000));
    assert!(rewrite(&other, &snap, &s).unwrap().is_unchanged());
    // Deep nesting: a clean 54001, no crash.
    let deep = format!(
        "SELECT * FROM tasks WHERE id = {}1{}",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    let r = rewrite(&deep, &snap, &session());
    assert!(
        matches!(&r, Err(e) if e.sqlstate() == "54001") || r.is_ok(),
        "{r:?}"
    );
}

#[test]
fn snapshot_options_shape_the_rewrite() {
    use crate::schema::ExtraEdge;
    let cat = || {
        Catalog::default()
            .table(
                "public.a",
                &[
                    "id bigint",
                    "deleted_at timestamp with time zone",
                    "gone_at timestamp with time zone",
                ],
                &["id"],
            )
            .table(
                "public.b",
                &[
                    "id bigint",
                    "a_id bigint",
                    "deleted_at timestamp with time zone",
                ],
                &["id"],
            )
            .table(
                "public.c",
                &[
                    "id bigint",
                    "a_ref bigint",
                    "deleted_at timestamp with time zone",
                ],
                &["id"],
            )
            .fk("b_a", "b", &["a_id"], "a", &["id"], FkAction::Cascade)
    };
    // Excluded table: not protected.
    let opts = SnapshotOptions {
        exclude: vec![("public".into(), "b".into())],
        ..SnapshotOptions::default()
    };
    let snap = SchemaSnapshot::build(cat(), &opts);
    assert!(
        rewrite("SELECT * FROM b", &snap, &session())
            .unwrap()
            .is_unchanged()
    );
    // Another column for one table.
    let opts = SnapshotOptions {
        column_overrides: vec![(("public".into(), "a".into()), "gone_at".into())],
        ..SnapshotOptions::default()
    };
    let snap = SchemaSnapshot::build(cat(), &opts);
    check_in(
        &snap,
        "SELECT * FROM a",
        "SELECT * FROM a WHERE a.gone_at IS NULL",
        &session(),
    );
    // Removed edge: no cascade to b; added edge: cascade to c.
    let opts = SnapshotOptions {
        remove_edges: vec!["b_a".into()],
        add_edges: vec![ExtraEdge {
            child: ("public".into(), "c".into()),
            child_columns: vec!["a_ref".into()],
            parent: ("public".into(), "a".into()),
            parent_columns: vec!["id".into()],
            on_delete: FkAction::Cascade,
        }],
        ..SnapshotOptions::default()
    };
    let snap = SchemaSnapshot::build(cat(), &opts);
    let out = rewrite("DELETE FROM a WHERE id = 1", &snap, &session()).unwrap();
    assert!(!out.sql.contains("public.b"), "{}", out.sql);
    assert!(
        out.sql
            .contains("UPDATE public.c AS tombstone_c SET deleted_at = pg_catalog.now()"),
        "{}",
        out.sql
    );
    // Default: cascade to b.
    let snap = SchemaSnapshot::build(cat(), &SnapshotOptions::default());
    let out = rewrite("DELETE FROM a WHERE id = 1", &snap, &session()).unwrap();
    assert!(
        out.sql.contains("UPDATE public.b AS tombstone_c"),
        "{}",
        out.sql
    );
}

#[test]
fn unprotected_parent_of_protected_child_cannot_hard_delete() {
    let cat = Catalog::default()
        .table("public.folders", &["id bigint"], &["id"])
        .table(
            "public.files",
            &[
                "id bigint",
                "folder_id bigint",
                "deleted_at timestamp with time zone",
            ],
            &["id"],
        )
        .fk(
            "files_folder",
            "files",
            &["folder_id"],
            "folders",
            &["id"],
            FkAction::Cascade,
        );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    let err = rewrite("DELETE FROM folders WHERE id = 1", &snap, &session()).unwrap_err();
    assert_eq!(err.sqlstate(), "42501");
    let err = rewrite("TRUNCATE folders CASCADE", &snap, &session()).unwrap_err();
    assert_eq!(err.sqlstate(), "42501");
    assert!(
        rewrite("TRUNCATE folders", &snap, &session())
            .unwrap()
            .is_unchanged()
    );
}

/// Every prefix and a few splices of many statements: no panic (a panic
/// would surface as "parser thread failed"), and every rewrite parses.
#[test]
fn mangled_input_never_panics_and_rewrites_parse() {
    let snap = scenario();
    let seeds = [
        "SELECT t.id, c.body FROM tasks t LEFT JOIN comments c ON c.task_id = t.id WHERE t.done ORDER BY 1 LIMIT 5",
        "DELETE FROM projects p USING teams t WHERE t.id = p.team_id AND t.name = $1 RETURNING p.*",
        "WITH RECURSIVE r AS (SELECT id FROM projects UNION SELECT t.id FROM r JOIN tasks t ON t.project_id = r.id) SELECT * FROM r",
        "UPDATE tasks t SET done = true FROM projects p WHERE p.id = t.project_id AND p.name LIKE 'a%' RETURNING t.id",
        "INSERT INTO users (email) SELECT email FROM users u WHERE EXISTS (SELECT 1 FROM comments c WHERE c.author_id = u.id) ON CONFLICT (email) DO NOTHING",
        "SELECT * FROM tags FULL JOIN tasks USING (id) NATURAL LEFT JOIN comments",
        "MERGE INTO tasks t USING projects p ON t.project_id = p.id WHEN MATCHED THEN UPDATE SET done = false",
        "COPY (SELECT * FROM billing.invoices i WHERE i.amount_cents > 5) TO STDOUT",
        "SELECT count(*) FILTER (WHERE t.done) OVER w FROM tasks t, LATERAL (SELECT * FROM comments c WHERE c.task_id = t.id LIMIT 1) x WINDOW w AS (PARTITION BY t.project_id) ORDER BY 1 FOR UPDATE OF t",
        "SELECT (SELECT max(id) FROM comments), CASE WHEN EXISTS (SELECT 1 FROM tasks) THEN 1 END FROM projects GROUP BY 1 HAVING count(*) > 0 UNION ALL SELECT 1, 2 FROM documents d RIGHT JOIN document_versions v ON v.document_id = d.id",
        "DELETE FROM tasks WHERE id IN (SELECT task_id FROM comments WHERE body = 'x') RETURNING *, title AS t",
    ];
    let noise = [
        " ( ", " ) ", " WHERE ", " JOIN ", " ON ", ",", " tasks ", " CASE ", " END ", "'", "$$",
        "/*", "--", ";",
    ];
    let mut n = 0;
    for sql in seeds {
        let mut inputs: Vec<String> = (0..=sql.len())
            .filter(|&i| sql.is_char_boundary(i))
            .map(|i| sql[..i].to_string())
            .collect();
        for w in noise {
            for at in (0..sql.len())
                .step_by(3)
                .filter(|&i| sql.is_char_boundary(i))
            {
                inputs.push(format!("{}{w}{}", &sql[..at], &sql[at..]));
            }
        }
        for input in inputs {
            n += 1;
            match rewrite(&input, &snap, &session()) {
                Ok(out) => {
                    if let std::borrow::Cow::Owned(text) = &out.sql {
                        assert!(
                            pg_query::parse(text, 0).is_ok(),
                            "rewrite of {input:?} does not parse: {text}"
                        );
                    }
                }
                Err(e) => assert!(
                    !e.to_string().contains("parser thread failed"),
                    "{input:?}: {e}"
                ),
            }
        }
    }
    assert!(n > 500);
}

#[test]
fn indirect_paths_to_protected_tables_are_watched() {
    let cat = Catalog::default()
        .table("public.orgs", &["id bigint"], &["id"])
        .table("public.folders", &["id bigint", "org_id bigint"], &["id"])
        .table(
            "public.files",
            &[
                "id bigint",
                "folder_id bigint",
                "deleted_at timestamp with time zone",
            ],
            &["id"],
        )
        .fk(
            "folders_org",
            "folders",
            &["org_id"],
            "orgs",
            &["id"],
            FkAction::Cascade,
        )
        .fk(
            "files_folder",
            "files",
            &["folder_id"],
            "folders",
            &["id"],
            FkAction::Cascade,
        );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    assert_eq!(
        rewrite("DELETE FROM orgs WHERE id = 1", &snap, &session())
            .unwrap_err()
            .sqlstate(),
        "42501"
    );
    assert_eq!(
        rewrite("TRUNCATE orgs CASCADE", &snap, &session())
            .unwrap_err()
            .sqlstate(),
        "42501"
    );
    assert!(
        rewrite("SELECT * FROM orgs", &snap, &session())
            .unwrap()
            .is_unchanged()
    );
}
