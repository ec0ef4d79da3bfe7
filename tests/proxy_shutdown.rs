//! SIGTERM: stop accepting, close idle sessions, let open transactions
//! finish within the grace period, exit 0.

mod common;

use std::time::{Duration, Instant};

use common::{Proxy, ProxyOptions, TestDb, sqlstate};

#[tokio::test]
async fn sigterm_drains_gracefully() {
    let db = TestDb::new("shutdown");
    let mut proxy = Proxy::start_with(ProxyOptions {
        listen_toml: String::new(),
        ..Default::default()
    });
    let setup = proxy.connect(&db.name).await;
    setup
        .batch_execute("CREATE TABLE s (id int)")
        .await
        .unwrap();
    let idle = proxy.connect(&db.name).await;
    let busy = proxy.connect(&db.name).await;
    busy.batch_execute("BEGIN; INSERT INTO s VALUES (1)")
        .await
        .unwrap();

    proxy.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // New clients are refused.
    assert!(
        tokio_postgres::connect(&proxy.conninfo(&db.name), tokio_postgres::NoTls)
            .await
            .is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // The idle session was closed, with PostgreSQL's shutdown error.
    let e = idle.simple_query("SELECT 1").await.unwrap_err();
    assert!(e.is_closed() || sqlstate(&e) == "57P01", "{e}");
    // The open transaction may finish.
    busy.batch_execute("INSERT INTO s VALUES (2); COMMIT")
        .await
        .unwrap();
    let code = proxy.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", proxy.log());

    let direct = common::connect(&format!(
        "host=127.0.0.1 port={} user=postgres dbname={}",
        common::upstream_host_port().1,
        db.name
    ))
    .await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM s", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        n, 2,
        "the transaction committed during the grace period was lost"
    );
}

#[tokio::test]
async fn grace_period_is_bounded() {
    let db = TestDb::new("shutdown_force");
    let mut proxy = Proxy::start();
    let stuck = proxy.connect(&db.name).await;
    stuck.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let started = Instant::now();
    proxy.signal("TERM");
    // Grace is 5 s in test proxies; then the session is closed.
    let code = proxy.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", proxy.log());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4),
        "closed a transaction before the grace period: {took:?}"
    );
    assert!(stuck.simple_query("SELECT 1").await.is_err());
}
