//! Restore preview and conflicts (SPEC B6, issue 12 item 5): the preview
//! (SQL through the proxy in a bypass session, and `tombstone restore
//! --dry-run` for an operation, `--table/--key` and `--action`) lists per
//! table what would come back and every conflict — a unique key a live row
//! holds now, two rows of the restore taking one key, a parent still
//! deleted by another operation — and changes nothing; a conflicting
//! restore fails with that list (23505) and changes nothing; normal
//! sessions get 42501.

mod common;

use std::time::Instant;

use common::protected::Protected;
use common::{psql, sqlstate, tombstone};
use tokio_postgres::Client;

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

async fn json(client: &Client, sql: &str) -> serde_json::Value {
    let text: String = one(client, sql).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{sql}: {e}: {text}"))
}

/// Every table of the scenario, protected or not, and tombstone's own
/// bookkeeping of restores and the audit trail.
const TABLES: &[&str] = &[
    "users",
    "teams",
    "team_members",
    "categories",
    "projects",
    "project_members",
    "tasks",
    "comments",
    "attachments",
    "time_entries",
    "documents",
    "document_versions",
    "tags",
    "task_tags",
    "billing.invoices",
    "tombstone.restores",
    "tombstone.audit",
    "tombstone.operations",
    "tombstone.operation_rows",
];

/// A checksum of every row (soft-delete column included) of each table.
async fn checksums(direct: &Client, tables: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for table in tables {
        let sum: String = one(
            direct,
            &format!(
                "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {table} t"
            ),
        )
        .await;
        out.push((table.to_string(), sum));
    }
    out
}

/// The newest operation on `table`.
async fn last_op(direct: &Client, table: &str) -> String {
    one(
        direct,
        &format!(
            "SELECT id::text FROM tombstone.operations WHERE table_name = '{table}'
             ORDER BY created_at DESC, stmt_at DESC LIMIT 1"
        ),
    )
    .await
}

