//! Amounts (DE 4, and inside DE 54) and their currency (DE 49).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::digits::{digits, write_digits};
use crate::error::FieldError;

/// An amount in minor units (rials for IRR), n12.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(999_999_999_999);

    pub fn new(v: u64) -> Option<Amount> {
        (v <= Self::MAX.0).then_some(Amount(v))
    }
    pub fn value(self) -> u64 {
        self.0
    }
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<Amount, FieldError> {
        digits::<12>(field, raw).map(Amount)
    }
    pub fn to_bytes(self) -> [u8; 12] {
        write_digits::<12>(self.0)
    }
    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).and_then(Amount::new)
    }
    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// ISO 4217 numeric currency code (DE 49, n3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Currency(u16);

impl Currency {
    pub const IRR: Currency = Currency(364);

    pub fn new(code: u16) -> Option<Currency> {
        (code <= 999).then_some(Currency(code))
    }
    pub fn code(self) -> u16 {
        self.0
    }
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<Currency, FieldError> {
        digits::<3>(field, raw).map(|v| Currency(v as u16))
    }
    pub fn to_bytes(self) -> [u8; 3] {
        write_digits::<3>(u64::from(self.0))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_is_twelve_digits() {
        assert_eq!(&Amount::new(1500).unwrap().to_bytes(), b"000000001500");
        assert_eq!(
            Amount::from_bytes(4, b"000000001500").unwrap().value(),
            1500
        );
        assert!(Amount::from_bytes(4, b"00000000150 ").is_err());
        assert!(Amount::from_bytes(4, b"-00000001500").is_err());
        assert!(Amount::new(1_000_000_000_000).is_none());
        assert_eq!(Amount::MAX.checked_add(Amount::new(1).unwrap()), None);
    }
}
