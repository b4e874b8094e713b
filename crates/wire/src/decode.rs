//! Decoding a message from bytes.
//!
//! The parsers are nom combinators over `&[u8]`; field values come out as
//! slices of the caller's `Bytes`, so no field data is copied. Decoding never
//! panics: every failure is a [`DecodeError`] naming the element and the byte
//! offset.

use bytes::Bytes;
use nom::bytes::complete::take;
use nom::IResult;

use crate::error::{DecodeError, DecodeErrorKind, Element};
use crate::message::{Message, Mti};
use crate::spec::{self, Encoding, Length};

/// Decodes one whole message (no length header). Bytes after the last field
/// are an error, as they are for pyiso8583.
pub fn decode(buf: &Bytes) -> Result<Message, DecodeError> {
    match decode_partial(buf) {
        (Some(msg), None) => Ok(msg),
        (_, Some(err)) => Err(err),
        (None, None) => Err(DecodeError {
            element: Element::Mti,
            offset: 0,
            kind: DecodeErrorKind::BadMti,
        }),
    }
}

/// Decodes as far as the bytes allow. Returns the message as decoded up to
/// the first error (`None` when not even the MTI could be read) and that
/// error, if any. The switch uses the partial message to answer a request
/// whose MTI and DE 41 are readable even when a later field is not.
pub fn decode_partial(buf: &Bytes) -> (Option<Message>, Option<DecodeError>) {
    let input: &[u8] = buf;
    let at = |rest: &[u8]| input.len() - rest.len();

    let (rest, mti) = match mti(input) {
        Ok(v) => v,
        Err(kind) => {
            let err = DecodeError {
                element: Element::Mti,
                offset: 0,
                kind,
            };
            return (None, Some(err));
        }
    };
    let mut msg = Message::new(mti);

    let (rest, primary) = match bitmap(rest) {
        Ok(v) => v,
        Err(kind) => {
            return (
                Some(msg),
                Some(error(Element::PrimaryBitmap, at(rest), kind)),
            )
        }
    };
    let (mut rest, secondary) = if primary & (1 << 63) != 0 {
        match bitmap(rest) {
            Ok(v) => v,
            Err(kind) => {
                return (
                    Some(msg),
                    Some(error(Element::SecondaryBitmap, at(rest), kind)),
                )
            }
        }
    } else {
        (rest, 0)
    };
    if secondary & (1 << 63) != 0 {
        let offset = at(rest) - 8;
        return (
            Some(msg),
            Some(error(
                Element::SecondaryBitmap,
                offset,
                DecodeErrorKind::TertiaryBitmap,
            )),
        );
    }

    let bits = (u128::from(primary) << 64) | u128::from(secondary);
    // Walk the set bits from DE 2 upwards; bit 1 (secondary bitmap) and bit 65
    // (checked above) carry no data.
    let mut remaining = bits & !(1u128 << 127);
    while remaining != 0 {
        let n = remaining.leading_zeros() as u8 + 1;
        remaining &= !(1u128 << (127 - u32::from(n - 1)));
        let Some(field_spec) = spec::field(n) else {
            // Unreachable for 2..=128 minus 65; kept as an error, not a panic.
            let err = error(Element::Field(n), at(rest), DecodeErrorKind::TertiaryBitmap);
            return (Some(msg), Some(err));
        };
        let start = at(rest);
        match field(rest, field_spec.length, field_spec.encoding) {
            Ok((next, value)) => {
                let from = at(next) - value.len();
                msg.push_unchecked(n, buf.slice(from..at(next)));
                rest = next;
            }
            Err((offset_in_field, kind)) => {
                let err = error(Element::Field(n), start + offset_in_field, kind);
                return (Some(msg), Some(err));
            }
        }
    }

    if !rest.is_empty() {
        let err = error(
            Element::Trailer,
            at(rest),
            DecodeErrorKind::TrailingBytes(rest.len()),
        );
        return (Some(msg), Some(err));
    }
    (Some(msg), None)
}

fn error(element: Element, offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError {
        element,
        offset,
        kind,
    }
}

fn truncated(needed: usize, available: usize) -> DecodeErrorKind {
    DecodeErrorKind::Truncated { needed, available }
}

/// `take(n)` with the shortfall reported as [`DecodeErrorKind::Truncated`].
fn take_exact(input: &[u8], n: usize) -> Result<(&[u8], &[u8]), DecodeErrorKind> {
    let parsed: IResult<&[u8], &[u8]> = take(n)(input);
    parsed.map_err(|_| truncated(n, input.len()))
}

fn mti(input: &[u8]) -> Result<(&[u8], Mti), DecodeErrorKind> {
    let (rest, digits) = take_exact(input, 4)?;
    let mut d = [0u8; 4];
    d.copy_from_slice(digits);
    Mti::new(d)
        .map(|m| (rest, m))
        .map_err(|_| DecodeErrorKind::BadMti)
}

fn bitmap(input: &[u8]) -> Result<(&[u8], u64), DecodeErrorKind> {
    let (rest, raw) = take_exact(input, 8)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(raw);
    Ok((rest, u64::from_be_bytes(b)))
}

/// Where in a field decoding failed (offset within the field) and why.
type FieldFailure = (usize, DecodeErrorKind);

