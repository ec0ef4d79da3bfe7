//! `rules.toml`: the proxy's configuration, one file per TOML table.
//!
//! The file is parsed strictly: unknown keys and bad values stop startup with
//! a message that names the key (`upstream.port: invalid type …`). A missing
//! file is an error, never silent defaults, for `serve` and for any file
//! `--config` names; only a command that runs without one (`trash`,
//! `doctor`, …) uses the defaults, when no file is named and there is no
//! `./rules.toml` ([`ConfigFile`]). The parsed [`Config`] is passed
//! down as a value (`Arc<Config>`); nothing reads it from a global.

mod admin;
mod audit;
mod cache;
mod database;
mod duration;
mod listen;
mod log;
mod notify;
mod parser;
mod retention;
mod roles;
mod soft_delete;
mod timeouts;
mod upstream;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use admin::AdminConfig;
pub use audit::{AuditConfig, AuditTableConfig};
pub use cache::CacheConfig;
pub use database::{DatabaseConfig, redact_url};
pub use listen::{ListenConfig, ListenTls};
pub use log::{LogConfig, LogFormat};
pub use notify::{NotifyConfig, RedisConfig, render as render_cache_key};
pub use parser::ParserConfig;
pub use retention::{ArchiveConfig, ArchiveTo, FilePer, RetentionConfig, RetentionTable};
pub use roles::RolesConfig;
pub use soft_delete::{EdgeAction, EdgeConfig, SoftDeleteConfig};
pub use timeouts::TimeoutsConfig;
pub use upstream::{UpstreamConfig, UpstreamTlsMode};

/// The whole of `rules.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where clients connect.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The PostgreSQL server behind the proxy.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// Connect, startup and idle timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Log format and level.
    #[serde(default)]
    pub log: LogConfig,
    /// The protected database and schema watching.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Which tables are protected and how cascades run.
    #[serde(default)]
    pub soft_delete: SoftDeleteConfig,
    /// Bypass (admin) roles.
    #[serde(default)]
    pub roles: RolesConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The rewrite cache.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The parser thread pool.
    #[serde(default)]
    pub parser: ParserConfig,
    /// How long soft-deleted rows are kept; the purge schedule.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Change notifications for caches.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// The admin HTTP listener.
    #[serde(default)]
    pub admin: AdminConfig,
}

/// Why a configuration could not be used. Every variant names the file and,
/// where one is to blame, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    Key {
        path: PathBuf,
        key: String,
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|e| e.in_file(path))
    }

    /// Parses and validates config text. Errors carry an empty path until
    /// [`ConfigError::in_file`] names the file.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Key {
                path: PathBuf::new(),
                key,
                message: e.into_inner().message().trim().to_string(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde's types cannot: files that must exist, pairs of keys
    /// that go together, ranges.
    fn validate(&self) -> Result<(), ConfigError> {
        self.listen.validate()?;
        self.upstream.validate()?;
        self.log.validate()?;
        self.database.validate()?;
        self.soft_delete.validate()?;
        self.roles.validate()?;
        self.audit.validate()?;
        self.retention.validate()?;
        self.parser.validate()?;
        self.admin.validate()?;
        if let Some((key, why)) = self.notify.check() {
            return Err(ConfigError::key(&key, why));
        }
        Ok(())
    }
}

/// The file read when neither `--config` nor `TOMBSTONE_CONFIG` names one:
/// `rules.toml` in the working directory.
pub const DEFAULT_FILE: &str = "rules.toml";

/// Where a command's `rules.toml` is. Every subcommand finds it the same
/// way: the file `--config` names (clap folds `TOMBSTONE_CONFIG` into that
/// flag), else `./rules.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigFile {
    /// Named by `--config` or `TOMBSTONE_CONFIG`: it must load.
    Named(PathBuf),
    /// `./rules.toml`, named by nobody.
    Default(PathBuf),
}

impl ConfigFile {
    /// The lookup: `named` (the flag or the environment), else
    /// [`DEFAULT_FILE`].
    pub fn locate(named: Option<&Path>) -> ConfigFile {
        match named {
            Some(path) => ConfigFile::Named(path.to_path_buf()),
            None => ConfigFile::Default(PathBuf::from(DEFAULT_FILE)),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            ConfigFile::Named(path) | ConfigFile::Default(path) => path,
        }
    }

    /// `serve` and `check`: the file must exist and load.
    pub fn load(&self) -> Result<Config, ConfigError> {
        Config::load(self.path())
    }

    /// The commands that also run without a file (`doctor`, `trash`, …): a
    /// named file must load; `./rules.toml` is read when it exists, and
    /// without it the defaults apply (`None`).
    pub fn load_if_present(&self) -> Result<Option<Config>, ConfigError> {
        match self {
            ConfigFile::Default(path) if !path.exists() => Ok(None),
            _ => self.load().map(Some),
        }
    }
}

impl ConfigError {
    /// A validation error about one key.
    pub(crate) fn key(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            path: PathBuf::new(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn in_file(self, file: &Path) -> ConfigError {
        match self {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: file.to_path_buf(),
                message,
            },
            ConfigError::Key { key, message, .. } => ConfigError::Key {
                path: file.to_path_buf(),
                key,
                message,
            },
            other => other,
        }
    }
}

/// A plain SQL identifier: what tombstone splices into SQL unquoted.
pub(crate) fn identifier(key: &str, value: &str) -> Result<(), ConfigError> {
    let mut chars = value.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && value.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!(
                "`{value}` must be a lower-case SQL identifier (a-z, 0-9, _), at most 63 bytes"
            ),
        ))
    }
}

/// A `"schema.table"` name as PostgreSQL stores it (no quoting).
pub(crate) fn qualified(key: &str, value: &str) -> Result<(String, String), ConfigError> {
    match value.split_once('.') {
        Some((schema, table))
            if !schema.is_empty() && !table.is_empty() && !table.contains('.') =>
        {
            Ok((schema.to_string(), table.to_string()))
        }
        _ => Err(ConfigError::key(
            key,
            format!("`{value}` must be written \"schema.table\""),
        )),
    }
}

#[cfg(test)]
mod tests;
