//! One client connection, from its first byte to its close: negotiate TLS,
//! relay startup and authentication to a fresh server connection, then
//! relay the query phase through the intercept seams.

mod auth;
mod error;
mod handshake;
pub mod intercept;
mod relay;
pub mod replies;
pub mod rewriting;
mod setup;

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
        let _open = shared.metrics.sessions_open.track();
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
    let peer_ip = tcp
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let startup_limit = shared.timeouts.startup;
    let opened = tokio::time::timeout(startup_limit, handshake::open(tcp, shared))
        .await
        .map_err(|_| SessionError::StartupTimeout(startup_limit))??;
    let (mut client, raw, parameters) = match opened {
        Opening::Closed => return Ok(Served::Nothing),
        Opening::Cancel { key, client } => {
            if let Some(server_key) = shared.cancels.lookup(&key) {
                shared.upstream.cancel(&server_key).await?;
                tracing::info!(pid = server_key.pid, "forwarded cancel request");
            }
            // Only now, with the server done, does the client see its
            // cancel connection close.
            drop(client);
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

    let protection = shared
        .protection
        .as_ref()
        .filter(|p| p.database == database)
        .cloned();
    // Protected sessions carry the client's address to the server, signed
    // (`migrate::identity`), where audit rows read it; a client cannot
    // supply it itself, and server-side code cannot change it.
    let raw = match (&protection, peer_ip) {
        (Some(p), ip) => {
            let addr = ip.to_string();
            let value = if p.addr_key.is_empty() {
                addr
            } else {
                crate::migrate::identity::signed_client_addr(&p.addr_key, &addr)
            };
            crate::wire::with_parameter(
                &raw,
                b"tombstone.",
                b"tombstone.client_addr",
                value.as_bytes(),
            )
            .map_err(SessionError::Client)?
        }
        (None, _) => raw,
    };
    let connecting = Instant::now();
    let mut server = match shared.upstream.connect().await {
        Ok(stream) => {
            shared
                .metrics
                .upstream_connect_seconds
                .observe(connecting.elapsed());
            FrameReader::new(stream, Limits::SERVER)
        }
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
    let (_cancel_guard, ready) = match auth {
        Ok(AuthOutcome::Ready(guard, ready)) => (guard, ready),
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
    let context = match &protection {
        Some(p) => match setup::discover(&mut server, &p.bypass_roles).await {
            Ok(facts) => Some(session_context(&user, facts)),
            Err(e) => {
                tell_client(&mut client, e.client_error()).await;
                return Err(e);
            }
        },
        None => None,
    };
    send_ready(&mut client, &ready).await?;
    let relay = relay::Relay {
        client,
        server,
        client_limits: shared.client_limits,
        idle_timeout: shared.timeouts.idle,
        metrics: shared.metrics.clone(),
    };
    let ending = match (protection, context) {
        (Some(p), Some(ctx)) => {
            let bypass = !matches!(ctx.role, crate::rewrite::Role::Normal);
            tracing::info!(bypass, "protected session");
            let (front, back) = rewriting::intercepts(p, ctx);
            relay.run(front, back, phase).await?
        }
        _ => relay.run(PassThrough, PassThrough, phase).await?,
    };
    Ok(Served::Session {
        user,
        database,
        ending,
    })
}

/// The ReadyForQuery that ends startup, once the session is set up.
async fn send_ready(
    client: &mut FrameReader<crate::stream::Stream>,
    ready: &crate::wire::Frame,
) -> Result<(), SessionError> {
    let io = |e| SessionError::Client(crate::wire::WireError::Io(e));
    let stream = client.get_mut();
    stream.write_all(ready.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)
}

/// The rewriter's view of a session, from its login facts.
fn session_context(user: &str, facts: setup::SessionFacts) -> crate::rewrite::SessionContext {
    let mut ctx = crate::rewrite::SessionContext::normal(user);
    ctx.search_path = crate::rewrite::parse_search_path(&facts.search_path);
    if facts.bypass {
        ctx.role = crate::rewrite::Role::Bypass {
            visibility: crate::rewrite::Visibility::Setting,
        };
    }
    ctx
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