/// The conflicts of a preview of `kind`.
fn of_kind<'a>(preview: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    preview["conflicts"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["kind"] == kind).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_reused_email_is_named_by_the_preview_and_stops_the_restore_until_the_live_row_goes() {
    let p = Protected::start("pv_unique", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let admin_cli = p.conninfo(&p.admin);
    let (old_id, email): (String, String) = {
        let row = direct
            .query_one(
                "SELECT id::text, email FROM users ORDER BY email LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    direct
        .batch_execute(&format!(
            "UPDATE tasks SET assignee_id = '{old_id}' WHERE id IN (1, 2, 3)"
        ))
        .await
        .unwrap();
    // The application deletes the user (its memberships cascade, its
    // tasks and comments lose their foreign key), then signs the address
    // up again: the partial unique index lets the new row take it.
    app.execute("DELETE FROM users WHERE id = $1::text::uuid", &[&old_id])
        .await
        .unwrap();
    let op = last_op(&direct, "users").await;
    let new_id: String = one(
        &app,
        &format!("INSERT INTO users (email, name) VALUES ('{email}', 'again') RETURNING id::text"),
    )
    .await;
    let before = checksums(&direct, TABLES).await;

    // The preview names the index, the restored row and the live one.
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{op}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "conflicts", "{preview}");
    assert_eq!(preview["conflict_count"], 1, "{preview}");
    let conflict = &preview["conflicts"][0];
    assert_eq!(conflict["kind"], "unique_live", "{preview}");
    assert_eq!(conflict["table"], "public.users");
    assert_eq!(conflict["index"], "users_email_active");
    assert_eq!(conflict["key"], serde_json::json!({ "id": old_id }));
    assert_eq!(conflict["holder"], serde_json::json!({ "id": new_id }));
    assert_eq!(conflict["index_key"], format!("(email)=({email})"));
    assert_eq!(preview["unchecked"], serde_json::json!([]));
    // What would come back: the user, its memberships, the foreign keys.
    let tables = preview["tables"].as_array().unwrap();
    assert!(
        tables.iter().any(|t| t["table"] == "public.users"
            && t["action"] == "soft_delete"
            && t["rows"] == 1),
        "{preview}"
    );
    assert!(
        tables
            .iter()
            .any(|t| t["table"] == "public.tasks" && t["action"] == "set_null"),
        "{preview}"
    );
    // The CLI, by operation and by table and key: the same, readably, exit 1.
    for args in [
        vec!["restore", op.as_str(), "--dry-run"],
        vec![
            "restore",
            "--table",
            "users",
            "--key",
            &format!("{{\"id\": \"{old_id}\"}}"),
            "--dry-run",
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--database-url", &admin_cli]);
        let (ok, out, err) = tombstone(&args);
        assert!(!ok, "a preview with conflicts exits 1: {out}{err}");
        assert!(
            out.contains(&format!(
                "dry run: restoring operation {op} (public.users) would bring back"
            )) && out.contains("but it would fail")
                && out.contains("1 conflict: the restore would fail")
                && out.contains(&format!(
                    "public.users {{\"id\":\"{old_id}\"}}: unique key (email)=({email}) of users_email_active is held by live row {{\"id\":\"{new_id}\"}}"
                ))
                && out.contains("foreign keys put back")
                && out.ends_with("nothing was changed\n"),
            "{out}"
        );
    }
    assert_eq!(
        checksums(&direct, TABLES).await,
        before,
        "a preview changes nothing"
    );

    // The restore fails with the list, not a bare 23505, and changes nothing.
    let e = admin
        .query_one(&format!("SELECT tombstone.restore('{op}')"), &[])
        .await
        .expect_err("the email is taken");
    assert_eq!(sqlstate(&e), "23505");
    let db = e.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        format!("tombstone: cannot restore operation {op}: 1 unique key conflict")
    );
    let detail = db.detail().unwrap_or_default();
    assert!(
        detail.contains(&format!(
            "public.users {{\"id\": \"{old_id}\"}}: (email)=({email}) of index users_email_active is held by live row {{\"id\": \"{new_id}\"}}"
        )) && detail.ends_with("Nothing was restored."),
        "{detail}"
    );
    assert!(
        db.hint().unwrap_or_default().starts_with(
            "Delete the live row that holds each key, or change its key, then restore again."
        ),
        "{db:?}"
    );
    // restore_row too; the CLI prints the list and one "tombstone:" prefix.
    let e = admin
        .query_one(
            &format!("SELECT tombstone.restore_row('users', '{{\"id\": \"{old_id}\"}}')"),
            &[],
        )
        .await
        .expect_err("the email is taken");
    assert_eq!(sqlstate(&e), "23505");
    let (ok, out, err) = tombstone(&["restore", &op, "--database-url", &admin_cli]);
    assert!(!ok, "{out}");
    assert!(
        err.starts_with(&format!(
            "tombstone: cannot restore operation {op}: 1 unique key conflict (SQLSTATE 23505)\n  detail: public.users {{\"id\": \"{old_id}\"}}: (email)=({email})"
        )) && err.contains("\n          Nothing was restored.\n  hint: Delete the live row")
            && !err.contains("tombstone: tombstone:"),
        "{err}"
    );
    assert_eq!(
        checksums(&direct, TABLES).await,
        before,
        "nothing was restored"
    );

    // Once the live row is deleted, the preview is clean and the restore
    // brings back exactly what it listed.
    app.execute("DELETE FROM users WHERE id = $1::text::uuid", &[&new_id])
        .await
        .unwrap();
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{op}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "ready", "{preview}");
    assert_eq!(preview["conflicts"], serde_json::json!([]));
    let (ok, out, err) = tombstone(&["restore", &op, "--dry-run", "--database-url", &admin_cli]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("no conflicts"), "{out}");
    let restored = json(&admin, &format!("SELECT tombstone.restore('{op}')::text")).await;
    assert_eq!(restored["status"], "restored");
    assert_eq!(restored["tables"], preview["tables"]);
    assert_eq!(restored["rows"], preview["rows"]);
    assert_eq!(
        one::<i64>(
            &app,
            &format!("SELECT count(*) FROM users WHERE email = '{email}'")
        )
        .await,
        1
    );
    // A restored operation's preview says so.
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{op}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "already_restored");
}

