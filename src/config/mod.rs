//! `rules.toml`: the proxy's configuration, one file per TOML table.
//!
//! The file is parsed strictly: unknown keys and bad values stop startup with
//! a message that names the key (`upstream.port: invalid type …`). A missing
//! file is an error, never silent defaults. The parsed [`Config`] is passed
//! down as a value (`Arc<Config>`); nothing reads it from a global.

mod duration;
mod listen;
mod log;
mod timeouts;
mod upstream;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use listen::{ListenConfig, ListenTls};
pub use log::{LogConfig, LogFormat};
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
                message: first_line(&e.into_inner().to_string()),
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
        Ok(())
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

/// toml's messages repeat the offending source line below the first line;
/// the key path already says where, so keep only the first line.
fn first_line(message: &str) -> String {
    message
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("TOML parse error"))
        .unwrap_or(message)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests;
