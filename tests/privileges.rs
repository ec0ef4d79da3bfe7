//! SPEC S1: after `tombstone migrate --apply`, a normal role — with only the
//! grants an application has on its own tables — can neither read nor write
//! the audit trail, the bypass-role list, the hard-delete grants or any
//! other tombstone table, directly or from server-side code; tombstone's
//! functions and generated SQL are immune to shadowed built-ins; bypass
//! roles read the trail.

mod common;

use common::protected::Protected;
use common::{connect, psql, sqlstate, url_for};

/// A direct connection (not through the proxy) as `role`.
async fn direct(p: &Protected, role: &str) -> tokio_postgres::Client {
    let (host, port) = common::upstream_host_port();
    connect(&format!(
        "host={host} port={port} user={role} dbname={} sslmode=disable",
        p.db.name
    ))
    .await
}

/// Statements a normal role must be refused with 42501.
const FORBIDDEN: &[&str] = &[
    "SELECT count(*) FROM tombstone.audit",
    "SELECT count(*) FROM tombstone.audit_default",
    "SELECT * FROM tombstone.bypass_roles",
    "SELECT * FROM tombstone.operation_rows",
    "SELECT actor FROM tombstone.operations",
    "SELECT id FROM tombstone.operations",
    "INSERT INTO tombstone.operations (table_schema, table_name, actor) VALUES ('public', 'projects', 'alice')",
    "DO $$BEGIN INSERT INTO tombstone.operations (table_schema, table_name, actor) VALUES ('public', 'projects', 'alice'); END$$",
    "INSERT INTO tombstone.operation_rows (op_id, table_schema, table_name, action, pk) VALUES (gen_random_uuid(), 'public', 'projects', 'soft_delete', '{\"id\": 1}')",
    "SELECT tombstone.statement_operation('public', 'projects')",
    "SELECT * FROM tombstone.restores",
    "SELECT * FROM tombstone.edges",
    "SELECT * FROM tombstone.edge_rules",
    "DELETE FROM tombstone.edge_rules",
    "INSERT INTO tombstone.edge_rules (kind, ord, name) VALUES ('remove', 99, 'tasks_project_id_fkey')",
    "SELECT * FROM tombstone.hard_delete_grants",
    "SELECT * FROM tombstone.archive",
    "DELETE FROM tombstone.archive",
    "SELECT * FROM tombstone.purge_archived()",
    "SELECT tombstone.purge_batch('public.comments', interval '0s', 10, NULL, 'table', true)",
    "INSERT INTO tombstone.bypass_roles VALUES (session_user)",
    "DO $$BEGIN INSERT INTO tombstone.bypass_roles VALUES (session_user); END$$",
    "INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor) VALUES ('public', 'projects', '{\"id\": 2}', 'erase', 'alice')",
    "DO $$BEGIN INSERT INTO tombstone.audit (table_schema, table_name, pk, action, actor) VALUES ('public', 'projects', '{\"id\": 2}', 'erase', 'alice'); END$$",
    "INSERT INTO tombstone.hard_delete_grants (reason, actor) VALUES ('erase', 'x')",
    "UPDATE tombstone.audit SET actor = 'alice'",
    "DELETE FROM tombstone.audit",
    "INSERT INTO tombstone.audit_settings VALUES ('*', '*', false, false)",
    "SELECT tombstone.erase('projects', '{\"id\": 2}')",
    "SELECT * FROM tombstone.trash()",
    "SELECT * FROM tombstone.trash_actions()",
    "SELECT tombstone.restore_action('1')",
    "SELECT * FROM tombstone.restore_blocker('00000000-0000-0000-0000-000000000000')",
    "SELECT tombstone.restore_preview('00000000-0000-0000-0000-000000000000')",
    "SELECT tombstone.restore_row_preview('projects', '{\"id\": 1}')",
    "SELECT tombstone.restore_action_preview('1')",
    "SELECT tombstone.restore_operation('00000000-0000-0000-0000-000000000000', 'x', false)",
    "SELECT tombstone.row_operation('projects', '{\"id\": 1}')",
    "SELECT * FROM tombstone.restore_blockers('{00000000-0000-0000-0000-000000000000}')",
    "SELECT * FROM tombstone.restore_unique_conflicts('{00000000-0000-0000-0000-000000000000}')",
    "SELECT tombstone.restore_check_unique('{00000000-0000-0000-0000-000000000000}', 'x', 'y')",
    "SELECT tombstone.restore_counts('00000000-0000-0000-0000-000000000000')",
    "SELECT tombstone.action_size('1')",
    "SELECT tombstone.restore_app_set_null('1', 'x')",
    "SELECT tombstone.undo('1')",
];

