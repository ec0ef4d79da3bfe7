//! tokio-postgres through the proxy: simple and extended protocol, prepared
//! statements, binary parameters, errors in transactions, COPY both ways,
//! LISTEN/NOTIFY and cancel.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Proxy, TestDb, connect, sqlstate};
use futures_util::{SinkExt, StreamExt, TryStreamExt, pin_mut};
use tokio_postgres::AsyncMessage;

#[tokio::test]
async fn simple_and_extended_queries() {
    let db = TestDb::new("proto_basic");
    let proxy = Proxy::start();
    let client = proxy.connect(&db.name).await;

    let rows = client
        .simple_query("CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'ä'), (2, NULL); SELECT count(*) FROM t")
        .await
        .unwrap();
    let counts: Vec<_> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(counts, ["2"]);

    let row = client
        .query_one("SELECT name FROM t WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ä");
    let row = client
        .query_one("SELECT name FROM t WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), None);
    assert_eq!(
        client
            .execute("UPDATE t SET name = $1 WHERE id > $2", &[&"x", &0i32])
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn prepared_statement_reused_many_times_with_binary_parameters() {
    let db = TestDb::new("proto_prepared");
    let proxy = Proxy::start();
    let client = proxy.connect(&db.name).await;
    client
        .batch_execute(
            "CREATE TABLE b (id bigint PRIMARY KEY, v float8, raw bytea, at timestamptz, j jsonb)",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO b VALUES ($1, $2, $3, now(), $4)")
        .await
        .unwrap();
    for i in 0..2000i64 {
        let raw: Vec<u8> = (0..=255u8)
            .cycle()
            .skip(i as usize % 256)
            .take(64)
            .collect();
        let json = serde_json_value(i);
        client
            .execute(&insert, &[&i, &(i as f64 / 3.0), &raw, &json])
            .await
            .unwrap();
    }
    let select = client
        .prepare("SELECT v, raw, j FROM b WHERE id = $1")
        .await
        .unwrap();
    for i in (0..2000i64).step_by(7) {
        let row = client.query_one(&select, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, f64>(0), i as f64 / 3.0);
        let raw: Vec<u8> = row.get(1);
        assert_eq!(raw[0], (i % 256) as u8);
        assert_eq!(raw.len(), 64);
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM b", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2000);
}

/// tokio-postgres sends jsonb as text with a version byte; build the value
/// through a string so no serde_json dependency is needed.
fn serde_json_value(i: i64) -> JsonText {
    JsonText(format!("{{\"i\": {i}, \"s\": \"ü\"}}"))
}

#[derive(Debug)]
struct JsonText(String);

impl tokio_postgres::types::ToSql for JsonText {
    fn to_sql(
        &self,
        _ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(tokio_postgres::types::IsNull::No)
    }
    tokio_postgres::types::accepts!(JSONB);
    tokio_postgres::types::to_sql_checked!();
}

#[tokio::test]
async fn error_in_transaction_then_rollback_then_more_work() {
    let db = TestDb::new("proto_txerr");
    let proxy = Proxy::start();
    let mut client = proxy.connect(&db.name).await;
    client
        .batch_execute("CREATE TABLE u (id int PRIMARY KEY)")
        .await
        .unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO u VALUES (1)", &[]).await.unwrap();
    let e = tx
        .execute("INSERT INTO u VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "23505");
    let e = tx.execute("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02", "the transaction is aborted");
    tx.rollback().await.unwrap();

    let e = client.simple_query("SELEC 1").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    client
        .execute("INSERT INTO u VALUES (2)", &[])
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM u", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 1,
        "the rolled back insert is gone, the later one is there"
    );
}

#[tokio::test]
async fn pipelined_queries_keep_their_order() {
    let db = TestDb::new("proto_pipeline");
    let proxy = Proxy::start();
    let client = proxy.connect(&db.name).await;
    let stmt = client.prepare("SELECT $1::int * 2").await.unwrap();
    // tokio-postgres pipelines concurrent queries on one connection.
    let futures = (0..200i32).map(|i| {
        let client = &client;
        let stmt = &stmt;
        async move { (i, client.query_one(stmt, &[&i]).await) }
    });
    for (i, row) in futures_util::future::join_all(futures).await {
        assert_eq!(row.unwrap().get::<_, i32>(0), i * 2);
    }
}

#[tokio::test]
async fn copy_in_and_out_of_100k_rows_is_identical() {
    let db = TestDb::new("proto_copy");
    let proxy = Proxy::start();
    let client = proxy.connect(&db.name).await;
    client
        .batch_execute("CREATE TABLE c (id int, label text, note text)")
        .await
        .unwrap();

    let mut sent = Vec::new();
    for i in 0..100_000 {
        sent.extend_from_slice(
            format!(
                "{i}\tlabel {i} ünïcode\t{}\n",
                if i % 10 == 0 { "\\N" } else { "tab\\there" }
            )
            .as_bytes(),
        );
    }
    let sink = client.copy_in("COPY c FROM STDIN").await.unwrap();
    pin_mut!(sink);
    for chunk in sent.chunks(64 * 1024) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 100_000);

    let stream = client.copy_out("COPY c TO STDOUT").await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    let received: Vec<u8> = chunks.concat();
    assert_eq!(received.len(), sent.len());
    assert!(
        received == sent,
        "COPY TO returned different bytes than COPY FROM received"
    );
}

#[tokio::test]
async fn listen_notify_is_delivered_through_the_proxy() {
    let db = TestDb::new("proto_notify");
    let proxy = Proxy::start();
    let (listener, mut connection) =
        tokio_postgres::connect(&proxy.conninfo(&db.name), tokio_postgres::NoTls)
            .await
            .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    listener
        .batch_execute("LISTEN tombstone_test")
        .await
        .unwrap();

    let sender = proxy.connect(&db.name).await;
    sender
        .batch_execute("NOTIFY tombstone_test, 'hello ✓'")
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("tombstone_test".to_string(), "hello ✓".to_string()));
}

#[tokio::test]
async fn cancel_reaches_the_running_query() {
    let db = TestDb::new("proto_cancel");
    let proxy = Proxy::start();
    let client = proxy.connect(&db.name).await;
    let token = client.cancel_token();
    let started = Instant::now();
    let query =
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let e = query.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&e), "57014", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cancel took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn many_concurrent_sessions() {
    let db = TestDb::new("proto_many");
    let proxy = Proxy::start();
    let tasks = (0..40).map(|i| {
        let conninfo = proxy.conninfo(&db.name);
        tokio::spawn(async move {
            let c = connect(&conninfo).await;
            for j in 0..50i32 {
                let v: i32 = c
                    .query_one("SELECT $1::int + $2::int", &[&i, &j])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(v, i + j);
            }
        })
    });
    for t in tasks {
        t.await.unwrap();
    }
}
