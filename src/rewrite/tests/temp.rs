//! The session's temporary relations: an unqualified name resolves to one
//! of them first (unless the path lists `pg_temp` later), as PostgreSQL
//! resolves it; statements that may change them are reported.

use super::*;
use crate::rewrite::{SessionChange, may_drop_temp};

fn with_temp(names: &[&str]) -> SessionContext {
    SessionContext {
        temp_relations: names.iter().map(|s| s.to_string()).collect(),
        ..session()
    }
}

fn with_path(mut s: SessionContext, path: &[&str]) -> SessionContext {
    s.search_path = path.iter().map(|s| s.to_string()).collect();
    s
}

/// The session changes reported for each statement of `sql`.
fn changes(sql: &str, session: &SessionContext) -> Vec<Option<SessionChange>> {
    match rewrite(sql, &scenario(), session) {
        Ok(r) => r.statements.into_iter().map(|p| p.session).collect(),
        Err(e) => panic!("{sql}: {e}"),
    }
}

fn refused_with(sql: &str, session: &SessionContext) -> &'static str {
    match rewrite(sql, &scenario(), session) {
        Ok(r) => panic!("{sql} was accepted: {}", r.sql),
        Err(e) => e.sqlstate(),
    }
}

#[test]
fn a_temporary_table_shadows_the_protected_one() {
    let s = with_temp(&["tasks"]);
    for sql in [
        "SELECT title FROM tasks WHERE id = 2",
        "INSERT INTO tasks VALUES (2, 'mine')",
        "DELETE FROM tasks WHERE id = 2",
        "UPDATE tasks SET title = 'x' WHERE id = 2",
        "SELECT * FROM pg_temp.tasks",
        "SELECT * FROM pg_temp.projects",
    ] {
        check_with(sql, sql, &s);
    }
    // The protected table by its schema, and other protected tables.
    check_with(
        "SELECT count(*) FROM public.tasks",
        "SELECT count(*) FROM public.tasks WHERE public.tasks.deleted_at IS NULL",
        &s,
    );
    check_with(
        "SELECT * FROM projects JOIN tasks ON tasks.project_id = projects.id",
        "SELECT * FROM projects JOIN tasks ON tasks.project_id = projects.id WHERE projects.deleted_at IS NULL",
        &s,
    );
    check_with(
        "DELETE FROM public.tasks WHERE id = 2",
        &rewrite(
            "DELETE FROM public.tasks WHERE id = 2",
            &scenario(),
            &session(),
        )
        .unwrap()
        .sql,
        &s,
    );
}

#[test]
fn pg_temp_listed_in_the_path_is_searched_where_it_is_listed() {
    let s = with_temp(&["tasks"]);
    // Listed first, or not listed: the temporary table.
    for path in [
        &["pg_temp", "public"][..],
        &["public"],
        &["pg_catalog", "pg_temp", "public"],
    ] {
        let sql = "SELECT title FROM tasks";
        check_with(sql, sql, &with_path(s.clone(), path));
    }
    // Listed after public: the protected table.
    check_with(
        "SELECT title FROM tasks",
        "SELECT title FROM tasks WHERE tasks.deleted_at IS NULL",
        &with_path(s.clone(), &["public", "pg_temp"]),
    );
    // The same within a string, after a SET the rewriter follows.
    check_with(
        "SET search_path = public, pg_temp; SELECT title FROM tasks",
        "SET search_path = public, pg_temp; SELECT title FROM tasks WHERE tasks.deleted_at IS NULL",
        &s,
    );
    check_with(
        "SET search_path = pg_temp, public; SELECT title FROM tasks",
        "SET search_path = pg_temp, public; SELECT title FROM tasks",
        &with_path(s.clone(), &["public", "pg_temp"]),
    );
}

#[test]
fn other_temporary_names_change_nothing() {
    let s = with_temp(&["scratch"]);
    check_with(
        "SELECT title FROM tasks",
        "SELECT title FROM tasks WHERE tasks.deleted_at IS NULL",
        &s,
    );
    check_with(
        "SELECT * FROM scratch JOIN tasks USING (id)",
        "SELECT * FROM scratch JOIN tasks USING (id) WHERE tasks.deleted_at IS NULL",
        &s,
    );
    // A CTE still shadows both.
    let t = with_temp(&["tasks"]);
    let sql = "WITH tasks AS (SELECT 1 AS id) SELECT * FROM tasks";
    check_with(sql, sql, &t);
}

