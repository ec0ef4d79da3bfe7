//! Session-level rules: tombstone's own tables are read-only, the
//! `tombstone.*` settings, `search_path` changes, hard delete for bypass
//! sessions.

use super::*;
use crate::rewrite::{SessionChange, StatementPlan};

/// The scenario plus tombstone's own tables.
fn with_tombstone() -> SchemaSnapshot {
    let cat = scenario_catalog()
        .table("tombstone.audit", &["id bigint", "action text"], &["id"])
        .table(
            "tombstone.audit_default",
            &["id bigint", "action text"],
            &[],
        )
        .table("tombstone.operations", &["id uuid", "actor text"], &["id"])
        .table("tombstone.operation_rows", &["op_id uuid", "pk jsonb"], &[])
        .table("tombstone.audit_settings", &["table_schema text"], &[]);
    SchemaSnapshot::build(cat, &SnapshotOptions::default())
}

fn result(sql: &str, session: &SessionContext) -> Result<String, RewriteErrorCode> {
    let snap = with_tombstone();
    rewrite(sql, &snap, session)
        .map(|r| r.sql.into_owned())
        .map_err(|e| RewriteErrorCode(e.sqlstate()))
}

#[derive(Debug, PartialEq, Eq)]
struct RewriteErrorCode(&'static str);

fn plans(sql: &str, session: &SessionContext) -> Vec<StatementPlan> {
    let snap = with_tombstone();
    match rewrite(sql, &snap, session) {
        Ok(r) => r.statements,
        Err(e) => panic!("{sql}: {e}"),
    }
}

#[test]
fn writes_to_tombstone_tables_are_refused_for_normal_sessions() {
    let normal = session();
    for sql in [
        "UPDATE tombstone.audit SET actor = 'x'",
        "DELETE FROM tombstone.audit",
        "DELETE FROM tombstone.audit WHERE id IN (SELECT id FROM tombstone.audit LIMIT 1)",
        "TRUNCATE tombstone.audit",
        "TRUNCATE tags, tombstone.audit_default",
        "INSERT INTO tombstone.audit (action) VALUES ('insert')",
        "INSERT INTO tombstone.operations (actor) VALUES ('me')",
        "DELETE FROM tombstone.operation_rows",
        "UPDATE TOMBSTONE.Operations SET actor = 'x'",
        "UPDATE \"tombstone\".\"audit\" SET action = 'x'",
        "MERGE INTO tombstone.audit a USING tags t ON a.id = t.id WHEN MATCHED THEN DELETE",
        "COPY tombstone.audit FROM STDIN",
        "WITH d AS (DELETE FROM tombstone.audit RETURNING id) SELECT count(*) FROM d",
        "SELECT 1; DELETE FROM tombstone.audit_2026_11",
        "DROP TABLE tombstone.audit",
        "DROP SCHEMA tombstone CASCADE",
        "ALTER TABLE tombstone.audit DISABLE TRIGGER ALL",
        "ALTER TABLE tombstone.audit RENAME TO old_audit",
        "DELETE FROM tombstone.audit_settings",
    ] {
        assert_eq!(
            result(sql, &normal),
            Err(RewriteErrorCode("42501")),
            "{sql}"
        );
    }
    // Unqualified, through the search path.
    let mut in_schema = session();
    in_schema.search_path = vec!["tombstone".into(), "public".into()];
    for sql in ["DELETE FROM audit", "UPDATE operations SET actor = NULL"] {
        assert_eq!(
            result(sql, &in_schema),
            Err(RewriteErrorCode("42501")),
            "{sql}"
        );
    }
    // Not in the snapshot yet: tombstone's own names are still guarded.
    let bare = scenario();
    let out = rewrite("DELETE FROM audit", &bare, &in_schema);
    assert_eq!(out.map_err(|e| e.sqlstate()).err(), Some("42501"));
    assert!(rewrite("DELETE FROM audit", &bare, &session()).is_ok());
    // A CTE of that name is not the table.
    assert!(result("WITH audit AS (SELECT 1) SELECT * FROM audit", &in_schema).is_ok());
}

#[test]
fn reads_of_tombstone_tables_pass_unchanged() {
    let snap = with_tombstone();
    for sql in [
        "SELECT * FROM tombstone.audit WHERE table_name = 'tasks'",
        "COPY tombstone.audit TO STDOUT",
        "SELECT count(*) FROM tombstone.operations o JOIN tombstone.operation_rows r ON r.op_id = o.id",
        "INSERT INTO tags (name) SELECT action FROM tombstone.audit",
    ] {
        for s in [session(), bypass(Visibility::Setting)] {
            let out = rewrite(sql, &snap, &s).unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(out.is_unchanged(), "{sql} -> {}", out.sql);
        }
    }
}

#[test]
fn bypass_sessions_may_manage_operations_but_not_the_audit_trail() {
    let admin = bypass(Visibility::Setting);
    for sql in [
        "DELETE FROM tombstone.audit",
        "UPDATE tombstone.audit SET action = 'x'",
        "TRUNCATE tombstone.audit",
        "DELETE FROM tombstone.audit_default",
        "INSERT INTO tombstone.audit (action) VALUES ('x')",
        "DROP TABLE tombstone.audit",
    ] {
        assert_eq!(result(sql, &admin), Err(RewriteErrorCode("42501")), "{sql}");
    }
    for sql in [
        "DELETE FROM tombstone.operations WHERE id = $1",
        "UPDATE tombstone.audit_settings SET table_schema = 'x'",
        "SELECT * FROM tombstone.audit",
    ] {
        assert_eq!(result(sql, &admin), Ok(sql.to_string()), "{sql}");
    }
}

#[test]
fn precheck_parses_statements_naming_tombstone_tables() {
    let snap = with_tombstone();
    assert!(crate::rewrite::may_need_rewrite("delete from AUDIT", &snap));
    assert!(crate::rewrite::may_need_rewrite(
        "truncate operation_rows",
        &snap
    ));
    assert!(crate::rewrite::may_need_rewrite(
        "set search_path = x",
        &snap
    ));
    assert!(crate::rewrite::may_need_rewrite("RESET ALL", &snap));
    assert!(crate::rewrite::may_need_rewrite(
        "select set_config('a', 'b', false)",
        &snap
    ));
    assert!(!crate::rewrite::may_need_rewrite(
        "select * from tags",
        &snap
    ));
}

#[test]
fn visibility_setting_is_for_bypass_sessions_only() {
    let normal = session();
    for sql in [
        "SET tombstone.visibility = 'deleted'",
        "SET SESSION tombstone.visibility TO 'all'",
        "SET LOCAL tombstone.visibility = active",
        "RESET tombstone.visibility",
        "SET tombstone.visibility TO DEFAULT",
        "SET \"tombstone.visibility\" = 'all'",
        "SELECT set_config('tombstone.visibility', 'deleted', false)",
        "SELECT pg_catalog.set_config('TOMBSTONE.VISIBILITY', $1, true)",
        "SELECT 1 FROM tags WHERE set_config('tombstone.visibility', 'all', false) IS NOT NULL",
    ] {
        assert_eq!(
            result(sql, &normal),
            Err(RewriteErrorCode("42501")),
            "{sql}"
        );
    }
    let admin = bypass(Visibility::Setting);
    for sql in [
        "SET tombstone.visibility = 'deleted'",
        "SET tombstone.visibility = deleted",
        "SET SESSION tombstone.visibility TO 'all'",
        "SET LOCAL tombstone.visibility = active",
        "SET tombstone.visibility = ''",
        "RESET tombstone.visibility",
        "SET tombstone.visibility TO DEFAULT",
        "SELECT set_config('tombstone.visibility', 'deleted', false)",
        "SELECT set_config('tombstone.visibility', $1, false)",
    ] {
        assert_eq!(result(sql, &admin), Ok(sql.to_string()), "{sql}");
    }
    for sql in [
        "SET tombstone.visibility = 'trash'",
        "SET tombstone.visibility = 'Deleted'",
        "SET tombstone.visibility = 1",
        "SET tombstone.visibility = 'all', 'deleted'",
        "SELECT set_config('tombstone.visibility', 'everything', false)",
    ] {
        assert_eq!(result(sql, &admin), Err(RewriteErrorCode("22023")), "{sql}");
    }
}

#[test]
fn client_addr_cannot_be_set_by_anyone() {
    for s in [session(), bypass(Visibility::Setting)] {
        for sql in [
            "SET tombstone.client_addr = '10.0.0.1'",
            "SET LOCAL tombstone.client_addr = '10.0.0.1'",
            "RESET tombstone.client_addr",
            "SELECT set_config('tombstone.client_addr', '10.0.0.1', false)",
            "SELECT set_config($1, $2, false)",
        ] {
            assert_eq!(result(sql, &s), Err(RewriteErrorCode("42501")), "{sql}");
        }
    }
}

#[test]
fn other_settings_pass_through() {
    for sql in [
        "SET tombstone.actor = 'alice'",
        "SET LOCAL tombstone.actor = 'alice'",
        "SELECT set_config('tombstone.actor', $1, true)",
        "RESET tombstone.actor",
        "SET statement_timeout = 0",
        "SELECT set_config('application_name', 'x', false)",
    ] {
        assert_eq!(result(sql, &session()), Ok(sql.to_string()), "{sql}");
        assert!(
            plans(sql, &session()).iter().all(|p| p.session.is_none()),
            "{sql}"
        );
    }
}

#[test]
fn bypass_predicates_read_the_visibility_setting() {
    let admin = bypass(Visibility::Setting);
    let case = |c: &str| {
        format!(
            "(CASE pg_catalog.current_setting('tombstone.visibility', true) WHEN 'deleted' THEN {c} IS NOT NULL WHEN 'active' THEN {c} IS NULL ELSE true END)"
        )
    };
    check_with(
        "SELECT * FROM tasks WHERE id = 1",
        &format!(
            "SELECT * FROM tasks WHERE (id = 1) AND {}",
            case("tasks.deleted_at")
        ),
        &admin,
    );
    check_with(
        "SELECT * FROM tasks t LEFT JOIN comments c ON c.task_id = t.id",
        &format!(
            "SELECT * FROM tasks t LEFT JOIN comments c ON (c.task_id = t.id) AND {} WHERE {}",
            case("c.deleted_at"),
            case("t.deleted_at")
        ),
        &admin,
    );
    check_with(
        "SELECT * FROM tasks t FULL JOIN projects p ON p.id = t.project_id",
        &format!(
            "SELECT * FROM (SELECT * FROM tasks WHERE {}) t FULL JOIN (SELECT * FROM projects WHERE {}) p ON p.id = t.project_id",
            case("deleted_at"),
            case("deleted_at")
        ),
        &admin,
    );
    check_with(
        "UPDATE tasks SET done = true WHERE id = 1",
        &format!(
            "UPDATE tasks SET done = true WHERE (id = 1) AND {}",
            case("tasks.deleted_at")
        ),
        &admin,
    );
    check_with(
        "COPY tasks TO STDOUT",
        &format!(
            "COPY (SELECT * FROM tasks WHERE {}) TO STDOUT",
            case("deleted_at")
        ),
        &admin,
    );
}

#[test]
fn search_path_changes_are_reported() {
    let s = session();
    let change = |sql: &str| -> Vec<Option<SessionChange>> {
        plans(sql, &s).into_iter().map(|p| p.session).collect()
    };
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        change("SET search_path TO app, \"My Schema\", 'a b', public"),
        [Some(SessionChange::SearchPath(path(&[
            "app",
            "My Schema",
            "a b",
            "public"
        ])))]
    );
    assert_eq!(
        change("SET SESSION search_path = \"$user\", billing"),
        [Some(SessionChange::SearchPath(path(&["$user", "billing"])))]
    );
    assert_eq!(
        change("SET LOCAL search_path = billing"),
        [Some(SessionChange::LocalSearchPath(path(&["billing"])))]
    );
    for sql in [
        "RESET search_path",
        "SET search_path TO DEFAULT",
        "RESET ALL",
        "DISCARD ALL",
    ] {
        assert_eq!(change(sql), [Some(SessionChange::ResetSearchPath)], "{sql}");
    }
    assert_eq!(
        change("SET LOCAL search_path TO DEFAULT"),
        [Some(SessionChange::LocalResetSearchPath)]
    );
    // set_config runs where the expression is evaluated (maybe not at
    // all, maybe once per row): never followed, always re-read.
    for sql in [
        "SELECT pg_catalog.set_config('search_path', 'billing, public', false)",
        "SELECT set_config('search_path', $1, false)",
        "SELECT CASE WHEN false THEN set_config('search_path', 'billing', false) END",
        "SET search_path = ''",
        "SET ROLE other",
        "RESET ROLE",
        "SET SESSION AUTHORIZATION other",
        "DO $$BEGIN PERFORM set_config('search_path', 'billing', false); END$$",
        "CALL do_something()",
        "EXECUTE p",
    ] {
        assert_eq!(change(sql), [Some(SessionChange::Unknown)], "{sql}");
    }
    // One plan per statement, in order.
    assert_eq!(
        change("SELECT 1; SET search_path = billing; SELECT 2"),
        [
            None,
            Some(SessionChange::SearchPath(path(&["billing"]))),
            None
        ]
    );
}

