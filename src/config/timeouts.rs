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
    /// TCP keepalive on client and upstream sockets: the first probe after
    /// this much silence, so a peer that vanished (a half-open connection)
    /// is found and its session closed. Default `60s`; `0s`: off.
    #[serde(deserialize_with = "super::duration::deserialize_optional")]
    pub keepalive_idle: Option<Duration>,
    /// Between keepalive probes. Default `10s`.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is dropped. Default `6`
    /// (a dead peer is found after about idle + 6 × interval = 2 minutes).
    pub keepalive_retries: u32,
}

impl TimeoutsConfig {
    /// Applies the keepalive settings to a connected socket.
    pub fn keepalive(&self, tcp: &tokio::net::TcpStream) -> std::io::Result<()> {
        let sock = socket2::SockRef::from(tcp);
        match self.keepalive_idle {
            None => sock.set_keepalive(false),
            Some(idle) => sock.set_tcp_keepalive(
                &socket2::TcpKeepalive::new()
                    .with_time(idle)
                    .with_interval(self.keepalive_interval)
                    .with_retries(self.keepalive_retries),
            ),
        }
    }
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect: Duration::from_secs(5),
            startup: Duration::from_secs(60),
            idle: None,
            keepalive_idle: Some(Duration::from_secs(60)),
            keepalive_interval: Duration::from_secs(10),
            keepalive_retries: 6,
        }
    }
}
