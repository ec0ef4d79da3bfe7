//! The frame reader on arbitrary bytes, arriving in arbitrary pieces: it
//! never panics, every frame it returns is exactly the bytes that arrived
//! (in order, nothing skipped or invented, never past a message's end),
//! within the size limit, and the decoders the proxy runs on client and
//! server messages never panic on them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncRead;
use tombstone::wire::{self, FrameReader, Limits, extended};

/// Hands out the input in pieces whose sizes the input's first bytes pick.
struct Pieces<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    turn: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let want = match self.sizes.get(self.turn % self.sizes.len().max(1)) {
            Some(&s) => usize::from(s).max(1),
            None => usize::MAX,
        };
        self.turn += 1;
        let n = want.min(buf.remaining()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        std::task::Poll::Ready(Ok(()))
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, rest)) = input.split_first() else {
        return;
    };
    let (sizes, data) = rest.split_at(usize::from(split % 8).min(rest.len()));
    let limit = 64 + usize::from(split) * 4;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    rt.block_on(async {
        let mut reader = FrameReader::new(
            Pieces {
                data,
                sizes,
                turn: 0,
            },
            Limits { max_message: limit },
        );
        let mut seen = 0usize;
        while let Ok(Some(frame)) = reader.read_frame().await {
            let bytes = frame.as_bytes();
            assert!(bytes.len() >= 5, "a frame shorter than its header");
            assert!(bytes.len() - 5 <= limit, "a frame over the limit");
            let declared = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            assert_eq!(declared as usize, bytes.len() - 1, "length word and size differ");
            assert_eq!(
                Some(bytes),
                data.get(seen..seen + bytes.len()),
                "a frame that is not the bytes that arrived"
            );
            seen += bytes.len();
            let _ = extended::query_text(&frame);
            let _ = extended::Parse::decode(&frame);
            let _ = extended::bind_names(&frame);
            let _ = extended::execute_portal(&frame);
            let _ = extended::target(&frame);
            let _ = extended::command_tag(&frame);
            let _ = wire::ready_for_query_status(&frame);
            let _ = wire::AuthRequest::of(&frame);
            let _ = wire::strip_channel_binding(&frame);
            let _ = wire::BackendKey::decode(&frame);
        }
    });
});
