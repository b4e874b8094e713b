#![no_main]
//! Feeds arbitrary bytes, in arbitrary chunkings, to the framer with both
//! length headers, and every frame it yields to the message decoder.

use bytes::BytesMut;
use clubswitch_wire::{decode_partial, Frame, FrameCodec, LengthHeader};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let header = if ctl & 1 == 0 { LengthHeader::Binary2 } else { LengthHeader::Ascii4 };
    let chunk = usize::from(ctl >> 1).max(1);
    let mut codec = FrameCodec::new(header, 1024);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Frame::Message(m))) => {
                    assert!(m.len() <= 1024);
                    let _ = decode_partial(&m);
                }
                Ok(Some(Frame::KeepAlive)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
