//! What tombstone survives (issue 14 item 1): the upstream backend killed
//! in the middle of the brief's cascade, connection limits reached
//! upstream, a client that stops reading a large result, and a thousand
//! connect/disconnect and cancel cycles — nothing half-done, the client
//! gets the server's error, nothing leaks, other sessions go on.

mod common;

use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{Proxy, ProxyOptions, TestDb, count, psql_admin, sqlstate, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open descriptors and resident memory (KiB) of a process.
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    (fds, rss)
}

#[tokio::test]
async fn a_backend_killed_mid_cascade_leaves_nothing_half_done() {
    let p = Protected::start("faults_kill", 2, "");
    let direct = p.db.connect().await;
    let before_ops = count(&direct, "SELECT count(*) FROM tombstone.operations").await;
    // Hold a lock on one comment so the project's cascade waits on it.
    let blocker = p.db.connect().await;
    blocker
        .batch_execute(
            "BEGIN; SELECT 1 FROM comments WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 1) LIMIT 1 FOR UPDATE",
        )
        .await
        .unwrap();
    let app = p.connect_as(&p.app).await;
    let pid: i32 = app
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let delete = tokio::spawn(async move {
        let r = app.simple_query("DELETE FROM projects WHERE id = 1").await;
        (r.map(|_| ()), app)
    });
    // Wait until the cascade is blocked on the lock, then kill it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = count(
            &direct,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND wait_event_type = 'Lock'"),
        )
        .await;
        if waiting == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the delete never waited on the lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed: bool = direct
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    let (result, app) = delete.await.unwrap();
    let e = result.expect_err("the killed delete succeeded");
    // The server's own words reach the client: 57P01 (terminating
    // connection due to administrator command), or the connection closed.
    assert!(
        e.code().map(|c| c.code() == "57P01").unwrap_or(true),
        "{e:?}"
    );
    assert!(app.is_closed() || app.simple_query("SELECT 1").await.is_err());
    blocker.batch_execute("ROLLBACK").await.unwrap();

    // Nothing half-done: the project and its cascade are live, no operation.
    assert_eq!(
        count(
            &direct,
            "SELECT (SELECT count(*) FROM projects WHERE id = 1 AND deleted_at IS NULL)
                  + (SELECT count(*) FROM tasks WHERE project_id = 1 AND deleted_at IS NOT NULL)"
        )
        .await,
        1
    );
    assert_eq!(
        count(&direct, "SELECT count(*) FROM tombstone.operations").await,
        before_ops
    );
    // The proxy serves new clients at once, and the delete then works.
    let again = p.connect_as(&p.app).await;
    let n = again
        .execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert!(p.proxy.log().contains("tombstone listening"));
}

#[tokio::test]
async fn a_connection_limit_upstream_gives_the_client_53300() {
    let db = TestDb::new("faults_limit");
    db.migrate();
    let role = unique_name("limited");
    psql_admin(&format!("CREATE ROLE \"{role}\" LOGIN CONNECTION LIMIT 2"));
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let info = format!(
        "host=127.0.0.1 port={} user={role} dbname={} sslmode=disable",
        proxy.port, db.name
    );
    let a = common::connect(&info).await;
    let b = common::connect(&info).await;
    let e = match tokio_postgres::connect(&info, tokio_postgres::NoTls).await {
        Ok(_) => panic!("a third connection for a role limited to 2 succeeded"),
        Err(e) => e,
    };
    assert_eq!(sqlstate(&e), "53300", "{e:?}");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("too many connections"), "{e:?}");
    // The two sessions go on; one closed, a new one gets in.
    a.simple_query("SELECT 1").await.unwrap();
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&info, tokio_postgres::NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                c.simple_query("SELECT 1").await.unwrap();
                break;
            }
            Err(e) if Instant::now() < deadline && sqlstate(&e) == "53300" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    drop(a);
    drop(proxy);
    drop(db);
    psql_admin(&format!("DROP ROLE IF EXISTS \"{role}\""));
}