/// One transaction deletes a user, signs the address up again and deletes
/// that account too: two operations of one action whose rows would take
/// one key. The action cannot come back whole; each operation alone can,
/// until the other holds the key.
#[tokio::test]
async fn two_rows_of_one_action_taking_one_key_are_a_conflict_of_the_action() {
    let p = Protected::start("pv_among", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let (first, email): (String, String) = {
        let row = direct
            .query_one(
                "SELECT id::text, email FROM users ORDER BY email DESC LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    app.batch_execute("BEGIN").await.unwrap();
    app.execute("DELETE FROM users WHERE id = $1::text::uuid", &[&first])
        .await
        .unwrap();
    let second: String = one(
        &app,
        &format!("INSERT INTO users (email) VALUES ('{email}') RETURNING id::text"),
    )
    .await;
    app.execute("DELETE FROM users WHERE id = $1::text::uuid", &[&second])
        .await
        .unwrap();
    app.batch_execute("COMMIT").await.unwrap();
    let action: String = one(
        &direct,
        "SELECT xact_id::text FROM tombstone.operations WHERE table_name = 'users'
          GROUP BY 1 HAVING count(*) = 2",
    )
    .await;
    let before = checksums(&direct, TABLES).await;

    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_action_preview('{action}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "conflicts", "{preview}");
    let among = of_kind(&preview, "unique_restored");
    assert_eq!(among.len(), 1, "{preview}");
    let keys = [among[0]["key"].clone(), among[0]["holder"].clone()];
    assert!(
        keys.contains(&serde_json::json!({ "id": first }))
            && keys.contains(&serde_json::json!({ "id": second })),
        "{preview}"
    );
    assert_eq!(preview["conflict_count"], 1, "{preview}");
    let (ok, out, _) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--dry-run",
        "--database-url",
        &p.conninfo(&p.admin),
    ]);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "dry run: restoring action {action} would bring back 2 operations"
        )) && out.contains("which comes back too"),
        "{out}"
    );
    let e = admin
        .query_one(&format!("SELECT tombstone.restore_action('{action}')"), &[])
        .await
        .expect_err("two rows, one key");
    assert_eq!(sqlstate(&e), "23505");
    let db = e.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        format!("tombstone: cannot restore action {action}: 1 unique key conflict")
    );
    assert!(
        db.detail()
            .unwrap_or_default()
            .contains("which this restore brings back too"),
        "{db:?}"
    );
    assert!(
        db.hint()
            .unwrap_or_default()
            .contains(&format!("tombstone restore --action {action} --dry-run")),
        "{db:?}"
    );
    assert_eq!(checksums(&direct, TABLES).await, before);

    // The first account alone comes back; then the second's preview and
    // restore meet it as a live row.
    let first_op: String = one(
        &direct,
        &format!(
            "SELECT op_id::text FROM tombstone.operation_rows
              WHERE table_name = 'users' AND pk = '{{\"id\": \"{first}\"}}'"
        ),
    )
    .await;
    let second_op: String = one(
        &direct,
        &format!(
            "SELECT op_id::text FROM tombstone.operation_rows
              WHERE table_name = 'users' AND pk = '{{\"id\": \"{second}\"}}'"
        ),
    )
    .await;
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{first_op}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "restored");
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{second_op}')::text"),
    )
    .await;
    let live = of_kind(&preview, "unique_live");
    assert_eq!(live.len(), 1, "{preview}");
    assert_eq!(live[0]["holder"], serde_json::json!({ "id": first }));
    let e = admin
        .query_one(&format!("SELECT tombstone.restore('{second_op}')"), &[])
        .await
        .expect_err("the first account holds the email");
    assert_eq!(sqlstate(&e), "23505");
}

