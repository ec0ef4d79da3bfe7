//! INSERT re-using the primary key of a soft-deleted row: revived with the
//! inserted values; a live conflict still raises 23505.

use super::*;

const TASK_SET: &str = "project_id = EXCLUDED.project_id, assignee_id = DEFAULT, title = EXCLUDED.title, done = DEFAULT, deleted_at = DEFAULT";

fn raise(qual: &str, table: &str, pkey: &str, cols: &str, values: &str) -> String {
    format!(
        "CASE WHEN {qual}.deleted_at IS NOT NULL THEN true ELSE tombstone.unique_violation('public', '{table}', '{pkey}', '{cols}', concat_ws(', ', {values})) END"
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
        // The client's own ON CONFLICT on other columns or DO UPDATE.
        "INSERT INTO tasks (id, title) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title",
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
