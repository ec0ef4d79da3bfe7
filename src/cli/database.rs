//! The option every subcommand that needs a database shares.

use std::path::PathBuf;

use crate::config::{Config, redact_url as redact};

/// `--database-url` (or `TOMBSTONE_DATABASE_URL`); failing that, the
/// `database.url` of `--config`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL of the protected database.
    #[arg(long, env = "TOMBSTONE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// rules.toml to read `database.url` and other settings from.
    #[arg(long, short, env = "TOMBSTONE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The config (defaults when no file is named) and the database URL.
    pub fn resolve(&self) -> Result<(Config, String), String> {
        let config = match &self.config {
            Some(path) => Config::load(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        let url = self
            .database_url
            .clone()
            .or_else(|| config.database.url.clone())
            .ok_or_else(|| "no database: pass --database-url, set TOMBSTONE_DATABASE_URL, or set database.url in --config".to_string())?;
        Ok((config, url))
    }
}

impl DatabaseArgs {
    /// Resolves the URL and connects: what every database subcommand does
    /// first. On failure the message is printed and the exit code returned
    /// (2 for bad arguments or config, 1 when the database is unreachable).
    pub async fn open(&self) -> Result<(Config, tokio_postgres::Client), std::process::ExitCode> {
        let (config, url) = self.resolve().map_err(|e| {
            eprintln!("tombstone: {e}");
            std::process::ExitCode::from(2)
        })?;
        let client = connect(&url).await.map_err(|e| {
            eprintln!("tombstone: {e}");
            std::process::ExitCode::FAILURE
        })?;
        Ok((config, client))
    }
}

/// Connects with tokio-postgres, driving the connection in the background.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}

/// The OS login name (`$USER`, `$LOGNAME`): the default actor of the
/// operations commands.
pub fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}
