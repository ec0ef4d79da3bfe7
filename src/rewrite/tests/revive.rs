//! INSERT re-using the primary key of a soft-deleted row: revived with the
//! inserted values; a live conflict still raises 23505.

use super::*;

const TASK_SET: &str = "project_id = EXCLUDED.project_id, assignee_id = DEFAULT, title = EXCLUDED.title, done = DEFAULT, deleted_at = DEFAULT";

fn raise(qual: &str, table: &str, pkey: &str, cols: &str, values: &str) -> String {
    format!(
        "CASE WHEN {qual}.deleted_at IS NOT NULL THEN true ELSE tombstone.unique_violation('public', '{table}', '{pkey}', '{cols}', pg_catalog.concat_ws(', ', {values})) END"
    )
}

#[test]
fn insert_with_the_primary_key_revives_a_soft_deleted_row() {
    let set = TASK_SET;
    let w = raise("tasks", "tasks", "tasks_pkey", "id", "EXCLUDED.id::text");
    check(
        "INSERT INTO tasks (id, project_id, title) VALUES (1605, 1, 'again')",
        &format!(
            "INSERT INTO tasks (id, project_id, title) VALUES (1605, 1, 'again') ON CONFLICT (id) DO UPDATE SET {set} WHERE {w}"
        ),
    );
    check(
        "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3), ($4, $5, $6) RETURNING id, done",
        &format!(
            "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT (id) DO UPDATE SET {set} WHERE {w} RETURNING id, done"
        ),
    );
    // Alias, schema-qualified name, CTE.
    check(
        "INSERT INTO public.tasks AS t (id, project_id, title) VALUES (7, 1, 'x')",
        &format!(
            "INSERT INTO public.tasks AS t (id, project_id, title) VALUES (7, 1, 'x') ON CONFLICT (id) DO UPDATE SET {set} WHERE {}",
            raise("t", "tasks", "tasks_pkey", "id", "EXCLUDED.id::text")
        ),
    );
    check(
        "WITH n AS (INSERT INTO tasks (id, project_id, title) VALUES (7, 1, 'x') RETURNING id) SELECT * FROM n",
        &format!(
            "WITH n AS (INSERT INTO tasks (id, project_id, title) VALUES (7, 1, 'x') ON CONFLICT (id) DO UPDATE SET {set} WHERE {w} RETURNING id) SELECT * FROM n"
        ),
    );
    // Composite key (re-adding a removed member).
    check(
        "INSERT INTO project_members (project_id, user_id) VALUES (1, $1)",
        &format!(
            "INSERT INTO project_members (project_id, user_id) VALUES (1, $1) ON CONFLICT (project_id, user_id) DO UPDATE SET deleted_at = DEFAULT WHERE {}",
            raise(
                "project_members",
                "project_members",
                "project_members_pkey",
                "project_id, user_id",
                "EXCLUDED.project_id::text, EXCLUDED.user_id::text"
            )
        ),
    );
    // No column list: the first columns in order.
    check(
        "INSERT INTO categories VALUES (3, 'c')",
        &format!(
            "INSERT INTO categories VALUES (3, 'c') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, deleted_at = DEFAULT WHERE {}",
            raise(
                "categories",
                "categories",
                "categories_pkey",
                "id",
                "EXCLUDED.id::text"
            )
        ),
    );
}

#[test]
fn do_nothing_on_the_primary_key_revives_and_skips_live_rows() {
    check(
        "INSERT INTO categories (id, name) VALUES (3, 'c') ON CONFLICT (id) DO NOTHING",
        "INSERT INTO categories (id, name) VALUES (3, 'c') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, deleted_at = DEFAULT WHERE categories.deleted_at IS NOT NULL",
    );
    check(
        "INSERT INTO project_members (user_id, project_id) VALUES ($1, $2) ON CONFLICT (user_id, project_id) DO NOTHING RETURNING 1",
        "INSERT INTO project_members (user_id, project_id) VALUES ($1, $2) ON CONFLICT (user_id, project_id) DO UPDATE SET deleted_at = DEFAULT WHERE project_members.deleted_at IS NOT NULL RETURNING 1",
    );
}