#[test]
fn later_statements_of_a_string_use_the_new_search_path() {
    // `invoices` is billing.invoices once the path names billing.
    check(
        "SELECT * FROM invoices; SET search_path = billing, public; SELECT * FROM invoices",
        "SELECT * FROM invoices; SET search_path = billing, public; SELECT * FROM invoices WHERE invoices.deleted_at IS NULL",
    );
    let mut billing = session();
    billing.search_path = vec!["billing".into()];
    check_with(
        "SELECT id FROM invoices",
        "SELECT id FROM invoices WHERE invoices.deleted_at IS NULL",
        &billing,
    );
}

#[test]
fn hard_delete_for_bypass_sessions_when_configured() {
    let mut admin = bypass(Visibility::Setting);
    admin.hard_delete = true;
    let case = |c: &str| {
        format!(
            "(CASE pg_catalog.current_setting('tombstone.visibility', true) WHEN 'deleted' THEN {c} IS NOT NULL WHEN 'active' THEN {c} IS NULL ELSE true END)"
        )
    };
    check_with(
        "DELETE FROM tasks WHERE id = $1",
        &format!(
            "DELETE FROM tasks WHERE (id = $1) AND {}",
            case("tasks.deleted_at")
        ),
        &admin,
    );
    let mut all = bypass(Visibility::All);
    all.hard_delete = true;
    check_with(
        "DELETE FROM projects p USING teams t WHERE t.id = p.team_id",
        "DELETE FROM projects p USING teams t WHERE t.id = p.team_id",
        &all,
    );
    assert!(plans("DELETE FROM tasks WHERE id = 1", &admin).is_empty());
    // Still refused: the audit trail.
    assert_eq!(
        result("DELETE FROM tombstone.audit", &admin),
        Err(RewriteErrorCode("42501"))
    );
    // Without the option a bypass DELETE stays soft, and normal sessions
    // ignore the option.
    let soft = bypass(Visibility::Setting);
    assert!(
        result("DELETE FROM tasks WHERE id = 1", &soft)
            .unwrap()
            .contains("SET deleted_at = pg_catalog.now()")
    );
    let mut normal = session();
    normal.hard_delete = true;
    assert!(
        result("DELETE FROM tasks WHERE id = 1", &normal)
            .unwrap()
            .contains("SET deleted_at = pg_catalog.now()")
    );
}

