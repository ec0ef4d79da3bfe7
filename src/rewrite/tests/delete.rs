//! DELETE: soft delete with cascades, on a small schema whose output fits
//! on a screen, plus properties on the scenario schema.

use super::*;
use crate::rewrite::ReplyPlan;

/// `parent` ← `child` (CASCADE) ← `grandchild` (CASCADE); `nullable` (SET
/// NULL), `blocker` (RESTRICT), `plain` (CASCADE, unprotected).
fn small() -> SchemaSnapshot {
    use FkAction::*;
    let ts = "deleted_at timestamp with time zone";
    let cat = Catalog::default()
        .table("public.parent", &["id bigint", "name text", ts], &["id"])
        .table(
            "public.child",
            &["id bigint", "parent_id bigint", ts],
            &["id"],
        )
        .table(
            "public.nullable",
            &["id bigint", "parent_id bigint", ts],
            &["id"],
        )
        .table("public.plain", &["parent_id bigint"], &[])
        .table("public.lonely", &["id bigint", ts], &["id"])
        .fk(
            "child_fk",
            "child",
            &["parent_id"],
            "parent",
            &["id"],
            Cascade,
        )
        .fk(
            "nullable_fk",
            "nullable",
            &["parent_id"],
            "parent",
            &["id"],
            SetNull,
        )
        .fk(
            "plain_fk",
            "plain",
            &["parent_id"],
            "parent",
            &["id"],
            Cascade,
        );
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

/// The operation hint the outer UPDATE of a `lonely` delete sets.
fn hint(table: &str, actor: &str) -> String {
    format!(
        "(SELECT pg_catalog.set_config('tombstone.operation', pg_catalog.jsonb_build_object('id', pg_catalog.gen_random_uuid(), 'stmt', pg_catalog.statement_timestamp(), 'schema', 'public', 'table', '{table}', 'actor', {actor})::text, true)) IS NOT NULL"
    )
}

const ACTOR: &str =
    "coalesce(nullif(pg_catalog.current_setting('tombstone.actor', true), ''), session_user)";

/// `outer` with the hint after the key match.
fn hinted(outer: &str) -> String {
    outer.replacen(
        "tombstone_target.tombstone_k1",
        &format!(
            "tombstone_target.tombstone_k1 AND {}",
            hint("lonely", ACTOR)
        ),
        1,
    )
}

fn lonely(target_where: &str, outer: &str) -> String {
    format!(
        "WITH tombstone_target AS (SELECT {k} FROM {target_where} FOR UPDATE OF {lock})\n{outer}",
        outer = hinted(outer),
        k = "lonely.id AS tombstone_k1",
        lock = "lonely",
    )
}

#[test]
fn delete_without_children() {
    let s = small();
    check_in(
        &s,
        "DELETE FROM lonely WHERE id = $1",
        &lonely(
            "lonely WHERE (id = $1) AND lonely.deleted_at IS NULL",
            "UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1",
        ),
        &session(),
    );
    check_in(
        &s,
        "DELETE FROM lonely",
        &lonely(
            "lonely WHERE lonely.deleted_at IS NULL",
            "UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1",
        ),
        &session(),
    );
    check_in(
        &s,
        "/* c */ DELETE FROM lonely WHERE id = 1 /*actor='x'*/",
        &format!(
            "/* c */ {} /*actor='x'*/",
            lonely(
                "lonely WHERE (id = 1) AND lonely.deleted_at IS NULL",
                "UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1",
            )
        ),
        &session(),
    );
    check_in(
        &s,
        "DELETE FROM lonely WHERE id = 1 RETURNING *",
        &lonely(
            "lonely WHERE (id = 1) AND lonely.deleted_at IS NULL",
            "UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 RETURNING lonely.id, NULL::timestamp with time zone AS deleted_at",
        ),
        &session(),
    );
    check_in(
        &s,
        "DELETE FROM lonely WHERE id = 1 RETURNING id, deleted_at, deleted_at AS d, coalesce(deleted_at, now())",
        &lonely(
            "lonely WHERE (id = 1) AND lonely.deleted_at IS NULL",
            "UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 RETURNING id, NULL::timestamp with time zone AS deleted_at, (NULL::timestamp with time zone) AS d, coalesce((NULL::timestamp with time zone), now())",
        ),
        &session(),
    );
}

#[test]
fn delete_with_alias_only_and_using() {
    let s = small();
    let k = "l.id AS tombstone_k1";
    check_in(
        &s,
        "DELETE FROM ONLY lonely AS l WHERE l.id = 1",
        &hinted(&format!(
            "WITH tombstone_target AS (SELECT {k} FROM ONLY lonely AS l WHERE (l.id = 1) AND l.deleted_at IS NULL FOR UPDATE OF l)\nUPDATE ONLY lonely AS l SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE l.deleted_at IS NULL AND l.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1"
        )),
        &session(),
    );
    check_in(
        &s,
        "DELETE FROM lonely l USING parent p WHERE p.id = l.id",
        &hinted(&format!(
            "WITH tombstone_target AS (SELECT {k} FROM lonely l, parent p WHERE (p.id = l.id) AND p.deleted_at IS NULL AND l.deleted_at IS NULL FOR UPDATE OF l)\nUPDATE lonely l SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE l.deleted_at IS NULL AND l.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1"
        )),
        &session(),
    );
    // RETURNING reads the USING item: the outer UPDATE joins it again,
    // pinned by tableoid and ctid to the row tombstone_target chose, and
    // the client's WHERE is not evaluated a second time (SPEC W10).
    check_in(
        &s,
        "DELETE FROM lonely l USING parent p WHERE p.id = l.id RETURNING l.id, p.id",
        &format!(
            "WITH tombstone_target AS (SELECT {k}, p.tableoid AS tombstone_u1o, p.ctid AS tombstone_u1c FROM lonely l, parent p WHERE (p.id = l.id) AND p.deleted_at IS NULL AND l.deleted_at IS NULL FOR UPDATE OF l)\nUPDATE lonely l SET deleted_at = pg_catalog.now() FROM tombstone_target, parent p WHERE p.deleted_at IS NULL AND l.deleted_at IS NULL AND l.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND p.tableoid OPERATOR(pg_catalog.=) tombstone_target.tombstone_u1o AND p.ctid OPERATOR(pg_catalog.=) tombstone_target.tombstone_u1c AND {} RETURNING l.id, p.id",
            hint("lonely", ACTOR)
        ),
        &session(),
    );
    // A join of tables in USING: each table pinned.
    let out = rewrite(
        "DELETE FROM lonely l USING parent p JOIN plain x ON x.parent_id = p.id WHERE p.id = l.id AND random() < 0.5 RETURNING x.parent_id",
        &s,
        &session(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.sql.contains("FROM tombstone_target, parent p JOIN plain x ON x.parent_id = p.id WHERE p.deleted_at IS NULL AND l.deleted_at IS NULL AND l.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 AND p.tableoid OPERATOR(pg_catalog.=) tombstone_target.tombstone_u1o AND p.ctid OPERATOR(pg_catalog.=) tombstone_target.tombstone_u1c AND x.tableoid OPERATOR(pg_catalog.=) tombstone_target.tombstone_u2o"),
        "{}",
        out.sql
    );
    assert_eq!(out.sql.matches("random()").count(), 1, "{}", out.sql);
    // A USING item without a ctid (a subquery): the WHERE joins it again.
    let out = rewrite(
        "DELETE FROM lonely l USING (SELECT id FROM parent) p WHERE p.id = l.id RETURNING p.id",
        &s,
        &session(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.sql.contains("FROM tombstone_target, (SELECT id FROM parent WHERE parent.deleted_at IS NULL) p WHERE (p.id = l.id) AND l.deleted_at IS NULL"),
        "{}",
        out.sql
    );
    // RETURNING of the target's own columns only: evaluated once.
    let out = rewrite(
        "DELETE FROM lonely l USING parent p WHERE p.id = l.id RETURNING l.id, id",
        &s,
        &session(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.sql
            .contains("FROM tombstone_target WHERE l.deleted_at IS NULL"),
        "{}",
        out.sql
    );
    check_in(
        &s,
        "WITH x AS (SELECT 1 AS id) DELETE FROM lonely WHERE id IN (SELECT id FROM x)",
        &hinted(
            "WITH x AS (SELECT 1 AS id),\n     tombstone_target AS (SELECT lonely.id AS tombstone_k1 FROM lonely WHERE (id IN (SELECT id FROM x)) AND lonely.deleted_at IS NULL FOR UPDATE OF lonely)\n UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1",
        ),
        &session(),
    );
}

#[test]
fn cascade_set_null_and_unprotected_children() {
    let s = small();
    let out = rewrite("DELETE FROM parent WHERE id = 7", &s, &session()).unwrap();
    let sql = out.sql.as_ref();
    assert!(sql.contains("tombstone_d1 AS (UPDATE public.child AS tombstone_c SET deleted_at = pg_catalog.now() WHERE tombstone_c.deleted_at IS NULL AND (EXISTS (SELECT 1 FROM tombstone_target tombstone_p WHERE tombstone_c.parent_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1))"), "{sql}");
    assert!(sql.contains("tombstone_n1 AS (UPDATE public.nullable AS tombstone_c SET parent_id = NULL FROM tombstone_target tombstone_p WHERE tombstone_c.parent_id OPERATOR(pg_catalog.=) tombstone_p.tombstone_k1 AND tombstone_c.deleted_at IS NULL)"), "{sql}");
    assert!(
        !sql.contains("public.plain"),
        "unprotected CASCADE child left alone: {sql}"
    );
    assert_eq!(
        out.statements[0].reply,
        ReplyPlan::RenameTag {
            from: "UPDATE",
            to: "DELETE"
        }
    );
    assert!(pg_query::parse(sql, 0).is_ok());
}

#[test]
fn scenario_deletes_parse_and_rename_the_tag() {
    let snap = scenario();
    for sql in [
        "DELETE FROM projects WHERE id = 1",
        "DELETE FROM projects WHERE id = $1 RETURNING id, name",
        "DELETE FROM public.tasks WHERE project_id = $1 AND done",
        "DELETE FROM billing.invoices WHERE amount_cents > 1000",
        "DELETE FROM users WHERE email = $1",
        "DELETE FROM teams t WHERE t.name LIKE 'Team%'",
        "DELETE FROM categories WHERE id = 3",
        "DELETE FROM team_members WHERE team_id = 1 AND user_id = $1",
        "DELETE FROM comments USING tasks WHERE comments.task_id = tasks.id AND tasks.done",
        "DELETE FROM document_versions dv WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = dv.document_id)",
        "delete from TASKS where ID = 1",
        "DELETE FROM tasks WHERE id IN (SELECT task_id FROM task_tags WHERE tag_id = 3)",
    ] {
        let out = rewrite(sql, &snap, &session()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(pg_query::parse(&out.sql, 0).is_ok(), "{}", out.sql);
        assert_eq!(
            out.statements[0].reply,
            ReplyPlan::RenameTag {
                from: "UPDATE",
                to: "DELETE"
            },
            "{sql}"
        );
        assert!(out.sql.contains("'tombstone.operation'"), "{sql}");
        assert!(!out.sql.contains("INSERT INTO tombstone"), "{sql}");
        assert!(
            !out.sql.contains("DELETE FROM"),
            "no physical delete: {}",
            out.sql
        );
    }
}

#[test]
fn restrict_checks_and_projects_cascade() {
    let snap = scenario();
    let out = rewrite("DELETE FROM categories WHERE id = 1", &snap, &session()).unwrap();
    assert!(
        out.sql.contains(
            "tombstone.fk_violation('categories', 'projects_category_id_fkey', 'projects', 'id'"
        ),
        "{}",
        out.sql
    );
    let out = rewrite("DELETE FROM projects WHERE id = 1", &snap, &session()).unwrap();
    for t in [
        "project_members",
        "tasks",
        "documents",
        "billing.invoices",
        "comments",
        "attachments",
        "time_entries",
        "document_versions",
    ] {
        assert!(
            out.sql.contains(&format!(
                "UPDATE {} AS tombstone_c SET deleted_at = pg_catalog.now()",
                if t.contains('.') {
                    t.to_string()
                } else {
                    format!("public.{t}")
                }
            )),
            "{t}"
        );
    }
    assert!(!out.sql.contains("task_tags"));
}

#[test]
fn deletes_refused_or_passed() {
    refused(
        "WITH d AS (DELETE FROM tasks RETURNING id), e AS (DELETE FROM comments RETURNING id) SELECT 1",
        "0A000",
    );
    refused(
        "WITH d AS (DELETE FROM tasks RETURNING id) DELETE FROM comments",
        "0A000",
    );
    refused(
        "WITH d AS (WITH x AS (SELECT 1) DELETE FROM tasks RETURNING id) SELECT 1",
        "0A000",
    );
    refused("DELETE FROM tasks WHERE CURRENT OF c", "0A000");
}

#[test]
fn delete_inside_with_puts_its_ctes_before_it() {
    let s = small();
    let out = rewrite(
        "WITH x AS (SELECT 1 AS id), d AS (DELETE FROM lonely WHERE id IN (SELECT id FROM x) RETURNING id) SELECT count(*) FROM d",
        &s,
        &session(),
    )
    .unwrap();
    let expected = hinted(
        "WITH x AS (SELECT 1 AS id), tombstone_target AS (SELECT lonely.id AS tombstone_k1 FROM lonely WHERE (id IN (SELECT id FROM x)) AND lonely.deleted_at IS NULL FOR UPDATE OF lonely),\n     d AS (UPDATE lonely SET deleted_at = pg_catalog.now() FROM tombstone_target WHERE lonely.deleted_at IS NULL AND lonely.id OPERATOR(pg_catalog.=) tombstone_target.tombstone_k1 RETURNING id) SELECT count(*) FROM d",
    );
    assert_eq!(out.sql, expected);
    assert!(
        out.statements.is_empty(),
        "the outer statement's tag is kept"
    );
    assert!(pg_query::parse(&out.sql, 0).is_ok());
}

#[test]
fn delete_of_unprotected_tables() {
    unchanged("DELETE FROM task_tags WHERE tag_id = 1");
    check(
        "DELETE FROM task_tags USING tasks WHERE task_tags.task_id = tasks.id AND tasks.id = 5",
        "DELETE FROM task_tags USING tasks WHERE (task_tags.task_id = tasks.id AND tasks.id = 5) AND tasks.deleted_at IS NULL",
    );
    check(
        "DELETE FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE done)",
        "DELETE FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE (done) AND tasks.deleted_at IS NULL)",
    );
}

#[test]
fn prepare_and_execute_carry_the_plan() {
    let snap = scenario();
    let out = rewrite(
        "PREPARE d(bigint) AS DELETE FROM tasks WHERE id = $1",
        &snap,
        &session(),
    )
    .unwrap();
    assert_eq!(
        out.statements[0].prepared,
        Some((
            "d".to_string(),
            ReplyPlan::RenameTag {
                from: "UPDATE",
                to: "DELETE"
            }
        ))
    );
    assert!(
        out.sql
            .starts_with("PREPARE d(bigint) AS WITH tombstone_target")
    );
    let out = rewrite("EXECUTE d(5)", &snap, &session()).unwrap();
    assert_eq!(out.sql, "EXECUTE d(5)");
    assert_eq!(
        out.statements[0].reply,
        ReplyPlan::AsPrepared { name: "d".into() }
    );
    let out = rewrite("EXPLAIN DELETE FROM tasks WHERE id = 1", &snap, &session()).unwrap();
    assert!(out.sql.starts_with("EXPLAIN WITH tombstone_target"));
    assert!(out.statements.is_empty(), "EXPLAIN keeps its own tag");
}

#[test]
fn deleted_by_is_set_to_the_actor_when_text() {
    let cat = Catalog::default()
        .table(
            "public.notes",
            &[
                "id bigint",
                "deleted_at timestamp with time zone",
                "deleted_by text",
            ],
            &["id"],
        )
        .table(
            "public.marks",
            &[
                "id bigint",
                "deleted_at timestamp with time zone",
                "deleted_by uuid",
            ],
            &["id"],
        );
    let s = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    let mut session = session();
    session.actor = Some("alice's app".into());
    let out = rewrite("DELETE FROM notes WHERE id = 1 RETURNING *", &s, &session).unwrap();
    assert!(
        out.sql.contains(
            "UPDATE notes SET deleted_at = pg_catalog.now(), deleted_by = 'alice''s app' FROM tombstone_target"
        ),
        "{}",
        out.sql
    );
    assert!(out.sql.contains("RETURNING notes.id, NULL::timestamp with time zone AS deleted_at, NULL::text AS deleted_by"), "{}", out.sql);
    assert!(
        out.sql.contains(&hint("notes", "'alice''s app'")),
        "{}",
        out.sql
    );
    // A non-text deleted_by is left for the application.
    let out = rewrite("DELETE FROM marks WHERE id = 1", &s, &super::session()).unwrap();
    assert!(
        out.sql
            .contains("UPDATE marks SET deleted_at = pg_catalog.now() FROM tombstone_target"),
        "{}",
        out.sql
    );
}

#[test]
fn a_table_migrate_has_not_installed_is_refused_not_left_unrecorded() {
    // Protected after the last migrate (a `deleted_at` added by hand): no
    // trigger would record the soft delete, so it could not be restored.
    let mut cat = Catalog::default()
        .table(
            "public.parent",
            &["id bigint", "deleted_at timestamptz"],
            &["id"],
        )
        .table(
            "public.child",
            &["id bigint", "parent_id bigint", "deleted_at timestamptz"],
            &["id"],
        );
    cat.foreign_keys.push(crate::schema::RawForeignKey {
        name: "child_parent".into(),
        child: ("public".into(), "child".into()),
        child_columns: vec!["parent_id".into()],
        parent: ("public".into(), "parent".into()),
        parent_columns: vec!["id".into()],
        on_delete: crate::schema::FkAction::Cascade,
        set_columns: vec![],
        timing: crate::schema::FkTiming::NotDeferrable,
        parent_checked: false,
        child_check: None,
    });
    cat.tables[1].records_operations = false;
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    let e = rewrite("DELETE FROM parent WHERE id = 1", &snap, &session()).expect_err("refused");
    assert_eq!(e.sqlstate(), "55000");
    assert!(e.message().contains("public.child"), "{}", e.message());
    // Reads are not affected.
    assert!(rewrite("SELECT * FROM child", &snap, &session()).is_ok());
}