/// A startup packet for `user` on `db`.
fn startup(user: &str, db: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for (k, v) in [("user", user), ("database", db)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

#[tokio::test]
async fn a_client_that_stops_reading_costs_bounded_memory() {
    let db = TestDb::new("faults_reader");
    db.migrate();
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let pid = proxy.pid().expect("proxy pid");
    let (_, rss_before) = fds_and_rss(pid);
    let user = common::admin_config()
        .get_user()
        .unwrap_or("postgres")
        .to_string();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    s.write_all(&startup(&user, &db.name)).await.unwrap();
    // Read up to ReadyForQuery ('Z', then 5 bytes).
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(6).any(|w| w == [b'Z', 0, 0, 0, 5, b'I']) {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed during startup");
        seen.extend_from_slice(&buf[..n]);
    }
    // About 2 GB of rows; then never read again.
    let sql = "SELECT repeat('x', 2000) FROM generate_series(1, 1000000)\0";
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    s.write_all(&q).await.unwrap();

    // Other sessions are unaffected meanwhile.
    let other = proxy.connect(&db.name).await;
    for _ in 0..50 {
        other.simple_query("SELECT 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (_, rss_during) = fds_and_rss(pid);
    assert!(
        rss_during < rss_before + 64 * 1024,
        "the proxy grew from {rss_before} KiB to {rss_during} KiB buffering for a client that does not read"
    );
    drop(s);
    other.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn a_thousand_connects_and_cancels_leak_nothing() {
    let db = TestDb::new("faults_cycles");
    db.migrate();
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!("[database]\nurl = \"{}\"\n", db.url),
        ..Default::default()
    });
    let pid = proxy.pid().expect("proxy pid");
    let direct = db.connect().await;
    let backends = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    );
    // Warm up (the schema listener's connection, the parser pool).
    let c = proxy.connect(&db.name).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, _) = fds_and_rss(pid);
    let backends_before = count(&direct, &backends).await;
    for i in 0..1000 {
        let (client, conn) =
            tokio_postgres::connect(&proxy.conninfo(&db.name), tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        let task = tokio::spawn(conn);
        if i % 2 == 0 {
            client.simple_query("SELECT 1").await.unwrap();
        }
        // A cancel of an idle session, then of nothing running: either is
        // answered by closing the cancel connection.
        client
            .cancel_token()
            .cancel_query(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cancel {i}: {e}"));
        drop(client);
        let _ = task.await;
    }
    // Everything settles.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (fds, _) = fds_and_rss(pid);
        let n = count(&direct, &backends).await;
        if fds <= fds_before + 2 && n <= backends_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 1,000 cycles: {fds} descriptors (before {fds_before}), {n} backends (before {backends_before})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = proxy.connect(&db.name).await;
    c.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn the_server_stopped_mid_cascade_and_started_again() {
    let cluster =
        common::cluster::Cluster::start("local all all trust\nhost all all 127.0.0.1/32 trust\n");
    cluster.psql("CREATE DATABASE app");
    let url = format!("postgres://postgres@127.0.0.1:{}/app", cluster.port);
    let dir = common::scenario_dir();
    common::psql(
        &url,
        &[
            "-v",
            "projects=2",
            "-f",
            dir.join("schema.sql").to_str().unwrap_or_default(),
            "-f",
            dir.join("data.sql").to_str().unwrap_or_default(),
        ],
    );
    let (ok, out, err) = common::run(
        std::process::Command::new(env!("CARGO_BIN_EXE_tombstone")).args([
            "migrate",
            "--apply",
            "--database-url",
            &url,
        ]),
    );
    assert!(ok, "{out}{err}");
    let proxy = Proxy::start_with(ProxyOptions {
        upstream: Some(("127.0.0.1".to_string(), cluster.port)),
        extra_toml: format!(
            "[database]\nurl = \"{url}\"\nrefresh_interval = \"1s\"\n[retention]\nkeep = \"1s\"\npurge_interval = \"1s\"\n"
        ),
        ..Default::default()
    });
    let through = format!(
        "host=127.0.0.1 port={} user=postgres dbname=app sslmode=disable",
        proxy.port
    );

    // The brief's delete waits on a lock; the server stops under it.
    let blocker = common::connect(&url.replace("postgres://", "postgresql://")).await;
    blocker
        .batch_execute(
            "BEGIN; SELECT 1 FROM comments WHERE task_id IN (SELECT id FROM tasks WHERE project_id = 1) LIMIT 1 FOR UPDATE",
        )
        .await
        .unwrap();
    let app = common::connect(&through).await;
    let delete = tokio::spawn(async move {
        app.simple_query("DELETE FROM projects WHERE id = 1")
            .await
            .map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    cluster.stop_server();
    let e = delete
        .await
        .unwrap()
        .expect_err("the delete survived a stopped server");
    assert!(
        e.code().map(|c| c.code() == "57P01").unwrap_or(true),
        "the client should see the server's shutdown: {e:?}"
    );

    // While it is down: a clear error, not a hang.
    match tokio::time::timeout(
        Duration::from_secs(15),
        tokio_postgres::connect(&through, tokio_postgres::NoTls),
    )
    .await
    {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("connected to a stopped server"),
        Err(_) => panic!("a connection to a stopped upstream hung"),
    }

    cluster.start_server();
    // New clients are served as soon as PostgreSQL is back.
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match tokio_postgres::connect(&through, tokio_postgres::NoTls).await {
            Ok((c, conn)) => {
                tokio::spawn(conn);
                break c;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "not served after the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    // Nothing half-done.
    let live = count(
        &client,
        "SELECT (SELECT count(*) FROM projects WHERE id = 1) + (SELECT count(*) FROM tasks WHERE project_id = 1)",
    )
    .await;
    assert_eq!(live, 501);
    // The schema watcher reconnected by itself: a table protected now is
    // filtered through the proxy.
    let direct = common::connect(&url.replace("postgres://", "postgresql://")).await;
    direct
        .batch_execute(
            "ALTER TABLE tags ADD COLUMN deleted_at timestamptz; UPDATE tags SET deleted_at = now() WHERE id = 1",
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if count(&client, "SELECT count(*) FROM tags").await == 49 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never saw the new protected table:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        proxy.log().contains("schema watcher lost its connection"),
        "{}",
        proxy.log()
    );
    // The delete now works and is whole, and the scheduled purge (its
    // runs failed while the server was down) removes it a second later.
    let n = client
        .execute("DELETE FROM projects WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = count(&direct, "SELECT count(*) FROM projects WHERE id = 1").await;
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled purge never ran again:\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        proxy.log().contains("scheduled purge failed; will retry"),
        "{}",
        proxy.log()
    );
}

/// Sockets of the proxy's process: `ss` lines that name `pid`.
fn proxy_sockets(pid: u32) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-tnopH", "state", "established"])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn half_open_connections_are_probed_by_tcp_keepalive() {
    let db = TestDb::new("faults_keepalive");
    db.migrate();
    let proxy = Proxy::start_with(ProxyOptions {
        extra_toml: format!(
            "[database]\nurl = \"{}\"\n[timeouts]\nkeepalive_idle = \"7s\"\nkeepalive_interval = \"3s\"\nkeepalive_retries = 2\n",
            db.url
        ),
        ..Default::default()
    });
    let pid = proxy.pid().expect("proxy pid");
    let client = proxy.connect(&db.name).await;
    client.simple_query("SELECT 1").await.unwrap();
    let port = format!("127.0.0.1:{}", proxy.port);
    // A socket with data in flight shows its retransmission timer
    // (`timer:(on,…)`) instead: read them once they are quiet.
    let deadline = Instant::now() + Duration::from_secs(5);
    let sockets = loop {
        let sockets = proxy_sockets(pid);
        let quiet = sockets
            .iter()
            .filter(|l| l.contains(&port) || l.contains(":5432 "))
            .all(|l| !l.contains("timer:(on,"));
        if quiet || Instant::now() > deadline {
            break sockets;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The accepted client socket (local address the proxy's port) and the
    // session's upstream socket (peer :5432) both carry a keepalive timer
    // of at most the configured idle.
    let client_side: Vec<&String> = sockets.iter().filter(|l| l.contains(&port)).collect();
    assert!(!client_side.is_empty(), "{sockets:#?}");
    assert!(
        client_side.iter().all(|l| l.contains("timer:(keepalive,")),
        "client socket without keepalive: {client_side:#?}"
    );
    let upstream_side: Vec<&String> = sockets
        .iter()
        .filter(|l| l.contains(":5432 ") && !l.contains(&port))
        .collect();
    assert!(
        upstream_side
            .iter()
            .any(|l| l.contains("timer:(keepalive,")),
        "no upstream socket with keepalive: {sockets:#?}"
    );
    assert!(
        client_side.iter().all(|l| {
            l.split("timer:(keepalive,")
                .nth(1)
                .map(|t| {
                    t.chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.')
                        .collect::<String>()
                })
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|secs| secs <= 7.0)
        }),
        "{client_side:#?}"
    );
}
