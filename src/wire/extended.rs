//! Reading and rebuilding the messages that carry SQL or name statements:
//! Query, Parse, Bind, Execute, Close, Describe (F) and CommandComplete (B).
//!
//! Decoded by hand on bytes rather than through `pgwire`, whose decoders
//! turn non-UTF-8 text into U+FFFD: a statement name or query in LATIN1
//! must come back byte for byte.

use super::{Frame, WireError, tag};

fn malformed(what: &str) -> WireError {
    WireError::Malformed(format!("malformed {what} message"))
}

/// Splits a NUL-terminated string off the front of `buf`.
fn cstr<'a>(buf: &mut &'a [u8], what: &str) -> Result<&'a [u8], WireError> {
    let end = buf
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| malformed(what))?;
    let (s, rest) = buf.split_at(end);
    *buf = &rest[1..];
    Ok(s)
}

/// The SQL text of a Query.
pub fn query_text(frame: &Frame) -> Result<&[u8], WireError> {
    let mut body = frame.body();
    cstr(&mut body, "Query")
}

/// Builds a Query message.
pub fn query(sql: &[u8]) -> Frame {
    let mut body = Vec::with_capacity(sql.len() + 1);
    body.extend_from_slice(sql);
    body.push(0);
    Frame::new(tag::QUERY, &body)
}

/// A Parse message's parts, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name (empty: the unnamed statement).
    pub name: &'a [u8],
    pub query: &'a [u8],
    /// The parameter-type section as received: Int16 count, Int32 OIDs.
    pub param_types: &'a [u8],
}

impl<'a> Parse<'a> {
    pub fn decode(frame: &'a Frame) -> Result<Parse<'a>, WireError> {
        let mut body = frame.body();
        let name = cstr(&mut body, "Parse")?;
        let query = cstr(&mut body, "Parse")?;
        if body.len() < 2 {
            return Err(malformed("Parse"));
        }
        let count = i16::from_be_bytes([body[0], body[1]]);
        if count < 0 || body.len() != 2 + 4 * count as usize {
            return Err(malformed("Parse"));
        }
        Ok(Parse {
            name,
            query,
            param_types: body,
        })
    }

    /// The same Parse with another query text.
    pub fn with_query(&self, query: &[u8]) -> Frame {
        let mut body =
            Vec::with_capacity(self.name.len() + query.len() + self.param_types.len() + 2);
        body.extend_from_slice(self.name);
        body.push(0);
        body.extend_from_slice(query);
        body.push(0);
        body.extend_from_slice(self.param_types);
        Frame::new(tag::PARSE, &body)
    }
}

/// Bind: (portal name, statement name).
pub fn bind_names(frame: &Frame) -> Result<(&[u8], &[u8]), WireError> {
    let mut body = frame.body();
    let portal = cstr(&mut body, "Bind")?;
    let statement = cstr(&mut body, "Bind")?;
    Ok((portal, statement))
}

/// Execute: the portal name.
pub fn execute_portal(frame: &Frame) -> Result<&[u8], WireError> {
    let mut body = frame.body();
    let portal = cstr(&mut body, "Execute")?;
    if body.len() != 4 {
        return Err(malformed("Execute"));
    }
    Ok(portal)
}

/// What a Close or Describe names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Statement(&'a [u8]),
    Portal(&'a [u8]),
}

/// Close or Describe: `S` + statement name or `P` + portal name.
pub fn target(frame: &Frame) -> Result<Target<'_>, WireError> {
    let body = frame.body();
    let (kind, mut rest) = body
        .split_first()
        .ok_or_else(|| malformed("Close/Describe"))?;
    let name = cstr(&mut rest, "Close/Describe")?;
    match kind {
        b'S' => Ok(Target::Statement(name)),
        b'P' => Ok(Target::Portal(name)),
        _ => Err(malformed("Close/Describe")),
    }
}

/// The tag of a CommandComplete, e.g. `UPDATE 3`.
pub fn command_tag(frame: &Frame) -> Result<&[u8], WireError> {
    let mut body = frame.body();
    cstr(&mut body, "CommandComplete")
}

/// Builds a CommandComplete.
pub fn command_complete(tag_text: &[u8]) -> Frame {
    let mut body = Vec::with_capacity(tag_text.len() + 1);
    body.extend_from_slice(tag_text);
    body.push(0);
    Frame::new(tag::COMMAND_COMPLETE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trips_and_keeps_types() {
        let mut body = b"stmt1\0SELECT $1\0".to_vec();
        body.extend_from_slice(&1i16.to_be_bytes());
        body.extend_from_slice(&23i32.to_be_bytes());
        let frame = Frame::new(b'P', &body);
        let p = Parse::decode(&frame).unwrap();
        assert_eq!(p.name, b"stmt1");
        assert_eq!(p.query, b"SELECT $1");
        assert_eq!(p.with_query(b"SELECT $1"), frame);
        let changed = p.with_query(b"SELECT $1 -- x");
        let q = Parse::decode(&changed).unwrap();
        assert_eq!(q.query, b"SELECT $1 -- x");
        assert_eq!(q.param_types, p.param_types);
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(Parse::decode(&Frame::new(b'P', b"no terminator")).is_err());
        assert!(Parse::decode(&Frame::new(b'P', b"\0q\0\0\x05")).is_err());
        assert!(bind_names(&Frame::new(b'B', b"portal\0")).is_err());
        assert!(execute_portal(&Frame::new(b'E', b"\0")).is_err());
        assert!(target(&Frame::new(b'C', b"X\0")).is_err());
        assert!(query_text(&Frame::new(b'Q', b"")).is_err());
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(
            bind_names(&Frame::new(b'B', b"p\0s\0rest")).unwrap(),
            (&b"p"[..], &b"s"[..])
        );
        assert_eq!(
            execute_portal(&Frame::new(b'E', b"p\0\0\0\0\0")).unwrap(),
            b"p"
        );
        assert_eq!(
            target(&Frame::new(b'D', b"Sname\0")).unwrap(),
            Target::Statement(b"name")
        );
        assert_eq!(
            target(&Frame::new(b'C', b"P\0")).unwrap(),
            Target::Portal(b"")
        );
        assert_eq!(
            command_tag(&command_complete(b"DELETE 3")).unwrap(),
            b"DELETE 3"
        );
        assert_eq!(query_text(&query(b"SELECT 1")).unwrap(), b"SELECT 1");
    }
}
