//! Actions (SPEC B6): an application's transaction of several DELETEs (an
//! ORM cascading itself) is one action in the trash, restored in one step
//! — parents first whatever order the application deleted in, in one
//! transaction, audited — from the CLI and from SQL through the proxy in a
//! bypass session; a single operation of it is still restorable alone when
//! its parents are live, and refused with the action's command when not;
//! normal sessions get 42501.

mod common;

use std::time::{Duration, Instant};

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

/// Every table of the scenario, protected or not.
const SCENARIO_TABLES: &[&str] = &[
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

/// Runs `statements` as the application does: one transaction, each
/// statement its own message, then `end` (COMMIT or ROLLBACK).
async fn app_transaction(app: &Client, statements: &[&str], end: &str) {
    app.batch_execute("BEGIN").await.expect("begin");
    for sql in statements {
        app.execute(*sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    app.batch_execute(end)
        .await
        .unwrap_or_else(|e| panic!("{end}: {e:?}"));
}

/// The operations (not restored) of the newest action that touched
/// `table`, in statement order, and the action's id.
async fn newest_action(admin: &Client, table: &str) -> (String, Vec<String>) {
    let row = admin
        .query_one(
            "SELECT action, ARRAY(SELECT e ->> 'operation' FROM jsonb_array_elements(operations) e)
               FROM tombstone.trash_actions(NULL, $1) LIMIT 1",
            &[&table],
        )
        .await
        .unwrap_or_else(|e| panic!("trash_actions {table}: {e:?}"));
    (row.get(0), row.get(1))
}

/// The Django / Rails way of deleting a project: children first, each
/// level its own statement, in one transaction.
const DELETE_PROJECT_1: &[&str] = &[
    "DELETE FROM comments WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 1)",
    "DELETE FROM tasks WHERE project_id = 1",
    "DELETE FROM projects WHERE id = 1",
];

#[tokio::test]
async fn an_application_transaction_is_one_action_restored_in_one_step() {
    let p = Protected::start("ops_action", 2, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin_cli = p.conninfo(&p.admin);

    // Something deleted before, on its own: it stays deleted.
    app.execute(
        "DELETE FROM tasks WHERE id = (SELECT min(id) FROM tasks WHERE project_id = 2)",
        &[],
    )
    .await
    .unwrap();
    let before = checksums(&direct, SCENARIO_TABLES).await;
    app_transaction(&app, DELETE_PROJECT_1, "COMMIT").await;
    let deleted: i64 = one(
        &direct,
        "SELECT count(*) FROM projects WHERE id = 1 AND deleted_at IS NOT NULL",
    )
    .await;
    assert_eq!(deleted, 1);

    // One action of three operations, newest first, in statement order.
    let (ok, out, err) = tombstone(&["trash", "--format", "json", "--database-url", &admin_cli]);
    assert!(ok, "{err}");
    let trash: serde_json::Value = serde_json::from_str(&out).unwrap();
    let trash = trash.as_array().unwrap();
    assert_eq!(trash.len(), 4, "{out}");
    let tables: Vec<&str> = trash.iter().map(|e| e["table"].as_str().unwrap()).collect();
    assert_eq!(
        tables,
        [
            "public.comments",
            "public.tasks",
            "public.projects",
            "public.tasks"
        ]
    );
    let action = trash[0]["action"].as_str().unwrap().to_string();
    assert!(action.parse::<u64>().is_ok(), "{action}");
    for e in &trash[..3] {
        assert_eq!(e["action"], action.as_str(), "{out}");
        assert_eq!(e["action_operations"], 3, "{out}");
    }
    assert_ne!(trash[3]["action"], action.as_str());
    assert_eq!(trash[3]["action_operations"], 1);
    let ops: Vec<String> = trash[..3]
        .iter()
        .map(|e| e["operation"].as_str().unwrap().to_string())
        .collect();
    let xacts: i64 = one(
        &direct,
        &format!(
            "SELECT count(DISTINCT xact_id::text) FROM tombstone.operations
              WHERE id IN ('{}', '{}', '{}') AND xact_id::text = '{action}'",
            ops[0], ops[1], ops[2]
        ),
    )
    .await;
    assert_eq!(xacts, 1);
    // The table view groups them under the action, with the command.
    let (ok, out, err) = tombstone(&["trash", "--database-url", &admin_cli]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "action {action}: 3 operations of one transaction, in statement order; restore them together: tombstone restore --action {action}"
        )),
        "{out}"
    );
    // --table finds the action by any of its operations, and lists all.
    let (ok, out, err) = tombstone(&[
        "trash",
        "--table",
        "comments",
        "--format",
        "json",
        "--database-url",
        &admin_cli,
    ]);
    assert!(ok, "{err}");
    let by_table: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(by_table.as_array().map(|a| a.len()), Some(3), "{out}");

    // A child operation alone is refused, naming the action and its command.
    for op in &ops[..2] {
        let (ok, _, err) = tombstone(&["restore", op, "--database-url", &admin_cli]);
        assert!(!ok);
        assert!(
            err.contains(&format!("of the same action {action}"))
                && err.contains(&format!("tombstone restore --action {action}")),
            "{err}"
        );
    }
    let comment: i64 = one(
        &direct,
        "SELECT min(c.id) FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = 1",
    )
    .await;
    let (ok, _, err) = tombstone(&[
        "restore",
        "--table",
        "comments",
        "--key",
        &format!("{{\"id\": {comment}}}"),
        "--database-url",
        &admin_cli,
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!("tombstone restore --action {action}")),
        "{err}"
    );
    // A row the tasks' operation cascaded to: restore that operation, or
    // the whole action.
    let attachment: String = one(
        &direct,
        "SELECT min(a.id::text) FROM attachments a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = 1",
    )
    .await;
    let (ok, _, err) = tombstone(&[
        "restore",
        "--table",
        "attachments",
        "--key",
        &format!("{{\"id\": \"{attachment}\"}}"),
        "--database-url",
        &admin_cli,
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!("tombstone restore {}", ops[1]))
            && err.contains(&format!(
                "or its whole action, 3 operations in one transaction: tombstone restore --action {action}"
            )),
        "{err}"
    );
    assert_eq!(
        one::<i64>(&direct, "SELECT count(*) FROM tombstone.restores").await,
        0
    );

    // One step: everything comes back, exactly as it was.
    let rows: i64 = one(
        &direct,
        &format!(
            "SELECT count(*) FROM tombstone.operation_rows r JOIN tombstone.operations o ON o.id = r.op_id
              WHERE o.xact_id::text = '{action}' AND r.action = 'soft_delete'"
        ),
    )
    .await;
    let started = Instant::now();
    let (ok, out, err) = tombstone(&[
        "restore",
        "--action",
        &action,
        "--actor",
        "alice",
        "--database-url",
        &admin_cli,
    ]);
    let took = started.elapsed();
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "restored action {action}: 3 operations, {rows} rows"
        )),
        "{out}"
    );
    eprintln!("restore --action ({rows} rows, CLI process through the proxy): {took:?}");
    // Parents first: the project's operation, then the tasks', then the comments'.
    let at = |op: &str| out.find(&format!("operation {op}")).unwrap_or(usize::MAX);
    assert!(
        at(&ops[2]) < at(&ops[1]) && at(&ops[1]) < at(&ops[0]),
        "{out}"
    );
    assert_eq!(checksums(&direct, SCENARIO_TABLES).await, before);
    // Audited: one restore row per row, by alice, with its operation; and
    // the three restores are one transaction.
    let audited: i64 = one(
        &direct,
        &format!(
            "SELECT count(*) FROM tombstone.audit a JOIN tombstone.operations o ON o.id = a.op_id
              WHERE a.action = 'restore' AND a.actor = 'alice' AND o.xact_id::text = '{action}'"
        ),
    )
    .await;
    assert_eq!(audited, rows);
    let restores: (i64, i64) = {
        let row = direct
            .query_one(
                &format!(
                    "SELECT count(*), count(DISTINCT s.xact_id::text) FROM tombstone.restores s
                       JOIN tombstone.operations o ON o.id = s.op_id WHERE o.xact_id::text = '{action}'"
                ),
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(restores, (3, 1));
    // A restore is audited as `restore`, never as an `update` besides.
    assert_eq!(
        one::<i64>(
            &direct,
            "SELECT count(*) FROM tombstone.audit WHERE action = 'update'"
        )
        .await,
        0
    );

    // Twice: a clear no-op, exit 0; from SQL too.
    let (ok, out, err) = tombstone(&["restore", "--action", &action, "--database-url", &admin_cli]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "action {action} (3 operations) was already restored"
        )) && out.contains("by alice; nothing to do"),
        "{out}"
    );
    let admin = p.connect_as(&p.admin).await;
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore_action('{action}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "already_restored");
    // The trash keeps only the earlier task.
    let (_, out, _) = tombstone(&["trash", "--format", "json", "--database-url", &admin_cli]);
    let trash: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(trash.as_array().map(|a| a.len()), Some(1), "{out}");
    // An action id that is not one, and one that names no action.
    let (ok, _, err) = tombstone(&["restore", "--action", &ops[0], "--database-url", &admin_cli]);
    assert!(!ok);
    assert!(
        err.contains("--action takes an action id")
            && err.contains(&format!("tombstone restore {}", ops[0])),
        "{err}"
    );
    let (ok, _, err) = tombstone(&["restore", "--action", "1", "--database-url", &admin_cli]);
    assert!(!ok);
    assert!(err.contains("no action 1"), "{err}");
}

