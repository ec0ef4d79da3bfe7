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

/// SIGHUP reloads rules.toml: a bad file is logged with its reason and
/// changes nothing; a good one applies to new sessions while running ones
/// keep theirs; sections that need a restart are named. The proxy never
/// stops.
#[tokio::test]
async fn sighup_reloads_for_new_sessions_and_keeps_a_bad_file_out() {
    let db = TestDb::new("reload");
    let mut proxy = Proxy::start_with(ProxyOptions {
        listen_toml: "max_message_bytes = 1000000\n".to_string(),
        ..Default::default()
    });
    let config_path = proxy.dir.path().join("rules.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let before = proxy.connect(&db.name).await;
    let big = format!("SELECT '{}'", "x".repeat(100_000));

    let wait_for = |proxy: &Proxy, needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if proxy.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };

    // A bad file: logged with its reason, nothing changes.
    std::fs::write(
        &config_path,
        original.replace("max_message_bytes = 1000000", "max_message_bytes = \"big\""),
    )
    .unwrap();
    proxy.signal("HUP");
    assert!(
        wait_for(&proxy, "configuration not reloaded"),
        "{}",
        proxy.log()
    );
    assert!(
        proxy
            .log()
            .contains("max_message_bytes`: invalid type: string"),
        "the reason is logged: {}",
        proxy.log()
    );
    assert!(proxy.is_running());
    before.simple_query(&big).await.unwrap();
    proxy
        .connect(&db.name)
        .await
        .simple_query(&big)
        .await
        .unwrap();

    // A good one: new sessions get the new limit, the running one keeps its.
    std::fs::write(
        &config_path,
        original
            .replace("max_message_bytes = 1000000", "max_message_bytes = 65536")
            .replace("shutdown_grace = \"5s\"", "shutdown_grace = \"6s\""),
    )
    .unwrap();
    proxy.signal("HUP");
    assert!(
        wait_for(&proxy, "configuration reloaded"),
        "{}",
        proxy.log()
    );
    assert!(
        proxy.log().contains("listen.shutdown_grace"),
        "the section that needs a restart is named: {}",
        proxy.log()
    );
    assert!(proxy.is_running());
    before.simple_query(&big).await.unwrap();
    let after = proxy.connect(&db.name).await;
    let e = after.simple_query(&big).await.unwrap_err();
    assert_eq!(sqlstate(&e), "08P01", "{e}");
    proxy
        .connect(&db.name)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
}
