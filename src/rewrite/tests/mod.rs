//! Table-driven rewriter tests: `check(sql, expected)` on the scenario schema.

mod aliases;
mod cascade;
mod delete;
mod revive;
mod select;
mod session;
mod sql_text;
mod temp;
mod writes;

use super::{Role, SessionContext, Visibility, rewrite};
use crate::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

/// The reference scenario schema (tests/scenario/schema.sql), by hand.
pub fn scenario() -> SchemaSnapshot {
    SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default())
}

/// The catalog facts of [`scenario`].
pub fn scenario_catalog() -> Catalog {
    use FkAction::*;
    let ts = "deleted_at timestamp with time zone";
    Catalog::default()
        .table(
            "public.users",
            &[
                "id uuid",
                "email text",
                "name text",
                "created_at timestamp with time zone",
                "updated_at timestamp with time zone",
                ts,
            ],
            &["id"],
        )
        .table("public.teams", &["id bigint", "name text", ts], &["id"])
        .table(
            "public.team_members",
            &["team_id bigint", "user_id uuid", "role text", ts],
            &["team_id", "user_id"],
        )
        .table(
            "public.categories",
            &["id integer", "name text", ts],
            &["id"],
        )
        .table(
            "public.projects",
            &[
                "id bigint",
                "team_id bigint",
                "category_id integer",
                "owner_id uuid",
                "name text",
                "created_at timestamp with time zone",
                ts,
            ],
            &["id"],
        )
        .table(
            "public.project_members",
            &["project_id bigint", "user_id uuid", ts],
            &["project_id", "user_id"],
        )
        .table(
            "public.tasks",
            &[
                "id bigint",
                "project_id bigint",
                "assignee_id uuid",
                "title text",
                "done boolean",
                ts,
            ],
            &["id"],
        )
        .table(
            "public.comments",
            &[
                "id bigint",
                "task_id bigint",
                "author_id uuid",
                "body text",
                ts,
            ],
            &["id"],
        )
        .table(
            "public.attachments",
            &[
                "id uuid",
                "task_id bigint",
                "filename text",
                "size_bytes bigint",
                ts,
            ],
            &["id"],
        )
        .table(
            "public.time_entries",
            &[
                "id bigint",
                "task_id bigint",
                "user_id uuid",
                "minutes integer",
                ts,
            ],
            &["id"],
        )
        .table(
            "public.documents",
            &["id bigint", "project_id bigint", "title text", ts],
            &["id"],
        )
        .table(
            "public.document_versions",
            &[
                "id bigint",
                "document_id bigint",
                "version integer",
                "body text",
                ts,
            ],
            &["id"],
        )
        .table("public.tags", &["id integer", "name text"], &["id"])
        .table(
            "public.task_tags",
            &["task_id bigint", "tag_id integer"],
            &["task_id", "tag_id"],
        )
        .table(
            "billing.invoices",
            &["id bigint", "project_id bigint", "amount_cents bigint", ts],
            &["id"],
        )
        .fk(
            "team_members_team_id_fkey",
            "team_members",
            &["team_id"],
            "teams",
            &["id"],
            Cascade,
        )
        .fk(
            "team_members_user_id_fkey",
            "team_members",
            &["user_id"],
            "users",
            &["id"],
            Cascade,
        )
        .fk(
            "projects_team_id_fkey",
            "projects",
            &["team_id"],
            "teams",
            &["id"],
            Cascade,
        )
        .fk(
            "projects_category_id_fkey",
            "projects",
            &["category_id"],
            "categories",
            &["id"],
            Restrict,
        )
        .fk(
            "projects_owner_id_fkey",
            "projects",
            &["owner_id"],
            "users",
            &["id"],
            SetNull,
        )
        .fk(
            "project_members_project_id_fkey",
            "project_members",
            &["project_id"],
            "projects",
            &["id"],
            Cascade,
        )
        .fk(
            "project_members_user_id_fkey",
            "project_members",
            &["user_id"],
            "users",
            &["id"],
            Cascade,
        )
        .fk(
            "tasks_project_id_fkey",
            "tasks",
            &["project_id"],
            "projects",
            &["id"],
            Cascade,
        )
        .fk(
            "tasks_assignee_id_fkey",
            "tasks",
            &["assignee_id"],
            "users",
            &["id"],
            SetNull,
        )
        .fk(
            "comments_task_id_fkey",
            "comments",
            &["task_id"],
            "tasks",
            &["id"],
            Cascade,
        )
        .fk(
            "comments_author_id_fkey",
            "comments",
            &["author_id"],
            "users",
            &["id"],
            SetNull,
        )
        .fk(
            "attachments_task_id_fkey",
            "attachments",
            &["task_id"],
            "tasks",
            &["id"],
            Cascade,
        )
        .fk(
            "time_entries_task_id_fkey",
            "time_entries",
            &["task_id"],
            "tasks",
            &["id"],
            Cascade,
        )
        .fk(
            "time_entries_user_id_fkey",
            "time_entries",
            &["user_id"],
            "users",
            &["id"],
            SetNull,
        )
        .fk(
            "documents_project_id_fkey",
            "documents",
            &["project_id"],
            "projects",
            &["id"],
            Cascade,
        )
        .fk(
            "document_versions_document_id_fkey",
            "document_versions",
            &["document_id"],
            "documents",
            &["id"],
            Cascade,
        )
        .fk(
            "task_tags_task_id_fkey",
            "task_tags",
            &["task_id"],
            "tasks",
            &["id"],
            Cascade,
        )
        .fk(
            "task_tags_tag_id_fkey",
            "task_tags",
            &["tag_id"],
            "tags",
            &["id"],
            Cascade,
        )
        .fk(
            "invoices_project_id_fkey",
            "billing.invoices",
            &["project_id"],
            "projects",
            &["id"],
            Cascade,
        )
        .unique(
            "users",
            "users_email_active",
            &["email"],
            Some("(deleted_at IS NULL)"),
        )
        .unique("categories", "categories_name_key", &["name"], None)
}

