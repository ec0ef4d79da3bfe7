//! `[notify]`: telling caches what changed (issue 13 item 6).

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[notify]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// After each soft delete, restore, purge and erase commits, a `NOTIFY`
    /// on this channel with the table and keys as JSON. Default empty: off.
    pub channel: String,
    /// Delete cache keys in Redis for each notification (needs `channel`).
    pub redis: Option<RedisConfig>,
}

/// `[notify.redis]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Per table (`schema.table`), the key templates to `DEL`: `{column}`
    /// is replaced by that key column's value, `{table}` by the table's
    /// name (`"project:{id}"`).
    #[serde(default)]
    pub keys: BTreeMap<String, Vec<String>>,
}

impl NotifyConfig {
    /// What is wrong with the section, as (key, reason).
    pub fn check(&self) -> Option<(String, String)> {
        if !self.channel.is_empty()
            && !self
                .channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Some((
                "notify.channel".into(),
                "a channel name is letters, digits and _".into(),
            ));
        }
        let redis = self.redis.as_ref()?;
        if self.channel.is_empty() {
            return Some((
                "notify.redis".into(),
                "needs notify.channel: Redis keys are deleted for the notifications sent there"
                    .into(),
            ));
        }
        if !redis.url.starts_with("redis://") && !redis.url.starts_with("rediss://") {
            return Some((
                "notify.redis.url".into(),
                format!("{:?} is not a redis:// URL", redis.url),
            ));
        }
        for (table, templates) in &redis.keys {
            if !table.contains('.') {
                return Some((
                    format!("notify.redis.keys.{table}"),
                    "name the table as schema.table".into(),
                ));
            }
            if let Some(t) = templates.iter().find(|t| !t.contains('{')) {
                return Some((
                    format!("notify.redis.keys.\"{table}\""),
                    format!("{t:?} names no column: write e.g. \"project:{{id}}\""),
                ));
            }
        }
        None
    }
}

/// The key a template names for one row's key (`{"id": 42}`), or None when
/// it names a column the key lacks.
pub fn render(template: &str, table: &str, key: &serde_json::Value) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if name == "table" {
            out.push_str(table.rsplit('.').next().unwrap_or(table));
        } else {
            match key.get(name)? {
                serde_json::Value::String(s) => out.push_str(s),
                serde_json::Value::Null => return None,
                other => out.push_str(&other.to_string()),
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}