#[test]
fn other_inserts_are_left_alone() {
    for sql in [
        // The key comes from its default.
        "INSERT INTO tasks (project_id, title) VALUES (1, 'x')",
        "INSERT INTO tasks DEFAULT VALUES",
        // INSERT … SELECT, (VALUES …), unprotected tables.
        "INSERT INTO tasks (id, project_id, title) SELECT id + 1, project_id, title FROM tags",
        "INSERT INTO tags (id, name) VALUES (1, 'x')",
        // The client's own ON CONFLICT on other columns, or a DO UPDATE
        // tombstone cannot split into plain items.
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET (title, done) = (EXCLUDED.title, true)",
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = DEFAULT",
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT DO NOTHING",
        "INSERT INTO categories (id, name) VALUES (1, 'x') ON CONFLICT (name) DO NOTHING",
    ] {
        unchanged(sql);
    }
    // Bypass sessions see the soft-deleted row: a plain INSERT stays plain.
    let out = rewrite(
        "INSERT INTO tasks (id, project_id, title) VALUES (1, 1, 'x')",
        &scenario(),
        &bypass(Visibility::Setting),
    )
    .unwrap();
    assert!(out.is_unchanged(), "{}", out.sql);
}

#[test]
fn the_clients_do_update_revives_soft_deleted_conflicts() {
    let d = "tasks.deleted_at IS NOT NULL";
    let keep = |c: &str| format!(", {c} = CASE WHEN {d} THEN EXCLUDED.{c} ELSE tasks.{c} END");
    check(
        "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, done = NOT tasks.done RETURNING *",
        &format!(
            "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET title = CASE WHEN {d} THEN EXCLUDED.title ELSE (EXCLUDED.title) END, done = CASE WHEN {d} THEN EXCLUDED.done ELSE (NOT tasks.done) END{}{}{} RETURNING *",
            keep("project_id"),
            keep("assignee_id"),
            keep("deleted_at")
        ),
    );
    check(
        "INSERT INTO categories AS c (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = (SELECT 'y' || count(*) FROM tasks) WHERE c.name <> EXCLUDED.name",
        "INSERT INTO categories AS c (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = CASE WHEN c.deleted_at IS NOT NULL THEN EXCLUDED.name ELSE ((SELECT 'y' || count(*) FROM tasks WHERE tasks.deleted_at IS NULL)) END, deleted_at = CASE WHEN c.deleted_at IS NOT NULL THEN EXCLUDED.deleted_at ELSE c.deleted_at END WHERE c.deleted_at IS NOT NULL OR (c.name <> EXCLUDED.name)",
    );
}

#[test]
fn generated_columns_are_left_to_postgres() {
    let cat = Catalog::default().table(
        "public.notes",
        &[
            "id bigint",
            "body text",
            "words integer generated",
            "deleted_at timestamptz",
        ],
        &["id"],
    );
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    check_in(
        &snap,
        "INSERT INTO notes (id, body) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
        "INSERT INTO notes (id, body) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET body = CASE WHEN notes.deleted_at IS NOT NULL THEN EXCLUDED.body ELSE (EXCLUDED.body) END, deleted_at = CASE WHEN notes.deleted_at IS NOT NULL THEN EXCLUDED.deleted_at ELSE notes.deleted_at END",
        &session(),
    );
    check_in(
        &snap,
        "INSERT INTO notes (id, body) VALUES (1, 'a')",
        "INSERT INTO notes (id, body) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, words = DEFAULT, deleted_at = DEFAULT WHERE CASE WHEN notes.deleted_at IS NOT NULL THEN true ELSE tombstone.unique_violation('public', 'notes', 'notes_pkey', 'id', pg_catalog.concat_ws(', ', EXCLUDED.id::text)) END",
        &session(),
    );
}

#[test]
fn a_deferrable_primary_key_is_left_alone() {
    let mut cat = Catalog::default()
        .table(
            "public.notes",
            &["id bigint", "deleted_at timestamptz"],
            &["id"],
        )
        .unique("notes", "notes_pkey", &["id"], None);
    if let Some(ix) = cat.unique_indexes.last_mut() {
        ix.deferrable = true;
    }
    let snap = SchemaSnapshot::build(cat, &SnapshotOptions::default());
    let out = rewrite("INSERT INTO notes (id) VALUES (1)", &snap, &session()).unwrap();
    assert!(out.is_unchanged(), "{}", out.sql);
}
