//! Soft delete through the wire: an unmodified client talks to the proxy
//! and gets soft deletes with the tags it expects, live-row reads,
//! refusals as proper errors, in the simple and the extended protocol.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{count, run, sqlstate};

/// (table, action, pk, actor, old title, new title)
type AuditLine = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

#[tokio::test]
async fn psql_story_delete_a_project_and_see_it_in_the_trash() {
    let p = Protected::start("story", 2, "");
    // The application deletes project 1 with psql, as any client would.
    let (ok, out, err) = run(Command::new("psql").arg(p.conninfo(&p.app)).args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        "DELETE FROM projects WHERE id = 1",
    ]));
    assert!(ok, "{err}\n{}", p.proxy.log());
    assert_eq!(out.trim(), "DELETE 1");

    let app = p.connect_as(&p.app).await;
    assert_eq!(count(&app, "SELECT count(*) FROM projects").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE project_id = 1").await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = 1").await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM attachments a JOIN tasks t ON t.id = a.task_id WHERE t.project_id = 1").await,
        0
    );
    // Project 2 is untouched.
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE project_id = 2").await,
        500
    );

    // The admin (a member of the bypass role) sees the trash.
    let admin = p.connect_as(&p.admin).await;
    assert_eq!(count(&admin, "SELECT count(*) FROM projects").await, 2);
    assert_eq!(
        count(
            &admin,
            "SELECT count(*) FROM tasks WHERE project_id = 1 AND deleted_at IS NOT NULL"
        )
        .await,
        500
    );
    assert_eq!(
        count(&admin, "SELECT count(*) FROM comments c JOIN tasks t ON t.id = c.task_id WHERE t.project_id = 1 AND c.deleted_at IS NOT NULL").await,
        2000
    );

    // Nothing was physically removed.
    let direct = p.db.connect().await;
    assert_eq!(count(&direct, "SELECT count(*) FROM tasks").await, 1000);
    assert_eq!(count(&direct, "SELECT count(*) FROM task_tags").await, 1000);

    // The audit trail has one row per soft-deleted row, all with the same
    // operation, the app's login role as actor and client address, and the
    // old and new values.
    let rows = direct
        .query(
            "SELECT table_name, count(*), count(DISTINCT op_id), min(actor), min(login_role), min(client_addr),
                    bool_and(old_values->>'deleted_at' IS NULL AND new_values->>'deleted_at' IS NOT NULL)
             FROM tombstone.audit WHERE action = 'soft_delete' GROUP BY table_name ORDER BY table_name",
            &[],
        )
        .await
        .unwrap();
    let summary: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        summary,
        [
            ("attachments".to_string(), 300),
            ("comments".to_string(), 2000),
            ("document_versions".to_string(), 50),
            ("documents".to_string(), 10),
            ("invoices".to_string(), 3),
            ("project_members".to_string(), 8),
            ("projects".to_string(), 1),
            ("tasks".to_string(), 500),
            ("time_entries".to_string(), 250),
        ]
    );
    for r in &rows {
        assert_eq!(r.get::<_, i64>(2), 1, "one operation id");
        assert_eq!(r.get::<_, String>(3), p.app, "actor");
        assert_eq!(r.get::<_, String>(4), p.app, "login role");
        assert_eq!(
            r.get::<_, Option<String>>(5).as_deref(),
            Some("127.0.0.1"),
            "client address"
        );
        assert!(r.get::<_, bool>(6), "old and new values");
    }
    let ops: i64 = count(
        &direct,
        "SELECT count(DISTINCT op_id) FROM tombstone.audit WHERE action = 'soft_delete'",
    )
    .await;
    assert_eq!(ops, 1);
}

#[tokio::test]
async fn actor_from_set_local_and_sqlcommenter_and_updates_audited() {
    let p = Protected::start("actor", 1, "");
    let mut app = p.connect_as(&p.app).await;
    let tx = app.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL tombstone.actor = 'carol'")
        .await
        .unwrap();
    tx.execute("DELETE FROM comments WHERE id = $1", &[&1i64])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.execute(
        "/*actor='dave',framework='x'*/ UPDATE tasks SET title = 'renamed' WHERE id = 2",
        &[],
    )
    .await
    .unwrap();
    app.execute("INSERT INTO tags (name) VALUES ('unprotected')", &[])
        .await
        .unwrap();
    // After the transaction, SET LOCAL is gone: the login role acts.
    app.execute("DELETE FROM comments WHERE id = $1", &[&2i64])
        .await
        .unwrap();

    let direct = p.db.connect().await;
    let rows = direct
        .query("SELECT table_name, action, pk::text, actor, old_values->>'title', new_values->>'title' FROM tombstone.audit ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<AuditLine> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "comments".into(),
                "soft_delete".into(),
                r#"{"id": 1}"#.into(),
                "carol".into(),
                None,
                None
            ),
            (
                "tasks".into(),
                "update".into(),
                r#"{"id": 2}"#.into(),
                "dave".into(),
                Some("Task 1-2".into()),
                Some("renamed".into())
            ),
            (
                "comments".into(),
                "soft_delete".into(),
                r#"{"id": 2}"#.into(),
                p.app.clone(),
                None,
                None
            ),
        ]
    );
}

