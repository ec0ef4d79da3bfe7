//! `[upstream]`: the PostgreSQL server behind the proxy.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Host name or IP address. Default `127.0.0.1`.
    pub host: String,
    /// Port. Default `5432`.
    pub port: u16,
    /// TLS to the server. Default `disable`.
    pub tls: UpstreamTlsMode,
    /// PEM file of CA certificates to verify the server with (`verify-full`).
    /// Absent: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Name to verify the server certificate against. Default: `host`.
    pub server_name: Option<String>,
}

/// How the proxy uses TLS towards the server, named after libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTlsMode {
    /// Plain TCP.
    #[default]
    Disable,
    /// TLS if the server offers it, without verifying its certificate.
    Prefer,
    /// TLS or fail, without verifying the certificate.
    Require,
    /// TLS or fail; the certificate must chain to a trusted root and match
    /// the server name.
    VerifyFull,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            host: "127.0.0.1".to_string(),
            port: 5432,
            tls: UpstreamTlsMode::Disable,
            ca_file: None,
            server_name: None,
        }
    }
}

impl UpstreamConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::key("upstream.host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(ConfigError::key("upstream.port", "must not be 0"));
        }
        if let Some(ca) = &self.ca_file {
            super::listen::must_exist("upstream.ca_file", ca)?;
        }
        let name = self.server_name.as_deref().unwrap_or(&self.host);
        if self.tls == UpstreamTlsMode::VerifyFull
            && rustls::pki_types::ServerName::try_from(name.to_string()).is_err()
        {
            return Err(ConfigError::key(
                "upstream.server_name",
                format!("`{name}` is not a valid DNS name or IP address"),
            ));
        }
        Ok(())
    }
}
