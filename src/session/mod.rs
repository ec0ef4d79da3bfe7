//! One client connection, from its first byte to its close: negotiate TLS,
//! relay startup and authentication to a fresh server connection, then
//! relay the query phase through the intercept seams.

mod auth;
mod error;
mod handshake;
pub mod intercept;
mod relay;
pub mod replies;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

pub use error::SessionError;
pub use relay::Ending;

use crate::server::{Phase, Shared};
use crate::wire::{ErrorFields, FrameReader, Limits, Severity, error_response};
use auth::AuthOutcome;
use handshake::Opening;
use intercept::PassThrough;

/// Serves one client until it leaves. Never panics on input; every failure
/// is logged and ends this connection only.
pub async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    phase: watch::Receiver<Phase>,
) {
    let span = tracing::info_span!("conn", %peer);
    async move {
        let started = Instant::now();
        match serve(tcp, &shared, phase).await {
            Ok(Served::Session { user, database, ending }) => tracing::info!(
                %user, %database, ?ending, duration_ms = started.elapsed().as_millis() as u64,
                "connection closed"
            ),
            Ok(Served::Cancel) => tracing::debug!("cancel request handled"),
            Ok(Served::Nothing) => tracing::debug!("client left before startup"),
            Err(e) => tracing::warn!(error = %e, duration_ms = started.elapsed().as_millis() as u64, "connection ended with an error"),
        }
    }
    .instrument(span)
    .await
}

enum Served {
    Session {
        user: String,
        database: String,
        ending: Ending,
    },
    Cancel,
    Nothing,
}

async fn serve(
    tcp: TcpStream,
    shared: &Shared,
    phase: watch::Receiver<Phase>,
) -> Result<Served, SessionError> {
    let startup_limit = shared.timeouts.startup;
    let opened = tokio::time::timeout(startup_limit, handshake::open(tcp, shared))
        .await
        .map_err(|_| SessionError::StartupTimeout(startup_limit))??;
    let (mut client, raw, parameters) = match opened {
        Opening::Closed => return Ok(Served::Nothing),
        Opening::Cancel(key) => {
            if let Some(server_key) = shared.cancels.lookup(&key) {
                shared.upstream.cancel(&server_key).await?;
                tracing::info!(pid = server_key.pid, "forwarded cancel request");
            }
            return Ok(Served::Cancel);
        }
        Opening::Startup {
            client,
            raw,
            parameters,
        } => (client, raw, parameters),
    };
    let param = |name: &str| {
        parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let user = param("user");
    let database = match param("database") {
        d if d.is_empty() => user.clone(),
        d => d,
    };
    tracing::info!(%user, %database, application_name = %param("application_name"), tls = client.get_mut().is_tls(), "connection opened");

    let mut server = match shared.upstream.connect().await {
        Ok(stream) => FrameReader::new(stream, Limits::SERVER),
        Err(e) => {
            let e = SessionError::from(e);
            tell_client(&mut client, e.client_error()).await;
            return Err(e);
        }
    };
    let auth = tokio::time::timeout(
        startup_limit,
        auth::relay_authentication(&mut client, &mut server, &raw, &shared.cancels),
    )
    .await
    .map_err(|_| SessionError::StartupTimeout(startup_limit))
    .and_then(|r| r);
    let _cancel_guard = match auth {
        Ok(AuthOutcome::Ready(guard)) => guard,
        Ok(AuthOutcome::Refused) => {
            return Ok(Served::Session {
                user,
                database,
                ending: Ending::ServerLeft,
            });
        }
        Err(e) => {
            tell_client(&mut client, e.client_error()).await;
            return Err(e);
        }
    };
    let relay = relay::Relay {
        client,
        server,
        client_limits: shared.client_limits,
        idle_timeout: shared.timeouts.idle,
    };
    let ending = relay.run(PassThrough, PassThrough, phase).await?;
    Ok(Served::Session {
        user,
        database,
        ending,
    })
}

/// Best-effort FATAL to a client whose session cannot go on.
async fn tell_client(client: &mut FrameReader<crate::stream::Stream>, error: Option<ErrorFields>) {
    if let Some(fields) = error {
        let stream = client.get_mut();
        let _ = stream.write_all(error_response(&fields).as_bytes()).await;
        let _ = stream.flush().await;
    }
}

/// What a session closed by shutdown is told, as PostgreSQL says it.
fn admin_shutdown() -> ErrorFields {
    ErrorFields {
        severity: Severity::Fatal,
        code: "57P01",
        message: "terminating connection due to administrator command".into(),
        detail: None,
        hint: Some("tombstone is shutting down; reconnect".into()),
    }
}