#[test]
fn an_unknown_search_path_refuses_names_it_could_misread() {
    let unknown = SessionContext {
        search_path_unknown: true,
        ..session()
    };
    for sql in [
        "SELECT name FROM projects",
        "SELECT * FROM tags JOIN tasks ON tasks.id = tags.id",
        "SELECT * FROM invoices",
        "DELETE FROM tasks WHERE id = 1",
        "UPDATE audit SET action = 'x'",
        "WITH x AS (SELECT 1) SELECT * FROM x, LATERAL (SELECT * FROM comments) c",
    ] {
        assert_eq!(
            result(sql, &unknown),
            Err(RewriteErrorCode("42501")),
            "{sql}"
        );
    }
    // Qualified names and unprotected ones need no path.
    for sql in [
        "SELECT name FROM public.projects",
        "SELECT * FROM billing.invoices",
        "SELECT * FROM tags",
        "SET search_path = billing",
    ] {
        assert!(result(sql, &unknown).is_ok(), "{sql}");
    }
    // A plain SET makes it known again for the rest of the string.
    assert_eq!(
        result(
            "SET search_path = public; SELECT name FROM projects",
            &unknown
        ),
        Ok(
            "SET search_path = public; SELECT name FROM projects WHERE projects.deleted_at IS NULL"
                .into()
        )
    );
}