#[tokio::test]
async fn normal_roles_have_no_access_to_tombstone_tables() {
    let p = Protected::start("priv", 3, "");
    // An older quick start granted the app SELECT, INSERT on tombstone's
    // tables; a migrate takes that back.
    psql(
        &p.db.url,
        &[
            "-c",
            &format!(
                "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA tombstone TO \"{}\"",
                p.app
            ),
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["migrate", "--apply", "--database-url", &p.db.url])
        .output()
        .expect("run tombstone migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let direct_app = direct(&p, &p.app).await;
    let proxied_app = p.connect_as(&p.app).await;
    for (who, client) in [("direct", &direct_app), ("proxy", &proxied_app)] {
        for sql in FORBIDDEN {
            let e = client
                .batch_execute(sql)
                .await
                .expect_err(&format!("{who}: {sql} must be refused"));
            assert_eq!(sqlstate(&e), "42501", "{who}: {sql}: {e:?}");
        }
    }

    // Nothing was forged: the bypass list holds only the configured role,
    // and the trail has no erase row.
    let admin = connect(&url_for(&p.db.name)).await;
    let bypass: Vec<String> = admin
        .query("SELECT role_name FROM tombstone.bypass_roles", &[])
        .await
        .expect("bypass roles")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(bypass, vec![p.bypass_role.clone()]);
    let erased: i64 = admin
        .query_one(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'erase'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(erased, 0);

    // The application's own work still goes through and is audited; the
    // bypass role reads the trail through the proxy.
    let n = proxied_app
        .execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .expect("soft delete as the app");
    assert_eq!(n, 1);
    let admin_proxy = p.connect_as(&p.admin).await;
    let audited: i64 = admin_proxy
        .query_one(
            "SELECT count(*) FROM tombstone.audit WHERE action = 'soft_delete' AND login_role = $1",
            &[&p.app],
        )
        .await
        .expect("bypass role reads the trail")
        .get(0);
    assert!(audited > 1, "cascade audited: {audited}");
}

#[tokio::test]
async fn shadowed_built_ins_change_nothing_tombstone_writes() {
    let p = Protected::start("shadow", 3, "");
    psql(
        &p.db.url,
        &[
            "-c",
            &format!("GRANT CREATE ON SCHEMA public TO \"{}\"", p.app),
        ],
    );
    let app = p.connect_as(&p.app).await;
    app.batch_execute(
        "CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT '2000-01-01'::timestamptz$$;
         CREATE FUNCTION public.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$SELECT '{}'::jsonb$$;
         CREATE FUNCTION public.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$SELECT 'mallory'::text$$;
         SET search_path = public, pg_catalog;",
    )
    .await
    .expect("shadowing functions");
    let n = app
        .execute("DELETE FROM tasks WHERE id = 2", &[])
        .await
        .expect("soft delete");
    assert_eq!(n, 1);
    let admin = connect(&url_for(&p.db.name)).await;
    let row = admin
        .query_one(
            "SELECT t.deleted_at > pg_catalog.now() - interval '1 hour',
                    (SELECT count(*) FROM tombstone.audit a
                      WHERE a.table_name = 'tasks' AND a.action = 'soft_delete'
                        AND a.pk = '{\"id\": 2}' AND a.old_values ? 'title' AND a.actor = $1)
               FROM tasks t WHERE t.id = 2",
            &[&p.app],
        )
        .await
        .expect("check");
    let recent: bool = row.get(0);
    let audited: i64 = row.get(1);
    assert!(recent, "deleted_at was back-dated by a shadowing now()");
    assert_eq!(audited, 1, "audit row with real old values and actor");
}

#[tokio::test]
async fn hand_written_hides_and_unhides_leave_a_trace() {
    let p = Protected::start("hide", 1, "");
    let app = direct(&p, &p.app).await;
    app.batch_execute(
        "DO $$BEGIN UPDATE tasks SET deleted_at = pg_catalog.now() WHERE id = 5; END$$",
    )
    .await
    .expect("hand-written hide");
    // Row-level security: a deleted row can neither be un-hidden, changed
    // nor physically deleted by a normal role, and a hide cannot be
    // back-dated (purge fodder).
    for sql in [
        "UPDATE tasks SET deleted_at = NULL WHERE id = 5",
        "UPDATE tasks SET title = 'overwritten' WHERE id = 5",
        "DO $$BEGIN UPDATE tasks SET deleted_at = NULL WHERE id = 5; END$$",
    ] {
        app.batch_execute(sql).await.expect(sql);
    }
    let n = app
        .execute("UPDATE tasks SET deleted_at = NULL WHERE id = 5", &[])
        .await
        .expect("un-hide");
    assert_eq!(n, 0, "a soft-deleted row is out of reach");
    let e = app
        .batch_execute("UPDATE tasks SET deleted_at = '2000-01-01' WHERE id = 7")
        .await
        .expect_err("back-dated hide");
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    // A soft delete through the proxy is audited once, as a soft delete.
    let proxied = p.connect_as(&p.app).await;
    proxied
        .execute("DELETE FROM tasks WHERE id = 6", &[])
        .await
        .expect("soft delete");
    let admin = connect(&url_for(&p.db.name)).await;
    let actions = |id: i64| {
        let admin = &admin;
        async move {
            admin
                .query(
                    "SELECT action FROM tombstone.audit WHERE table_name = 'tasks'
                      AND pk = pg_catalog.jsonb_build_object('id', $1::bigint) ORDER BY id",
                    &[&id],
                )
                .await
                .expect("audit")
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    // The hand-written hide became an operation (SPEC W9), audited as a
    // soft delete and restorable; the un-hide attempts changed nothing.
    assert_eq!(actions(5).await, vec!["soft_delete"]);
    let recorded: i64 = admin
        .query_one(
            "SELECT count(*) FROM tombstone.operation_rows r JOIN tombstone.operations o ON o.id = r.op_id
              WHERE r.table_name = 'tasks' AND r.pk = '{\"id\": 5}' AND o.login_role = $1",
            &[&p.app],
        )
        .await
        .expect("operation rows")
        .get(0);
    assert_eq!(recorded, 1);
    let title: String = admin
        .query_one(
            "SELECT title FROM tasks WHERE id = 5 AND deleted_at IS NOT NULL",
            &[],
        )
        .await
        .expect("task 5 stays deleted")
        .get(0);
    assert_ne!(title, "overwritten");
    assert_eq!(actions(6).await, vec!["soft_delete"]);
}

#[tokio::test]
async fn row_level_security_hides_the_trash_from_server_side_code_and_still_lets_rows_revive() {
    let p = Protected::start("rls", 1, "");
    let proxied = p.connect_as(&p.app).await;
    assert_eq!(
        proxied
            .execute("DELETE FROM tasks WHERE id = 9", &[])
            .await
            .expect("soft delete"),
        1
    );
    // Directly, from a DO block and through a view the app creates, the
    // deleted row is gone.
    let app = direct(&p, &p.app).await;
    let seen: i64 = app
        .query_one("SELECT count(*) FROM tasks WHERE id = 9", &[])
        .await
        .expect("direct read")
        .get(0);
    assert_eq!(seen, 0, "a direct read sees a soft-deleted row");
    app.batch_execute(
        "DO $$BEGIN IF EXISTS (SELECT 1 FROM tasks WHERE id = 9) THEN RAISE EXCEPTION 'leak'; END IF; END$$;
         CREATE TEMP VIEW v AS SELECT * FROM tasks;",
    )
    .await
    .expect("server-side code sees no deleted row");
    let through_view: i64 = app
        .query_one("SELECT count(*) FROM v WHERE id = 9", &[])
        .await
        .expect("view")
        .get(0);
    assert_eq!(through_view, 0);
    // The revive record cannot be forged.
    let e = app
        .batch_execute("SELECT tombstone.revive_mark('public', 'tasks', '{\"id\": 9}'::jsonb)")
        .await
        .expect_err("revive_mark is tombstone's own");
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    // Re-inserting the key revives the row, through the proxy as in the
    // database, with exactly the inserted values.
    let title: String = proxied
        .query_one(
            "INSERT INTO tasks (id, project_id, title) VALUES (9, 1, 'again') RETURNING title",
            &[],
        )
        .await
        .expect("revive through the proxy")
        .get(0);
    assert_eq!(title, "again");
    let live: i64 = app
        .query_one(
            "SELECT count(*) FROM tasks WHERE id = 9 AND title = 'again'",
            &[],
        )
        .await
        .expect("revived row")
        .get(0);
    assert_eq!(live, 1);
}