#[tokio::test]
async fn a_parent_deleted_by_another_operation_is_listed_for_every_row() {
    let p = Protected::start("pv_parent", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let admin_cli = p.conninfo(&p.admin);
    // An ORM deletes two tasks and their comments (one action), then
    // someone deletes the project (another operation).
    let tasks: Vec<i64> = direct
        .query(
            "SELECT id FROM tasks WHERE project_id = 1 ORDER BY id LIMIT 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let list = format!("{}, {}", tasks[0], tasks[1]);
    app.batch_execute("BEGIN").await.unwrap();
    app.execute(
        &format!("DELETE FROM comments WHERE task_id IN ({list})"),
        &[],
    )
    .await
    .unwrap();
    app.execute(&format!("DELETE FROM tasks WHERE id IN ({list})"), &[])
        .await
        .unwrap();
    app.batch_execute("COMMIT").await.unwrap();
    let tasks_op = last_op(&direct, "tasks").await;
    let action: String = one(
        &direct,
        &format!("SELECT xact_id::text FROM tombstone.operations WHERE id = '{tasks_op}'"),
    )
    .await;
    app.execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    let project_op = last_op(&direct, "projects").await;
    let before = checksums(&direct, TABLES).await;

    // The tasks' operation: both tasks are listed, with the project and
    // the operation that deleted it.
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{tasks_op}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "conflicts", "{preview}");
    let parents = of_kind(&preview, "parent_deleted");
    let rows: Vec<&serde_json::Value> = parents
        .iter()
        .filter(|c| c["table"] == "public.tasks")
        .map(|c| &c["key"])
        .collect();
    assert_eq!(
        rows,
        [
            &serde_json::json!({"id": tasks[0]}),
            &serde_json::json!({"id": tasks[1]})
        ],
        "{preview}"
    );
    for c in &parents {
        assert_eq!(c["parent_table"], "public.projects", "{preview}");
        assert_eq!(c["parent_key"], serde_json::json!({"id": 1}));
        assert_eq!(c["deleted_by"], project_op.as_str());
        assert_eq!(c["same_action"], false);
    }
    // The comments' operation alone: its rows wait for the tasks, deleted
    // by an operation of the same action.
    let comments_op: String = one(
        &direct,
        &format!(
            "SELECT id::text FROM tombstone.operations WHERE xact_id::text = '{action}' AND table_name = 'comments'"
        ),
    )
    .await;
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{comments_op}')::text"),
    )
    .await;
    let parents = of_kind(&preview, "parent_deleted");
    let comments: i64 = one(
        &direct,
        &format!("SELECT count(*) FROM comments WHERE task_id IN ({list})"),
    )
    .await;
    assert_eq!(parents.len() as i64, comments, "{preview}");
    assert!(
        parents
            .iter()
            .all(|c| c["same_action"] == true && c["deleted_by"] == tasks_op.as_str()),
        "{preview}"
    );
    // The CLI by operation says what to restore first.
    let (ok, out, _) = tombstone(&[
        "restore",
        &tasks_op,
        "--dry-run",
        "--database-url",
        &admin_cli,
    ]);
    assert!(!ok);
    assert!(
        out.contains(&format!(
            "public.tasks {{\"id\":{}}}: its parent public.projects {{\"id\":1}} is still deleted by operation {project_op} (restore it first: tombstone restore {project_op})",
            tasks[0]
        )) && out.contains("2 conflicts: the restore would fail"),
        "{out}"
    );

    // The whole action: within it the tasks come back before their
    // comments; only the project, deleted outside it, is a conflict.
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_action_preview('{action}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "conflicts");
    let parents = of_kind(&preview, "parent_deleted");
    assert_eq!(parents.len(), 2, "{preview}");
    assert!(
        parents
            .iter()
            .all(|c| c["table"] == "public.tasks" && c["deleted_by"] == project_op.as_str()),
        "{preview}"
    );
    let (ok, out, _) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--dry-run",
        "--database-url",
        &admin_cli,
    ]);
    assert!(!ok);
    assert!(
        out.contains(&format!("still deleted by operation {project_op}")),
        "{out}"
    );
    assert_eq!(
        checksums(&direct, TABLES).await,
        before,
        "previews change nothing"
    );

    // The restore refuses as before (55000); after the project, the action
    // preview is clean, in the order the restore takes, with its counts.
    let e = admin
        .query_one(&format!("SELECT tombstone.restore('{tasks_op}')"), &[])
        .await
        .expect_err("the project is deleted");
    assert_eq!(sqlstate(&e), "55000");
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{project_op}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "restored");
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_action_preview('{action}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "ready", "{preview}");
    let reply = json(
        &admin,
        &format!("SELECT tombstone.restore_action('{action}')::text"),
    )
    .await;
    assert_eq!(reply["status"], "restored");
    let strip = |ops: &serde_json::Value| -> Vec<serde_json::Value> {
        ops.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                serde_json::json!({"operation": o["operation"], "table": o["table"],
                                   "rows": o["rows"], "tables": o["tables"]})
            })
            .collect()
    };
    assert_eq!(strip(&preview["operations"]), strip(&reply["operations"]));
    assert_eq!(preview["rows"], reply["rows"]);
}

