//! Error types of the codec.

use std::fmt;

/// Which part of a message an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Mti,
    PrimaryBitmap,
    SecondaryBitmap,
    /// A data element, 2..=128.
    Field(u8),
    /// Bytes left over after the last field.
    Trailer,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Mti => f.write_str("MTI"),
            Element::PrimaryBitmap => f.write_str("primary bitmap"),
            Element::SecondaryBitmap => f.write_str("secondary bitmap"),
            Element::Field(n) => write!(f, "DE {n}"),
            Element::Trailer => f.write_str("end of message"),
        }
    }
}

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("message ends early: {needed} bytes needed, {available} left")]
    Truncated { needed: usize, available: usize },
    #[error("MTI must be 4 ASCII digits")]
    BadMti,
    #[error("length prefix is not ASCII digits")]
    BadLengthPrefix,
    #[error("length {len} exceeds the field maximum {max}")]
    TooLong { len: usize, max: usize },
    #[error("field data is not ASCII")]
    NotAscii,
    #[error("bit 65 (tertiary bitmap) is not part of this profile")]
    TertiaryBitmap,
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
}

/// A message could not be decoded. Names the element and the byte offset
/// (from the first MTI byte) where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{element} at offset {offset}: {kind}")]
pub struct DecodeError {
    pub element: Element,
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

/// A value cannot be stored in a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetFieldError {
    #[error("DE {0} is not a data element of the profile")]
    NoSuchField(u8),
    #[error("DE {field} takes exactly {expected} bytes, got {got}")]
    WrongLength {
        field: u8,
        expected: usize,
        got: usize,
    },
    #[error("DE {field} takes at most {max} bytes, got {got}")]
    TooLong { field: u8, max: usize, got: usize },
    #[error("DE {0} takes ASCII only")]
    NotAscii(u8),
}

/// A field the caller asked for is absent or does not hold what the profile
/// says it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("DE {0} is missing")]
    Missing(u8),
    #[error("DE {field}: {reason}")]
    Invalid { field: u8, reason: &'static str },
}

impl FieldError {
    /// The data element the error is about.
    pub fn field(&self) -> u8 {
        match self {
            FieldError::Missing(f) | FieldError::Invalid { field: f, .. } => *f,
        }
    }
}

/// Failure to build a message's MTI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an MTI: {0:?}")]
pub struct MtiError(pub String);

impl From<MtiError> for FieldError {
    fn from(_: MtiError) -> Self {
        FieldError::Invalid {
            field: 0,
            reason: "MTI must be 4 digits",
        }
    }
}

pub(crate) fn invalid(field: u8, reason: &'static str) -> FieldError {
    FieldError::Invalid { field, reason }
}
