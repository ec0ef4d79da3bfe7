//! Backend messages the proxy builds itself: ErrorResponse, and reading the
//! transaction status off ReadyForQuery.

use bytes::BytesMut;
use pgwire::messages::Message;
use pgwire::messages::response::ErrorResponse;

use super::{Frame, tag};

/// ErrorResponse severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The connection is about to be closed.
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// The fields of an error the proxy reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: Severity,
    /// Five-character SQLSTATE.
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// Encodes an ErrorResponse.
pub fn error_response(e: &ErrorFields) -> Frame {
    let mut fields = vec![
        (b'S', e.severity.as_str().to_string()),
        (b'V', e.severity.as_str().to_string()),
        (b'C', e.code.to_string()),
        (b'M', e.message.clone()),
    ];
    if let Some(d) = &e.detail {
        fields.push((b'D', d.clone()));
    }
    if let Some(h) = &e.hint {
        fields.push((b'H', h.clone()));
    }
    let mut buf = BytesMut::new();
    match ErrorResponse::new(fields).encode(&mut buf) {
        Ok(()) => Frame::from_raw(buf.freeze()),
        // Only an over-long message can fail to encode; say so briefly.
        Err(_) => Frame::new(
            tag::ERROR_RESPONSE,
            b"SERROR\0VERROR\0C XX000\0Merror message too long\0\0",
        ),
    }
}

/// The transaction status byte (`I`, `T` or `E`) of a ReadyForQuery.
pub fn ready_for_query_status(frame: &Frame) -> Option<u8> {
    (frame.tag() == tag::READY_FOR_QUERY)
        .then(|| frame.body().first().copied())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_has_code_and_message() {
        let f = error_response(&ErrorFields {
            severity: Severity::Fatal,
            code: "08P01",
            message: "bad".into(),
            detail: None,
            hint: Some("try again".into()),
        });
        assert_eq!(f.tag(), b'E');
        let body = f.body();
        let text = String::from_utf8_lossy(body);
        assert!(text.contains("SFATAL\0"));
        assert!(text.contains("C08P01\0"));
        assert!(text.contains("Mbad\0"));
        assert!(text.contains("Htry again\0"));
        assert_eq!(*body.last().unwrap(), 0);
    }

    #[test]
    fn reads_status() {
        assert_eq!(ready_for_query_status(&Frame::new(b'Z', b"T")), Some(b'T'));
        assert_eq!(ready_for_query_status(&Frame::new(b'C', b"T")), None);
    }
}
