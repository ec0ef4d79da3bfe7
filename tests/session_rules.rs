//! Session rules through the wire: tombstone's own tables are read-only,
//! `tombstone.visibility` for bypass sessions with PostgreSQL's transaction
//! semantics, `tombstone.client_addr` unsettable, `search_path` changes
//! followed, `roles.bypass_hard_delete`, and INSERTs that re-use the
//! primary key of a soft-deleted row.

mod common;

use common::protected::Protected;
use common::{count, sqlstate};
use tokio_postgres::Client;

/// Runs `sql` (simple protocol) and expects the proxy's refusal.
async fn refused(client: &Client, sql: &str, state: &str, message_part: &str) {
    let e = client
        .batch_execute(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("{sql} was accepted"));
    assert_eq!(sqlstate(&e), state, "{sql}: {e:?}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains(message_part)),
        "{sql}: {message:?}"
    );
}

#[tokio::test]
async fn audit_trail_and_operations_are_read_only_through_the_proxy() {
    let p = Protected::start("rules_ro", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM tasks WHERE id = 1")
        .await
        .unwrap();
    let audit = count(&direct, "SELECT count(*) FROM tombstone.audit").await;
    assert!(audit > 0);
    for sql in [
        "DELETE FROM tombstone.audit",
        "UPDATE tombstone.audit SET actor = 'someone else'",
        "TRUNCATE tombstone.audit",
        "INSERT INTO tombstone.audit (table_schema, table_name, action) VALUES ('public', 'tasks', 'insert')",
        "INSERT INTO tombstone.operations (table_schema, table_name) VALUES ('public', 'tasks')",
        "DELETE FROM tombstone.operation_rows",
        "SET search_path = tombstone, public; DELETE FROM audit",
    ] {
        refused(&app, sql, "42501", "read-only").await;
    }
    // The extended protocol too, and the session goes on.
    let e = app
        .execute("DELETE FROM tombstone.audit WHERE id = $1", &[&"1"])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    // Normal roles cannot even read the trail (SPEC S1); the session goes on.
    let e = app
        .query_one("SELECT count(*) FROM tombstone.audit", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE id = 1").await,
        0
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tombstone.audit").await,
        audit
    );

    // Bypass sessions read everything but cannot edit the trail either.
    let admin = p.connect_as(&p.admin).await;
    for sql in [
        "DELETE FROM tombstone.audit",
        "TRUNCATE tombstone.audit",
        "UPDATE tombstone.audit SET actor = NULL",
    ] {
        refused(&admin, sql, "42501", "read-only").await;
    }
    assert_eq!(
        count(&admin, "SELECT count(*) FROM tombstone.audit").await,
        audit
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tombstone.audit").await,
        audit
    );
}

#[tokio::test]
async fn visibility_is_a_bypass_setting_with_transaction_semantics() {
    let p = Protected::start("rules_vis", 2, "");
    let app = p.connect_as(&p.app).await;
    assert_eq!(
        app.execute("DELETE FROM projects WHERE id = 1", &[])
            .await
            .unwrap(),
        1
    );
    let q = "SELECT count(*) FROM tasks";
    let admin = p.connect_as(&p.admin).await;
    assert_eq!(count(&admin, q).await, 1000);
    for (set, expected) in [
        ("SET tombstone.visibility = 'deleted'", 500),
        ("SET tombstone.visibility = 'active'", 500),
        ("SET tombstone.visibility TO 'all'", 1000),
        ("SET SESSION tombstone.visibility = deleted", 500),
        ("RESET tombstone.visibility", 1000),
        (
            "SELECT set_config('tombstone.visibility', 'deleted', false)",
            500,
        ),
        ("SET tombstone.visibility TO DEFAULT", 1000),
    ] {
        admin.batch_execute(set).await.unwrap();
        assert_eq!(count(&admin, q).await, expected, "after {set}");
        // Simple protocol, same text: the cache does not pin the value.
        let rows = admin.simple_query(q).await.unwrap();
        let simple = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        assert_eq!(simple, Some(expected.to_string()), "after {set}");
    }
    // SET LOCAL ends with the transaction; a rolled-back SET is undone.
    admin
        .batch_execute("BEGIN; SET LOCAL tombstone.visibility = 'deleted'")
        .await
        .unwrap();
    assert_eq!(count(&admin, q).await, 500);
    admin.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&admin, q).await, 1000);
    admin
        .batch_execute("BEGIN; SET tombstone.visibility = 'deleted'")
        .await
        .unwrap();
    assert_eq!(count(&admin, q).await, 500);
    admin.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&admin, q).await, 1000);
    // Joins: the trash view NULL-extends live children.
    admin
        .batch_execute("SET tombstone.visibility = 'deleted'")
        .await
        .unwrap();
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM projects p LEFT JOIN tasks t ON t.project_id = p.id"
        )
        .await,
        500
    );
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM projects p FULL JOIN tasks t ON t.project_id = p.id"
        )
        .await,
        500
    );
    refused(
        &admin,
        "SET tombstone.visibility = 'trash'",
        "22023",
        "invalid value",
    )
    .await;
    assert_eq!(count(&admin, q).await, 500);

    // Normal sessions: refused, and nothing changes for them.
    for sql in [
        "SET tombstone.visibility = 'all'",
        "SET LOCAL tombstone.visibility = 'all'",
        "RESET tombstone.visibility",
        "SELECT set_config('tombstone.visibility', 'all', false)",
    ] {
        refused(&app, sql, "42501", "tombstone.visibility").await;
    }
    assert_eq!(count(&app, q).await, 500);

    // Nobody sets the client address; everybody sets the actor.
    for c in [&app, &admin] {
        for sql in [
            "SET tombstone.client_addr = '10.9.9.9'",
            "RESET tombstone.client_addr",
            "SELECT set_config('tombstone.client_addr', '10.9.9.9', false)",
        ] {
            refused(c, sql, "42501", "tombstone.client_addr").await;
        }
        c.batch_execute("SET tombstone.actor = 'alice'")
            .await
            .unwrap();
    }
    app.execute("DELETE FROM tasks WHERE id = 600", &[])
        .await
        .unwrap();
    let direct = common::connect(&p.db.url).await;
    let row = direct
        .query_one(
            "SELECT actor, client_addr FROM tombstone.audit WHERE table_name = 'tasks' AND pk = '{\"id\": 600}'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("alice"));
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("127.0.0.1")
    );
}