#[tokio::test]
async fn actions_from_sql_partial_restores_rollbacks_and_normal_sessions() {
    let p = Protected::start("ops_action_sql", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    let before = checksums(&direct, SCENARIO_TABLES).await;

    // A rolled-back action leaves nothing: no row, no operation, no trash.
    app_transaction(&app, DELETE_PROJECT_1, "ROLLBACK").await;
    assert_eq!(checksums(&direct, SCENARIO_TABLES).await, before);
    assert_eq!(
        one::<i64>(&direct, "SELECT count(*) FROM tombstone.operations").await,
        0
    );
    assert_eq!(
        one::<i64>(&admin, "SELECT count(*) FROM tombstone.trash_actions()").await,
        0
    );
    let (ok, out, _) = tombstone(&["trash", "--database-url", &p.conninfo(&p.admin)]);
    assert!(ok);
    assert_eq!(out, "the trash is empty\n");

    app_transaction(&app, DELETE_PROJECT_1, "COMMIT").await;
    let (action, ops) = newest_action(&admin, "projects").await;
    assert_eq!(ops.len(), 3);

    // Normal sessions: 42501 for the new functions, and the session goes on.
    for sql in [
        format!("SELECT tombstone.restore_action('{action}')"),
        "SELECT * FROM tombstone.trash_actions()".to_string(),
    ] {
        let e = app.batch_execute(&sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
    }
    assert_eq!(one::<i64>(&app, "SELECT 1::bigint").await, 1);

    // The trash by action: who, and its operations in statement order.
    let row = admin
        .query_one(
            "SELECT login_role, operations::text FROM tombstone.trash_actions() WHERE action = $1",
            &[&action],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), p.app);
    let operations: serde_json::Value = serde_json::from_str(row.get(1)).unwrap();
    let tables: Vec<&str> = operations
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["table"].as_str().unwrap())
        .collect();
    assert_eq!(
        tables,
        ["public.comments", "public.tasks", "public.projects"]
    );
    assert_eq!(operations[2]["keys"], serde_json::json!([{"id": 1}]));
    assert_eq!(operations[1]["rows"]["public.tasks"], 500);

    // The parent's operation alone works, and says what is left of its action.
    let (ok, out, err) = tombstone(&["restore", &ops[2], "--database-url", &p.conninfo(&p.admin)]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "operation {} is one of the 3 operations of action {action} (one transaction); 2 still deleted: tombstone restore --action {action} restores them",
            ops[2]
        )),
        "{out}"
    );
    // The rest from SQL, in one step, with its actor.
    admin
        .batch_execute("SET tombstone.actor = 'support desk'")
        .await
        .unwrap();
    let reply: String = one(
        &admin,
        &format!("SELECT tombstone.restore_action('{action}')::text"),
    )
    .await;
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["status"], "restored", "{reply}");
    assert_eq!(reply["action"], action.as_str());
    let restored: Vec<&str> = reply["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(restored, [ops[1].as_str(), ops[0].as_str()], "{reply}");
    assert_eq!(reply["already_restored"][0]["operation"], ops[2].as_str());
    assert_eq!(reply["restored_by"], "support desk");
    let rows: i64 = one(
        &direct,
        &format!(
            "SELECT count(*) FROM tombstone.operation_rows
              WHERE op_id IN ('{}', '{}') AND action = 'soft_delete'",
            ops[0], ops[1]
        ),
    )
    .await;
    assert_eq!(reply["rows"], rows);
    assert_eq!(checksums(&direct, SCENARIO_TABLES).await, before);
    let audited: i64 = one(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE action = 'restore' AND actor = 'support desk'",
    )
    .await;
    assert_eq!(audited, rows);

    // Inside the caller's transaction: a rollback undoes the whole restore.
    app_transaction(&app, DELETE_PROJECT_1, "COMMIT").await;
    let deleted = checksums(&direct, SCENARIO_TABLES).await;
    let (action, _) = newest_action(&admin, "projects").await;
    admin.batch_execute("BEGIN").await.unwrap();
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore_action('{action}') ->> 'status'"),
    )
    .await;
    assert_eq!(status, "restored");
    admin.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(checksums(&direct, SCENARIO_TABLES).await, deleted);
    let (again, ops) = newest_action(&admin, "projects").await;
    assert_eq!((again, ops.len()), (action, 3));
}

