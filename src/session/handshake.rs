//! A client's first packets: TLS and GSS negotiation, then either a
//! StartupMessage or a CancelRequest.

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::SessionError;
use crate::server::Shared;
use crate::stream::Stream;
use crate::wire::{BackendKey, FrameReader, StartupPacket, WireError};

/// How a client opened its connection.
pub enum Opening {
    /// A session: the client stream (TLS already negotiated), the
    /// StartupMessage as received and its parameters.
    Startup {
        client: FrameReader<Stream>,
        raw: Bytes,
        parameters: Vec<(String, String)>,
    },
    /// A request to cancel another session's query. The client's socket
    /// stays open until the cancel has reached the server: libpq, asyncpg
    /// and tokio-postgres take the close as "delivered" and send their next
    /// statement, which a late cancel would kill.
    Cancel {
        key: BackendKey,
        client: FrameReader<Stream>,
    },
    /// The client went away without asking for anything.
    Closed,
}

/// Reads startup-phase packets until the client either starts a session or
/// asks for a cancel.
pub async fn open(tcp: TcpStream, shared: &Shared) -> Result<Opening, SessionError> {
    let mut client = FrameReader::new(Stream::Plain(tcp), shared.client_limits);
    loop {
        let packet = match client.read_startup().await {
            Ok(p) => p,
            Err(e) => {
                // A length that cannot start a packet (a Terminate or an
                // HTTP request sent first) is closed without a word, as
                // PostgreSQL does (`invalid length of startup packet` is a
                // server-log-only COMMERROR there); a packet that is one but
                // says something wrong is answered.
                let answer = !matches!(
                    e,
                    WireError::BadLength(_) | WireError::TooLarge { .. } | WireError::Truncated
                );
                let e = SessionError::Client(e);
                if answer {
                    super::tell_client(&mut client, e.client_error()).await;
                }
                return Err(e);
            }
        };
        match packet {
            None => return Ok(Opening::Closed),
            Some(StartupPacket::SslRequest) if !client.get_mut().is_tls() => {
                // Bytes sent before our answer would be unencrypted data
                // smuggled into the TLS session (CVE-2021-23222).
                if client.has_buffered_bytes() {
                    return Err(SessionError::DataAfterSslRequest);
                }
                let Some(acceptor) = &shared.tls_acceptor else {
                    reply(&mut client, b'N').await?;
                    continue;
                };
                reply(&mut client, b'S').await?;
                let Stream::Plain(tcp) = client.into_inner() else {
                    return Err(SessionError::UnexpectedMessage('S'));
                };
                let tls = acceptor
                    .accept(tcp)
                    .await
                    .map_err(SessionError::ClientTls)?;
                client = FrameReader::new(Stream::ServerTls(Box::new(tls)), shared.client_limits);
            }
            Some(StartupPacket::SslRequest) => return Err(SessionError::UnexpectedMessage('S')),
            Some(StartupPacket::GssEncRequest) => reply(&mut client, b'N').await?,
            Some(StartupPacket::Cancel(key)) => return Ok(Opening::Cancel { key, client }),
            Some(StartupPacket::Startup { raw, parameters }) => {
                return Ok(Opening::Startup {
                    client,
                    raw,
                    parameters,
                });
            }
        }
    }
}

async fn reply(client: &mut FrameReader<Stream>, answer: u8) -> Result<(), SessionError> {
    let io = |e| SessionError::Client(crate::wire::WireError::Io(e));
    client.get_mut().write_all(&[answer]).await.map_err(io)?;
    client.get_mut().flush().await.map_err(io)
}
