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
                    return Err(WireError::UnsupportedProtocol(format!(
                        "{}.{}",
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

/// Rebuilds a StartupMessage without the parameters whose names start with
/// `drop_prefix`, plus `name = value` at the end (where PostgreSQL applies
/// it last, after any `options`). Everything else stays byte for byte.
pub fn with_parameter(
    raw: &[u8],
    drop_prefix: &[u8],
    name: &[u8],
    value: &[u8],
) -> Result<Bytes, WireError> {
    let bad = || WireError::Malformed("malformed StartupMessage".into());
    let body = raw.get(8..).ok_or_else(bad)?;
    let mut out = raw.get(..8).ok_or_else(bad)?.to_vec();
    let mut rest = body;
    loop {
        let end = rest.iter().position(|b| *b == 0).ok_or_else(bad)?;
        if end == 0 {
            break;
        }
        let key = &rest[..end];
        let after_key = &rest[end + 1..];
        let vend = after_key.iter().position(|b| *b == 0).ok_or_else(bad)?;
        let val = &after_key[..vend];
        if !key.starts_with(drop_prefix) {
            out.extend_from_slice(key);
            out.push(0);
            out.extend_from_slice(val);
            out.push(0);
        }
        rest = &after_key[vend + 1..];
    }
    out.extend_from_slice(name);
    out.push(0);
    out.extend_from_slice(value);
    out.push(0);
    out.push(0);
    let len = i32::try_from(out.len()).map_err(|_| bad())?;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod parameter_tests {
    use super::*;

    #[test]
    fn replaces_prefixed_parameters_and_appends() {
        let mut raw = vec![0, 0, 0, 0, 0, 3, 0, 0];
        raw.extend_from_slice(b"user\0bob\0tombstone.client_addr\0spoofed\0database\0caf\xe9\0\0");
        let len = raw.len() as i32;
        raw[..4].copy_from_slice(&len.to_be_bytes());
        let out =
            with_parameter(&raw, b"tombstone.", b"tombstone.client_addr", b"10.0.0.7").unwrap();
        assert_eq!(
            &out[8..],
            &b"user\0bob\0database\0caf\xe9\0tombstone.client_addr\x0010.0.0.7\0\0"[..]
        );
        assert_eq!(
            i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize,
            out.len()
        );
        assert!(with_parameter(&raw[..12], b"t", b"k", b"v").is_err());
    }
}