/// Tables whose keys are Django's: NO ACTION, DEFERRABLE INITIALLY
/// DEFERRED, so the application may delete a parent before its children.
const DEFERRED_SCHEMA: &str = "
CREATE TABLE public.nu_p (id int PRIMARY KEY, deleted_at timestamptz);
CREATE TABLE public.nu_c (id int PRIMARY KEY, p_id int NOT NULL REFERENCES public.nu_p DEFERRABLE INITIALLY DEFERRED,
                          deleted_at timestamptz);
CREATE INDEX ON public.nu_c (p_id);
CREATE TABLE public.nu_g (id int PRIMARY KEY, c_id int NOT NULL REFERENCES public.nu_c DEFERRABLE INITIALLY DEFERRED,
                          deleted_at timestamptz);
CREATE INDEX ON public.nu_g (c_id);
-- A table referencing itself.
CREATE TABLE public.nu_s (id int PRIMARY KEY, parent_id int REFERENCES public.nu_s DEFERRABLE INITIALLY DEFERRED,
                          deleted_at timestamptz);
CREATE INDEX ON public.nu_s (parent_id);
INSERT INTO public.nu_p SELECT g FROM generate_series(1, 5) g;
INSERT INTO public.nu_c SELECT 10 * p + k, p FROM generate_series(1, 5) p, generate_series(1, 3) k;
INSERT INTO public.nu_g SELECT 10 * c.id + k, c.id FROM public.nu_c c, generate_series(1, 2) k;
INSERT INTO public.nu_s VALUES (10, NULL), (11, 10), (20, NULL), (21, 20);
";

