//! Property tests: valid messages survive a round trip; arbitrary bytes never
//! panic the decoder or the framer.

use bytes::{Bytes, BytesMut};
use clubswitch_wire::spec::{self, Encoding, Length};
use clubswitch_wire::{
    decode, decode_partial, encode, Frame, FrameCodec, LengthHeader, Message, Mti, TerminalKeys,
    Tmk,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// A value that fits data element `n`.
fn value_for(n: u8) -> BoxedStrategy<Vec<u8>> {
    let Some(s) = spec::field(n) else {
        return Just(Vec::new()).boxed();
    };
    let len = match s.length {
        Length::Fixed(l) => (usize::from(l)..=usize::from(l)).boxed(),
        Length::LlVar(m) | Length::LllVar(m) => (0..=usize::from(m)).boxed(),
    };
    match s.encoding {
        Encoding::Ascii => len
            .prop_flat_map(|l| proptest::collection::vec(0u8..0x80, l))
            .boxed(),
        Encoding::Binary => len
            .prop_flat_map(|l| proptest::collection::vec(any::<u8>(), l))
            .boxed(),
    }
}

fn message() -> impl Strategy<Value = Message> {
    let mti = proptest::array::uniform4(b'0'..=b'9');
    let fields = proptest::collection::btree_set(2u8..=128, 0..24)
        .prop_map(|s| s.into_iter().filter(|n| *n != 65).collect::<Vec<_>>())
        .prop_flat_map(|ns| {
            let vals: Vec<_> = ns.iter().map(|n| value_for(*n)).collect();
            (Just(ns), vals)
        });
    (mti, fields).prop_map(|(mti, (ns, vals))| {
        let mut m = Message::new(Mti::new(mti).unwrap());
        for (n, v) in ns.into_iter().zip(vals) {
            m.set(n, v).unwrap();
        }
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_valid_message_round_trips(m in message()) {
        let raw = encode(&m).freeze();
        prop_assert_eq!(raw.len(), clubswitch_wire::encoded_len(&m));
        let back = decode(&raw).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(&encode(&back)[..], &raw[..]);
    }

    #[test]
    fn signed_messages_verify(m in message()) {
        let keys = TerminalKeys::derive(&Tmk::from_bytes([3; 32]));
        let mut m = m;
        let raw = keys.sign(&mut m);
        let back = decode(&raw).unwrap();
        prop_assert!(keys.verify(&raw, &back).is_ok());
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let b = Bytes::from(bytes);
        let _ = decode(&b);
        let _ = decode_partial(&b);
    }

    #[test]
    fn decoder_never_panics_on_plausible_headers(
        mti in proptest::array::uniform4(b'0'..=b'9'),
        bitmap in proptest::array::uniform16(any::<u8>()),
        tail in proptest::collection::vec(prop_oneof![b'0'..=b'9', any::<u8>()], 0..400),
    ) {
        let mut raw = mti.to_vec();
        raw.extend_from_slice(&bitmap);
        raw.extend_from_slice(&tail);
        let b = Bytes::from(raw);
        if let Err(e) = decode(&b) {
            prop_assert!(e.offset <= b.len());
        }
    }

    #[test]
    fn framer_never_panics_and_never_exceeds_max(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        ascii in any::<bool>(),
    ) {
        let header = if ascii { LengthHeader::Ascii4 } else { LengthHeader::Binary2 };
        let mut codec = FrameCodec::new(header, 256);
        let mut buf = BytesMut::new();
        'outer: for c in chunks {
            buf.extend_from_slice(&c);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(Frame::Message(m))) => prop_assert!(m.len() <= 256),
                    Ok(Some(Frame::KeepAlive)) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn framed_messages_come_back_whole_in_any_split(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..6),
        split in 1usize..50,
        ascii in any::<bool>(),
    ) {
        let header = if ascii { LengthHeader::Ascii4 } else { LengthHeader::Binary2 };
        let mut codec = FrameCodec::new(header, 4096);
        let mut wire = BytesMut::new();
        for m in &msgs {
            codec.encode(&m[..], &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(split) {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                got.push(match f {
                    Frame::KeepAlive => Vec::new(),
                    Frame::Message(m) => m.to_vec(),
                });
            }
        }
        prop_assert_eq!(got, msgs);
    }
}