#[tokio::test]
async fn search_path_changes_are_followed() {
    let p = Protected::start("rules_path", 1, "");
    let direct = common::connect(&p.db.url).await;
    // An unprotected public.invoices next to the protected billing.invoices:
    // resolving a name in the wrong schema either shows deleted invoices
    // or fails with 42703.
    direct
        .batch_execute(&format!(
            "CREATE TABLE public.invoices (id bigint PRIMARY KEY, note text);
             INSERT INTO public.invoices VALUES (1, 'a'), (2, 'b'), (3, 'c');
             GRANT SELECT ON public.invoices TO \"{}\";",
            p.app
        ))
        .await
        .unwrap();
    let app = p.connect_as(&p.app).await;
    app.batch_execute(
        "DELETE FROM billing.invoices WHERE id IN (SELECT id FROM billing.invoices ORDER BY id LIMIT 2)",
    )
    .await
    .unwrap();
    let live = count(
        &direct,
        "SELECT count(*) FROM billing.invoices WHERE deleted_at IS NULL",
    )
    .await;
    let all = count(&direct, "SELECT count(*) FROM billing.invoices").await;
    assert_eq!(all - live, 2);
    let q = "SELECT count(*) FROM invoices";
    // Give the snapshot a moment to learn about public.invoices (not
    // needed for correctness: an unknown table is an unprotected one).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(count(&app, q).await, 3);

    app.batch_execute("SET search_path = billing, public")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, live);
    app.batch_execute("RESET search_path").await.unwrap();
    assert_eq!(count(&app, q).await, 3);
    app.batch_execute("SET SESSION search_path TO \"billing\", public")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, live);
    app.batch_execute("SET search_path TO DEFAULT")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, 3);

    // SET LOCAL lasts until the end of the transaction.
    app.batch_execute("BEGIN; SET LOCAL search_path = billing")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, live);
    app.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&app, q).await, 3);
    app.batch_execute("BEGIN").await.unwrap();
    app.batch_execute("SET LOCAL search_path = billing")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, live);
    app.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&app, q).await, 3);
    // Outside a transaction SET LOCAL does nothing (PostgreSQL warns).
    app.batch_execute("SET LOCAL search_path = billing")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, 3);

    // In one simple query string, and with set_config.
    let rows = app
        .simple_query("SET search_path = billing; SELECT count(*) FROM invoices")
        .await
        .unwrap();
    let got = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(got, Some(live.to_string()));
    app.batch_execute("RESET ALL").await.unwrap();
    assert_eq!(count(&app, q).await, 3);
    app.batch_execute("SELECT set_config('search_path', 'billing', false)")
        .await
        .unwrap();
    assert_eq!(count(&app, q).await, live);
    app.batch_execute("DISCARD ALL").await.unwrap();
    assert_eq!(count(&app, q).await, 3);
}

