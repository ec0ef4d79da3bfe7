//! Change notifications for caches (issue 13 item 6): after a soft delete,
//! a restore, a purge or an erase commits, a NOTIFY on `notify.channel`
//! with the table and the keys; nothing for work rolled back.

mod common;

use std::time::Duration;

use common::protected::Protected;
use futures_util::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::AsyncMessage;

/// A direct connection LISTENing on `channel`; payloads as JSON.
async fn listen(
    url: &str,
    channel: &str,
) -> (tokio_postgres::Client, UnboundedReceiver<serde_json::Value>) {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message
                && let Ok(v) = serde_json::from_str(n.payload())
            {
                let _ = tx.send(v);
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    (client, rx)
}

/// The notifications that arrive within a short while.
async fn drain(rx: &mut UnboundedReceiver<serde_json::Value>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(700), rx.recv()).await {
        out.push(v);
    }
    out
}

fn find<'a>(
    got: &'a [serde_json::Value],
    event: &str,
    table: &str,
) -> Option<&'a serde_json::Value> {
    got.iter()
        .find(|v| v["event"] == event && v["table"] == table)
}

#[tokio::test]
async fn soft_deletes_restores_and_erases_are_announced_when_they_commit() {
    let p = Protected::start("notify", 2, "[notify]\nchannel = \"tombstone_changes\"\n");
    let (_listener, mut rx) = listen(&p.db.url, "tombstone_changes").await;
    let app = p.connect_as(&p.app).await;

    // Rolled back: nothing.
    app.batch_execute("BEGIN; DELETE FROM tasks WHERE id = 3; ROLLBACK")
        .await
        .unwrap();
    assert!(drain(&mut rx).await.is_empty());

    // In a transaction: announced at commit, not before.
    app.batch_execute("BEGIN; DELETE FROM tasks WHERE id = 3")
        .await
        .unwrap();
    assert!(drain(&mut rx).await.is_empty());
    app.batch_execute("COMMIT").await.unwrap();
    let got = drain(&mut rx).await;
    let task = find(&got, "soft_delete", "public.tasks").unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(task["keys"], serde_json::json!([{"id": 3}]));
    assert_eq!(task["count"], 1);
    let comments =
        find(&got, "soft_delete", "public.comments").unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(comments["operation"], task["operation"]);
    let op = task["operation"].as_str().unwrap().to_string();

    // The brief's project: thousands of keys do not fit a payload.
    app.batch_execute("DELETE FROM projects WHERE id = 2")
        .await
        .unwrap();
    let got = drain(&mut rx).await;
    assert_eq!(
        find(&got, "soft_delete", "public.projects").unwrap_or_else(|| panic!("{got:#?}"))["keys"],
        serde_json::json!([{"id": 2}])
    );
    let many = find(&got, "soft_delete", "public.comments").unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(many["keys_truncated"], true, "{many}");
    assert!(many["count"].as_i64().unwrap() > 100, "{many}");

    // A restore, through the proxy as the admin.
    let admin = p.connect_as(&p.admin).await;
    admin
        .query_one("SELECT tombstone.restore($1::text::uuid)", &[&op])
        .await
        .unwrap();
    let got = drain(&mut rx).await;
    let restored = find(&got, "restore", "public.tasks").unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(restored["keys"], serde_json::json!([{"id": 3}]));

    // An erase.
    admin
        .query_one("SELECT tombstone.erase('tasks', '{\"id\": 4}')", &[])
        .await
        .unwrap();
    let got = drain(&mut rx).await;
    let erased = find(&got, "erase", "public.tasks").unwrap_or_else(|| panic!("{got:#?}"));
    assert_eq!(erased["keys"], serde_json::json!([{"id": 4}]));

    // No channel set (the default): nothing is sent.
    let direct = p.db.connect().await;
    direct
        .batch_execute("UPDATE tombstone.settings SET value = '' WHERE name = 'notify_channel'")
        .await
        .unwrap();
    app.batch_execute("DELETE FROM tasks WHERE id = 5")
        .await
        .unwrap();
    assert!(drain(&mut rx).await.is_empty());
}

#[tokio::test]
async fn redis_cache_keys_are_deleted_after_each_change() {
    let prefix = common::unique_name("ts");
    let p = Protected::start(
        "notify_redis",
        2,
        &format!(
            "[notify]\nchannel = \"tombstone_changes\"\n[notify.redis]\nurl = \"redis://127.0.0.1:6379\"\n[notify.redis.keys]\n\"public.tasks\" = [\"{prefix}:task:{{id}}\", \"{prefix}:{{table}}:{{id}}:title\"]\n\"public.projects\" = [\"{prefix}:project:{{id}}\"]\n"
        ),
    );
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut r = redis.get_multiplexed_async_connection().await.unwrap();
    let set = |k: String| redis::cmd("SET").arg(k).arg("cached").to_owned();
    for k in [
        format!("{prefix}:task:3"),
        format!("{prefix}:tasks:3:title"),
        format!("{prefix}:task:4"),
        format!("{prefix}:project:1"),
    ] {
        set(k).query_async::<()>(&mut r).await.unwrap();
    }
    let exists = |k: String| redis::cmd("EXISTS").arg(k).to_owned();
    // The invalidator listens once serve has started; wait for its line.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !p.proxy.log().contains("cache invalidation listening") {
        assert!(std::time::Instant::now() < deadline, "{}", p.proxy.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = p.connect_as(&p.app).await;
    app.batch_execute("DELETE FROM tasks WHERE id = 3")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = exists(format!("{prefix}:task:3"))
            .arg(format!("{prefix}:tasks:3:title"))
            .query_async(&mut r)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "keys of task 3 still cached:\n{}",
            p.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Other rows' keys stay.
    let n: i64 = exists(format!("{prefix}:task:4"))
        .arg(format!("{prefix}:project:1"))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(n, 2);
    // A rolled-back delete deletes nothing.
    app.batch_execute("BEGIN; DELETE FROM tasks WHERE id = 4; ROLLBACK")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n: i64 = exists(format!("{prefix}:task:4"))
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}:task:4"))
        .arg(format!("{prefix}:project:1"))
        .query_async(&mut r)
        .await
        .unwrap();
}
