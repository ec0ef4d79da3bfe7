//! What can go wrong while reading messages off a socket.

/// A framing failure. Each one ends the connection it happened on.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error("message of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge { len: i64, max: usize },
    #[error("invalid message length {0}")]
    BadLength(i64),
    #[error("{0}")]
    Malformed(String),
    /// A StartupMessage for a protocol major version other than 3.
    #[error("unsupported frontend protocol {0}: server supports 3.0 to 3.2")]
    UnsupportedProtocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl WireError {
    /// True for errors that mean the peer sent bytes that are not protocol,
    /// as opposed to the network failing.
    pub fn is_protocol_violation(&self) -> bool {
        !matches!(self, WireError::Io(_))
    }
}