#[test]
fn later_statements_after_an_unfollowable_change_are_refused_when_names_depend_on_it() {
    let s = session();
    for sql in [
        "SELECT set_config('search_path', 'billing', false); SELECT name FROM projects",
        "RESET search_path; SELECT name FROM projects",
        "DISCARD ALL; SELECT name FROM projects",
        "DO $$BEGIN NULL; END$$; SELECT name FROM projects",
        "SET ROLE other; SELECT name FROM projects",
        // A SET undone by ROLLBACK (TO) or ended by COMMIT in the same string.
        "BEGIN; SET LOCAL search_path = billing; COMMIT; SELECT name FROM projects",
        "BEGIN; SET search_path = billing; ROLLBACK; SELECT name FROM projects",
        "SAVEPOINT a; SET search_path = billing; ROLLBACK TO a; SELECT * FROM invoices",
    ] {
        assert_eq!(result(sql, &s), Err(RewriteErrorCode("42501")), "{sql}");
    }
    // Without a change, transaction control changes nothing.
    assert!(
        result(
            "BEGIN; SELECT name FROM projects; COMMIT; SELECT name FROM tasks",
            &s
        )
        .is_ok()
    );
    // A change earlier in the transaction (the session says so) makes a
    // COMMIT or ROLLBACK in the string undo-able too.
    let provisional = SessionContext {
        search_path_provisional: true,
        ..session()
    };
    assert_eq!(
        result("ROLLBACK; SELECT name FROM projects", &provisional),
        Err(RewriteErrorCode("42501"))
    );
    assert!(result("SELECT name FROM projects", &provisional).is_ok());
}

#[test]
fn calls_of_user_defined_functions_may_change_the_search_path() {
    let snap = SchemaSnapshot::build(
        scenario_catalog().function("go_billing"),
        &SnapshotOptions::default(),
    );
    let s = session();
    for sql in [
        "SELECT go_billing()",
        "SELECT public.GO_BILLING()",
        "SELECT \"go_billing\"() FROM tags",
        "SELECT * FROM tags WHERE go_billing() IS NULL",
    ] {
        assert!(crate::rewrite::may_need_rewrite(sql, &snap), "{sql}");
        let plans = rewrite(sql, &snap, &s).unwrap().statements;
        assert_eq!(
            plans.first().and_then(|p| p.session.clone()),
            Some(SessionChange::Unknown),
            "{sql}"
        );
    }
    assert!(!crate::rewrite::may_need_rewrite(
        "SELECT now(), count(*) FROM tags",
        &snap
    ));
    assert!(
        rewrite("SELECT now() FROM tasks", &snap, &s)
            .unwrap()
            .statements
            .is_empty()
    );
}
