//! The startup decoder on arbitrary bytes: it never panics, a packet it
//! accepts is exactly its length word's bytes (never past it), and a
//! StartupMessage it decodes keeps its raw bytes for relaying; the one
//! the proxy rebuilds from it (`with_parameter`: the client's `tombstone.*`
//! parameters dropped, the signed client address added) decodes again with
//! the client's other parameters and the new one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tombstone::wire::{FrameReader, Limits, StartupPacket, with_parameter};

fuzz_target!(|data: &[u8]| {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return;
    };
    rt.block_on(async {
        let mut reader = FrameReader::new(data, Limits { max_message: 1 << 16 });
        let Ok(Some(packet)) = reader.read_startup().await else {
            return;
        };
        let declared = i32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        assert!(declared <= data.len(), "a packet past the bytes that arrived");
        if let StartupPacket::Startup { raw, parameters } = packet {
            assert_eq!(&raw[..], &data[..declared], "raw bytes are not the packet");
            let Ok(rebuilt) =
                with_parameter(&raw, b"tombstone.", b"tombstone.client_addr", b"10.0.0.7")
            else {
                return;
            };
            if rebuilt.len() > 10_000 {
                return; // over the startup packet limit, refused as such
            }
            let mut again = FrameReader::new(&rebuilt[..], Limits { max_message: 1 << 16 });
            match again.read_startup().await {
                Ok(Some(StartupPacket::Startup { parameters: p2, .. })) => {
                    for (k, v) in &parameters {
                        if !k.starts_with("tombstone.") {
                            assert!(p2.contains(&(k.clone(), v.clone())), "{k} lost");
                        }
                    }
                    let added = ("tombstone.client_addr".to_string(), "10.0.0.7".to_string());
                    assert!(p2.contains(&added), "the client address is missing");
                }
                other => panic!("a rebuilt StartupMessage does not decode: {other:?}"),
            }
        }
    });
});