const DEFERRED_TABLES: &[&str] = &["nu_p", "nu_c", "nu_g", "nu_s"];

#[tokio::test]
async fn parents_come_back_first_whatever_order_the_application_deleted_in() {
    let p = Protected::start("ops_action_order", 1, "");
    psql(&p.db.url, &["-c", DEFERRED_SCHEMA]);
    for role in [&p.app, &p.admin] {
        psql(
            &p.db.url,
            &[
                "-c",
                &format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\""
                ),
            ],
        );
    }
    p.db.migrate();
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    let admin = p.connect_as(&p.admin).await;
    // The proxy soft-deletes the new tables once its snapshot has them
    // (before, the guard refuses the plain DELETE).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match app.execute("DELETE FROM nu_s WHERE id = -1", &[]).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the proxy never protected public.nu_s: {e:?}"),
        }
    }
    let before = checksums(&direct, DEFERRED_TABLES).await;
    let restore = |action: String| {
        let admin = &admin;
        async move {
            admin
                .query_one(
                    &format!("SELECT tombstone.restore_action('{action}')::text"),
                    &[],
                )
                .await
                .map(|r| serde_json::from_str::<serde_json::Value>(r.get(0)).unwrap())
        }
    };
    let restored_tables = |reply: &serde_json::Value| -> Vec<String> {
        reply["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["table"].as_str().unwrap().to_string())
            .collect()
    };

    // Parent first (Django's deferred keys allow it), then child, then
    // grandchild: three operations, restored in that order.
    app_transaction(
        &app,
        &[
            "DELETE FROM nu_p WHERE id = 1",
            "DELETE FROM nu_c WHERE p_id = 1",
            "DELETE FROM nu_g WHERE c_id IN (11, 12, 13)",
        ],
        "COMMIT",
    )
    .await;
    let (action, ops) = newest_action(&admin, "nu_p").await;
    assert_eq!(ops.len(), 3);
    let refused = admin
        .query_one(&format!("SELECT tombstone.restore('{}')", ops[2]), &[])
        .await
        .expect_err("a grandchild before its parent");
    assert_eq!(sqlstate(&refused), "55000");
    let hint = refused
        .as_db_error()
        .and_then(|d| d.hint())
        .unwrap_or_default()
        .to_string();
    assert!(
        hint.contains(&format!("tombstone restore --action {action}")),
        "{hint}"
    );
    let reply = restore(action.clone())
        .await
        .expect("restore parent-first action");
    assert_eq!(
        restored_tables(&reply),
        ["public.nu_p", "public.nu_c", "public.nu_g"]
    );
    assert_eq!(checksums(&direct, DEFERRED_TABLES).await, before);

    // Middle first, then parent, then grandchild.
    app_transaction(
        &app,
        &[
            "DELETE FROM nu_c WHERE p_id = 2",
            "DELETE FROM nu_p WHERE id = 2",
            "DELETE FROM nu_g WHERE c_id IN (21, 22, 23)",
        ],
        "COMMIT",
    )
    .await;
    let (action, _) = newest_action(&admin, "nu_p").await;
    let reply = restore(action).await.expect("restore mixed-order action");
    assert_eq!(
        restored_tables(&reply),
        ["public.nu_p", "public.nu_c", "public.nu_g"]
    );
    assert_eq!(checksums(&direct, DEFERRED_TABLES).await, before);

    // A parent deleted by another action: the whole action is refused,
    // naming it, and nothing comes back until it is restored.
    app_transaction(
        &app,
        &[
            "DELETE FROM nu_g WHERE c_id IN (31, 32, 33)",
            "DELETE FROM nu_c WHERE p_id = 3",
        ],
        "COMMIT",
    )
    .await;
    let (children, _) = newest_action(&admin, "nu_c").await;
    app.execute("DELETE FROM nu_p WHERE id = 3", &[])
        .await
        .unwrap();
    let (_, parent_ops) = newest_action(&admin, "nu_p").await;
    let refused = restore(children.clone())
        .await
        .expect_err("the parent is deleted by another action");
    assert_eq!(sqlstate(&refused), "55000");
    let db = refused.as_db_error().unwrap();
    assert!(
        db.message()
            .contains(&format!("cannot restore action {children}"))
            && db
                .message()
                .contains(&format!("still deleted by operation {}", parent_ops[0])),
        "{db:?}"
    );
    assert!(
        db.hint()
            .unwrap_or_default()
            .contains(&format!("tombstone restore {}", parent_ops[0])),
        "{db:?}"
    );
    let still: i64 = one(
        &direct,
        "SELECT count(*) FROM nu_g WHERE c_id IN (31, 32, 33) AND deleted_at IS NOT NULL",
    )
    .await;
    assert_eq!(still, 6, "nothing of the refused action came back");
    let status: String = one(
        &admin,
        &format!("SELECT tombstone.restore('{}') ->> 'status'", parent_ops[0]),
    )
    .await;
    assert_eq!(status, "restored");
    let reply = restore(children)
        .await
        .expect("restore once the parent is back");
    assert_eq!(restored_tables(&reply), ["public.nu_c", "public.nu_g"]);
    assert_eq!(checksums(&direct, DEFERRED_TABLES).await, before);

    // Operations that hold each other's parents: refused, saying so.
    app_transaction(
        &app,
        &[
            "DELETE FROM nu_s WHERE id IN (10, 21)",
            "DELETE FROM nu_s WHERE id IN (11, 20)",
        ],
        "COMMIT",
    )
    .await;
    let (tangled, _) = newest_action(&admin, "nu_s").await;
    let refused = restore(tangled).await.expect_err("a cycle");
    assert_eq!(sqlstate(&refused), "55000");
    let message = refused
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("its operations wait for each other"),
        "{message}"
    );
}
