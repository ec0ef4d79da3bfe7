//! `--config`: how every subcommand finds `rules.toml` (the lookup itself is
//! [`ConfigFile::locate`]).

use std::path::PathBuf;

use crate::config::{ConfigError, ConfigFile};

/// The `--config` flag every subcommand that reads `rules.toml` flattens.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// rules.toml to read. Default: ./rules.toml (the commands other than
    /// serve and check run without one).
    #[arg(long, short, env = "TOMBSTONE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The file: `--config`, `TOMBSTONE_CONFIG`, else `./rules.toml`.
    pub fn file(&self) -> ConfigFile {
        ConfigFile::locate(self.config.as_deref())
    }
}

/// A config error, with the way to name another file when the default one
/// was missing.
pub fn explain(file: &ConfigFile, e: &ConfigError) -> String {
    match (file, e) {
        (ConfigFile::Default(_), ConfigError::Read { .. }) => {
            format!("{e}; pass --config FILE or set TOMBSTONE_CONFIG to read another file")
        }
        _ => e.to_string(),
    }
}