#[tokio::test]
async fn extended_protocol_delete_with_returning_and_tags() {
    let p = Protected::start("ext_delete", 1, "");
    let app = p.connect_as(&p.app).await;
    let delete = app
        .prepare("DELETE FROM tasks WHERE id = $1 RETURNING id, title")
        .await
        .unwrap();
    let rows = app.query(&delete, &[&5i64]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 5);
    assert_eq!(rows[0].get::<_, String>(1), "Task 1-5");
    // Already deleted: a second delete finds nothing, as with a hard delete.
    assert!(app.query(&delete, &[&5i64]).await.unwrap().is_empty());
    // `execute` reads the count from the command tag.
    let plain = app
        .prepare("DELETE FROM tasks WHERE project_id = $1 AND id < $2")
        .await
        .unwrap();
    assert_eq!(app.execute(&plain, &[&1i64, &11i64]).await.unwrap(), 9);
    assert_eq!(
        app.execute("UPDATE tasks SET done = true WHERE id < $1", &[&20i64])
            .await
            .unwrap(),
        9
    );
    // The comments of deleted tasks went with them.
    assert_eq!(
        count(&app, "SELECT count(*) FROM comments WHERE task_id < 11").await,
        0
    );
    let direct = p.db.connect().await;
    assert_eq!(
        count(
            &direct,
            "SELECT count(*) FROM comments WHERE task_id < 11 AND deleted_at IS NOT NULL"
        )
        .await,
        40
    );
}

