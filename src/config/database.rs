//! `[database]`: the database tombstone protects, and how it watches its
//! schema.

use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Connection URL of the protected database, used for the catalog, the
    /// schema-change listener and the startup checks; the role needs to read
    /// `pg_catalog` and the `tombstone` schema. Absent: tombstone relays
    /// every session unchanged (no soft delete) and says so at startup.
    /// Client sessions on other databases are always relayed unchanged.
    pub url: Option<String>,
    /// How often the schema is re-read even without a change notification.
    /// Default `30s`; `0s` disables the periodic check.
    #[serde(deserialize_with = "super::duration::deserialize_optional")]
    pub refresh_interval: Option<Duration>,
    /// LISTEN channel fed by the event trigger `tombstone migrate` installs.
    /// Default `tombstone_schema_change`.
    pub notify_channel: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            refresh_interval: Some(Duration::from_secs(30)),
            notify_channel: "tombstone_schema_change".to_string(),
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            let parsed: Result<tokio_postgres::Config, _> = url.parse();
            match parsed {
                Ok(cfg) if cfg.get_dbname().is_some() => {}
                Ok(_) => return Err(ConfigError::key("database.url", "must name a database")),
                Err(e) => {
                    return Err(ConfigError::key(
                        "database.url",
                        format!("not a PostgreSQL URL: {e}"),
                    ));
                }
            }
        }
        super::identifier("database.notify_channel", &self.notify_channel)
    }

    /// The protected database's name, if one is configured.
    pub fn name(&self) -> Option<String> {
        let url = self.url.as_ref()?;
        let cfg: tokio_postgres::Config = url.parse().ok()?;
        cfg.get_dbname().map(str::to_string)
    }
}

/// A URL with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("host=h user=u"), "host=h user=u");
    }
}
