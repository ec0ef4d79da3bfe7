//! Hostile and broken clients: garbage, truncated messages, absurd lengths,
//! disconnects mid-message. Each closes only its own connection (with an
//! 08P01 ErrorResponse where the client can still listen) while a
//! well-behaved client keeps working throughout.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Proxy, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn startup_packet(db: &str, app: &str) -> Vec<u8> {
    let mut body = 196608i32.to_be_bytes().to_vec();
    for (k, v) in [
        ("user", "postgres"),
        ("database", db),
        ("application_name", app),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// Reads everything until the server closes; returns the bytes.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    out
}

/// Opens a session with a raw socket and waits for ReadyForQuery.
async fn raw_session(proxy: &Proxy, db: &str, app: &str) -> TcpStream {
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(&startup_packet(db, app)).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    // Trust auth: the server's greeting ends with ReadyForQuery 'Z' 0 0 0 5 'I'.
    while !seen.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed during startup");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

fn has_error_code(bytes: &[u8], code: &str) -> bool {
    let needle = format!("C{code}\0");
    bytes.first() == Some(&b'E') && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A client that runs queries in a loop until told to stop, counting them.
struct Bystander {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Bystander {
    async fn start(proxy: &Proxy, db: &str) -> Bystander {
        let client = proxy.connect(db).await;
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let (s, d) = (stop.clone(), done.clone());
        let task = tokio::spawn(async move {
            let stmt = client
                .prepare("SELECT $1::int + 1")
                .await
                .map_err(|e| e.to_string())?;
            let mut i = 0i32;
            while !s.load(Ordering::Relaxed) {
                let v: i32 = client
                    .query_one(&stmt, &[&i])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                if v != i + 1 {
                    return Err(format!("wrong answer {v} for {i}"));
                }
                i = i.wrapping_add(1) % 1_000_000;
                d.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        Bystander { stop, done, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap().unwrap();
        self.done.load(Ordering::Relaxed)
    }
}

#[tokio::test]
async fn broken_clients_never_disturb_a_good_one() {
    let db = TestDb::new("robust");
    let proxy = Proxy::start();
    let bystander = Bystander::start(&proxy, &db.name).await;
    let admin = proxy.connect(&db.name).await;

    // 1. Garbage instead of a startup packet (an HTTP request), and a
    //    Terminate sent before any startup (node-postgres on connect-then-
    //    end): no length a startup packet can have, so the connection is
    //    closed without a word, as PostgreSQL closes it.
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[b'X', 0, 0, 0, 4],
    ] {
        let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let reply = read_to_close(&mut s).await;
        assert!(reply.is_empty(), "{bytes:?} was answered: {reply:?}");
    }

    // 2. A startup packet with an impossible protocol version: PostgreSQL's
    //    FATAL 0A000.
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(&[0, 0, 0, 8, 0, 9, 0, 0]).await.unwrap();
    let reply = read_to_close(&mut s).await;
    assert!(has_error_code(&reply, "0A000"), "{reply:?}");

    // 3. A message claiming 2 GiB after a good startup.
    let mut s = raw_session(&proxy, &db.name, "robust_huge").await;
    s.write_all(&[b'Q', 0x7f, 0xff, 0xff, 0xff, b's', b'e'])
        .await
        .unwrap();
    let reply = read_to_close(&mut s).await;
    assert!(has_error_code(&reply, "08P01"), "{reply:?}");

    // 4. A negative length.
    let mut s = raw_session(&proxy, &db.name, "robust_negative").await;
    s.write_all(&[b'Q', 0x80, 0, 0, 0]).await.unwrap();
    let reply = read_to_close(&mut s).await;
    assert!(has_error_code(&reply, "08P01"), "{reply:?}");

    // 5. Random bytes after startup: an unknown message type is the
    //    server's to refuse; either way the connection ends cleanly.
    let mut s = raw_session(&proxy, &db.name, "robust_random").await;
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&garbage).await;
    let reply = read_to_close(&mut s).await;
    assert!(
        reply.first() == Some(&b'E'),
        "expected an ErrorResponse, got {reply:?}"
    );

    // 6. Truncated message, then the client closes its side.
    let mut s = raw_session(&proxy, &db.name, "robust_truncated").await;
    s.write_all(&[b'Q', 0, 0, 0, 100, b's', b'e', b'l'])
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let _ = read_to_close(&mut s).await;

    // 7. Disconnect mid-message without a goodbye, several times.
    for _ in 0..5 {
        let mut s = raw_session(&proxy, &db.name, "robust_drop").await;
        s.write_all(&[b'P', 0, 0, 1, 0, 0, b's']).await.unwrap();
        drop(s);
    }

    // 8. Disconnect in the middle of startup.
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(&startup_packet(&db.name, "x")[..10])
        .await
        .unwrap();
    drop(s);

    // Every broken session's server backend is gone too.
    let mut leftover = i64::MAX;
    for _ in 0..100 {
        leftover = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'robust_%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if leftover == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        leftover, 0,
        "server connections of broken clients were not closed"
    );

    let served = bystander.finish().await;
    assert!(served > 0, "the well-behaved client made no progress");
}

#[tokio::test]
async fn oversized_message_is_refused_with_08p01() {
    let db = TestDb::new("robust_limit");
    let proxy = Proxy::start_with(common::ProxyOptions {
        listen_toml: "max_message_bytes = 65536\n".to_string(),
        ..Default::default()
    });
    let bystander = Bystander::start(&proxy, &db.name).await;
    let client = proxy.connect(&db.name).await;
    let huge = format!("SELECT '{}'", "x".repeat(100_000));
    let e = client.simple_query(&huge).await.unwrap_err();
    assert_eq!(common::sqlstate(&e), "08P01", "{e:?}");
    // Below the limit still works on a fresh connection.
    let client = proxy.connect(&db.name).await;
    let ok = format!("SELECT '{}'", "x".repeat(60_000));
    client.simple_query(&ok).await.unwrap();
    assert!(bystander.finish().await > 0);
}

#[tokio::test]
async fn server_side_disconnect_closes_the_client_cleanly() {
    let db = TestDb::new("robust_server_gone");
    let proxy = Proxy::start();
    let victim = proxy.connect(&db.name).await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let admin = common::connect(&common::admin_url()).await;
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let e = victim.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        e.is_closed() || common::sqlstate(&e) == "57P01",
        "expected the server's termination to reach the client: {e:?}"
    );
    // The proxy serves new sessions as before.
    let next = proxy.connect(&db.name).await;
    next.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn unreachable_upstream_gives_the_client_an_error() {
    let port = common::free_port();
    let proxy = Proxy::start_with(common::ProxyOptions {
        upstream: Some(("127.0.0.1".to_string(), port)),
        ..Default::default()
    });
    let e = tokio_postgres::connect(&proxy.conninfo("postgres"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("connected to a server that does not exist");
    assert_eq!(common::sqlstate(&e), "08001", "{e:?}");
}
