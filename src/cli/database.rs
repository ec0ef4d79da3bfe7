//! What every subcommand that needs a database shares: `--database-url`
//! and `--config`, the connection, and the default actor.

use std::process::ExitCode;

use super::config_file::{ConfigArgs, explain};
use super::fail;
use crate::config::{Config, redact_url as redact};

/// `--database-url` (or `TOMBSTONE_DATABASE_URL`); failing that, the
/// `database.url` of rules.toml, found as `serve` finds it (`--config`,
/// `TOMBSTONE_CONFIG`, `./rules.toml`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL of the protected database; overrides database.url
    /// of rules.toml.
    #[arg(long, env = "TOMBSTONE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// How to name a database, for the messages that lack one.
pub const NO_DATABASE: &str = "pass --database-url URL, set TOMBSTONE_DATABASE_URL, or set database.url in rules.toml (--config FILE, TOMBSTONE_CONFIG, or ./rules.toml)";

impl DatabaseArgs {
    /// The config (`rules.toml` when there is one, else the defaults) and
    /// the database URL, if any names one.
    pub fn resolve(&self) -> Result<(Config, Option<String>), String> {
        let file = self.config.file();
        let config = file
            .load_if_present()
            .map_err(|e| explain(&file, &e))?
            .unwrap_or_default();
        let url = self
            .database_url
            .clone()
            .or_else(|| config.database.url.clone());
        Ok((config, url))
    }

    /// Resolves the URL and connects: what every database subcommand does
    /// first. On failure the message is printed and the exit code returned:
    /// 2 for bad arguments or config (no database named included), 1 when
    /// the database cannot be reached.
    pub async fn open(&self) -> Result<(Config, tokio_postgres::Client), ExitCode> {
        let (config, url) = self.resolve().map_err(|e| {
            fail(&e);
            ExitCode::from(2)
        })?;
        let Some(url) = url else {
            fail(&format!("no database: {NO_DATABASE}"));
            return Err(ExitCode::from(2));
        };
        let client = connect(&url).await.map_err(|e| {
            fail(&e);
            ExitCode::FAILURE
        })?;
        Ok((config, client))
    }
}

/// Connects with tokio-postgres, driving the connection in the background.
/// The error names the database (its password masked) and says why: the
/// server's message and SQLSTATE, or the I/O error behind a connection
/// that never reached it.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            format!(
                "cannot connect to {}: {}",
                redact(url),
                crate::pg_error::describe(&e)
            )
        })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %crate::pg_error::describe(&e), "database connection closed");
        }
    });
    Ok(client)
}

/// The operation `text` names: a whole id, or a prefix of one as `tombstone
/// trash` shows it. When it names none or several, the message (with the
/// candidates) is printed and the exit code returned: 2 for a prefix that
/// is not one or is ambiguous, 1 when no operation has it.
pub async fn operation_id(client: &tokio_postgres::Client, text: &str) -> Result<String, ExitCode> {
    use crate::ops::trash::{PrefixError, resolve_operation};
    resolve_operation(client, text).await.map_err(|e| {
        fail(&e.to_string());
        match e {
            PrefixError::Malformed(_) | PrefixError::Ambiguous { .. } => ExitCode::from(2),
            PrefixError::Unknown(_) | PrefixError::Ops(_) => ExitCode::FAILURE,
        }
    })
}

/// The OS account running the command: the default actor of the
/// operations commands. `$USER`, then `$LOGNAME` (what a login shell or
/// `sudo -u` set), then the name of the process's user id in the password
/// database (containers often set neither variable); `None` when the uid
/// has no name, and the SQL functions then record the database login.
pub fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| whoami::username().ok().filter(|s| !s.is_empty()))
}
