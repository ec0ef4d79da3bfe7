//! `tombstone migrate`: prints DDL, applies it idempotently, and what it
//! installs works (audit partitions, refusal function, schema-change
//! notifications).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestDb, run, sqlstate};
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

/// (action, pk, old body, new body, actor)
type AuditLine = (String, String, Option<String>, Option<String>, String);

fn db_url(db: &TestDb) -> String {
    let (host, port) = common::upstream_host_port();
    format!("postgres://postgres@{host}:{port}/{}", db.name)
}

fn migrate(args: &[&str]) -> (bool, String, String) {
    run(Command::new(env!("CARGO_BIN_EXE_tombstone"))
        .arg("migrate")
        .args(args))
}

async fn catalog_fingerprint(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relkind::text || ' ' || c.relname FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tombstone'
             UNION ALL SELECT 'f ' || p.oid::regprocedure::text FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'tombstone'
             UNION ALL SELECT 'e ' || evtname FROM pg_event_trigger
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn migrate_prints_then_applies_idempotently() {
    let db = TestDb::new("migrate");
    let client = common::connect(&db_url(&db)).await;
    client
        .batch_execute("CREATE TABLE things (id int PRIMARY KEY, deleted_at timestamptz)")
        .await
        .unwrap();
    let (ok, out, err) = migrate(&["--database-url", &db_url(&db)]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("BEGIN;") && out.contains("CREATE TABLE IF NOT EXISTS tombstone.audit")
    );
    assert!(
        out.contains(
            "CREATE OR REPLACE TRIGGER tombstone_audit_update AFTER UPDATE ON \"public\".\"things\""
        ),
        "{out}"
    );

    assert!(
        catalog_fingerprint(&client)
            .await
            .iter()
            .all(|o| !o.contains("audit")),
        "print-only must not change the database"
    );
    let missing = tombstone::migrate::missing_objects(&client).await.unwrap();
    assert!(missing.contains(&"tombstone.audit"), "{missing:?}");

    let (ok, out, err) = migrate(&["--apply", "--database-url", &db_url(&db)]);
    assert!(ok, "first apply: {out}{err}");
    let first = catalog_fingerprint(&client).await;
    assert!(first.iter().any(|o| o == "p audit"), "{first:?}");
    assert!(
        first.iter().any(|o| o.starts_with("r audit_y")),
        "{first:?}"
    );
    assert!(
        first.iter().any(|o| o == "e tombstone_schema_change"),
        "{first:?}"
    );
    let triggers: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'things'::regclass AND tgname LIKE 'tombstone_audit_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        triggers, 2,
        "one INSERT and one UPDATE trigger on the protected table"
    );
    assert!(
        tombstone::migrate::missing_objects(&client)
            .await
            .unwrap()
            .is_empty()
    );

    let (ok, out, err) = migrate(&["--apply", "--database-url", &db_url(&db)]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        catalog_fingerprint(&client).await,
        first,
        "a second migrate changed the schema"
    );
}

