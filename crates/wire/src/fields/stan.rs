//! The system trace audit number (DE 11).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de;
use super::digits::{digits, write_digits};
use crate::error::FieldError;

/// System trace audit number (DE 11, n6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Stan(u32);

impl Stan {
    pub fn new(v: u32) -> Option<Stan> {
        (v <= 999_999).then_some(Stan(v))
    }
    pub fn value(self) -> u32 {
        self.0
    }
    pub fn from_bytes(raw: &[u8]) -> Result<Stan, FieldError> {
        digits::<6>(de::STAN, raw).map(|v| Stan(v as u32))
    }
    pub fn to_bytes(self) -> [u8; 6] {
        write_digits::<6>(u64::from(self.0))
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}
