//! The message model: an MTI and the data elements present, in field order.
//!
//! Bitmaps are not stored; they are derived from the fields present when the
//! message is encoded, so a message can never carry a bitmap that disagrees
//! with its fields.

use std::fmt;

use bytes::Bytes;

use crate::error::{MtiError, SetFieldError};
use crate::spec::{self, Encoding, Length};

/// Message type indicator: four ASCII digits (version, class, function,
/// origin).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Mti([u8; 4]);

impl Mti {
    pub const AUTH_REQUEST: Mti = Mti(*b"0100");
    pub const AUTH_RESPONSE: Mti = Mti(*b"0110");
    pub const FINANCIAL_REQUEST: Mti = Mti(*b"0200");
    pub const FINANCIAL_RESPONSE: Mti = Mti(*b"0210");
    pub const CONFIRM_ADVICE: Mti = Mti(*b"0220");
    pub const CONFIRM_RESPONSE: Mti = Mti(*b"0230");
    pub const REVERSAL_REQUEST: Mti = Mti(*b"0400");
    pub const REVERSAL_RESPONSE: Mti = Mti(*b"0410");
    pub const REVERSAL_ADVICE: Mti = Mti(*b"0420");
    pub const REVERSAL_ADVICE_RESPONSE: Mti = Mti(*b"0430");
    pub const NETWORK_REQUEST: Mti = Mti(*b"0800");
    pub const NETWORK_RESPONSE: Mti = Mti(*b"0810");

    /// An MTI from its four ASCII digits.
    pub fn new(digits: [u8; 4]) -> Result<Mti, MtiError> {
        if digits.iter().all(u8::is_ascii_digit) {
            Ok(Mti(digits))
        } else {
            Err(MtiError(String::from_utf8_lossy(&digits).into_owned()))
        }
    }

    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Always four ASCII digits by construction.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The response MTI (request + 10) when this MTI is a request, advice or
    /// notification (an even function digit); `None` for a response.
    pub fn response(self) -> Option<Mti> {
        let mut d = self.0;
        if d[2].is_multiple_of(2) {
            d[2] += 1;
            Some(Mti(d))
        } else {
            None
        }
    }

    /// Whether this MTI answers another (odd function digit).
    pub fn is_response(self) -> bool {
        self.0[2] % 2 == 1
    }
}

impl std::str::FromStr for Mti {
    type Err = MtiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b: [u8; 4] = s
            .as_bytes()
            .try_into()
            .map_err(|_| MtiError(s.to_owned()))?;
        Mti::new(b)
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ISO 8583 message of the profile.
///
/// Holds the data elements present, sorted by number, each as a cheap
/// reference-counted slice: a decoded message shares the frame's buffer.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    mti: Mti,
    fields: Vec<(u8, Bytes)>,
}

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message {
            mti,
            fields: Vec::with_capacity(16),
        }
    }

    pub fn mti(&self) -> Mti {
        self.mti
    }

    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// The raw bytes of data element `n`, if present.
    pub fn get(&self, n: u8) -> Option<&[u8]> {
        self.get_bytes(n).map(|b| &b[..])
    }

    /// The shared buffer of data element `n`, if present.
    pub fn get_bytes(&self, n: u8) -> Option<&Bytes> {
        self.position(n).ok().map(|i| &self.fields[i].1)
    }

    pub fn has(&self, n: u8) -> bool {
        self.position(n).is_ok()
    }

    /// Stores data element `n`, replacing any earlier value. The value must fit
    /// the field's layout (length, and ASCII for text fields), so every
    /// message can be encoded.
    pub fn set(&mut self, n: u8, value: impl Into<Bytes>) -> Result<(), SetFieldError> {
        let value = value.into();
        check_value(n, &value)?;
        match self.position(n) {
            Ok(i) => self.fields[i].1 = value,
            Err(i) => self.fields.insert(i, (n, value)),
        }
        Ok(())
    }

    /// Removes data element `n`, returning its value.
    pub fn remove(&mut self, n: u8) -> Option<Bytes> {
        self.position(n).ok().map(|i| self.fields.remove(i).1)
    }

    /// The data elements present, in ascending order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (u8, &Bytes)> + '_ {
        self.fields.iter().map(|(n, v)| (*n, v))
    }

    /// The 128-bit bitmap of this message: bit 1 is the most significant,
    /// bit 1 (secondary bitmap present) is set when any field above 64 is.
    pub fn bitmap(&self) -> u128 {
        let mut bits = 0u128;
        for (n, _) in &self.fields {
            bits |= 1u128 << (128 - u32::from(*n));
        }
        if self.has_secondary_bitmap() {
            bits |= 1u128 << 127;
        }
        bits
    }

    /// Whether the encoded message carries a secondary bitmap.
    pub fn has_secondary_bitmap(&self) -> bool {
        self.fields.last().is_some_and(|(n, _)| *n > 64)
    }

    /// The data element that carries the MAC for this message: 128 when the
    /// message has a secondary bitmap, 64 otherwise.
    pub fn mac_field(&self) -> u8 {
        let above_64 = self.fields.iter().any(|(n, _)| *n > 64 && *n != 128);
        if above_64 {
            128
        } else {
            64
        }
    }

    /// Appends a field known to be valid and higher than any present. Used by
    /// the decoder, which validates as it goes.
    pub(crate) fn push_unchecked(&mut self, n: u8, value: Bytes) {
        debug_assert!(self.fields.last().is_none_or(|(last, _)| *last < n));
        self.fields.push((n, value));
    }

    fn position(&self, n: u8) -> Result<usize, usize> {
        // Messages carry a dozen or two fields: a linear scan beats a binary
        // search's branch mispredictions at this size.
        for (i, (f, _)) in self.fields.iter().enumerate() {
            if *f == n {
                return Ok(i);
            }
            if *f > n {
                return Err(i);
            }
        }
        Err(self.fields.len())
    }
}