/// Operations of one action that hold each other's parents: the action
/// preview names the rows that wait for each other.
#[tokio::test]
async fn operations_of_an_action_that_hold_each_others_parents_are_named() {
    let p = Protected::start("pv_cycle", 1, "");
    psql(
        &p.db.url,
        &[
            "-c",
            "CREATE TABLE public.nu_s (id int PRIMARY KEY, parent_id int REFERENCES public.nu_s DEFERRABLE INITIALLY DEFERRED,
                                       deleted_at timestamptz);
             INSERT INTO public.nu_s VALUES (10, NULL), (11, 10), (20, NULL), (21, 20);",
        ],
    );
    psql(
        &p.db.url,
        &[
            "-c",
            &format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON public.nu_s TO \"{}\"",
                p.app
            ),
        ],
    );
    p.db.migrate();
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    // The proxy soft-deletes the new table once its snapshot has it
    // (before, the guard refuses the plain DELETE).
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while let Err(e) = app.execute("DELETE FROM nu_s WHERE id = -1", &[]).await {
        assert!(
            Instant::now() < deadline,
            "the proxy never protected public.nu_s: {e:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Two statements of one transaction, each deleting a parent of the
    // other's rows.
    app.batch_execute("BEGIN").await.unwrap();
    for sql in [
        "DELETE FROM nu_s WHERE id IN (10, 21)",
        "DELETE FROM nu_s WHERE id IN (11, 20)",
    ] {
        app.execute(sql, &[]).await.unwrap();
    }
    app.batch_execute("COMMIT").await.unwrap();
    let action: String = one(
        &direct,
        "SELECT xact_id::text FROM tombstone.operations WHERE table_name = 'nu_s' LIMIT 1",
    )
    .await;
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_action_preview('{action}')::text"),
    )
    .await;
    assert_eq!(preview["status"], "conflicts", "{preview}");
    let mut waiting: Vec<(serde_json::Value, serde_json::Value)> =
        of_kind(&preview, "parent_deleted")
            .iter()
            .map(|c| {
                assert_eq!(c["same_action"], true, "{preview}");
                (c["key"].clone(), c["parent_key"].clone())
            })
            .collect();
    waiting.sort_by_key(|(k, _)| k.to_string());
    assert_eq!(
        waiting,
        [
            (serde_json::json!({"id": 11}), serde_json::json!({"id": 10})),
            (serde_json::json!({"id": 21}), serde_json::json!({"id": 20})),
        ],
        "{preview}"
    );
    let e = admin
        .query_one(&format!("SELECT tombstone.restore_action('{action}')"), &[])
        .await
        .expect_err("a cycle");
    assert_eq!(sqlstate(&e), "55000");
}

