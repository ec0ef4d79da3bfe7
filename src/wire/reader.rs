//! Reads whole messages off a byte stream, enforcing size limits.
//!
//! Reading is cancel-safe: everything received is kept in the reader's
//! buffer, so a `read_frame` dropped by `select!` loses nothing.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Frame, StartupPacket, WireError};

/// The protocol's limit for untagged startup-phase packets (`pqcomm.h`).
const MAX_STARTUP_PACKET: usize = 10_000;
/// How much buffer to add at a time while a large message arrives, so that a
/// peer announcing a huge length without sending it costs little memory.
const GROW_STEP: usize = 1024 * 1024;

/// Size limits for one direction of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message body accepted, in bytes.
    pub max_message: usize,
}

impl Limits {
    /// Messages from a PostgreSQL server: anything up to the server's own
    /// 1 GiB limit.
    pub const SERVER: Limits = Limits {
        max_message: 0x3fff_ffff,
    };
}

/// Splits a byte stream into [`Frame`]s.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    limits: Limits,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, limits: Limits) -> Self {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(8 * 1024),
            limits,
        }
    }

    /// Reads one untagged startup-phase packet (StartupMessage, SSLRequest,
    /// GSSENCRequest, CancelRequest). `Ok(None)` if the peer closed cleanly
    /// before sending anything.
    pub async fn read_startup(&mut self) -> Result<Option<StartupPacket>, WireError> {
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                if len < 8 || len as usize > MAX_STARTUP_PACKET {
                    return Err(WireError::BadLength(len.into()));
                }
                let len = len as usize;
                if self.buf.len() >= len {
                    let packet = self.buf.split_to(len).freeze();
                    return StartupPacket::parse(packet).map(Some);
                }
            }
            if !self.fill(MAX_STARTUP_PACKET).await? {
                return Ok(None);
            }
        }
    }

    /// Reads one tagged message. `Ok(None)` if the peer closed the
    /// connection between messages.
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, WireError> {
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(Some(frame));
            }
            let missing = self.missing();
            if !self.fill(missing).await? {
                return Ok(None);
            }
        }
    }

    /// True when a whole message is already buffered, so the caller can
    /// handle it before flushing what it wrote.
    pub fn has_buffered_frame(&self) -> bool {
        match self.header() {
            Some(len) => len >= 4 && self.buf.len() > len as usize,
            None => false,
        }
    }

    /// True when bytes beyond the last whole message are buffered. Used to
    /// refuse plaintext sent after SSLRequest but before the TLS handshake.
    pub fn has_buffered_bytes(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The underlying stream, e.g. to answer an SSLRequest.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Gives the stream back, e.g. to start TLS on it. Buffered bytes are
    /// dropped; callers check [`Self::has_buffered_bytes`] first.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Splits into the stream and whatever was read but not yet framed, so
    /// the stream can be split in halves without losing bytes.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }

    /// The inverse of [`Self::into_parts`], for another stream type.
    pub fn from_parts(inner: R, buf: BytesMut, limits: Limits) -> Self {
        FrameReader { inner, buf, limits }
    }

    fn header(&self) -> Option<i64> {
        (self.buf.len() >= 5).then(|| {
            i64::from(i32::from_be_bytes([
                self.buf[1],
                self.buf[2],
                self.buf[3],
                self.buf[4],
            ]))
        })
    }

    fn try_frame(&mut self) -> Result<Option<Frame>, WireError> {
        let Some(len) = self.header() else {
            return Ok(None);
        };
        if len < 4 {
            return Err(WireError::BadLength(len));
        }
        if (len - 4) as usize > self.limits.max_message {
            return Err(WireError::TooLarge {
                len,
                max: self.limits.max_message,
            });
        }
        let total = 1 + len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::from_raw(self.buf.split_to(total).freeze())))
    }

    /// Bytes still needed for the message at the head of the buffer.
    fn missing(&self) -> usize {
        match self.header() {
            Some(len) => (1 + len as usize).saturating_sub(self.buf.len()),
            None => 5 - self.buf.len(),
        }
    }

    /// Reads more bytes. `Ok(false)` on a clean end of stream at a message
    /// boundary; an end of stream inside a message is [`WireError::Truncated`].
    async fn fill(&mut self, wanted: usize) -> Result<bool, WireError> {
        if self.buf.capacity() - self.buf.len() < wanted.min(GROW_STEP) {
            self.buf.reserve(wanted.clamp(8 * 1024, GROW_STEP));
        }
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            if self.buf.is_empty() {
                return Ok(false);
            }
            return Err(WireError::Truncated);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8], max: usize) -> FrameReader<&[u8]> {
        FrameReader::new(bytes, Limits { max_message: max })
    }

    #[tokio::test]
    async fn reads_frames_in_order_then_eof() {
        let mut wire = Frame::new(b'Q', b"select 1\0").as_bytes().to_vec();
        wire.extend_from_slice(Frame::new(b'X', b"").as_bytes());
        let mut r = reader(&wire, 1024);
        assert_eq!(r.read_frame().await.unwrap().unwrap().tag(), b'Q');
        assert!(r.has_buffered_frame());
        assert_eq!(r.read_frame().await.unwrap().unwrap().tag(), b'X');
        assert!(r.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_message_is_an_error() {
        let wire = Frame::new(b'Q', b"select 1\0").as_bytes().to_vec();
        let mut r = reader(&wire[..7], 1024);
        assert!(matches!(r.read_frame().await, Err(WireError::Truncated)));
    }

    #[tokio::test]
    async fn oversized_and_negative_lengths_are_refused() {
        let mut r = reader(&[b'Q', 0x7f, 0xff, 0xff, 0xff], 1024);
        assert!(matches!(
            r.read_frame().await,
            Err(WireError::TooLarge { .. })
        ));
        let mut r = reader(&[b'Q', 0x80, 0, 0, 0], 1024);
        assert!(matches!(r.read_frame().await, Err(WireError::BadLength(_))));
        let mut r = reader(&[b'Q', 0, 0, 0, 3], 1024);
        assert!(matches!(r.read_frame().await, Err(WireError::BadLength(3))));
    }

    #[tokio::test]
    async fn startup_packet_limits() {
        let mut r = reader(&[0, 0, 0, 4], 1024);
        assert!(matches!(
            r.read_startup().await,
            Err(WireError::BadLength(4))
        ));
        let mut r = reader(&[0x7f, 0, 0, 0], 1024);
        assert!(matches!(
            r.read_startup().await,
            Err(WireError::BadLength(_))
        ));
        let mut r = reader(&[], 1024);
        assert!(r.read_startup().await.unwrap().is_none());
    }
}
