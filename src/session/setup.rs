//! What a protected session needs to know about itself before the client
//! gets its first ReadyForQuery: whether the login role is a bypass role
//! (membership counts) and its initial `search_path`. Asked on the
//! session's own server connection, in one round trip.

use tokio::io::AsyncWriteExt;

use super::SessionError;
use crate::stream::Stream;
use crate::wire::{FrameReader, WireError, extended, tag};

/// Facts about the session, read at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub bypass: bool,
    pub search_path: String,
}

/// The query that finds the facts.
pub fn discovery_sql(bypass_roles: &[String]) -> String {
    let roles: Vec<String> = bypass_roles
        .iter()
        .map(|r| format!("E'{}'", r.replace('\\', "\\\\").replace('\'', "''")))
        .collect();
    let bypass = if roles.is_empty() {
        "false".to_string()
    } else {
        format!(
            "EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = ANY (ARRAY[{}]::text[]) \
             AND pg_catalog.pg_has_role(session_user, r.oid, 'MEMBER'))",
            roles.join(", ")
        )
    };
    format!("SELECT pg_catalog.current_setting('search_path'), {bypass}")
}

/// Runs the discovery query on the server connection and reads its answer
/// up to ReadyForQuery. Nothing of it reaches the client.
pub async fn discover(
    server: &mut FrameReader<Stream>,
    bypass_roles: &[String],
) -> Result<SessionFacts, SessionError> {
    let io = |e| SessionError::Server(WireError::Io(e));
    let query = extended::query(discovery_sql(bypass_roles).as_bytes());
    server
        .get_mut()
        .write_all(query.as_bytes())
        .await
        .map_err(io)?;
    server.get_mut().flush().await.map_err(io)?;
    let mut values: Option<Vec<Option<String>>> = None;
    let mut error = None;
    loop {
        let frame = server
            .read_frame()
            .await
            .map_err(SessionError::Server)?
            .ok_or(SessionError::ServerClosedDuringStartup)?;
        match frame.tag() {
            b'D' => {
                values = Some(data_row(frame.body()).ok_or_else(|| {
                    SessionError::Server(WireError::Malformed("malformed DataRow".into()))
                })?)
            }
            tag::ERROR_RESPONSE => {
                error = Some(String::from_utf8_lossy(frame.body()).replace('\0', " "))
            }
            tag::READY_FOR_QUERY => break,
            _ => {}
        }
    }
    if let Some(e) = error {
        return Err(SessionError::Setup(e));
    }
    match values.as_deref() {
        Some([Some(path), Some(bypass)]) => Ok(SessionFacts {
            bypass: bypass == "t",
            search_path: path.clone(),
        }),
        _ => Err(SessionError::Setup(
            "unexpected answer to the session discovery query".into(),
        )),
    }
}

/// Text-format columns of a DataRow body.
pub(crate) fn data_row(body: &[u8]) -> Option<Vec<Option<String>>> {
    let count = i16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut at = 2usize;
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for _ in 0..count {
        let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            let end = at + len as usize;
            out.push(Some(
                String::from_utf8_lossy(body.get(at..end)?).into_owned(),
            ));
            at = end;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_sql_quotes_roles() {
        assert_eq!(
            discovery_sql(&[]),
            "SELECT pg_catalog.current_setting('search_path'), false"
        );
        let sql = discovery_sql(&["admin".into(), "o'brien".into()]);
        assert!(sql.contains("ARRAY[E'admin', E'o''brien']"), "{sql}");
    }

    #[test]
    fn data_rows_decode() {
        let body = [0, 2, 0, 0, 0, 2, b'h', b'i', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(data_row(&body), Some(vec![Some("hi".into()), None]));
        assert_eq!(data_row(&body[..5]), None);
    }
}
