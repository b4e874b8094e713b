//! Length-prefixed framing over a byte stream, as a `tokio_util` codec.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::decode::ascii_number;

/// The length header in front of each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LengthHeader {
    /// 2-byte unsigned big-endian length (the profile's default).
    #[default]
    Binary2,
    /// 4 ASCII digits, `0123`.
    Ascii4,
}

impl LengthHeader {
    /// Width of the header in bytes.
    pub const fn width(self) -> usize {
        match self {
            LengthHeader::Binary2 => 2,
            LengthHeader::Ascii4 => 4,
        }
    }

    /// The largest length the header can express.
    pub const fn limit(self) -> usize {
        match self {
            LengthHeader::Binary2 => 65_535,
            LengthHeader::Ascii4 => 9_999,
        }
    }
}

/// The profile's default maximum frame size.
pub const DEFAULT_MAX_FRAME: usize = 4096;

/// What the framer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A zero-length frame: the peer is alive, nothing to do.
    KeepAlive,
    /// One message, without its header.
    Message(Bytes),
}

/// A framing error. Every one of them means the byte stream can no longer be
/// trusted, so the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLong { len: usize, max: usize },
    #[error("length header {0:?} is not 4 ASCII digits")]
    BadHeader([u8; 4]),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The framing codec: length header plus message, with a maximum size.
/// A frame longer than the maximum is refused as soon as its header is read,
/// so it is never buffered.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    header: LengthHeader,
    max_frame: usize,
}

impl FrameCodec {
    pub fn new(header: LengthHeader, max_frame: usize) -> FrameCodec {
        FrameCodec {
            header,
            max_frame: max_frame.min(header.limit()),
        }
    }

    pub fn header(&self) -> LengthHeader {
        self.header
    }

    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    fn peek_len(&self, src: &[u8]) -> Result<usize, FrameError> {
        match self.header {
            LengthHeader::Binary2 => Ok(usize::from(u16::from_be_bytes([src[0], src[1]]))),
            LengthHeader::Ascii4 => {
                let raw = [src[0], src[1], src[2], src[3]];
                ascii_number(&raw).ok_or(FrameError::BadHeader(raw))
            }
        }
    }

    /// Writes the header for a message of `len` bytes.
    pub fn put_header(&self, len: usize, dst: &mut BytesMut) -> Result<(), FrameError> {
        if len > self.max_frame {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        match self.header {
            LengthHeader::Binary2 => dst.put_u16(len as u16),
            LengthHeader::Ascii4 => {
                let d = |div: usize| b'0' + (len / div % 10) as u8;
                dst.put_slice(&[d(1000), d(100), d(10), d(1)]);
            }
        }
        Ok(())
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(LengthHeader::Binary2, DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let h = self.header.width();
        if src.len() < h {
            return Ok(None);
        }
        let len = self.peek_len(src)?;
        if len > self.max_frame {
            return Err(FrameError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        if src.len() < h + len {
            src.reserve(h + len - src.len());
            return Ok(None);
        }
        src.advance(h);
        if len == 0 {
            return Ok(Some(Frame::KeepAlive));
        }
        Ok(Some(Frame::Message(src.split_to(len).freeze())))
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.reserve(self.header.width() + item.len());
        self.put_header(item.len(), dst)?;
        dst.put_slice(item);
        Ok(())
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&item[..], dst)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        match item {
            Frame::KeepAlive => self.put_header(0, dst),
            Frame::Message(m) => self.encode(&m[..], dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn binary_header_frames_and_keepalives() {
        let mut c = FrameCodec::default();
        let frames = decode_all(&mut c, b"\x00\x03abc\x00\x00\x00\x01z").unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from_static(b"abc")),
                Frame::KeepAlive,
                Frame::Message(Bytes::from_static(b"z")),
            ]
        );
    }

    #[test]
    fn ascii_header_frames() {
        let mut c = FrameCodec::new(LengthHeader::Ascii4, 4096);
        let frames = decode_all(&mut c, b"0003abc0000").unwrap();
        assert_eq!(frames.len(), 2);
        let mut out = BytesMut::new();
        c.encode(&b"hello"[..], &mut out).unwrap();
        assert_eq!(&out[..], b"0005hello");
        assert!(matches!(
            decode_all(&mut c, b"00x3abc"),
            Err(FrameError::BadHeader(_))
        ));
    }

    #[test]
    fn waits_for_a_whole_frame() {
        let mut c = FrameCodec::default();
        let mut buf = BytesMut::from(&b"\x00\x05ab"[..]);
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"cde");
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Message(Bytes::from_static(b"abcde")))
        );
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header_alone() {
        let mut c = FrameCodec::default();
        let mut buf = BytesMut::from(&b"\xff\xff"[..]);
        let err = c.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLong {
                len: 65_535,
                max: 4096
            }
        ));
        // Nothing was reserved for the announced body.
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn encoder_refuses_oversized_messages() {
        let mut c = FrameCodec::new(LengthHeader::Binary2, 10);
        let mut out = BytesMut::new();
        assert!(c.encode(&[0u8; 11][..], &mut out).is_err());
        c.encode(&[0u8; 10][..], &mut out).unwrap();
        assert_eq!(&out[..2], &[0, 10]);
    }

    #[test]
    fn max_frame_is_capped_by_what_the_header_can_say() {
        assert_eq!(
            FrameCodec::new(LengthHeader::Ascii4, 100_000).max_frame(),
            9_999
        );
        assert_eq!(
            FrameCodec::new(LengthHeader::Binary2, 100_000).max_frame(),
            65_535
        );
    }
}
