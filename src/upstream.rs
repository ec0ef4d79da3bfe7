//! Connections to the PostgreSQL server: TCP, optional TLS, and the
//! out-of-band CancelRequest.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{UpstreamConfig, UpstreamTlsMode};
use crate::stream::Stream;
use crate::tls::UpstreamTls;
use crate::wire::{BackendKey, cancel_request};

/// SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Why the server could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to server {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("timed out connecting to server {0}")]
    Timeout(String),
    #[error("server {0} does not accept TLS, and upstream.tls requires it")]
    TlsRefused(String),
    #[error("TLS handshake with server {addr} failed: {source}")]
    Handshake {
        addr: String,
        source: std::io::Error,
    },
}

/// Where the server is and how to talk to it.
#[derive(Clone)]
pub struct Upstream {
    host: String,
    port: u16,
    tls: Option<UpstreamTls>,
    connect_timeout: Duration,
    timeouts: crate::config::TimeoutsConfig,
}

impl Upstream {
    pub fn new(
        cfg: &UpstreamConfig,
        tls: Option<UpstreamTls>,
        timeouts: &crate::config::TimeoutsConfig,
    ) -> Upstream {
        Upstream {
            host: cfg.host.clone(),
            port: cfg.port,
            tls,
            connect_timeout: timeouts.connect,
            timeouts: timeouts.clone(),
        }
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Opens a connection, negotiating TLS as configured, ready for a
    /// StartupMessage or CancelRequest.
    pub async fn connect(&self) -> Result<Stream, UpstreamError> {
        tokio::time::timeout(self.connect_timeout, self.connect_inner())
            .await
            .map_err(|_| UpstreamError::Timeout(self.address()))?
    }

    async fn connect_inner(&self) -> Result<Stream, UpstreamError> {
        let addr = self.address();
        let mut tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| UpstreamError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // Latency matters more than packet count for a query protocol.
        let _ = tcp.set_nodelay(true);
        if let Err(e) = self.timeouts.keepalive(&tcp) {
            tracing::debug!(error = %e, "cannot set TCP keepalive on an upstream socket");
        }
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let io = |source| UpstreamError::Handshake {
            addr: addr.clone(),
            source,
        };
        tcp.write_all(&SSL_REQUEST).await.map_err(io)?;
        let answer = tcp.read_u8().await.map_err(io)?;
        match answer {
            b'S' => {
                let stream = tls
                    .connector
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .map_err(io)?;
                Ok(Stream::ClientTls(Box::new(stream)))
            }
            b'N' if tls.mode == UpstreamTlsMode::Prefer => Ok(Stream::Plain(tcp)),
            _ => Err(UpstreamError::TlsRefused(addr)),
        }
    }

    /// Sends a CancelRequest for `key` on a new connection and waits for the
    /// server to close it, as the protocol prescribes.
    pub async fn cancel(&self, key: &BackendKey) -> Result<(), UpstreamError> {
        let addr = self.address();
        let mut stream = self.connect().await?;
        let io = |source| UpstreamError::Connect {
            addr: addr.clone(),
            source,
        };
        let packet = cancel_request(key).map_err(|e| io(std::io::Error::other(e)))?;
        stream.write_all(&packet).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(self.connect_timeout, stream.read(&mut sink)).await;
        Ok(())
    }
}
