//! Relaying authentication: the server authenticates, the proxy passes the
//! exchange through (trust, password, md5, SCRAM-SHA-256), hiding channel
//! binding and replacing the cancel key with one of its own.

use tokio::io::AsyncWriteExt;

use super::SessionError;
use crate::cancel::{CancelGuard, CancelRegistry};
use crate::stream::Stream;
use crate::wire::{
    AuthRequest, BackendKey, Frame, FrameReader, WireError, strip_channel_binding, tag,
};

/// How the authentication exchange ended.
pub enum AuthOutcome {
    /// ReadyForQuery reached: the session can start. The guard keeps the
    /// client's cancel key valid (absent if the server sent none). The
    /// ReadyForQuery itself is *not* sent yet: the session may have setup
    /// of its own to do first.
    Ready(Option<CancelGuard>, Frame),
    /// The server refused (its ErrorResponse was relayed to the client).
    Refused,
}

/// Sends `startup` to the server and relays until ReadyForQuery or an error.
pub async fn relay_authentication(
    client: &mut FrameReader<Stream>,
    server: &mut FrameReader<Stream>,
    startup: &[u8],
    cancels: &CancelRegistry,
) -> Result<AuthOutcome, SessionError> {
    let server_io = |e| SessionError::Server(WireError::Io(e));
    let client_io = |e| SessionError::Client(WireError::Io(e));
    server
        .get_mut()
        .write_all(startup)
        .await
        .map_err(server_io)?;
    server.get_mut().flush().await.map_err(server_io)?;
    let mut guard = None;
    loop {
        let frame = server
            .read_frame()
            .await
            .map_err(SessionError::Server)?
            .ok_or(SessionError::ServerClosedDuringStartup)?;
        let mut needs_response = false;
        let out = match frame.tag() {
            tag::AUTHENTICATION => {
                needs_response = AuthRequest::of(&frame).map_err(SessionError::Server)?
                    == AuthRequest::NeedsResponse;
                strip_channel_binding(&frame)
                    .map_err(SessionError::Server)?
                    .unwrap_or(frame)
            }
            tag::BACKEND_KEY_DATA => {
                let key = BackendKey::decode(&frame).map_err(SessionError::Server)?;
                let registered = cancels.register(key);
                let mine = registered
                    .client_key()
                    .to_frame()
                    .map_err(SessionError::Server)?;
                guard = Some(registered);
                mine
            }
            _ => frame,
        };
        let done = out.tag();
        if done == tag::READY_FOR_QUERY {
            client.get_mut().flush().await.map_err(client_io)?;
            return Ok(AuthOutcome::Ready(guard, out));
        }
        client
            .get_mut()
            .write_all(out.as_bytes())
            .await
            .map_err(client_io)?;
        if needs_response || !server.has_buffered_frame() || done == tag::ERROR_RESPONSE {
            client.get_mut().flush().await.map_err(client_io)?;
        }
        if done == tag::ERROR_RESPONSE {
            return Ok(AuthOutcome::Refused);
        }
        if needs_response {
            let answer = read_password(client).await?;
            server
                .get_mut()
                .write_all(answer.as_bytes())
                .await
                .map_err(server_io)?;
            server.get_mut().flush().await.map_err(server_io)?;
        }
    }
}

/// The client's answer to an authentication request: one `p` message.
async fn read_password(client: &mut FrameReader<Stream>) -> Result<Frame, SessionError> {
    let frame = client
        .read_frame()
        .await
        .map_err(SessionError::Client)?
        .ok_or(SessionError::Client(WireError::Truncated))?;
    if frame.tag() != tag::PASSWORD {
        return Err(SessionError::UnexpectedMessage(frame.tag() as char));
    }
    Ok(frame)
}
