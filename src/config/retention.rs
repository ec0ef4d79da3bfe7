//! `[retention]`: how long soft-deleted rows are kept, and how `serve`
//! purges them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[retention]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Soft-deleted rows are purged (physically deleted) this long after
    /// their delete. Default `"30days"`.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub keep: Duration,
    /// Per-table overrides, `[retention.tables."schema.table"] keep = "7days"`.
    /// An operation's cascade follows the rows' own tables.
    pub tables: BTreeMap<String, RetentionTable>,
    /// How often `serve` runs purge (one proxy at a time, by advisory
    /// lock). Default `"1h"`; `"0s"` never (run `tombstone purge` instead).
    #[serde(deserialize_with = "super::duration::deserialize_optional")]
    pub purge_interval: Option<Duration>,
    /// Rows per purge batch; each batch is its own short transaction.
    /// Default `1000`.
    pub purge_batch_size: u32,
}

/// `[retention.tables."schema.table"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionTable {
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub keep: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep: Duration::from_secs(30 * 86_400),
            tables: BTreeMap::new(),
            purge_interval: Some(Duration::from_secs(3600)),
            purge_batch_size: 1000,
        }
    }
}

impl RetentionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for t in self.tables.keys() {
            super::qualified("retention.tables", t)?;
        }
        if self.purge_batch_size == 0 {
            return Err(ConfigError::key(
                "retention.purge_batch_size",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// How long rows of `schema.table` are kept.
    pub fn keep_for(&self, schema: &str, table: &str) -> Duration {
        self.tables
            .get(&format!("{schema}.{table}"))
            .map(|t| t.keep)
            .unwrap_or(self.keep)
    }

    /// The shortest retention of any table (for operation records).
    pub fn shortest(&self) -> Duration {
        self.tables
            .values()
            .map(|t| t.keep)
            .fold(self.keep, Duration::min)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn defaults_and_per_table_keep() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.retention.keep, Duration::from_secs(30 * 86_400));
        assert_eq!(c.retention.purge_interval, Some(Duration::from_secs(3600)));
        let c = Config::parse(
            "[retention]\nkeep = \"10days\"\npurge_interval = \"0s\"\n\
             [retention.tables.\"public.sessions\"]\nkeep = \"1day\"\n",
        )
        .unwrap();
        assert_eq!(
            c.retention.keep_for("public", "tasks"),
            Duration::from_secs(864_000)
        );
        assert_eq!(
            c.retention.keep_for("public", "sessions"),
            Duration::from_secs(86_400)
        );
        assert_eq!(c.retention.shortest(), Duration::from_secs(86_400));
        assert_eq!(c.retention.purge_interval, None);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (toml, key) in [
            ("[retention]\nkeep = \"soon\"\n", "retention.keep"),
            (
                "[retention]\npurge_batch_size = 0\n",
                "retention.purge_batch_size",
            ),
            (
                "[retention.tables.sessions]\nkeep = \"1day\"\n",
                "retention.tables",
            ),
        ] {
            let e = Config::parse(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }
}
