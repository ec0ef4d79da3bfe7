//! One protocol message, kept as the exact bytes received.

use bytes::Bytes;

/// Message type bytes the proxy looks at. The protocol reuses letters across
/// directions, so each constant says which side sends it.
pub mod tag {
    /// Frontend: simple Query.
    pub const QUERY: u8 = b'Q';
    /// Frontend: Parse (extended protocol).
    pub const PARSE: u8 = b'P';
    /// Frontend: Bind.
    pub const BIND: u8 = b'B';
    /// Frontend: Describe.
    pub const DESCRIBE: u8 = b'D';
    /// Frontend: Execute.
    pub const EXECUTE: u8 = b'E';
    /// Frontend: Close.
    pub const CLOSE: u8 = b'C';
    /// Frontend: Sync.
    pub const SYNC: u8 = b'S';
    /// Frontend: Flush.
    pub const FLUSH: u8 = b'H';
    /// Frontend: FunctionCall.
    pub const FUNCTION_CALL: u8 = b'F';
    /// Frontend: Terminate.
    pub const TERMINATE: u8 = b'X';
    /// Frontend: password / SASL response family.
    pub const PASSWORD: u8 = b'p';
    /// Both: CopyData.
    pub const COPY_DATA: u8 = b'd';

    /// Backend: Authentication family.
    pub const AUTHENTICATION: u8 = b'R';
    /// Backend: BackendKeyData.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Backend: ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Backend: ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Backend: CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// Backend: RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';
    /// Backend: ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Backend: NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
}

/// A tagged message: type byte, length, body, exactly as they arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// Wraps the raw bytes of one whole message. The reader guarantees at
    /// least the 5 header bytes and a length that matches.
    pub(crate) fn from_raw(bytes: Bytes) -> Frame {
        debug_assert!(bytes.len() >= 5);
        Frame { bytes }
    }

    /// Builds a frame from a type byte and a body.
    pub fn new(tag: u8, body: &[u8]) -> Frame {
        let mut buf = Vec::with_capacity(5 + body.len());
        buf.push(tag);
        buf.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        buf.extend_from_slice(body);
        Frame {
            bytes: Bytes::from(buf),
        }
    }

    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.bytes[0]
    }

    /// Everything after the type byte and length.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }

    /// The whole message as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole message, shared.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_frame_round_trips() {
        let f = Frame::new(b'Q', b"select 1\0");
        assert_eq!(f.tag(), b'Q');
        assert_eq!(f.body(), b"select 1\0");
        assert_eq!(&f.as_bytes()[1..5], &13i32.to_be_bytes());
        assert_eq!(Frame::from_raw(f.clone().into_bytes()), f);
    }
}
