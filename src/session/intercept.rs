//! The seams where SQL rewriting plugs into a session.
//!
//! Every Query and Parse a client sends passes through
//! [`FrontendIntercept::statement`]; every CommandComplete and
//! RowDescription the server sends passes through
//! [`BackendIntercept::reply`]. The two halves run in the two directions of
//! the relay, so they are separate values; a rewriter that must tell the
//! reply side what to change gives both halves a shared queue.
//!
//! [`PassThrough`] changes nothing: the proxy is then invisible.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::wire::{Frame, WireError, tag};

/// The server connection, for an intercept that must ask the server
/// something of its own before it can decide (the rewriter re-reading
/// `search_path`). Whatever it sends, the server half must swallow the
/// answer to.
///
/// The relay buffers what it forwards and flushes only when no further
/// whole client message is waiting, so messages forwarded before this one
/// may not have reached the server yet: an intercept that waits for the
/// server to answer them must [`Upstream::flush`] first, or it waits for
/// answers to messages the server never got.
pub struct Upstream<'a> {
    writer: &'a mut (dyn AsyncWrite + Unpin + Send),
}

impl<'a> Upstream<'a> {
    pub fn new(writer: &'a mut (dyn AsyncWrite + Unpin + Send)) -> Upstream<'a> {
        Upstream { writer }
    }

    /// Sends `frame` after everything written so far, and flushes.
    pub async fn send(&mut self, frame: &Frame) -> std::io::Result<()> {
        self.writer.write_all(frame.as_bytes()).await?;
        self.writer.flush().await
    }

    /// Makes the server get everything forwarded so far.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush().await
    }
}

/// What to send to the server for one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// The message as received, byte for byte.
    Forward(Frame),
    /// These messages instead (none: swallow it).
    Replace(Vec<Frame>),
}

/// What to send to the client for one server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The message as received, byte for byte.
    Forward(Frame),
    /// These messages instead (none: the client must not see it).
    Replace(Vec<Frame>),
}

/// The client-to-server half.
///
/// [`Self::statement`] is asynchronous: a rewriter hands parsing to its
/// thread pool and awaits the answer, so the async worker serves other
/// sessions meanwhile. The relay awaits it before reading the client's next
/// message, which keeps the messages in order.
pub trait FrontendIntercept: Send {
    /// Every Query and Parse. An error means the message is malformed: the
    /// connection is closed with SQLSTATE 08P01.
    fn statement(
        &mut self,
        frame: Frame,
        upstream: &mut Upstream<'_>,
    ) -> impl Future<Output = Result<Outbound, WireError>> + Send {
        let _ = upstream;
        async move { Ok(Outbound::Forward(frame)) }
    }

    /// Every other message (Bind, Describe, Execute, Sync, CopyData…), so
    /// that a rewriter can follow the extended protocol's state.
    fn other(&mut self, frame: Frame) -> Result<Outbound, WireError> {
        Ok(Outbound::Forward(frame))
    }

    /// Routes one message to [`Self::statement`] or [`Self::other`].
    fn on_message(
        &mut self,
        frame: Frame,
        upstream: &mut Upstream<'_>,
    ) -> impl Future<Output = Result<Outbound, WireError>> + Send {
        async move {
            match frame.tag() {
                tag::QUERY | tag::PARSE => self.statement(frame, upstream).await,
                _ => self.other(frame),
            }
        }
    }
}

/// The server-to-client half.
pub trait BackendIntercept: Send {
    /// Every CommandComplete and RowDescription.
    fn reply(&mut self, frame: Frame) -> Inbound {
        Inbound::Forward(frame)
    }

    /// Every other message (DataRow, ParseComplete, ReadyForQuery…).
    fn other(&mut self, frame: Frame) -> Inbound {
        Inbound::Forward(frame)
    }

    /// Routes one message to [`Self::reply`] or [`Self::other`].
    fn on_message(&mut self, frame: Frame) -> Inbound {
        match frame.tag() {
            tag::COMMAND_COMPLETE | tag::ROW_DESCRIPTION => self.reply(frame),
            _ => self.other(frame),
        }
    }
}

/// Forwards everything unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl FrontendIntercept for PassThrough {}
impl BackendIntercept for PassThrough {}
