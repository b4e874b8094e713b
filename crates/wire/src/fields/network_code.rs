//! The network management information code (DE 70).

use serde::{Deserialize, Serialize};

use super::de;
use super::digits::digits;
use crate::error::FieldError;

/// Network management information code (DE 70).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum NetworkCode {
    SignOn,
    SignOff,
    Echo,
    KeyChange,
}

impl NetworkCode {
    pub fn code(self) -> &'static [u8; 3] {
        match self {
            NetworkCode::SignOn => b"001",
            NetworkCode::SignOff => b"002",
            NetworkCode::Echo => b"301",
            NetworkCode::KeyChange => b"161",
        }
    }

    pub fn from_bytes(raw: &[u8]) -> Result<Option<NetworkCode>, FieldError> {
        digits::<3>(de::NETWORK_CODE, raw)?;
        Ok([
            NetworkCode::SignOn,
            NetworkCode::SignOff,
            NetworkCode::Echo,
            NetworkCode::KeyChange,
        ]
        .into_iter()
        .find(|c| &c.code()[..] == raw))
    }
}
