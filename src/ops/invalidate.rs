//! Cache invalidation (issue 13 item 6): `serve` LISTENs on
//! `notify.channel` and, for each change notification
//! (`migrate::notify`), `DEL`s the Redis keys `notify.redis.keys` names for
//! that table and those rows (`"project:{id}"`). Reconnects to either side
//! by itself; a notification sent while it reconnects is missed (give
//! cached entries a TTL as well).

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::config::{RedisConfig, render_cache_key};

/// Runs forever (spawn it) when `[notify.redis]` is configured.
pub async fn run(database_url: String, channel: String, redis: Option<RedisConfig>) {
    let Some(redis) = redis else {
        return;
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        let e = once(&database_url, &channel, &redis).await;
        tracing::warn!(error = %e, retry_in = ?backoff, "cache invalidation lost a connection; notifications until it is back are missed");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Listens and deletes until a connection fails; returns why.
async fn once(database_url: &str, channel: &str, cfg: &RedisConfig) -> String {
    let client = match redis::Client::open(cfg.url.as_str()) {
        Ok(c) => c,
        Err(e) => return format!("notify.redis.url: {e}"),
    };
    let mut redis = match client.get_multiplexed_async_connection().await {
        Ok(c) => c,
        Err(e) => return format!("cannot connect to Redis: {e}"),
    };
    let (pg, mut connection) =
        match tokio_postgres::connect(database_url, tokio_postgres::NoTls).await {
            Ok(c) => c,
            Err(e) => {
                return format!(
                    "cannot connect to the database: {}",
                    crate::pg_error::describe(&e)
                );
            }
        };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    if let Err(e) = pg.batch_execute(&format!("LISTEN {channel}")).await {
        driver.abort();
        return format!("LISTEN {channel}: {}", crate::pg_error::describe(&e));
    }
    tracing::info!(channel, "cache invalidation listening");
    while let Some(payload) = rx.recv().await {
        let keys = keys_for(&payload, cfg);
        if keys.is_empty() {
            continue;
        }
        match redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut redis)
            .await
        {
            Ok(n) => tracing::debug!(keys = keys.len(), deleted = n, "cache keys deleted"),
            Err(e) => {
                driver.abort();
                return format!("Redis DEL: {e}");
            }
        }
    }
    driver.abort();
    "the database connection closed".to_string()
}

/// The Redis keys one notification names.
pub fn keys_for(payload: &str, cfg: &RedisConfig) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
        return Vec::new();
    };
    let Some(table) = v.get("table").and_then(|t| t.as_str()) else {
        return Vec::new();
    };
    let Some(templates) = cfg.keys.get(table) else {
        return Vec::new();
    };
    if v.get("keys_truncated").and_then(|t| t.as_bool()) == Some(true) {
        tracing::warn!(
            table,
            count = v.get("count").and_then(|c| c.as_i64()).unwrap_or(0),
            "too many rows in one notification to name their cache keys; they are not deleted"
        );
        return Vec::new();
    }
    let rows = v.get("keys").and_then(|k| k.as_array());
    rows.into_iter()
        .flatten()
        .flat_map(|key| {
            templates
                .iter()
                .filter_map(move |t| render_cache_key(t, table, key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RedisConfig {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            keys: [(
                "public.tasks".to_string(),
                vec![
                    "task:{id}".to_string(),
                    "{table}/{id}/{project_id}".to_string(),
                ],
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn a_notification_names_each_rows_keys() {
        let p = r#"{"event": "soft_delete", "table": "public.tasks", "keys": [{"id": 3}, {"id": 4, "project_id": 1}]}"#;
        assert_eq!(
            keys_for(p, &cfg()),
            vec!["task:3", "task:4", "tasks/4/1"],
            "a template naming a column the key lacks is skipped for that row"
        );
        let uuid = r#"{"table": "public.tasks", "keys": [{"id": "7f0c"}]}"#;
        assert_eq!(keys_for(uuid, &cfg())[0], "task:7f0c");
        assert!(keys_for(r#"{"table": "public.other", "keys": [{"id": 1}]}"#, &cfg()).is_empty());
        assert!(
            keys_for(
                r#"{"table": "public.tasks", "count": 9000, "keys_truncated": true}"#,
                &cfg()
            )
            .is_empty()
        );
        assert!(keys_for("not json", &cfg()).is_empty());
        assert!(
            keys_for(
                r#"{"table": "public.tasks", "keys": [{"id": null}]}"#,
                &cfg()
            )
            .is_empty()
        );
    }
}
