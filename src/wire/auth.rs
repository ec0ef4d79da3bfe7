//! Authentication (B): which requests need an answer from the client, and
//! hiding channel binding, which cannot survive a relay.

use bytes::BytesMut;
use pgwire::messages::startup::Authentication;
use pgwire::messages::{DecodeContext, Message, ProtocolVersion};

use super::{Frame, WireError};

/// What an Authentication message asks of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest {
    /// AuthenticationOk: nothing more to do.
    Ok,
    /// SASLFinal: the server's last word; Ok follows without a reply.
    SaslFinal,
    /// Anything else (cleartext, MD5, SASL, SASLContinue, GSS…): the client
    /// must answer with one password-family message.
    NeedsResponse,
}

impl AuthRequest {
    pub fn of(frame: &Frame) -> Result<AuthRequest, WireError> {
        let body = frame.body();
        if body.len() < 4 {
            return Err(WireError::Malformed("short Authentication message".into()));
        }
        Ok(
            match i32::from_be_bytes([body[0], body[1], body[2], body[3]]) {
                0 => AuthRequest::Ok,
                12 => AuthRequest::SaslFinal,
                _ => AuthRequest::NeedsResponse,
            },
        )
    }
}

/// If `frame` is an AuthenticationSASL offering `SCRAM-SHA-256-PLUS`,
/// returns it without the `-PLUS` mechanisms.
///
/// Channel binding ties SCRAM to the TLS session the *client* sees, which
/// ends at the proxy; the server would check it against its own TLS session
/// and refuse. With `-PLUS` hidden, libpq's default `channel_binding=prefer`
/// picks plain SCRAM-SHA-256 and logs in.
pub fn strip_channel_binding(frame: &Frame) -> Result<Option<Frame>, WireError> {
    let body = frame.body();
    if body.len() < 4 || body[..4] != 10i32.to_be_bytes() {
        return Ok(None);
    }
    let mut buf = BytesMut::from(frame.as_bytes());
    let ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    let mechanisms = match Authentication::decode(&mut buf, &ctx) {
        Ok(Some(Authentication::SASL(m))) => m,
        _ => return Err(WireError::Malformed("malformed AuthenticationSASL".into())),
    };
    if !mechanisms.iter().any(|m| m.ends_with("-PLUS")) {
        return Ok(None);
    }
    let kept = mechanisms
        .into_iter()
        .filter(|m| !m.ends_with("-PLUS"))
        .collect();
    let mut out = BytesMut::new();
    Authentication::SASL(kept)
        .encode(&mut out)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok(Some(Frame::from_raw(out.freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl(mechs: &[&str]) -> Frame {
        let mut body = 10i32.to_be_bytes().to_vec();
        for m in mechs {
            body.extend_from_slice(m.as_bytes());
            body.push(0);
        }
        body.push(0);
        Frame::new(b'R', &body)
    }

    #[test]
    fn plus_is_removed() {
        let stripped = strip_channel_binding(&sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]))
            .unwrap()
            .unwrap();
        assert_eq!(stripped, sasl(&["SCRAM-SHA-256"]));
        assert_eq!(
            AuthRequest::of(&stripped).unwrap(),
            AuthRequest::NeedsResponse
        );
    }

    #[test]
    fn plain_offers_are_left_alone() {
        assert_eq!(
            strip_channel_binding(&sasl(&["SCRAM-SHA-256"])).unwrap(),
            None
        );
        let md5 = Frame::new(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]);
        assert_eq!(strip_channel_binding(&md5).unwrap(), None);
        assert_eq!(
            AuthRequest::of(&Frame::new(b'R', &[0, 0, 0, 0])).unwrap(),
            AuthRequest::Ok
        );
        assert_eq!(
            AuthRequest::of(&Frame::new(b'R', &[0, 0, 0, 12, b'x'])).unwrap(),
            AuthRequest::SaslFinal
        );
    }
}