#[tokio::test]
async fn restrict_refusals_and_errors_leave_the_session_usable() {
    let p = Protected::start("refusals", 1, "");
    let mut app = p.connect_as(&p.app).await;

    // RESTRICT with live children: 23503, nothing changes.
    let e = app
        .execute("DELETE FROM categories WHERE id = $1", &[&2i32])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503", "{e:?}");
    let e = app
        .simple_query("DELETE FROM categories WHERE id = 2")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23503", "{e:?}");

    // TRUNCATE is refused in both protocols.
    let e = app.simple_query("TRUNCATE tasks").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    let e = app
        .execute("TRUNCATE tasks CASCADE", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");

    // Inside a transaction the refusal aborts it, as a real error would.
    let tx = app.transaction().await.unwrap();
    tx.execute("DELETE FROM tasks WHERE id = 1", &[])
        .await
        .unwrap();
    let e = tx.execute("TRUNCATE comments", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let e = tx.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    tx.rollback().await.unwrap();

    // The session goes on, and the rolled-back delete did not happen.
    assert_eq!(
        count(&app, "SELECT count(*) FROM tasks WHERE id = 1").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM categories").await, 3);
}

#[tokio::test]
async fn pipelined_deletes_get_their_own_tags_even_after_an_error() {
    let p = Protected::start("pipeline", 1, "");
    let app = p.connect_as(&p.app).await;
    let delete = app
        .prepare("DELETE FROM comments WHERE task_id = $1")
        .await
        .unwrap();
    let select = app
        .prepare("SELECT count(*) FROM comments WHERE task_id = $1")
        .await
        .unwrap();
    let bad = app
        .prepare("DELETE FROM categories WHERE id = $1")
        .await
        .unwrap();
    // tokio-postgres pipelines these concurrent requests on one connection.
    let (a, b, c, d, e) = tokio::join!(
        app.execute(&delete, &[&1i64]),
        app.query_one(&select, &[&1i64]),
        app.execute(&bad, &[&2i32]),
        app.execute(&delete, &[&2i64]),
        app.execute(&delete, &[&2i64]),
    );
    assert_eq!(a.unwrap(), 4);
    assert_eq!(b.unwrap().get::<_, i64>(0), 0);
    assert_eq!(sqlstate(&c.unwrap_err()), "23503");
    assert_eq!(d.unwrap(), 4);
    assert_eq!(e.unwrap(), 0);
}

#[tokio::test]
async fn schema_change_from_another_connection_is_picked_up() {
    let p = Protected::start("schema_change", 1, "");
    let app = p.connect_as(&p.app).await;
    assert_eq!(count(&app, "SELECT count(*) FROM tags").await, 50);
    let direct = p.db.connect().await;
    direct
        .batch_execute("ALTER TABLE tags ADD COLUMN deleted_at timestamptz; UPDATE tags SET deleted_at = now() WHERE id = 1")
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let n = count(&app, "SELECT count(*) FROM tags").await;
        if n == 49 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tags not protected after 10 s:\n{}",
            p.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Deletes of tags are refused until migrate installs the triggers
    // that record them (a soft delete nobody recorded could not be
    // restored) …
    let e = app
        .execute("DELETE FROM tags WHERE id = 2", &[])
        .await
        .expect_err("not installed yet");
    assert_eq!(sqlstate(&e), "55000", "{e:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .args(["migrate", "--apply", "--database-url", &p.db.url])
        .output()
        .expect("migrate");
    assert!(out.status.success(), "{out:?}");
    // … and soft once it has (the proxy picks the triggers up by itself).
    let started = Instant::now();
    loop {
        match app.execute("DELETE FROM tags WHERE id = 2", &[]).await {
            Ok(n) => {
                assert_eq!(n, 1);
                break;
            }
            Err(e) => {
                assert_eq!(sqlstate(&e), "55000", "{e:?}");
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "triggers not seen after 10 s:\n{}",
                    p.proxy.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(count(&direct, "SELECT count(*) FROM tags").await, 50);
    let recorded = count(
        &direct,
        "SELECT count(*) FROM tombstone.operation_rows WHERE table_name = 'tags' AND pk = '{\"id\": 2}'",
    )
    .await;
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn unprotected_databases_are_relayed_unchanged() {
    let p = Protected::start("other_db", 1, "");
    let other = common::TestDb::new("unprotected");
    let client = common::connect(&format!(
        "host=127.0.0.1 port={} user=postgres dbname={}",
        p.proxy.port, other.name
    ))
    .await;
    client
        .batch_execute("CREATE TABLE projects (id int, deleted_at timestamptz); INSERT INTO projects VALUES (1, NULL); TRUNCATE projects")
        .await
        .unwrap();
}

/// One prepared DELETE and one prepared SELECT, each executed 10,000 times
/// through the proxy with changing parameters; every result must equal the
/// twin database's, where the same statements run directly with real
/// deletes.
#[tokio::test]
async fn prepared_statements_executed_ten_thousand_times_match_the_twin() {
    let p = Protected::start("prepared_stress", 1, "");
    let twin = common::TestDb::twin("prepared_twin", 1);
    let app = p.connect_as(&p.app).await;
    let direct = twin.connect().await;
    let sql_delete = "DELETE FROM comments WHERE id = $1 OR task_id = $2";
    let sql_select = "SELECT c.id, c.body, t.title FROM comments c JOIN tasks t ON t.id = c.task_id WHERE c.task_id = $1 ORDER BY c.id";
    let (pd, ps) = (
        app.prepare(sql_delete).await.unwrap(),
        app.prepare(sql_select).await.unwrap(),
    );
    let (td, ts) = (
        direct.prepare(sql_delete).await.unwrap(),
        direct.prepare(sql_select).await.unwrap(),
    );
    let mut seed: u64 = 0x5eed;
    let mut next = |modulo: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + (seed >> 33) % modulo
    };
    let mut deleted = 0u64;
    for i in 0..10_000u32 {
        let (comment, task) = (
            next(2000) as i64,
            if i % 50 == 0 { next(500) as i64 } else { 0 },
        );
        let a = app.execute(&pd, &[&comment, &task]).await.unwrap();
        let b = direct.execute(&td, &[&comment, &task]).await.unwrap();
        assert_eq!(a, b, "DELETE #{i} ({comment}, {task}): proxy {a}, twin {b}");
        deleted += a;
        let t = next(500) as i64;
        let rows_a: Vec<(i64, String, String)> = app
            .query(&ps, &[&t])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let rows_b: Vec<(i64, String, String)> = direct
            .query(&ts, &[&t])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert_eq!(rows_a, rows_b, "SELECT #{i} for task {t}");
    }
    assert!(
        deleted > 1000,
        "the workload deleted too little to mean anything: {deleted}"
    );
}

#[tokio::test]
async fn set_null_cascades_are_audited_once_with_the_operation() {
    let p = Protected::start("set_null", 1, "");
    let direct = p.db.connect().await;
    let user: String = direct
        .query_one("SELECT id::text FROM users ORDER BY email LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    direct
        .execute(
            "UPDATE tasks SET assignee_id = $1::text::uuid WHERE id <= 5",
            &[&user],
        )
        .await
        .unwrap();
    direct
        .batch_execute("TRUNCATE tombstone.audit")
        .await
        .unwrap();

    let app = p.connect_as(&p.app).await;
    let n = app
        .execute("DELETE FROM users WHERE id = $1::text::uuid", &[&user])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM tasks WHERE assignee_id IS NOT NULL"
        )
        .await,
        0
    );
    let rows = direct
        .query(
            "SELECT table_name, action, count(*), count(op_id), bool_and(old_values->>'assignee_id' IS NOT DISTINCT FROM $1 OR table_name <> 'tasks')
             FROM tombstone.audit GROUP BY 1, 2 ORDER BY 1, 2",
            &[&user],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, i64, i64, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert!(
        got.contains(&("tasks".into(), "set_null".into(), 5, 5, true)),
        "{got:?}"
    );
    assert!(
        got.contains(&("users".into(), "soft_delete".into(), 1, 1, true)),
        "{got:?}"
    );
    assert!(
        got.iter().all(|g| g.1 != "update"),
        "cascade changes audited twice: {got:?}"
    );
}
