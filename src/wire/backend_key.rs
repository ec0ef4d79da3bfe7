//! BackendKeyData (B): the key a client needs to cancel its queries.

use bytes::{Bytes, BytesMut};
use pgwire::messages::startup::{BackendKeyData, SecretKey};
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};

use super::{Frame, WireError};

/// A process id and secret (4 bytes in protocol 3.0, up to 256 in 3.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendKey {
    pub pid: i32,
    pub secret: Bytes,
}

impl BackendKey {
    /// Decodes a BackendKeyData message: tag `K`, a process id and a
    /// secret of 4 to 256 bytes. Anything else is refused before pgwire's
    /// decoder sees it (it panics on a body shorter than its fields).
    pub fn decode(frame: &Frame) -> Result<BackendKey, WireError> {
        let secret_len = frame.body().len().checked_sub(4);
        if frame.tag() != b'K' || !matches!(secret_len, Some(4..=256)) {
            return Err(WireError::Malformed("malformed BackendKeyData".into()));
        }
        let mut buf = BytesMut::from(frame.as_bytes());
        let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_2);
        match BackendKeyData::decode(&mut buf, &ctx) {
            Ok(Some(k)) => Ok(BackendKey {
                pid: k.pid,
                secret: k.secret_key.to_bytes(),
            }),
            _ => Err(WireError::Malformed("malformed BackendKeyData".into())),
        }
    }

    /// Encodes this key as a BackendKeyData message.
    pub fn to_frame(&self) -> Result<Frame, WireError> {
        let msg = BackendKeyData::new(self.pid, SecretKey::Bytes(self.secret.clone()));
        let mut buf = BytesMut::new();
        msg.encode(&mut buf)
            .map_err(|e| WireError::Malformed(e.to_string()))?;
        Ok(Frame::from_raw(buf.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_short_and_long_keys() {
        for secret in [vec![9u8; 4], vec![7u8; 32]] {
            let key = BackendKey {
                pid: 1234,
                secret: Bytes::from(secret),
            };
            let frame = key.to_frame().unwrap();
            assert_eq!(frame.tag(), b'K');
            assert_eq!(BackendKey::decode(&frame).unwrap(), key);
        }
    }

    /// Found by the `wire_frames` fuzz target: pgwire's decoder panicked on
    /// an Authentication message read as BackendKeyData.
    #[test]
    fn refuses_short_long_and_other_messages() {
        for frame in [
            Frame::new(b'R', &[0, 0, 0, 0]),
            Frame::new(b'K', &[0, 0, 16, 146]),
            Frame::new(b'K', &[0, 0, 16, 146, 0]),
            Frame::new(b'K', &[]),
            Frame::new(b'K', &[1; 4 + 257]),
        ] {
            assert!(BackendKey::decode(&frame).is_err(), "{frame:?}");
        }
        assert!(BackendKey::decode(&Frame::new(b'K', &[1; 8])).is_ok());
    }
}