pub fn session() -> SessionContext {
    SessionContext::normal("app")
}

/// Rewrite with a normal session; assert the output and that it parses.
#[track_caller]
pub fn check(sql: &str, expected: &str) {
    check_with(sql, expected, &session());
}

#[track_caller]
pub fn check_with(sql: &str, expected: &str, session: &SessionContext) {
    check_in(&scenario(), sql, expected, session);
}

#[track_caller]
pub fn check_in(snap: &SchemaSnapshot, sql: &str, expected: &str, session: &SessionContext) {
    let out = match rewrite(sql, snap, session) {
        Ok(r) => r.sql.into_owned(),
        Err(e) => panic!("rewrite of {sql:?} failed: {e}"),
    };
    assert_eq!(out, expected, "\ninput: {sql}");
    assert!(
        pg_query::parse(&out, 0).is_ok(),
        "output does not parse: {out}"
    );
}

/// The statement comes back borrowed, byte for byte.
#[track_caller]
pub fn unchanged(sql: &str) {
    let snap = scenario();
    let out = rewrite(sql, &snap, &session()).unwrap_or_else(|e| panic!("{sql}: {e}"));
    assert!(
        matches!(out.sql, std::borrow::Cow::Borrowed(_)),
        "changed: {sql} -> {}",
        out.sql
    );
}

/// The statement is refused with `sqlstate`.
#[track_caller]
pub fn refused(sql: &str, sqlstate: &str) {
    let snap = scenario();
    match rewrite(sql, &snap, &session()) {
        Ok(r) => panic!("{sql} was accepted: {}", r.sql),
        Err(e) => assert_eq!(e.sqlstate(), sqlstate, "{sql}: {e}"),
    }
}

pub fn bypass(visibility: Visibility) -> SessionContext {
    SessionContext {
        role: Role::Bypass { visibility },
        ..session()
    }
}

#[test]
fn constants_are_found_by_the_real_scanner() {
    let sql = "SELECT 'it''s', E'a\\'b', $$dollar$$, 42, 4.2e1, B'01', X'ff', $2 -- '$9 not here'\n FROM t WHERE id = $1 /* 7 */";
    let c = crate::rewrite::parse::constants(sql).unwrap();
    let texts: Vec<&str> = c.literals.iter().map(|&(s, e)| &sql[s..e]).collect();
    assert_eq!(
        texts,
        [
            "'it''s'",
            "E'a\\'b'",
            "$$dollar$$",
            "42",
            "4.2e1",
            "B'01'",
            "X'ff'"
        ]
    );
    let params: Vec<(&str, u32)> = c.params.iter().map(|&(s, e, n)| (&sql[s..e], n)).collect();
    assert_eq!(params, [("$2", 2), ("$1", 1)]);
}
