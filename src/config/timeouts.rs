//! `[timeouts]`: how long the proxy waits for the network and for clients.

use std::time::Duration;

use serde::Deserialize;

/// `[timeouts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// Connecting to the upstream server (TCP and TLS). Default `5s`.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub connect: Duration,
    /// A client must finish TLS negotiation, startup and authentication
    /// within this. Default `60s`.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub startup: Duration,
    /// Close a client that sends nothing for this long (SQLSTATE 57P05).
    /// Default `0s`: never.
    #[serde(deserialize_with = "super::duration::deserialize_optional")]
    pub idle: Option<Duration>,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect: Duration::from_secs(5),
            startup: Duration::from_secs(60),
            idle: None,
        }
    }
}
