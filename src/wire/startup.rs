//! The untagged packets that open a connection: StartupMessage, SSLRequest,
//! GSSENCRequest and CancelRequest.

use bytes::{Bytes, BytesMut};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::{SecretKey, Startup};
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};

use super::{BackendKey, WireError};

const SSL_REQUEST_CODE: i32 = 80877103;
const GSSENC_REQUEST_CODE: i32 = 80877104;
const CANCEL_REQUEST_CODE: i32 = 80877102;

/// One startup-phase packet from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client asks for TLS.
    SslRequest,
    /// The client asks for GSSAPI encryption (always refused).
    GssEncRequest,
    /// Cancel the query running on the session with this key.
    Cancel(BackendKey),
    /// A StartupMessage: the raw bytes (relayed as they are) and the
    /// parameters decoded for logging and session state.
    Startup {
        raw: Bytes,
        parameters: Vec<(String, String)>,
    },
}

impl StartupPacket {
    /// Classifies one whole packet (length word included).
    pub(crate) fn parse(raw: Bytes) -> Result<StartupPacket, WireError> {
        let code = i32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
        match code {
            SSL_REQUEST_CODE if raw.len() == 8 => Ok(StartupPacket::SslRequest),
            GSSENC_REQUEST_CODE if raw.len() == 8 => Ok(StartupPacket::GssEncRequest),
            CANCEL_REQUEST_CODE => {
                let ctx = context();
                let mut buf = BytesMut::from(&raw[..]);
                match CancelRequest::decode(&mut buf, &ctx) {
                    Ok(Some(c)) => Ok(StartupPacket::Cancel(BackendKey {
                        pid: c.pid,
                        secret: c.secret_key.to_bytes(),
                    })),
                    _ => Err(WireError::Malformed("malformed CancelRequest".into())),
                }
            }
            _ => {
                let major = (code >> 16) as u16;
                if major != 3 {
                    return Err(WireError::Malformed(format!(
                        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.2",
                        major,
                        code & 0xffff
                    )));
                }
                let mut buf = BytesMut::from(&raw[..]);
                let startup = Startup::decode(&mut buf, &context())
                    .ok()
                    .flatten()
                    .ok_or_else(|| WireError::Malformed("malformed StartupMessage".into()))?;
                Ok(StartupPacket::Startup {
                    raw,
                    parameters: startup.parameters.into_iter().collect(),
                })
            }
        }
    }
}

/// A CancelRequest packet for the given key, to send to a server.
pub fn cancel_request(key: &BackendKey) -> Result<Bytes, WireError> {
    let request = CancelRequest::new(key.pid, SecretKey::Bytes(key.secret.clone()));
    let mut buf = BytesMut::new();
    request
        .encode(&mut buf)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok(buf.freeze())
}

/// Decoding context that accepts protocol 3.2's variable-length keys.
fn context() -> DecodeContext {
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_2);
    ctx.awaiting_frontend_ssl = false;
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: i32, rest: &[u8]) -> Bytes {
        let mut v = ((8 + rest.len()) as i32).to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(rest);
        Bytes::from(v)
    }

    #[test]
    fn classifies_requests() {
        assert_eq!(
            StartupPacket::parse(packet(SSL_REQUEST_CODE, b"")).unwrap(),
            StartupPacket::SslRequest
        );
        assert_eq!(
            StartupPacket::parse(packet(GSSENC_REQUEST_CODE, b"")).unwrap(),
            StartupPacket::GssEncRequest
        );
    }

    #[test]
    fn startup_parameters_are_decoded_and_raw_kept() {
        let raw = packet(
            196608,
            b"user\0alice\0database\0shop\0options\0-c intervalstyle=iso_8601\0\0",
        );
        match StartupPacket::parse(raw.clone()).unwrap() {
            StartupPacket::Startup { raw: r, parameters } => {
                assert_eq!(r, raw);
                assert!(parameters.contains(&("user".into(), "alice".into())));
                assert!(
                    parameters.contains(&("options".into(), "-c intervalstyle=iso_8601".into()))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cancel_round_trips() {
        let key = BackendKey {
            pid: 42,
            secret: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let bytes = cancel_request(&key).unwrap();
        assert_eq!(
            StartupPacket::parse(bytes).unwrap(),
            StartupPacket::Cancel(key)
        );
    }

    #[test]
    fn old_protocols_are_refused() {
        assert!(StartupPacket::parse(packet(131072, b"user\0x\0\0")).is_err());
    }
}