/// Unique indexes of every kind on a table of its own: an expression, a
/// predicate besides the soft-delete one, a case-insensitive collation,
/// NULLS NOT DISTINCT over the soft-delete column, a full deferrable
/// constraint (no conflict).
#[tokio::test]
async fn unique_indexes_of_every_kind_are_checked_on_the_restored_row() {
    let p = Protected::start("pv_kinds", 1, "");
    psql(
        &p.db.url,
        &[
            "-c",
            "CREATE TABLE public.px (id int PRIMARY KEY, email text, code text, a int, b int, c int,
                                     done boolean NOT NULL DEFAULT false, deleted_at timestamptz,
                                     CONSTRAINT px_c UNIQUE (c) DEFERRABLE);
             CREATE UNIQUE INDEX px_lower ON px (lower(email)) WHERE deleted_at IS NULL;
             CREATE COLLATION px_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
             CREATE UNIQUE INDEX px_code ON px (code COLLATE px_ci) WHERE deleted_at IS NULL;
             CREATE UNIQUE INDEX px_a ON px (a, deleted_at) NULLS NOT DISTINCT;
             CREATE UNIQUE INDEX px_b_done ON px (b) WHERE done AND deleted_at IS NULL;
             INSERT INTO px SELECT g, 'U' || g || '@x', 'c' || g, g, g, g, g % 2 = 0 FROM generate_series(1, 10) g;",
        ],
    );
    p.db.migrate();
    let direct = common::connect(&p.db.url).await;
    let admin = p.connect_as(&p.admin).await;
    direct
        .batch_execute(
            "UPDATE px SET deleted_at = now() WHERE id IN (1, 2, 3, 4);
             INSERT INTO px (id, email, code, a, b, c, done) VALUES
               (11, 'u1@X', 'c11', 11, 11, 11, false),  -- takes 1's lower(email)
               (12, 'u12', 'c2', 12, 2, 12, true),      -- takes 2's code and b (2 is done)
               (13, 'u13', 'c13', 3, 3, 13, true),      -- takes 3's a (NULLS NOT DISTINCT); 3 is not done
               (14, 'u14', 'C4', 14, 14, 14, false);    -- takes 4's code (case-insensitive collation)",
        )
        .await
        .unwrap();
    let op = last_op(&direct, "px").await;
    let before = checksums(&direct, &["px"]).await;
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{op}')::text"),
    )
    .await;
    let mut found: Vec<(String, String, String)> = of_kind(&preview, "unique_live")
        .iter()
        .map(|c| {
            (
                c["index"].as_str().unwrap().to_string(),
                c["key"]["id"].to_string(),
                c["holder"]["id"].to_string(),
            )
        })
        .collect();
    found.sort();
    let expected: Vec<(String, String, String)> = [
        ("px_a", "3", "13"),
        ("px_b_done", "2", "12"),
        ("px_code", "2", "12"),
        ("px_code", "4", "14"),
        ("px_lower", "1", "11"),
    ]
    .iter()
    .map(|(i, k, h)| (i.to_string(), k.to_string(), h.to_string()))
    .collect();
    assert_eq!(found, expected, "{preview}");
    assert_eq!(preview["conflict_count"], 5, "{preview}");
    assert_eq!(preview["unchecked"], serde_json::json!([]), "{preview}");
    let a = of_kind(&preview, "unique_live")
        .into_iter()
        .find(|c| c["index"] == "px_a")
        .cloned()
        .unwrap_or_default();
    assert_eq!(a["index_key"], "(a, deleted_at)=(3, null)", "{preview}");
    let e = admin
        .query_one(&format!("SELECT tombstone.restore('{op}')"), &[])
        .await
        .expect_err("five conflicts");
    assert_eq!(sqlstate(&e), "23505");
    assert!(
        e.as_db_error()
            .map(|d| d.message().ends_with(": 5 unique key conflicts"))
            .unwrap_or(false),
        "{e:?}"
    );
    assert_eq!(checksums(&direct, &["px"]).await, before);
    // Without the holders the restore goes through.
    direct
        .batch_execute("UPDATE px SET deleted_at = now() WHERE id IN (11, 12, 13, 14)")
        .await
        .unwrap();
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{op}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "restored");

    // Many conflicts: the error lists 20 and counts the rest, the CLI's
    // preview prints 50 and names the SQL that lists them all.
    direct
        .batch_execute(
            "INSERT INTO px (id, email, code, a, b, c) SELECT g, 'm' || g, 'm' || g, g, g, g FROM generate_series(100, 154) g;
             UPDATE px SET deleted_at = now() WHERE id BETWEEN 100 AND 154;",
        )
        .await
        .unwrap();
    let many = last_op(&direct, "px").await;
    direct
        .batch_execute(
            "INSERT INTO px (id, email, code, a, b, c)
             SELECT g + 100, 'M' || g, 'x' || g, g + 100, g + 100, g + 100 FROM generate_series(100, 154) g",
        )
        .await
        .unwrap();
    let e = admin
        .query_one(&format!("SELECT tombstone.restore('{many}')"), &[])
        .await
        .expect_err("55 conflicts");
    let db = e.as_db_error().unwrap();
    assert!(
        db.message().ends_with(": 55 unique key conflicts"),
        "{db:?}"
    );
    let detail = db.detail().unwrap_or_default();
    assert_eq!(
        detail
            .lines()
            .filter(|l| l.starts_with("public.px "))
            .count(),
        20,
        "{detail}"
    );
    assert!(
        detail.ends_with("\n... and 35 more\nNothing was restored."),
        "{detail}"
    );
    let (ok, out, _) = tombstone(&[
        "restore",
        &many,
        "--dry-run",
        "--database-url",
        &p.conninfo(&p.admin),
    ]);
    assert!(!ok);
    assert!(
        out.contains("55 conflicts: the restore would fail"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("  public.px {"))
            .count(),
        50,
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "  ... and 5 more (SELECT tombstone.restore_preview('{many}') lists them all)\n"
        )),
        "{out}"
    );
}

