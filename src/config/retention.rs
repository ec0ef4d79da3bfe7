//! `[retention]`: how long soft-deleted rows are kept, and how `serve`
//! purges them.

use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// Default `5000`.
    pub purge_batch_size: u32,
    /// Where purged rows are kept before they go,
    /// `[retention.archive] to = "table"` or `to = "files"`. Default: not
    /// archived.
    pub archive: Option<ArchiveConfig>,
}

/// `[retention.archive]`: purge writes every row it removes, with its
/// operation, before the row goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// `"table"`: `tombstone.archive`, in the purge batch's transaction.
    /// `"files"`: JSON Lines files in `directory`, written and fsynced
    /// before the batch commits.
    pub to: ArchiveTo,
    /// The directory of the files (`to = "files"` only; created if missing).
    pub directory: Option<PathBuf>,
    /// `"run"` (default): one file per purge run; `"day"`: one per UTC day,
    /// appended to (`to = "files"` only).
    pub file_per: Option<FilePer>,
}

/// `retention.archive.to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveTo {
    Table,
    Files,
}

/// `retention.archive.file_per`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilePer {
    #[default]
    Run,
    Day,
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
            purge_batch_size: 5000,
            archive: None,
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
        if let Some(a) = &self.archive {
            match (a.to, &a.directory) {
                (ArchiveTo::Files, None) => {
                    return Err(ConfigError::key(
                        "retention.archive.directory",
                        "required when retention.archive.to = \"files\"",
                    ));
                }
                (ArchiveTo::Files, Some(d)) if d.as_os_str().is_empty() => {
                    return Err(ConfigError::key(
                        "retention.archive.directory",
                        "must not be empty",
                    ));
                }
                (ArchiveTo::Table, Some(_)) => {
                    return Err(ConfigError::key(
                        "retention.archive.directory",
                        "only with retention.archive.to = \"files\" (the table needs none)",
                    ));
                }
                _ => {}
            }
            if a.to == ArchiveTo::Table && a.file_per.is_some() {
                return Err(ConfigError::key(
                    "retention.archive.file_per",
                    "only with retention.archive.to = \"files\"",
                ));
            }
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
        assert_eq!(c.retention.archive, None);
        let c = Config::parse(
            "[retention.archive]\nto = \"files\"\ndirectory = \"/var/lib/tombstone\"\nfile_per = \"day\"\n",
        )
        .unwrap();
        assert_eq!(
            c.retention.archive,
            Some(super::ArchiveConfig {
                to: super::ArchiveTo::Files,
                directory: Some("/var/lib/tombstone".into()),
                file_per: Some(super::FilePer::Day),
            })
        );
        let c = Config::parse("[retention.archive]\nto = \"table\"\n").unwrap();
        assert_eq!(
            c.retention.archive.map(|a| a.to),
            Some(super::ArchiveTo::Table)
        );
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
            ("[retention.archive]\nto = \"s3\"\n", "retention.archive.to"),
            ("[retention.archive]\n", "retention.archive"),
            (
                "[retention.archive]\nto = \"files\"\n",
                "retention.archive.directory",
            ),
            (
                "[retention.archive]\nto = \"files\"\ndirectory = \"\"\n",
                "retention.archive.directory",
            ),
            (
                "[retention.archive]\nto = \"table\"\ndirectory = \"/tmp\"\n",
                "retention.archive.directory",
            ),
            (
                "[retention.archive]\nto = \"table\"\nfile_per = \"day\"\n",
                "retention.archive.file_per",
            ),
            (
                "[retention.archive]\nto = \"files\"\ndirectory = \"/tmp\"\nfile_per = \"week\"\n",
                "retention.archive.file_per",
            ),
            (
                "[retention.archive]\nto = \"files\"\ndirectory = \"/tmp\"\nformat = \"parquet\"\n",
                "retention.archive",
            ),
        ] {
            let e = Config::parse(toml).unwrap_err().to_string();
            assert!(e.contains(key), "{toml}: {e}");
        }
    }
}