#[tokio::test]
async fn bypass_hard_delete_when_configured() {
    let p = Protected::start("rules_hard", 1, "bypass_hard_delete = true");
    let direct = common::connect(&p.db.url).await;
    // The database's own guard (SPEC P3), when `migrate` installed it,
    // refuses every physical delete outside purge and erase: a deployment
    // that allows hard deletes runs without it.
    direct
        .batch_execute(
            "DO $$ DECLARE r record; BEGIN
               FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel
                          FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid
                         WHERE f.proname = 'guard_hard_delete' LOOP
                 EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
               END LOOP;
             END $$",
        )
        .await
        .unwrap();
    let admin = p.connect_as(&p.admin).await;
    assert_eq!(
        admin
            .execute("DELETE FROM comments WHERE task_id = $1", &[&1i64])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM comments WHERE task_id = 1").await,
        0
    );
    // The visibility applies to the target: the trash view purges only
    // soft-deleted rows.
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM comments WHERE task_id = 2", &[])
        .await
        .unwrap();
    admin
        .batch_execute("SET tombstone.visibility = 'deleted'")
        .await
        .unwrap();
    let n = admin
        .execute("DELETE FROM comments WHERE task_id IN (2, 3)", &[])
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM comments WHERE task_id IN (2, 3)"
        )
        .await,
        4
    );
    // Normal sessions stay soft.
    assert_eq!(
        app.execute("DELETE FROM comments WHERE task_id = 3", &[])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM comments WHERE task_id = 3").await,
        4
    );
}

#[tokio::test]
async fn inserting_the_key_of_a_soft_deleted_row_behaves_like_a_hard_delete() {
    let p = Protected::start("rules_revive", 1, "");
    let direct = common::connect(&p.db.url).await;
    let app = p.connect_as(&p.app).await;
    // Task 7 has comments (cascade) and an assignee.
    assert_eq!(
        app.execute("DELETE FROM tasks WHERE id = 7", &[])
            .await
            .unwrap(),
        1
    );
    let rows = app
        .query(
            "INSERT INTO tasks (id, project_id, title) VALUES ($1, $2, $3) RETURNING id, title, done, assignee_id::text, deleted_at IS NULL",
            &[&7i64, &1i64, &"again"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "again");
    assert!(!rows[0].get::<_, bool>(2));
    assert_eq!(rows[0].get::<_, Option<String>>(3), None);
    assert!(rows[0].get::<_, bool>(4));
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE id = 7").await,
        1
    );
    // The revive is audited as an update of the soft-deleted row.
    let audited: Vec<String> = direct
        .query(
            "SELECT action FROM tombstone.audit WHERE table_name = 'tasks' AND pk = '{\"id\": 7}' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        audited.last().map(String::as_str),
        Some("update"),
        "{audited:?}"
    );
    // Its comments stay deleted.
    assert_eq!(
        count(&app, "SELECT count(*) FROM comments WHERE task_id = 7").await,
        0
    );
    // A live row still conflicts, as PostgreSQL says it.
    let e = app
        .execute(
            "INSERT INTO tasks (id, project_id, title) VALUES (7, 1, 'twice')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let db = e.as_db_error().unwrap();
    assert_eq!(
        db.message(),
        "duplicate key value violates unique constraint \"tasks_pkey\""
    );
    assert_eq!(db.detail(), Some("Key (id)=(7) already exists."));
    assert_eq!(db.constraint(), Some("tasks_pkey"));
    // Simple protocol, several rows, one of them deleted.
    app.batch_execute("DELETE FROM tasks WHERE id = 8")
        .await
        .unwrap();
    let n = app
        .execute(
            "INSERT INTO tasks (id, project_id, title) VALUES (8, 1, 'x'), (100000, 1, 'y')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    // Composite key: re-adding a removed project member.
    let member: (i64, String) = {
        let r = direct
            .query_one(
                "SELECT project_id, user_id::text FROM project_members LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    app.execute(
        "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2::text::uuid",
        &[&member.0, &member.1],
    )
    .await
    .unwrap();
    assert_eq!(
        app.execute(
            "INSERT INTO project_members (project_id, user_id) VALUES ($1, $2::text::uuid) ON CONFLICT (project_id, user_id) DO NOTHING",
            &[&member.0, &member.1],
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        app.execute(
            "INSERT INTO project_members (project_id, user_id) VALUES ($1, $2::text::uuid) ON CONFLICT (project_id, user_id) DO NOTHING",
            &[&member.0, &member.1],
        )
        .await
        .unwrap(),
        0
    );
    // The client's own DO UPDATE: a soft-deleted conflict is re-created
    // from the proposed row, a live one updated as written.
    direct
        .batch_execute("UPDATE tasks SET done = true WHERE id = 9")
        .await
        .unwrap();
    app.batch_execute("DELETE FROM tasks WHERE id = 9")
        .await
        .unwrap();
    let upsert = "INSERT INTO tasks (id, project_id, title) VALUES (9, 1, $1) \
                  ON CONFLICT (id) DO UPDATE SET title = tasks.title || '+' || EXCLUDED.title \
                  RETURNING title, done";
    let r = app.query_one(upsert, &[&"new"]).await.unwrap();
    assert_eq!(r.get::<_, String>(0), "new");
    assert!(!r.get::<_, bool>(1), "done is back to its default");
    let r = app.query_one(upsert, &[&"more"]).await.unwrap();
    assert_eq!(r.get::<_, String>(0), "new+more");
    // Nothing was physically deleted: one row per key, live.
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM tasks WHERE id IN (7, 8, 9) AND deleted_at IS NULL"
        )
        .await,
        3
    );
}
