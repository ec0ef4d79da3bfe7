//! `[listen]`: where clients connect, and client-side TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

/// `[listen]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Address and port to accept clients on. Default `127.0.0.1:6432`.
    pub address: SocketAddr,
    /// Largest message a client may send, in bytes (the statement text of a
    /// Query or Parse, a CopyData chunk). Larger ones close the connection
    /// with SQLSTATE 08P01. Default 128 MiB.
    pub max_message_bytes: usize,
    /// On SIGTERM, how long open sessions may take to finish their
    /// transactions before they are closed. Default `30s`.
    #[serde(deserialize_with = "super::duration::deserialize")]
    pub shutdown_grace: Duration,
    /// Terminate clients' TLS with this certificate. Absent: SSLRequest is
    /// answered `N` and clients connect in plain text.
    pub tls: Option<ListenTls>,
}

/// `[listen.tls]`: the certificate the proxy presents to clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenTls {
    /// PEM file with the certificate chain.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 6432)),
            max_message_bytes: 128 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl ListenConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::key(
                "listen.max_message_bytes",
                "must be at least 1024",
            ));
        }
        if self.max_message_bytes > i32::MAX as usize {
            return Err(ConfigError::key(
                "listen.max_message_bytes",
                "must be at most 2147483647 (the protocol's limit)",
            ));
        }
        if let Some(tls) = &self.tls {
            must_exist("listen.tls.cert_file", &tls.cert_file)?;
            must_exist("listen.tls.key_file", &tls.key_file)?;
        }
        Ok(())
    }
}

/// A configured file must be there at startup, not at the first client.
pub(super) fn must_exist(key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!("file {} does not exist", path.display()),
        ))
    }
}
