//! Trash and restore: the CLI and the SQL surface through the proxy bring
//! back exactly what one operation soft-deleted (target, cascade, SET NULL
//! columns), refuse when a parent is still deleted, are audited, and
//! normal sessions get 42501.

mod common;

use std::time::Instant;

use common::protected::Protected;
use common::{sqlstate, tombstone};
use tokio_postgres::Client;

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// The newest operation on `table`.
async fn last_op(direct: &Client, table: &str) -> String {
    one(
        direct,
        &format!(
            "SELECT id::text FROM tombstone.operations WHERE table_name = '{table}'
             ORDER BY created_at DESC LIMIT 1"
        ),
    )
    .await
}

/// Soft-deleted rows in every protected table of the scenario.
async fn deleted_rows(direct: &Client) -> i64 {
    one(
        direct,
        "SELECT (SELECT count(*) FROM projects WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM project_members WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM attachments WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM time_entries WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM documents WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM document_versions WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM billing.invoices WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM users WHERE deleted_at IS NOT NULL)
              + (SELECT count(*) FROM team_members WHERE deleted_at IS NOT NULL)",
    )
    .await
}

#[tokio::test]
async fn restoring_a_project_leaves_what_other_operations_deleted() {
    let p = Protected::start("ops_restore", 2, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let task: i64 = one(&direct, "SELECT min(id) FROM tasks WHERE project_id = 1").await;
    let comment: i64 = one(
        &direct,
        &format!(
            "SELECT min(c.id) FROM comments c JOIN tasks t ON t.id = c.task_id
             WHERE t.project_id = 1 AND t.id <> {task}"
        ),
    )
    .await;
    // A task (with its comments and attachment), then a comment of another
    // task, each by its own statement; then the whole project.
    app.execute("DELETE FROM tasks WHERE id = $1", &[&task])
        .await
        .unwrap();
    app.execute("DELETE FROM comments WHERE id = $1", &[&comment])
        .await
        .unwrap();
    let task_op = last_op(&direct, "tasks").await;
    let comment_op = last_op(&direct, "comments").await;
    let earlier: i64 = deleted_rows(&direct).await;
    assert_eq!(
        earlier,
        1 + 4 + 1 + 1,
        "task, its 4 comments and attachment, a comment"
    );
    let started = Instant::now();
    app.execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    let delete_time = started.elapsed();
    let project_op = last_op(&direct, "projects").await;

    // The trash lists all three, newest first, with rows per table.
    let (ok, out, err) = tombstone(&["trash", "--format", "json", "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    let trash: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ops: Vec<&str> = trash
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, [&project_op, &comment_op, &task_op]);
    assert_eq!(trash[0]["table"], "public.projects");
    assert_eq!(trash[0]["keys"], serde_json::json!([{"id": 1}]));
    assert_eq!(trash[0]["rows"]["public.tasks"], 499);
    assert_eq!(trash[0]["rows"]["public.comments"], 1995);
    let (ok, out, _) = tombstone(&[
        "trash",
        "--table",
        "comments",
        "--since",
        "1h",
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok);
    assert!(
        out.contains(&comment_op) && !out.contains(&project_op),
        "{out}"
    );

    // Restoring the task first is refused: its project is deleted by another operation.
    let (ok, _, err) = tombstone(&["restore", &task_op, "--database-url", &p.db.url]);
    assert!(!ok);
    assert!(
        err.contains(&format!("still deleted by operation {project_op}")),
        "{err}"
    );

    let started = Instant::now();
    let (ok, out, err) = tombstone(&[
        "restore",
        &project_op,
        "--actor",
        "alice",
        "--database-url",
        &p.db.url,
    ]);
    let restore_time = started.elapsed();
    assert!(ok, "{err}");
    assert!(out.contains("restored operation"), "{out}");
    eprintln!(
        "project delete through the proxy: {delete_time:?}; restore (CLI process, {} rows): {restore_time:?}",
        3122 - 7
    );
    // Exactly the two earlier operations' rows are still deleted.
    assert_eq!(deleted_rows(&direct).await, earlier);
    let still: i64 = one(
        &direct,
        &format!("SELECT count(*) FROM tasks WHERE id = {task} AND deleted_at IS NOT NULL"),
    )
    .await;
    assert_eq!(still, 1);
    let still: i64 = one(
        &direct,
        &format!("SELECT count(*) FROM comments WHERE id = {comment} AND deleted_at IS NOT NULL"),
    )
    .await;
    assert_eq!(still, 1);
    assert_eq!(
        one::<i64>(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        499
    );
    // Audited: one row per restored row, by alice, with the operation id.
    let audited: i64 = one(
        &direct,
        &format!(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'restore' AND actor = 'alice'
               AND op_id = '{project_op}' AND old_values ->> 'deleted_at' IS NOT NULL
               AND new_values ->> 'deleted_at' IS NULL"
        ),
    )
    .await;
    assert_eq!(audited, 3122 - 7);
    // No `update` audit rows for the restore.
    assert_eq!(
        one::<i64>(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE action = 'update'"
        )
        .await,
        0
    );

    // Twice: a clear no-op.
    let (ok, out, err) = tombstone(&["restore", &project_op, "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    assert!(out.contains("already restored"), "{out}");
    // Now the task's own operation can come back, by table and key.
    let (ok, out, err) = tombstone(&[
        "restore",
        "--table",
        "tasks",
        "--key",
        &format!("{{\"id\": {task}}}"),
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(deleted_rows(&direct).await, 1);
    // The trash no longer shows restored operations.
    let (_, out, _) = tombstone(&["trash", "--database-url", &p.db.url]);
    assert!(
        out.contains(&comment_op) && !out.contains(&task_op),
        "{out}"
    );
}

#[tokio::test]
async fn restore_puts_set_null_columns_back_and_composite_keys_work() {
    let p = Protected::start("ops_setnull", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let user: String = one(&direct, "SELECT id::text FROM users ORDER BY email LIMIT 1").await;
    direct
        .batch_execute(&format!(
            "UPDATE tasks SET assignee_id = '{user}' WHERE id IN (1, 2, 3)"
        ))
        .await
        .unwrap();
    app.execute("DELETE FROM users WHERE id = $1::text::uuid", &[&user])
        .await
        .unwrap();
    assert_eq!(
        one::<i64>(
            &direct,
            "SELECT count(*) FROM tasks WHERE assignee_id IS NOT NULL"
        )
        .await,
        0
    );
    let op = last_op(&direct, "users").await;
    let (ok, out, err) = tombstone(&["restore", &op, "--database-url", &p.db.url]);
    assert!(ok, "{err}");
    assert!(out.contains("foreign keys put back"), "{out}");
    assert_eq!(
        one::<i64>(
            &direct,
            &format!("SELECT count(*) FROM tasks WHERE assignee_id = '{user}'")
        )
        .await,
        3
    );
    let restored: i64 = one(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE action = 'restore' AND table_name = 'tasks'",
    )
    .await;
    assert_eq!(restored, 3);

    // A composite key: one project membership, restored by table and key.
    let member: String = one(
        &direct,
        "SELECT user_id::text FROM project_members WHERE project_id = 1 ORDER BY user_id LIMIT 1",
    )
    .await;
    app.execute(
        "DELETE FROM project_members WHERE project_id = 1 AND user_id = $1::text::uuid",
        &[&member],
    )
    .await
    .unwrap();
    let key = format!("{{\"user_id\": \"{member}\", \"project_id\": 1}}");
    let (ok, out, err) = tombstone(&[
        "restore",
        "--table",
        "public.project_members",
        "--key",
        &key,
        "--database-url",
        &p.db.url,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        one::<i64>(
            &direct,
            "SELECT count(*) FROM project_members WHERE deleted_at IS NOT NULL"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn sql_surface_through_the_proxy_for_bypass_sessions_only() {
    let p = Protected::start("ops_sql", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    app.execute("DELETE FROM tasks WHERE id = 7", &[])
        .await
        .unwrap();
    let op = last_op(&direct, "tasks").await;

    // Normal sessions: 42501, whether through the proxy or not.
    for sql in [
        "SELECT * FROM tombstone.trash()".to_string(),
        format!("SELECT tombstone.restore('{op}')"),
        "SELECT tombstone.erase('tasks', '{\"id\": 8}')".to_string(),
    ] {
        let e = app.batch_execute(&sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    assert_eq!(
        one::<i64>(&app, "SELECT 1::bigint").await,
        1,
        "session goes on"
    );

    // Bypass sessions: the trash and restore, audited with their actor.
    let rows = admin
        .query(
            "SELECT op_id::text, table_name, target_rows FROM tombstone.trash()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), op);
    assert_eq!(rows[0].get::<_, String>(1), "public.tasks");
    admin
        .batch_execute("SET tombstone.actor = 'support desk'")
        .await
        .unwrap();
    let out: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{op}')->>'status'"),
    )
    .await;
    assert_eq!(out, "restored");
    let out: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{op}')->>'status'"),
    )
    .await;
    assert_eq!(out, "already_restored");
    assert_eq!(
        one::<i64>(&app, "SELECT count(*) FROM tasks WHERE id = 7").await,
        1
    );
    let actors: i64 = one(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE action = 'restore' AND actor = 'support desk'",
    )
    .await;
    assert!(actors >= 1, "{actors}");
}

/// The brief's project (1 project, 8 members, 500 tasks, 2,000 comments,
/// 300 attachments, 250 time entries, 10 documents, 50 versions, 3
/// invoices = 3,122 rows): deleted by the application and restored by an
/// admin, both through the proxy. Prints the times (`--nocapture`).
#[tokio::test]
async fn the_brief_project_is_deleted_and_restored_in_well_under_seconds() {
    let p = Protected::start("ops_timing", 3, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let before = deleted_rows(&direct).await;
    assert_eq!(before, 0);
    let started = Instant::now();
    let n = app
        .execute("DELETE FROM projects WHERE id = 2", &[])
        .await
        .unwrap();
    let delete_time = started.elapsed();
    assert_eq!(n, 1);
    assert_eq!(deleted_rows(&direct).await, 3122);
    let op = last_op(&direct, "projects").await;
    let started = Instant::now();
    let rows: i64 = one(
        &admin,
        &format!("SELECT (tombstone.restore('{op}') ->> 'rows')::bigint"),
    )
    .await;
    let restore_time = started.elapsed();
    assert_eq!(rows, 3122);
    assert_eq!(deleted_rows(&direct).await, 0);
    eprintln!(
        "brief project (3,122 rows) through the proxy: delete {delete_time:?}, restore {restore_time:?}"
    );
    assert!(restore_time.as_secs() < 10, "{restore_time:?}");
}