#[test]
fn creating_a_shadowing_temporary_relation_is_a_change() {
    let s = session();
    for sql in [
        "CREATE TEMP TABLE tasks (id bigint, title text)",
        "CREATE TEMPORARY TABLE IF NOT EXISTS projects (id bigint) ON COMMIT DROP",
        "CREATE TABLE pg_temp.tasks (id bigint)",
        "CREATE TEMP TABLE tasks AS SELECT * FROM tags",
        "SELECT * INTO TEMP tasks FROM tags",
        "CREATE TEMP VIEW projects AS SELECT 1",
        "CREATE OR REPLACE TEMP VIEW projects AS SELECT 1",
        "CREATE TEMP SEQUENCE tasks",
        "CREATE TYPE pg_temp.tasks AS (a int)",
        "CREATE INDEX tasks ON scratch (id)",
        "ALTER TABLE scratch RENAME TO tasks",
        "EXPLAIN ANALYZE CREATE TEMP TABLE tasks AS SELECT 1",
    ] {
        assert_eq!(changes(sql, &s), [Some(SessionChange::Unknown)], "{sql}");
    }
    // Permanent tables, and reads of temporary ones, change nothing here.
    for sql in [
        "CREATE TABLE tasks_copy (LIKE tasks)",
        "CREATE TABLE billing.tasks (id bigint)",
        "SELECT * FROM pg_temp.tasks",
        "DROP TABLE tasks",
        "ALTER TABLE tasks ADD COLUMN x int",
    ] {
        assert!(
            changes(sql, &s).iter().all(Option::is_none),
            "{sql}: {:?}",
            changes(sql, &s)
        );
    }
    // The source of CREATE TEMP TABLE … AS is read before the table exists.
    check_with(
        "CREATE TEMP TABLE tasks AS SELECT * FROM tasks",
        "CREATE TEMP TABLE tasks AS SELECT * FROM tasks WHERE tasks.deleted_at IS NULL",
        &s,
    );
    // Later statements of the same string cannot know what it made.
    assert_eq!(
        refused_with(
            "CREATE TEMP TABLE tasks (id bigint); SELECT * FROM tasks",
            &s
        ),
        "42501"
    );
    // One of an unrelated name is not parsed at all.
    assert!(!crate::rewrite::may_need_rewrite(
        "CREATE TEMP TABLE scratch (id int)",
        &scenario()
    ));
}

#[test]
fn removing_statements_are_changes_while_a_name_is_shadowed() {
    let s = with_temp(&["tasks"]);
    for sql in [
        "DROP TABLE tasks",
        "DROP TABLE pg_temp.tasks",
        "DROP TABLE tags, tasks CASCADE",
        "ALTER TABLE tasks RENAME TO mine",
        "ALTER TABLE tasks DROP COLUMN title CASCADE",
        "DISCARD TEMP",
    ] {
        assert_eq!(changes(sql, &s), [Some(SessionChange::Unknown)], "{sql}");
    }
    assert_eq!(
        changes("DISCARD ALL", &s),
        [Some(SessionChange::ResetSearchPath)]
    );
    assert_eq!(
        refused_with("DROP TABLE tasks; SELECT * FROM tasks", &s),
        "42501"
    );
    // Statements the rewriter does not parse: the word DROP, only while
    // a name is shadowed.
    assert!(may_drop_temp(b"DROP TABLE scratch CASCADE", &s));
    assert!(may_drop_temp(b"drop owned by app", &s));
    assert!(!may_drop_temp(b"SELECT dropped FROM scratch", &s));
    assert!(!may_drop_temp(b"DROP TABLE scratch CASCADE", &session()));
}

#[test]
fn a_temporary_table_named_like_tombstones_is_the_sessions_own() {
    let snap = SchemaSnapshot::build(
        scenario_catalog().table("tombstone.operations", &["id uuid", "actor text"], &["id"]),
        &SnapshotOptions::default(),
    );
    let path = ["$user", "tombstone", "public"];
    let sql = "UPDATE operations SET actor = 'x'";
    let plain = with_path(session(), &path);
    assert_eq!(
        rewrite(sql, &snap, &plain).map_err(|e| e.sqlstate()).err(),
        Some("42501")
    );
    let temp = with_path(with_temp(&["operations"]), &path);
    assert!(rewrite(sql, &snap, &temp).is_ok());
    // Listed after tombstone, it is tombstone's again.
    let late = with_path(with_temp(&["operations"]), &["tombstone", "pg_temp"]);
    assert!(rewrite(sql, &snap, &late).is_err());
}