#[tokio::test]
async fn installed_objects_work() {
    let db = TestDb::new("migrate_objects");
    let (ok, out, err) = migrate(&["--apply", "--database-url", &db_url(&db)]);
    assert!(ok, "{out}{err}");
    let (client, mut connection) = tokio_postgres::connect(&db_url(&db), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });

    // The refusal function raises the SQLSTATE it is given.
    let e = client
        .query_one(
            "SELECT tombstone.refuse('42501', 'refused here', 'a hint')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let db_error = e.as_db_error().unwrap();
    assert_eq!(db_error.message(), "refused here");
    assert_eq!(db_error.hint(), Some("a hint"));

    // Audit rows land in this month's partition, with defaults filled in.
    client
        .batch_execute(
            "SET tombstone.client_addr = '10.1.2.3'; SET application_name = 'migrate-test'",
        )
        .await
        .unwrap();
    let row = client
        .query_one(
            "INSERT INTO tombstone.audit (table_schema, table_name, pk, action)
             VALUES ('public', 't', '{\"id\": 1}', 'insert')
             RETURNING tableoid::regclass::text, actor, login_role, client_addr, application_name",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, String>(0).starts_with("tombstone.audit_y"));
    assert_eq!(row.get::<_, String>(1), "postgres");
    // A client address set by the session itself is not believed: the
    // server's own view of the connection is recorded (migrate::identity).
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        row.get::<_, Option<String>>(4).as_deref(),
        Some("migrate-test")
    );

    // Retention drops whole expired partitions, not current ones.
    let dropped: i32 = client
        .query_one(
            "SELECT tombstone.drop_audit_partitions(now() - interval '1 day')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dropped, 0);
    client
        .batch_execute(
            "CREATE TABLE tombstone.audit_y2001m01 PARTITION OF tombstone.audit
             FOR VALUES FROM ('2001-01-01 00:00+00') TO ('2001-02-01 00:00+00')",
        )
        .await
        .unwrap();
    let dropped: i32 = client
        .query_one(
            "SELECT tombstone.drop_audit_partitions(now() - interval '1 day')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dropped, 1);
    let n: i64 = client
        .query_one("SELECT count(*) FROM tombstone.audit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "the current partition's row must survive");

    // DDL anywhere in the database is announced on the channel.
    client
        .batch_execute("LISTEN tombstone_schema_change")
        .await
        .unwrap();
    client
        .batch_execute("CREATE TABLE announced (id int)")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        (
            "tombstone_schema_change".to_string(),
            "CREATE TABLE".to_string()
        )
    );
}

#[tokio::test]
async fn audit_triggers_record_inserts_updates_and_hand_written_hides() {
    let db = TestDb::new("migrate_audit");
    let client = common::connect(&db_url(&db)).await;
    client
        .batch_execute(
            "CREATE TABLE notes (a int, b int, body text, deleted_at timestamptz, PRIMARY KEY (a, b));
             CREATE TABLE plain (id int PRIMARY KEY)",
        )
        .await
        .unwrap();
    let (ok, out, err) = migrate(&["--apply", "--database-url", &db_url(&db)]);
    assert!(ok, "{out}{err}");

    // One statement per Query: a sqlcommenter tag names the actor of its
    // whole query string.
    for sql in [
        "SET tombstone.actor = 'alice'",
        "INSERT INTO notes VALUES (1, 1, 'one'), (1, 2, 'two')",
        "/*actor='bob%40example.com',route='x'*/ UPDATE notes SET body = 'uno' WHERE a = 1 AND b = 1",
        "UPDATE notes SET deleted_at = now() WHERE b = 2",
        "INSERT INTO plain VALUES (1)",
    ] {
        client.batch_execute(sql).await.unwrap();
    }
    let rows = client
        .query(
            "SELECT action, pk::text, old_values->>'body', new_values->>'body', actor
             FROM tombstone.audit ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<AuditLine> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "insert".into(),
                r#"{"a": 1, "b": 1}"#.into(),
                None,
                Some("one".into()),
                "alice".into()
            ),
            (
                "insert".into(),
                r#"{"a": 1, "b": 2}"#.into(),
                None,
                Some("two".into()),
                "alice".into()
            ),
            (
                "update".into(),
                r#"{"a": 1, "b": 1}"#.into(),
                Some("one".into()),
                Some("uno".into()),
                "bob@example.com".into()
            ),
            // Setting deleted_at by hand becomes an operation (SPEC W9):
            // the trigger records the row as soft-deleted, never skipped.
            (
                "soft_delete".into(),
                r#"{"a": 1, "b": 2}"#.into(),
                Some("two".into()),
                Some("two".into()),
                "alice".into()
            ),
        ],
        "a hand-written hide is audited as a soft delete; the unprotected table is not audited"
    );
    let ops: i64 = client
        .query_one(
            "SELECT count(*) FROM tombstone.operations o JOIN tombstone.operation_rows r ON r.op_id = o.id
              WHERE o.table_name = 'notes' AND r.pk = '{\"a\": 1, \"b\": 2}' AND o.actor = 'alice'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ops, 1, "the hand-written hide is an operation, restorable");

    // Settings switch auditing off per table, and a rollback removes rows.
    client
        .batch_execute(
            "INSERT INTO tombstone.audit_settings VALUES ('public', 'notes', false, true);
             INSERT INTO notes VALUES (2, 1, 'quiet');
             BEGIN; UPDATE notes SET body = 'gone' WHERE a = 2; ROLLBACK;",
        )
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM tombstone.audit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4, "the four rows above, nothing more");
}