/// One field: its length prefix (if any) and data. On error returns the
/// offset within the field and the kind.
fn field(input: &[u8], length: Length, encoding: Encoding) -> Result<(&[u8], &[u8]), FieldFailure> {
    let prefix = length.prefix_len();
    let (rest, len) = if prefix == 0 {
        (input, length.max())
    } else {
        let (rest, digits) = take_exact(input, prefix).map_err(|k| (0, k))?;
        let len = ascii_number(digits).ok_or((0, DecodeErrorKind::BadLengthPrefix))?;
        if len > length.max() {
            let kind = DecodeErrorKind::TooLong {
                len,
                max: length.max(),
            };
            return Err((0, kind));
        }
        (rest, len)
    };
    let (rest, data) = take_exact(rest, len).map_err(|k| (prefix, k))?;
    if encoding == Encoding::Ascii && !data.is_ascii() {
        let bad = data.iter().position(|b| !b.is_ascii()).unwrap_or(0);
        return Err((prefix + bad, DecodeErrorKind::NotAscii));
    }
    Ok((rest, data))
}

/// Parses ASCII decimal digits; `None` if any byte is not a digit.
pub(crate) fn ascii_number(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + usize::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(hex: &str) -> Bytes {
        Bytes::from(hex::decode(hex.replace(' ', "")).unwrap())
    }

    #[test]
    fn decodes_fixed_and_variable_fields_without_copying() {
        // 0800, DE 11 and DE 54 (LLLVAR, 3 bytes "abc")
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0x04, 0]);
        raw.extend_from_slice(b"000123003abc");
        let buf = Bytes::from(raw);
        let m = decode(&buf).unwrap();
        assert_eq!(m.mti(), Mti::NETWORK_REQUEST);
        assert_eq!(m.get(11), Some(&b"000123"[..]));
        assert_eq!(m.get(54), Some(&b"abc"[..]));
        let de54 = m.get_bytes(54).unwrap();
        assert_eq!(de54.as_ptr(), buf[buf.len() - 3..].as_ptr());
    }

    #[test]
    fn truncated_field_names_field_and_offset() {
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0]);
        raw.extend_from_slice(b"0001");
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.element, Element::Field(11));
        assert_eq!(err.offset, 12);
        assert_eq!(
            err.kind,
            DecodeErrorKind::Truncated {
                needed: 6,
                available: 4
            }
        );
    }

    #[test]
    fn bad_length_prefix_is_reported() {
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x04, 0]);
        raw.extend_from_slice(b"0x3abc");
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.element, Element::Field(54));
        assert_eq!(err.kind, DecodeErrorKind::BadLengthPrefix);
        assert_eq!(err.offset, 12);
    }

    #[test]
    fn length_above_maximum_is_refused() {
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x04, 0]);
        raw.extend_from_slice(b"241");
        raw.extend_from_slice(&[b'0'; 241]);
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::TooLong { len: 241, max: 240 });
    }

    #[test]
    fn non_ascii_text_is_refused() {
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0]);
        raw.extend_from_slice(b"00\xff123");
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.element, Element::Field(11));
        assert_eq!(err.offset, 14);
        assert_eq!(err.kind, DecodeErrorKind::NotAscii);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0, 0, 0]);
        raw.extend_from_slice(b"000001XX");
        let err = decode(&Bytes::from(raw)).unwrap_err();
        assert_eq!(err.element, Element::Trailer);
        assert_eq!(err.kind, DecodeErrorKind::TrailingBytes(2));
    }

    #[test]
    fn bit_65_is_refused_as_tertiary_bitmap() {
        let raw = msg("30383030 8000000000000000 8000000000000000");
        let err = decode(&raw).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::TertiaryBitmap);
    }

    #[test]
    fn partial_decode_keeps_fields_before_the_error() {
        let mut raw = b"0100".to_vec();
        raw.extend_from_slice(&[0x00, 0x20, 0, 0, 0, 0x80, 0, 0]);
        raw.extend_from_slice(b"000001TERM0001");
        raw.truncate(raw.len() - 2);
        let (m, err) = decode_partial(&Bytes::from(raw));
        let m = m.unwrap();
        assert_eq!(m.get(11), Some(&b"000001"[..]));
        assert!(!m.has(41));
        assert_eq!(err.unwrap().element, Element::Field(41));
    }

    #[test]
    fn empty_secondary_bitmap_is_accepted_as_pyiso8583_accepts_it() {
        // Found by the message_decode fuzz target: bit 1 set, no field 66-128.
        let mut raw = b"0800".to_vec();
        raw.extend_from_slice(&[0x80, 0x20, 0, 0, 0, 0, 0, 0]);
        raw.extend_from_slice(&[0; 8]);
        raw.extend_from_slice(b"000001");
        let m = decode(&Bytes::from(raw)).unwrap();
        assert_eq!(m.get(11), Some(&b"000001"[..]));
        assert!(!m.has_secondary_bitmap());
    }

    #[test]
    fn empty_and_short_input_do_not_panic() {
        for len in 0..12 {
            let raw = Bytes::from(vec![b'0'; len]);
            assert!(decode(&raw).is_err());
        }
    }
}