fn check_value(n: u8, value: &[u8]) -> Result<(), SetFieldError> {
    let spec = spec::field(n).ok_or(SetFieldError::NoSuchField(n))?;
    match spec.length {
        Length::Fixed(len) if value.len() != usize::from(len) => {
            return Err(SetFieldError::WrongLength {
                field: n,
                expected: usize::from(len),
                got: value.len(),
            })
        }
        Length::LlVar(max) | Length::LllVar(max) if value.len() > usize::from(max) => {
            return Err(SetFieldError::TooLong {
                field: n,
                max: usize::from(max),
                got: value.len(),
            })
        }
        _ => {}
    }
    if spec.encoding == Encoding::Ascii && !value.is_ascii() {
        return Err(SetFieldError::NotAscii(n));
    }
    Ok(())
}

impl fmt::Debug for Message {
    /// Field values are shown as text or hex; DE 2, 35, 45 (clear card data)
    /// and DE 120 (card block) are never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        m.entry(&"mti", &self.mti.as_str());
        for (n, v) in &self.fields {
            match (*n, spec::field(*n).map(|s| s.encoding)) {
                (2 | 35 | 45 | 120, _) => m.entry(n, &"<redacted>"),
                (_, Some(Encoding::Ascii)) => m.entry(n, &String::from_utf8_lossy(v)),
                _ => m.entry(n, &hex::encode_upper(v)),
            };
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_mti_adds_ten_to_requests_only() {
        assert_eq!(Mti::AUTH_REQUEST.response(), Some(Mti::AUTH_RESPONSE));
        assert_eq!(Mti::CONFIRM_ADVICE.response(), Some(Mti::CONFIRM_RESPONSE));
        assert_eq!(
            Mti::REVERSAL_ADVICE.response(),
            Some(Mti::REVERSAL_ADVICE_RESPONSE)
        );
        assert_eq!(Mti::NETWORK_REQUEST.response(), Some(Mti::NETWORK_RESPONSE));
        assert_eq!(Mti::AUTH_RESPONSE.response(), None);
    }

    #[test]
    fn mti_rejects_non_digits() {
        assert!("01A0".parse::<Mti>().is_err());
        assert!("010".parse::<Mti>().is_err());
        assert_eq!("0200".parse::<Mti>().unwrap(), Mti::FINANCIAL_REQUEST);
    }

    #[test]
    fn set_keeps_fields_sorted_and_replaces() {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        m.set(41, &b"TERM0001"[..]).unwrap();
        m.set(3, &b"009100"[..]).unwrap();
        m.set(11, &b"000001"[..]).unwrap();
        m.set(11, &b"000002"[..]).unwrap();
        let order: Vec<u8> = m.fields().map(|(n, _)| n).collect();
        assert_eq!(order, vec![3, 11, 41]);
        assert_eq!(m.get(11), Some(&b"000002"[..]));
    }

    #[test]
    fn set_rejects_values_that_do_not_fit_the_layout() {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        assert!(matches!(
            m.set(3, &b"12345"[..]),
            Err(SetFieldError::WrongLength { field: 3, .. })
        ));
        assert!(matches!(
            m.set(54, vec![b'0'; 241]),
            Err(SetFieldError::TooLong { field: 54, .. })
        ));
        assert!(matches!(
            m.set(41, &b"TERM000\xC9"[..]),
            Err(SetFieldError::NotAscii(41))
        ));
        assert!(matches!(
            m.set(65, vec![0u8; 8]),
            Err(SetFieldError::NoSuchField(65))
        ));
        assert!(matches!(
            m.set(1, vec![0u8; 8]),
            Err(SetFieldError::NoSuchField(1))
        ));
        // Binary fields take any byte.
        m.set(64, vec![0xFFu8; 8]).unwrap();
    }

    #[test]
    fn bitmap_sets_bit_one_only_with_fields_above_64() {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        m.set(3, &b"000000"[..]).unwrap();
        assert_eq!(m.bitmap() >> 64, 0x2000_0000_0000_0000);
        assert_eq!(m.mac_field(), 64);
        m.set(70, &b"001"[..]).unwrap();
        assert_eq!(m.bitmap() >> 64, 0xA000_0000_0000_0000);
        assert_eq!(m.mac_field(), 128);
    }

    #[test]
    fn debug_never_shows_card_data() {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        m.set(2, &b"6037991234567890"[..]).unwrap();
        m.set(120, &b"00AABB"[..]).unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("6037991234567890"));
        assert!(!shown.contains("00AABB"));
    }
}
