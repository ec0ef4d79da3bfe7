//! `tombstone migrate`: prints DDL, applies it idempotently, and what it
//! installs works (audit partitions, refusal function, schema-change
//! notifications).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestDb, run, sqlstate};
use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

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
    let (ok, out, _) = migrate(&[]);
    assert!(ok);
    assert!(
        out.starts_with("BEGIN;") && out.contains("CREATE TABLE IF NOT EXISTS tombstone.audit")
    );

    let client = common::connect(&db_url(&db)).await;
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
    assert!(ok, "{out}{err}");
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
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("10.1.2.3"));
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
