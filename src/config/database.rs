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

/// A URL (or a `key=value` connection string) with its password replaced,
/// for messages: the `user:password@` of a URL, and a `password=` value in
/// a URL's query or a connection string.
pub fn redact_url(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    redact_password_values(&url)
}

/// Every `password=VALUE` (VALUE up to a space or `&`, or a quoted
/// `'…'`) becomes `password=***`.
fn redact_password_values(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(KEY) {
        let starts_key = at == 0 || matches!(rest.as_bytes()[at - 1], b' ' | b'?' | b'&' | b'\t');
        let value_at = at + KEY.len();
        out.push_str(&rest[..value_at]);
        rest = &rest[value_at..];
        if !starts_key {
            continue;
        }
        let end = if let Some(quoted) = rest.strip_prefix('\'') {
            // A quoted value ends at the first quote not escaped by `\`.
            let mut escaped = false;
            quoted
                .char_indices()
                .find(|&(_, c)| {
                    let end = c == '\'' && !escaped;
                    escaped = c == '\\' && !escaped;
                    end
                })
                .map(|(i, _)| i + 2)
                .unwrap_or(rest.len())
        } else {
            rest.find([' ', '&', '\t']).unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=disable&password=secret"),
            "postgres://u@h/db?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_url("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_url("password='se cr\\'et' user=u"),
            "password=*** user=u"
        );
        assert_eq!(redact_url("host=h oldpassword=x"), "host=h oldpassword=x");
    }
}
