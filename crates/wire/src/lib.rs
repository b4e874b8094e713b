//! The clubswitch wire layer: ISO 8583 messages as the clubswitch terminal
//! profile carries them (pyiso8583's `default` layout: ASCII MTI and fields,
//! binary bitmaps), their framing on a TCP stream, and their security.
//!
//! - [`Message`] holds an MTI and data elements; [`decode()`] and [`encode()`]
//!   convert it from and to bytes; bitmaps are always derived.
//! - [`fields`] has typed values ([`Stan`], [`Rrn`], [`Amount`], ...) and
//!   accessors, so callers never parse field strings.
//! - [`FrameCodec`] frames messages for `tokio_util::codec`.
//! - [`security`] derives terminal keys, signs and verifies MACs and seals and
//!   opens card blocks.

pub mod decode;
pub mod encode;
pub mod error;
pub mod fields;
pub mod frame;
pub mod message;
pub mod security;
pub mod spec;

pub use decode::{decode, decode_partial};
pub use encode::{encode, encode_into, encoded_len};
pub use error::{DecodeError, DecodeErrorKind, Element, FieldError, SetFieldError};
pub use fields::{
    de, AccountType, Amount, AmountBlock, AmountBlocks, AmountType, AuthId, Currency, MerchantId,
    NetworkCode, OriginalData, ProcessingCode, ResponseCode, Rrn, Stan, TerminalId,
    TransmissionTime,
};
pub use frame::{Frame, FrameCodec, FrameError, LengthHeader};
pub use message::{Message, Mti};
pub use security::{CardAad, CardData, CardNumber, Expiry, SecurityError, TerminalKeys, Tmk};
