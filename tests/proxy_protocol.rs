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

/// A session on a raw socket, as a driver opens it: the BackendKeyData's pid
/// and secret, and the stream after the first ReadyForQuery.
async fn raw_session(
    addr: std::net::SocketAddr,
    db: &str,
) -> (tokio::net::TcpStream, i32, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut body = 196608i32.to_be_bytes().to_vec();
    for part in ["user", "postgres", "database", db, ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    s.write_all(&packet).await.unwrap();
    let mut key = None;
    for (tag, msg) in raw_until_ready(&mut s).await {
        if tag == b'K' {
            key = Some((
                i32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]),
                msg[4..].to_vec(),
            ));
        }
    }
    let (pid, secret) = key.expect("no BackendKeyData");
    (s, pid, secret)
}

/// Messages up to and including the next ReadyForQuery.
async fn raw_until_ready(s: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    loop {
        let mut head = [0u8; 5];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut msg = vec![0u8; len - 4];
        s.read_exact(&mut msg).await.unwrap();
        let ready = head[0] == b'Z';
        out.push((head[0], msg));
        if ready {
            return out;
        }
    }
}

async fn raw_query(s: &mut tokio::net::TcpStream, sql: &str) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncWriteExt;
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    query.extend_from_slice(sql.as_bytes());
    query.push(0);
    s.write_all(&query).await.unwrap();
    raw_until_ready(s).await
}

/// A CancelRequest as libpq's `PQcancel` sends it: write, then wait for the
/// server to close the connection, which it takes as "delivered".
async fn raw_cancel(addr: std::net::SocketAddr, pid: i32, secret: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut packet = ((12 + secret.len()) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&80877102i32.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(secret);
    s.write_all(&packet).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
}

/// How many of 20 `pg_sleep(0.05)` sent right after a delivered cancel of
/// the idle session are killed by it.
async fn killed_by_an_earlier_cancel(addr: std::net::SocketAddr, db: &str) -> usize {
    let (mut s, pid, secret) = raw_session(addr, db).await;
    let mut killed = 0;
    for _ in 0..20 {
        raw_cancel(addr, pid, &secret).await;
        let reply = raw_query(&mut s, "SELECT pg_sleep(0.05)").await;
        if reply.iter().any(|(tag, _)| *tag == b'E') {
            killed += 1;
        }
    }
    killed
}

/// libpq's `PQcancel`, psycopg and asyncpg take the close of the cancel
/// connection as "delivered" and send their next statement at once.
/// Cancelling an idle session is then a no-op in PostgreSQL; through the
/// proxy it must stay one, so the cancel must have reached the server
/// before the client sees the close.
#[tokio::test]
async fn a_cancel_the_client_saw_delivered_never_kills_the_next_statement() {
    let db = TestDb::new("proto_cancel_idle");
    let proxy = Proxy::start();
    let (host, port) = common::upstream_host_port();
    let direct: std::net::SocketAddr = format!("{host}:{port}").parse().unwrap();
    let baseline = killed_by_an_earlier_cancel(direct, &db.name).await;
    let through = killed_by_an_earlier_cancel(proxy.addr(), &db.name).await;
    assert_eq!(
        (baseline, through),
        (0, 0),
        "statements killed by the cancel sent before them (directly, through tombstone)"
    );
}

/// The pid in BackendKeyData is the server backend's: drivers compare it with
/// `pg_backend_pid()`, with the pid of notifications and with
/// `pg_stat_activity`, and pass it to `pg_terminate_backend`. The secret is
/// the proxy's, and the key still cancels.
#[tokio::test]
async fn backend_key_carries_the_real_backend_pid() {
    let db = TestDb::new("proto_pid");
    let proxy = Proxy::start();
    let (mut s, pid, _) = raw_session(proxy.addr(), &db.name).await;
    let reply = raw_query(&mut s, "SELECT pg_backend_pid()::text").await;
    let answer = reply.iter().find(|(tag, _)| *tag == b'D').map(|(_, msg)| {
        let n = i32::from_be_bytes([msg[2], msg[3], msg[4], msg[5]]) as usize;
        String::from_utf8_lossy(&msg[6..6 + n]).to_string()
    });
    assert_eq!(answer, Some(pid.to_string()));

    let admin = connect(&common::admin_url()).await;
    let is_backend: bool = admin
        .query_one(
            "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(is_backend, "pid {pid} is no server backend");

    // The key cancels a running statement.
    let (mut victim, vpid, vsecret) = raw_session(proxy.addr(), &db.name).await;
    let running = tokio::spawn(async move { raw_query(&mut victim, "SELECT pg_sleep(30)").await });
    for _ in 0..400 {
        let active: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(30)%'",
                &[&vpid],
            )
            .await
            .unwrap()
            .get(0);
        if active == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    raw_cancel(proxy.addr(), vpid, &vsecret).await;
    let reply = running.await.unwrap();
    let error = reply
        .iter()
        .find(|(tag, _)| *tag == b'E')
        .map(|(_, m)| m.clone());
    let error = error.expect("the statement was not cancelled");
    assert!(
        error.windows(7).any(|w| w == b"C57014\0"),
        "{:?}",
        String::from_utf8_lossy(&error)
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
