//! The scenario schema (tests/scenario/schema.sql) as a snapshot built by
//! hand, for benchmarks that need no database. A copy of the unit tests'
//! `rewrite::tests::scenario_catalog` (which is `cfg(test)` only).

use tombstone::schema::{Catalog, FkAction, SchemaSnapshot, SnapshotOptions};

pub fn scenario() -> SchemaSnapshot {
    SchemaSnapshot::build(scenario_catalog(), &SnapshotOptions::default())
}

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
