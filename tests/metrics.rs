//! `/metrics` on the admin listener: statements run through a protected
//! proxy move the counters by exactly what they did, and the text is valid
//! Prometheus exposition (every sample typed, histograms cumulative).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::protected::Protected;
use common::{Proxy, count, free_port, http, psql};

/// One scrape: sample values by series (`name{labels}`), after checking
/// the format.
struct Scrape {
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series}"))
    }

    fn has(&self, series: &str) -> bool {
        self.samples.contains_key(series)
    }

    /// How much `series` grew since `before`.
    fn delta(&self, before: &Scrape, series: &str) -> f64 {
        self.get(series) - before.get(series)
    }
}

fn scrape(addr: SocketAddr) -> Scrape {
    let r = http::get(addr, "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_and_check(&r.body)
}

/// Parses the text format and checks what Prometheus relies on: HELP and
/// TYPE once per metric before its samples, every sample's metric typed,
/// histogram buckets increasing in `le` and cumulative, ending in `+Inf`,
/// with `_count` equal to the `+Inf` bucket and a `_sum`.
fn parse_and_check(text: &str) -> Scrape {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    // Histogram name → (le, cumulative) in order.
    let mut buckets: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    assert!(text.ends_with('\n'), "no final newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.is_empty(), "{line}");
            assert!(
                helps.insert(name.into(), help.into()).is_none(),
                "HELP twice: {name}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helps.contains_key(name), "TYPE before HELP: {name}");
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (series, value) = line.rsplit_once(' ').expect("series value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        let (base, kind) = match types.get(name) {
            Some(k) => (name.to_string(), k.as_str()),
            None => {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or_else(|| panic!("sample without TYPE: {line}"));
                let kind = types
                    .get(base)
                    .unwrap_or_else(|| panic!("sample without TYPE: {line}"));
                assert_eq!(kind, "histogram", "{line}");
                (base.to_string(), kind.as_str())
            }
        };
        if kind == "counter" {
            assert!(name.ends_with("_total"), "counter name: {name}");
        }
        if kind != "gauge" {
            assert!(value >= 0.0, "{line}");
        }
        if name.ends_with("_bucket") {
            let le = series
                .split_once("le=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(le, _)| le)
                .unwrap_or_else(|| panic!("bucket without le: {line}"));
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets.entry(base).or_default().push((le, value));
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "series twice: {series}"
        );
    }
    for (name, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let b = buckets
            .get(name)
            .unwrap_or_else(|| panic!("histogram {name} without buckets"));
        for pair in b.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{name}: le not increasing");
            assert!(pair[0].1 <= pair[1].1, "{name}: buckets not cumulative");
        }
        let last = b.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{name}: last bucket not +Inf");
        assert_eq!(
            samples.get(&format!("{name}_count")),
            Some(&last.1),
            "{name}: _count is not the +Inf bucket"
        );
        assert!(samples.contains_key(&format!("{name}_sum")), "{name}_sum");
    }
    Scrape { samples }
}

fn admin_toml(port: u16) -> String {
    format!("[admin]\naddress = \"127.0.0.1:{port}\"\n")
}

/// Waits until `done` holds for a fresh scrape.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(addr);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first scrape to compare against: the test harness's own probe of
/// the proxy's port (one connection, closed at once) counted and gone.
async fn baseline(addr: SocketAddr) -> Scrape {
    scrape_until(addr, "the start-up probe to be counted", |s| {
        s.get("tombstone_sessions_accepted_total") >= 1.0 && s.get("tombstone_sessions_open") == 0.0
    })
    .await
}

#[tokio::test]
async fn counters_move_by_what_the_statements_did() {
    let port = free_port();
    let p = Protected::start("metrics_counts", 1, &admin_toml(port));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let before = baseline(addr).await;
    assert_eq!(before.get("tombstone_database_scrape_success"), 1.0);
    assert_eq!(before.get("tombstone_operations"), 0.0);

    let app = p.connect_as(&p.app).await;
    let open = scrape(addr);
    assert_eq!(open.get("tombstone_sessions_open"), 1.0);
    assert_eq!(
        open.delta(&before, "tombstone_sessions_accepted_total"),
        1.0
    );
    assert_eq!(
        open.delta(&before, "tombstone_upstream_connect_seconds_count"),
        1.0
    );

    // Simple protocol: the same select twice (a miss, then an exact hit),
    // a soft delete of four comments, a refused TRUNCATE.
    let select = "SELECT name FROM projects WHERE id = 1";
    for _ in 0..2 {
        app.simple_query(select).await.unwrap();
    }
    let deleted = app
        .execute("DELETE FROM comments WHERE task_id = 1", &[])
        .await
        .unwrap();
    assert_eq!(deleted, 4);
    let refused = app.simple_query("TRUNCATE tasks").await.unwrap_err();
    assert_eq!(common::sqlstate(&refused), "42501");
    // Extended protocol: one prepared select, executed twice.
    let statement = app
        .prepare("SELECT title FROM tasks WHERE id = $1")
        .await
        .unwrap();
    for id in [2i64, 3] {
        app.query(&statement, &[&id]).await.unwrap();
    }

    let after = scrape(addr);
    let d = |series: &str| after.delta(&before, series);
    // Messages: three Query (two selects, the TRUNCATE); two Parse (the
    // DELETE through `execute`, and the prepared select).
    assert_eq!(d("tombstone_client_messages_total{type=\"query\"}"), 3.0);
    assert_eq!(d("tombstone_client_messages_total{type=\"parse\"}"), 2.0);
    assert_eq!(d("tombstone_statements_total{kind=\"select\"}"), 4.0);
    assert_eq!(d("tombstone_statements_total{kind=\"delete\"}"), 1.0);
    assert_eq!(d("tombstone_statements_total{kind=\"update\"}"), 0.0);
    assert_eq!(d("tombstone_statements_total{kind=\"insert\"}"), 0.0);
    assert_eq!(d("tombstone_statements_total{kind=\"ddl\"}"), 0.0);
    assert_eq!(d("tombstone_statements_total{kind=\"other\"}"), 0.0);
    // Rewritten: both selects of projects, the DELETE, the prepared select.
    assert_eq!(d("tombstone_rewrites_total"), 4.0);
    assert_eq!(
        d("tombstone_refusals_total{reason=\"truncate_protected\"}"),
        1.0
    );
    assert_eq!(d("tombstone_refusals_total{reason=\"fail_closed\"}"), 0.0);
    assert_eq!(
        d("tombstone_rewrite_cache_hits_total{match=\"exact\"}"),
        1.0
    );
    assert_eq!(
        d("tombstone_rewrite_cache_hits_total{match=\"normalized\"}"),
        0.0
    );
    // The first select, the DELETE, the TRUNCATE, the prepared select.
    assert_eq!(d("tombstone_rewrite_cache_misses_total"), 4.0);
    assert_eq!(d("tombstone_rewrite_seconds_count"), 4.0);
    assert_eq!(d("tombstone_soft_deletes_total"), 1.0);
    assert_eq!(d("tombstone_soft_deleted_rows_total"), 4.0);
    // One timing per request: three Query; two Syncs for the DELETE
    // (prepare, execute), one for the prepare, two for its executions.
    assert_eq!(d("tombstone_upstream_seconds_count"), 8.0);
    assert!(d("tombstone_upstream_seconds_sum") > 0.0);
    // The database's own record of it.
    assert_eq!(after.get("tombstone_operations"), 1.0);
    assert_eq!(after.get("tombstone_restored_operations"), 0.0);

    // A restore, done by a bypass member through the proxy, is read from
    // the database.
    let admin = p.connect_as(&p.admin).await;
    admin
        .batch_execute("SELECT tombstone.restore(id, 'metrics test') FROM tombstone.operations")
        .await
        .unwrap();
    assert_eq!(
        count(&app, "SELECT count(*) FROM comments WHERE task_id = 1").await,
        4
    );
    let restored = scrape(addr);
    assert_eq!(restored.get("tombstone_restored_operations"), 1.0);
    assert_eq!(restored.get("tombstone_sessions_open"), 2.0);

    drop(app);
    drop(admin);
    scrape_until(addr, "the sessions to close", |s| {
        s.get("tombstone_sessions_open") == 0.0
    })
    .await;
}

#[tokio::test]
async fn schema_changes_and_scheduled_purges_are_counted() {
    let port = free_port();
    let p = Protected::start(
        "metrics_purge",
        1,
        &format!("{}[retention]\npurge_interval = \"1s\"\n", admin_toml(port)),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let before = baseline(addr).await;

    // DDL straight to the database: the watcher installs a new snapshot.
    psql(
        &p.db.url,
        &["-c", "ALTER TABLE tags ADD COLUMN colour text"],
    );
    scrape_until(addr, "a schema refresh", |s| {
        s.delta(&before, "tombstone_schema_refreshes_total") >= 1.0
    })
    .await;

    // A soft-deleted comment older than the retention: the next scheduled
    // purge removes exactly that row.
    let app = p.connect_as(&p.app).await;
    app.execute("DELETE FROM comments WHERE id = 1", &[])
        .await
        .unwrap();
    let direct = common::connect(&p.db.url).await;
    direct
        .batch_execute(
            "UPDATE comments SET deleted_at = deleted_at - interval '31 days' WHERE id = 1;
             UPDATE tombstone.operations SET created_at = created_at - interval '31 days'",
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&direct, "SELECT count(*) FROM comments WHERE id = 1").await > 0 {
        assert!(Instant::now() < deadline, "not purged:\n{}", p.proxy.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let purged = scrape_until(addr, "the purge to be counted", |s| {
        s.delta(&before, "tombstone_purged_rows_total") >= 1.0
    })
    .await;
    assert_eq!(purged.delta(&before, "tombstone_purged_rows_total"), 1.0);
    assert!(purged.delta(&before, "tombstone_purges_total") >= 1.0);
    assert_eq!(
        purged.delta(&before, "tombstone_soft_deleted_rows_total"),
        1.0
    );
}

#[tokio::test]
async fn relaying_counts_messages_and_statements_without_cache_series() {
    let port = free_port();
    let proxy = Proxy::start_with(common::ProxyOptions {
        extra_toml: admin_toml(port),
        ..Default::default()
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let before = baseline(addr).await;
    assert!(!before.has("tombstone_rewrite_cache_misses_total"));
    assert!(!before.has("tombstone_database_scrape_success"));
    psql(
        &proxy.url("postgres"),
        &["-c", "SELECT 1", "-c", "CREATE TEMP TABLE t (x int)"],
    );
    let after = scrape(addr);
    let d = |series: &str| after.delta(&before, series);
    assert_eq!(d("tombstone_client_messages_total{type=\"query\"}"), 2.0);
    assert_eq!(d("tombstone_statements_total{kind=\"select\"}"), 1.0);
    assert_eq!(d("tombstone_statements_total{kind=\"ddl\"}"), 1.0);
    assert_eq!(d("tombstone_rewrites_total"), 0.0);
    assert_eq!(d("tombstone_sessions_accepted_total"), 1.0);
}
