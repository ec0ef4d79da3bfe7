//! Why a session ended, and the one place that turns that into what the
//! client is told.

use crate::upstream::UpstreamError;
use crate::wire::{ErrorFields, Severity, WireError};

/// A session-ending failure.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The client broke the protocol (garbage, bad length, oversized
    /// message) or its connection failed.
    #[error("client: {0}")]
    Client(WireError),
    /// The server's connection failed or it sent something unreadable.
    #[error("server: {0}")]
    Server(WireError),
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("client TLS handshake failed: {0}")]
    ClientTls(std::io::Error),
    #[error("client sent {0} where the protocol does not allow it")]
    UnexpectedMessage(char),
    #[error("received unencrypted data after SSL request")]
    DataAfterSslRequest,
    #[error("startup did not complete within {0:?}")]
    StartupTimeout(std::time::Duration),
    #[error("client idle for longer than {0:?}")]
    IdleTimeout(std::time::Duration),
    #[error("server closed the connection during startup")]
    ServerClosedDuringStartup,
    #[error("tombstone could not set up the session: {0}")]
    Setup(String),
}

impl SessionError {
    /// The FATAL error to send the client before closing, if it can still
    /// be told anything.
    pub fn client_error(&self) -> Option<ErrorFields> {
        let (code, message) = match self {
            SessionError::Client(WireError::Io(_) | WireError::Truncated) => return None,
            SessionError::ClientTls(_) => return None,
            // PostgreSQL's own code and words for a version it cannot speak.
            SessionError::Client(e @ WireError::UnsupportedProtocol(_)) => ("0A000", e.to_string()),
            SessionError::Client(e) => ("08P01", format!("invalid frontend message: {e}")),
            SessionError::UnexpectedMessage(_) | SessionError::DataAfterSslRequest => {
                ("08P01", self.to_string())
            }
            SessionError::Server(_) | SessionError::ServerClosedDuringStartup => {
                ("08006", format!("lost connection to server: {self}"))
            }
            SessionError::Upstream(_) => ("08001", self.to_string()),
            SessionError::StartupTimeout(_) => ("08006", self.to_string()),
            SessionError::Setup(_) => ("08004", self.to_string()),
            SessionError::IdleTimeout(_) => (
                "57P05",
                "terminating connection due to idle-session timeout".to_string(),
            ),
        };
        Some(ErrorFields {
            severity: Severity::Fatal,
            code,
            message,
            detail: None,
            hint: None,
        })
    }
}
