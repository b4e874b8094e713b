//! Fixed-width text ids: the `fixed_text!` macro and the ids it defines,
//! terminal id (DE 41), merchant id (DE 42), RRN (DE 37) and authorization
//! id (DE 38).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de;
use super::digits::write_digits;
use crate::error::{invalid, FieldError};

fn printable(raw: &[u8]) -> bool {
    raw.iter().all(|b| (0x20..0x7f).contains(b))
}

macro_rules! fixed_text {
    ($(#[$doc:meta])* $name:ident, $len:expr, $field:expr, $check:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Parses the field's raw bytes.
            pub fn from_bytes(raw: &[u8]) -> Result<Self, FieldError> {
                let arr: [u8; $len] = raw.try_into().map_err(|_| invalid($field, "wrong length"))?;
                let check: fn(&[u8]) -> bool = $check;
                if !check(&arr) {
                    return Err(invalid($field, $what));
                }
                Ok($name(arr))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).unwrap_or("")
            }
        }

        impl std::str::FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_bytes(s.as_bytes())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.as_str())
            }
        }
    };
}

fixed_text!(
    /// Terminal id (DE 41, ans8).
    TerminalId, 8, de::TERMINAL_ID, printable, "not printable ASCII"
);
fixed_text!(
    /// Merchant id (DE 42, ans15).
    MerchantId, 15, de::MERCHANT_ID, printable, "not printable ASCII"
);
fixed_text!(
    /// Retrieval reference number (DE 37, an12), assigned by the switch.
    Rrn, 12, de::RRN, |b| b.iter().all(u8::is_ascii_alphanumeric), "not alphanumeric"
);
fixed_text!(
    /// Authorization id (DE 38, an6), assigned by the switch.
    AuthId, 6, de::AUTH_ID, |b| b.iter().all(u8::is_ascii_alphanumeric), "not alphanumeric"
);

impl Rrn {
    /// An RRN from a switch-assigned sequence number (12 digits).
    pub fn from_sequence(n: u64) -> Rrn {
        Rrn(write_digits::<12>(n % 1_000_000_000_000))
    }
}

impl AuthId {
    /// An authorization id from a number (6 digits).
    pub fn from_number(n: u64) -> AuthId {
        AuthId(write_digits::<6>(n % 1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_id_must_be_printable() {
        assert!(TerminalId::from_bytes(b"TERM\x01001").is_err());
        assert!(TerminalId::from_bytes(b"TERM001").is_err());
        assert!(TerminalId::from_bytes(b"TERM 001").is_ok());
    }
}
