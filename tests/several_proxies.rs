//! Several proxies on one database (issue 14 item 4): a schema change made
//! through one, or directly, is seen by all before their next statement
//! that needs it; a restore through one is seen by the others' sessions at
//! once; the scheduled purge runs on one of them at a time.

mod common;

use std::time::{Duration, Instant};

use common::{Proxy, ProxyOptions, TestDb, count};

/// Times each proxy has loaded a new schema snapshot.
fn refreshes(proxies: &[Proxy]) -> Vec<usize> {
    proxies
        .iter()
        .map(|p| p.log().matches("schema snapshot refreshed").count())
        .collect()
}

/// Waits until every proxy has loaded a snapshot since `before`: the
/// schema-change notification reached it.
async fn until_refreshed(proxies: &[Proxy], before: &[usize], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = refreshes(proxies);
        if now.iter().zip(before).all(|(n, b)| n > b) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: refreshes {before:?} -> {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn three_proxies_on_one_database_agree() {
    let db = TestDb::create("several", 2);
    let proxies: Vec<Proxy> = (0..3)
        .map(|_| {
            Proxy::start_with(ProxyOptions {
                // No periodic refresh: only the schema-change notification
                // can tell the others.
                extra_toml: format!(
                    "[database]\nurl = \"{}\"\nrefresh_interval = \"0s\"\n[retention]\nkeep = \"1s\"\npurge_interval = \"1s\"\n",
                    db.url
                ),
                ..Default::default()
            })
        })
        .collect();
    let mut sessions = Vec::new();
    for p in &proxies {
        sessions.push(p.connect(&db.name).await);
    }

    // A table protected through proxy 0 is filtered by all three.
    let before = refreshes(&proxies);
    sessions[0]
        .batch_execute(
            "ALTER TABLE tags ADD COLUMN deleted_at timestamptz; UPDATE tags SET deleted_at = now() WHERE id <= 2",
        )
        .await
        .unwrap();
    until_refreshed(&proxies, &before, "a change through proxy 0").await;
    for s in &sessions {
        assert_eq!(count(s, "SELECT count(*) FROM tags").await, 48);
    }
    // One made directly, too.
    let direct = db.connect().await;
    let before = refreshes(&proxies);
    direct
        .batch_execute("ALTER TABLE tags DROP COLUMN deleted_at")
        .await
        .unwrap();
    until_refreshed(&proxies, &before, "a direct change").await;
    for s in &sessions {
        assert_eq!(count(s, "SELECT count(*) FROM tags").await, 50);
    }

    // A soft delete through proxy 1 is seen by proxy 2's session at once,
    // and so is its restore through proxy 0 (a superuser session may
    // restore).
    let n = sessions[1]
        .execute("DELETE FROM tasks WHERE id = 7", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        count(&sessions[2], "SELECT count(*) FROM tasks WHERE id = 7").await,
        0
    );
    let op: String = direct
        .query_one(
            "SELECT id::text FROM tombstone.operations WHERE table_name = 'tasks' ORDER BY created_at DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Restored before the scheduled purge (keep = 1s) can take it.
    sessions[0]
        .query_one("SELECT tombstone.restore($1::text::uuid)", &[&op])
        .await
        .unwrap();
    assert_eq!(
        count(&sessions[2], "SELECT count(*) FROM tasks WHERE id = 7").await,
        1
    );
    assert_eq!(
        count(&sessions[1], "SELECT count(*) FROM tasks WHERE id = 7").await,
        1
    );

    // The purge: each run on one proxy at a time; a deleted task goes once.
    let n = sessions[2]
        .execute("DELETE FROM tasks WHERE id = 8", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&direct, "SELECT count(*) FROM tasks WHERE id = 8").await > 0 {
        assert!(Instant::now() < deadline, "the task was never purged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each purged row is audited once, whichever proxy purged it.
    let purged: i64 = count(
        &direct,
        "SELECT count(*) FROM tombstone.audit WHERE action = 'purge' AND table_name = 'tasks' AND pk = '{\"id\": 8}'",
    )
    .await;
    assert_eq!(purged, 1);
    // (Runs take turns by an advisory lock; a delete right at the
    // retention boundary may be purged over two runs, children first.)
    // The run logs when it has finished every table, after the row went.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ran: usize = proxies
            .iter()
            .map(|p| p.log().matches("scheduled purge removed rows").count())
            .sum();
        if ran >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no proxy logged a purge");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
