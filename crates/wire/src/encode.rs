//! Encoding a message into bytes.
//!
//! A [`Message`] only ever holds values that fit their field, so encoding
//! cannot fail; the bitmaps are computed from the fields present.

use bytes::{BufMut, BytesMut};

use crate::message::Message;
use crate::spec::{self, Length};

/// The encoded size of `msg` in bytes (without a frame header).
pub fn encoded_len(msg: &Message) -> usize {
    let bitmaps = if msg.has_secondary_bitmap() { 16 } else { 8 };
    4 + bitmaps
        + msg
            .fields()
            .map(|(n, v)| prefix_len(n) + v.len())
            .sum::<usize>()
}

/// Appends the encoding of `msg` to `dst`.
pub fn encode_into(msg: &Message, dst: &mut BytesMut) {
    dst.reserve(encoded_len(msg));
    dst.put_slice(msg.mti().as_bytes());
    let bits = msg.bitmap();
    dst.put_u64((bits >> 64) as u64);
    if msg.has_secondary_bitmap() {
        dst.put_u64(bits as u64);
    }
    for (n, value) in msg.fields() {
        match spec::field(n).map(|s| s.length) {
            Some(Length::LlVar(_)) => put_len(dst, value.len(), 2),
            Some(Length::LllVar(_)) => put_len(dst, value.len(), 3),
            _ => {}
        }
        dst.put_slice(value);
    }
}

/// Encodes `msg` into a new buffer.
pub fn encode(msg: &Message) -> BytesMut {
    let mut dst = BytesMut::with_capacity(encoded_len(msg));
    encode_into(msg, &mut dst);
    dst
}

fn prefix_len(n: u8) -> usize {
    spec::field(n).map_or(0, |s| s.length.prefix_len())
}

fn put_len(dst: &mut BytesMut, len: usize, width: usize) {
    // `len` is at most 999 (checked when the field was set).
    let digits = [
        b'0' + (len / 100 % 10) as u8,
        b'0' + (len / 10 % 10) as u8,
        b'0' + (len % 10) as u8,
    ];
    dst.put_slice(&digits[3 - width..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::message::Mti;

    #[test]
    fn encodes_primary_bitmap_only_when_no_field_above_64() {
        let mut m = Message::new(Mti::NETWORK_REQUEST);
        m.set(11, &b"000123"[..]).unwrap();
        m.set(54, &b"abc"[..]).unwrap();
        let out = encode(&m);
        let mut expect = b"0800".to_vec();
        expect.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0x04, 0]);
        expect.extend_from_slice(b"000123003abc");
        assert_eq!(&out[..], &expect[..]);
        assert_eq!(encoded_len(&m), expect.len());
    }

    #[test]
    fn encodes_secondary_bitmap_and_llvar() {
        let mut m = Message::new(Mti::NETWORK_REQUEST);
        m.set(32, &b"12345"[..]).unwrap();
        m.set(70, &b"301"[..]).unwrap();
        let out = encode(&m);
        let mut expect = b"0800".to_vec();
        expect.extend_from_slice(&[0x80, 0, 0, 0x01, 0, 0, 0, 0]);
        expect.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 0, 0]);
        expect.extend_from_slice(b"0512345301");
        assert_eq!(&out[..], &expect[..]);
        assert_eq!(decode(&out.freeze()).unwrap(), m);
    }
}