/// The brief's project (3,122 rows across 9 tables): a clean preview whose
/// per-table counts are what the restore then restores, by operation id,
/// by table and key, and by action (the ORM's three statements), in well
/// under a second; normal sessions get 42501.
#[tokio::test]
async fn the_brief_project_previews_clean_with_the_counts_the_restore_restores() {
    let p = Protected::start("pv_brief", 3, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let admin_cli = p.conninfo(&p.admin);
    app.execute("DELETE FROM projects WHERE id = 2", &[])
        .await
        .unwrap();
    let op = last_op(&direct, "projects").await;
    let before = checksums(&direct, TABLES).await;

    // Normal sessions: 42501 for every preview, and the session goes on.
    for sql in [
        format!("SELECT tombstone.restore_preview('{op}')"),
        "SELECT tombstone.restore_row_preview('projects', '{\"id\": 2}')".to_string(),
        "SELECT tombstone.restore_action_preview('1')".to_string(),
    ] {
        let e = app.batch_execute(&sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    assert_eq!(one::<i64>(&app, "SELECT 1::bigint").await, 1);

    let started = Instant::now();
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_preview('{op}')::text"),
    )
    .await;
    let took = started.elapsed();
    eprintln!("preview of the brief's project (3,122 rows) through the proxy: {took:?}");
    assert_eq!(preview["status"], "ready", "{preview}");
    assert_eq!(preview["rows"], 3122);
    assert_eq!(preview["conflicts"], serde_json::json!([]));
    let counts: Vec<(String, i64)> = preview["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("billing.invoices", 3),
            ("public.attachments", 300),
            ("public.comments", 2000),
            ("public.document_versions", 50),
            ("public.documents", 10),
            ("public.project_members", 8),
            ("public.projects", 1),
            ("public.tasks", 500),
            ("public.time_entries", 250),
        ]
        .iter()
        .map(|(t, n)| (t.to_string(), *n))
        .collect::<Vec<_>>(),
        "{preview}"
    );
    let row_preview = json(
        &admin,
        "SELECT tombstone.restore_row_preview('projects', '{\"id\": 2}')::text",
    )
    .await;
    assert_eq!(row_preview, preview);
    for args in [
        vec!["restore", op.as_str(), "--dry-run"],
        vec![
            "restore",
            "--table",
            "projects",
            "--key",
            "{\"id\": 2}",
            "--dry-run",
        ],
    ] {
        let mut args = args.clone();
        args.extend(["--database-url", &admin_cli]);
        let (ok, out, err) = tombstone(&args);
        assert!(ok, "{out}{err}");
        assert!(
            out.starts_with(&format!(
                "dry run: restoring operation {op} (public.projects) would bring back 3122 rows, no conflicts\n"
            )) && out.contains(&format!("  {:<32} {:>8}  undeleted\n", "public.comments", 2000))
                && out.ends_with("nothing was changed\n"),
            "{out}"
        );
    }
    assert_eq!(
        checksums(&direct, TABLES).await,
        before,
        "a preview changes nothing"
    );
    let started = Instant::now();
    let reply = json(&admin, &format!("SELECT tombstone.restore('{op}')::text")).await;
    eprintln!(
        "restore of the brief's project, unique keys checked: {:?}",
        started.elapsed()
    );
    assert_eq!(reply["tables"], preview["tables"]);
    assert_eq!(reply["rows"], 3122);

    // As an ORM deletes it: three operations of one action.
    app.batch_execute("BEGIN").await.unwrap();
    for sql in [
        "DELETE FROM comments WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 2)",
        "DELETE FROM tasks WHERE project_id = 2",
        "DELETE FROM projects WHERE id = 2",
    ] {
        app.execute(sql, &[]).await.unwrap();
    }
    app.batch_execute("COMMIT").await.unwrap();
    let action: String = one(
        &direct,
        "SELECT xact_id::text FROM tombstone.operations ORDER BY created_at DESC LIMIT 1",
    )
    .await;
    let before = checksums(&direct, TABLES).await;
    let started = Instant::now();
    let (ok, out, err) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--dry-run",
        "--database-url",
        &admin_cli,
    ]);
    eprintln!(
        "restore --action --dry-run of the ORM's delete (CLI process through the proxy): {:?}",
        started.elapsed()
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.starts_with(&format!(
            "dry run: restoring action {action} would bring back 3 operations, 3122 rows, no conflicts\n"
        )),
        "{out}"
    );
    // Parents first, as the restore takes them.
    let at = |table: &str| out.find(&format!("({table}): ")).unwrap_or(usize::MAX);
    assert!(
        at("public.projects") < at("public.tasks") && at("public.tasks") < at("public.comments"),
        "{out}"
    );
    assert_eq!(checksums(&direct, TABLES).await, before);
    let preview = json(
        &admin,
        &format!("SELECT tombstone.restore_action_preview('{action}')::text"),
    )
    .await;
    let (ok, out, err) = tombstone(&["restore", "--action", &action, "--database-url", &admin_cli]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "restored action {action}: 3 operations, 3122 rows"
        )),
        "{out}"
    );
    let ops = |v: &serde_json::Value| -> Vec<(String, i64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["operation"].as_str().unwrap().to_string(),
                    o["rows"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let restored: Vec<(String, i64)> = direct
        .query(
            &format!(
                "SELECT s.op_id::text, (SELECT count(*) FROM tombstone.audit a WHERE a.op_id = s.op_id AND a.action = 'restore')
                   FROM tombstone.restores s JOIN tombstone.operations o ON o.id = s.op_id
                  WHERE o.xact_id::text = '{action}'"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut expected = ops(&preview["operations"]);
    expected.sort();
    let mut restored = restored;
    restored.sort();
    assert_eq!(restored, expected, "{preview}");
    // Done: the previews say so.
    let (ok, out, _) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--dry-run",
        "--database-url",
        &admin_cli,
    ]);
    assert!(ok);
    assert!(out.contains("was already restored"), "{out}");
}
