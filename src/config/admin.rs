//! `[admin]`: the operator's HTTP listener (health, readiness, metrics and
//! the trash page). Off unless `address` is set.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where the admin HTTP listener accepts connections
    /// (`"127.0.0.1:9187"`). Absent: no listener.
    pub address: Option<SocketAddr>,
    /// A shared secret that logs in to the trash page instead of a bypass
    /// role's PostgreSQL credentials. Absent: only PostgreSQL logins. At
    /// least 16 characters.
    pub token: Option<String>,
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token
            && token.chars().count() < 16
        {
            return Err(ConfigError::key(
                "admin.token",
                "a token must be at least 16 characters (it is a password)",
            ));
        }
        Ok(())
    }
}
