// The catalog facts of tests/scenario/schema.sql, after `tombstone migrate
// --apply`, written out so that unit tests and benchmarks need no database.
// `include!`d by src/rewrite/tests/mod.rs and benches/rewrite_cache.rs,
// which bring `Catalog` and `FkAction` (tombstone::schema) into scope.
// tests/scenario_catalog.rs loads schema.sql into a fresh database, reads
// it back with the proxy's own loader (schema::load) and fails on any
// difference: change this file together with schema.sql.

/// The scenario's catalog, as `schema::load::load_catalog` reads it.
pub fn scenario_catalog() -> Catalog {
    use FkAction::*;
    let ts = "deleted_at timestamp with time zone";
    let mut catalog = Catalog::default()
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
        .unique("tags", "tags_name_key", &["name"], None)
        .unique("users", "users_pkey", &["id"], None)
        .unique("teams", "teams_pkey", &["id"], None)
        .unique("team_members", "team_members_pkey", &["team_id", "user_id"], None)
        .unique("categories", "categories_pkey", &["id"], None)
        .unique("projects", "projects_pkey", &["id"], None)
        .unique("project_members", "project_members_pkey", &["project_id", "user_id"], None)
        .unique("tasks", "tasks_pkey", &["id"], None)
        .unique("comments", "comments_pkey", &["id"], None)
        .unique("attachments", "attachments_pkey", &["id"], None)
        .unique("time_entries", "time_entries_pkey", &["id"], None)
        .unique("documents", "documents_pkey", &["id"], None)
        .unique("document_versions", "document_versions_pkey", &["id"], None)
        .unique("tags", "tags_pkey", &["id"], None)
        .unique("task_tags", "task_tags_pkey", &["task_id", "tag_id"], None)
        .unique("billing.invoices", "invoices_pkey", &["id"], None);
    // pgcrypto's functions (schema.sql creates the extension in public).
    for f in [
        "armor",
        "crypt",
        "dearmor",
        "decrypt",
        "decrypt_iv",
        "digest",
        "encrypt",
        "encrypt_iv",
        "gen_random_bytes",
        "gen_random_uuid",
        "gen_salt",
        "hmac",
        "pgp_armor_headers",
        "pgp_key_id",
        "pgp_pub_decrypt",
        "pgp_pub_decrypt_bytea",
        "pgp_pub_encrypt",
        "pgp_pub_encrypt_bytea",
        "pgp_sym_decrypt",
        "pgp_sym_decrypt_bytea",
        "pgp_sym_encrypt",
        "pgp_sym_encrypt_bytea",
    ] {
        catalog = catalog.function(f);
    }
    // `migrate` records operations on protected tables and on the
    // unprotected children of SET NULL edges; tags and task_tags are
    // neither.
    for t in &mut catalog.tables {
        if t.name == "tags" || t.name == "task_tags" {
            t.records_operations = false;
        }
    }
    // `migrate` checks every key to a protected parent on the child too
    // (migrate::fk_checks), with a constraint trigger `tombstone_fk_<key>`.
    let protected: Vec<(String, String)> = catalog
        .tables
        .iter()
        .filter(|t| t.columns.iter().any(|c| c.name == "deleted_at"))
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect();
    for fk in &mut catalog.foreign_keys {
        if protected.contains(&fk.parent) {
            fk.child_check = Some(format!("tombstone_fk_{}", fk.name));
        }
    }
    catalog
}
