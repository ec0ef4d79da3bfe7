//! The query phase: messages flow both ways at once, each direction in its
//! own loop so that neither can block the other (a client streaming COPY
//! data while the server streams notices never deadlocks the proxy).
//!
//! Writes are buffered and flushed when no further whole message is
//! waiting, so pipelined batches travel in few packets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter, ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::SessionError;
use super::intercept::{BackendIntercept, FrontendIntercept, Inbound, Outbound, Upstream};
use crate::metrics::Metrics;
use crate::server::{Phase, shutdown};
use crate::stream::Stream;
use crate::wire::{Frame, FrameReader, Limits, WireError, ready_for_query_status, tag};

const WRITE_BUFFER: usize = 64 * 1024;

/// How the query phase ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client sent Terminate or closed its socket.
    ClientLeft,
    /// The server closed the connection (after its own FATAL, usually).
    ServerLeft,
    /// Server shutdown closed the session.
    Shutdown,
}

/// Whether the session is idle: nothing in flight, outside a transaction.
/// Shared by the two directions (same task, so plain atomics suffice).
struct Activity {
    /// ReadyForQuery messages still owed (one per Query, Sync, FunctionCall).
    awaiting_ready: AtomicU32,
    /// Extended-protocol messages sent since the last Sync.
    open_batch: AtomicBool,
    /// Transaction status of the last ReadyForQuery.
    status: AtomicU8,
    /// Shutdown asked the session to close when idle.
    draining: AtomicBool,
    /// When the oldest unanswered Query/Sync/FunctionCall was forwarded,
    /// in nanoseconds after `epoch`, plus one (0: none outstanding): the
    /// start of `tombstone_upstream_seconds`.
    sent_at: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            awaiting_ready: AtomicU32::new(0),
            open_batch: AtomicBool::new(false),
            status: AtomicU8::new(b'I'),
            draining: AtomicBool::new(false),
            sent_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// A message the server answers with ReadyForQuery was forwarded.
    fn request_sent(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        let _ = self
            .sent_at
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The server sent a message: how long since the request it answers
    /// (once per request).
    fn reply_seen(&self) -> Option<Duration> {
        match self.sent_at.swap(0, Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_nanos(at - 1)),
            ),
        }
    }

    fn client_sent(&self, kind: u8) {
        match kind {
            tag::QUERY | tag::FUNCTION_CALL => {
                self.awaiting_ready.fetch_add(1, Ordering::Relaxed);
            }
            tag::SYNC => {
                self.awaiting_ready.fetch_add(1, Ordering::Relaxed);
                self.open_batch.store(false, Ordering::Relaxed);
            }
            tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::CLOSE | tag::FLUSH => {
                self.open_batch.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn server_ready(&self, status: u8) {
        let _ = self
            .awaiting_ready
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.status.store(status, Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        self.awaiting_ready.load(Ordering::Relaxed) == 0
            && !self.open_batch.load(Ordering::Relaxed)
            && self.status.load(Ordering::Relaxed) == b'I'
    }
}

/// The two connections of a session, ready for the query phase.
pub struct Relay {
    pub client: FrameReader<Stream>,
    pub server: FrameReader<Stream>,
    pub client_limits: Limits,
    pub idle_timeout: Option<Duration>,
    pub metrics: Arc<Metrics>,
}

type Writer = BufWriter<WriteHalf<Stream>>;

impl Relay {
    /// Relays until one side leaves, shutdown closes the session, or an
    /// error. On every ending both connections are closed; the client is
    /// told why when it can still listen.
    pub async fn run(
        self,
        mut front: impl FrontendIntercept,
        mut back: impl BackendIntercept,
        mut phase: watch::Receiver<Phase>,
    ) -> Result<Ending, SessionError> {
        let (client, client_buf) = self.client.into_parts();
        let (server, server_buf) = self.server.into_parts();
        let (client_r, client_w) = tokio::io::split(client);
        let (server_r, server_w) = tokio::io::split(server);
        let mut client_r = FrameReader::from_parts(client_r, client_buf, self.client_limits);
        let mut server_r = FrameReader::from_parts(server_r, server_buf, Limits::SERVER);
        let mut client_w = BufWriter::with_capacity(WRITE_BUFFER, client_w);
        let mut server_w = BufWriter::with_capacity(WRITE_BUFFER, server_w);
        let activity = Activity::new();

        let result = tokio::select! {
            r = client_to_server(&mut client_r, &mut server_w, &mut front, &activity, self.idle_timeout, &self.metrics) => r,
            r = server_to_client(&mut server_r, &mut client_w, &mut back, &activity, &self.metrics) => r,
            r = watch_shutdown(&mut phase, &activity) => r,
        };

        // Goodbyes are best effort: the peer may already be gone.
        if let Err(e) = &result
            && let Some(fields) = e.client_error()
        {
            let _ = send(&mut client_w, &crate::wire::error_response(&fields)).await;
        }
        if matches!(result, Ok(Ending::Shutdown)) {
            let _ = send(
                &mut client_w,
                &crate::wire::error_response(&super::admin_shutdown()),
            )
            .await;
        }
        if !matches!(result, Ok(Ending::ServerLeft)) {
            let _ = send(&mut server_w, &Frame::new(tag::TERMINATE, b"")).await;
        }
        let _ = client_w.shutdown().await;
        let _ = server_w.shutdown().await;
        result
    }
}

/// Client → server: every message through the frontend intercept.
async fn client_to_server(
    client: &mut FrameReader<ReadHalf<Stream>>,
    server: &mut Writer,
    front: &mut impl FrontendIntercept,
    activity: &Activity,
    idle_timeout: Option<Duration>,
    metrics: &Metrics,
) -> Result<Ending, SessionError> {
    loop {
        let next = match idle_timeout {
            Some(limit) if activity.idle() => tokio::time::timeout(limit, client.read_frame())
                .await
                .map_err(|_| SessionError::IdleTimeout(limit))?,
            _ => client.read_frame().await,
        };
        let Some(frame) = next.map_err(SessionError::Client)? else {
            return Ok(Ending::ClientLeft);
        };
        if frame.tag() == tag::TERMINATE {
            return Ok(Ending::ClientLeft);
        }
        let kind = frame.tag();
        activity.client_sent(kind);
        match kind {
            tag::QUERY => metrics.query_messages.inc(),
            tag::PARSE => metrics.parse_messages.inc(),
            _ => {}
        }
        let io = |e| SessionError::Server(WireError::Io(e));
        let outbound = front
            .on_message(frame, &mut Upstream::new(server))
            .await
            .map_err(SessionError::Client)?;
        match outbound {
            Outbound::Forward(f) => server.write_all(f.as_bytes()).await.map_err(io)?,
            Outbound::Replace(frames) => {
                for f in frames {
                    server.write_all(f.as_bytes()).await.map_err(io)?;
                }
            }
        }
        if matches!(kind, tag::QUERY | tag::SYNC | tag::FUNCTION_CALL) {
            activity.request_sent();
        }
        if !client.has_buffered_frame() {
            server.flush().await.map_err(io)?;
        }
    }
}

/// Server → client: every message through the backend intercept.
async fn server_to_client(
    server: &mut FrameReader<ReadHalf<Stream>>,
    client: &mut Writer,
    back: &mut impl BackendIntercept,
    activity: &Activity,
    metrics: &Metrics,
) -> Result<Ending, SessionError> {
    loop {
        let Some(frame) = server.read_frame().await.map_err(SessionError::Server)? else {
            return Ok(Ending::ServerLeft);
        };
        if let Some(waited) = activity.reply_seen() {
            metrics.upstream_seconds.observe(waited);
        }
        let io = |e| SessionError::Client(WireError::Io(e));
        // Only what reaches the client counts: a ReadyForQuery the
        // intercept swallows answered the proxy's own question.
        match back.on_message(frame) {
            Inbound::Forward(f) => {
                reaching_client(&f, activity, metrics);
                client.write_all(f.as_bytes()).await.map_err(io)?
            }
            Inbound::Replace(frames) => {
                for f in frames {
                    reaching_client(&f, activity, metrics);
                    client.write_all(f.as_bytes()).await.map_err(io)?;
                }
            }
        }
        if !server.has_buffered_frame() {
            client.flush().await.map_err(io)?;
            if activity.draining.load(Ordering::Relaxed) && activity.idle() {
                return Ok(Ending::Shutdown);
            }
        }
    }
}

/// Bookkeeping for a server message the client gets: the session's
/// activity and the statements completed.
fn reaching_client(f: &Frame, activity: &Activity, metrics: &Metrics) {
    match f.tag() {
        tag::READY_FOR_QUERY => {
            if let Some(status) = ready_for_query_status(f) {
                activity.server_ready(status);
            }
        }
        tag::COMMAND_COMPLETE => {
            if let Ok(t) = crate::wire::extended::command_tag(f) {
                metrics.statement_completed(t);
            }
        }
        _ => {}
    }
}

/// Resolves when shutdown should close this session: at once if it is idle
/// when draining starts, or when the grace period is over. A session busy
/// when draining starts is closed by [`server_to_client`] once idle.
async fn watch_shutdown(
    phase: &mut watch::Receiver<Phase>,
    activity: &Activity,
) -> Result<Ending, SessionError> {
    shutdown::reached(phase, Phase::Draining).await;
    activity.draining.store(true, Ordering::Relaxed);
    if !activity.idle() {
        shutdown::reached(phase, Phase::Force).await;
    }
    Ok(Ending::Shutdown)
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    w.write_all(frame.as_bytes()).await?;
    w.flush().await
}
