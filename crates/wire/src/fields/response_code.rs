//! The response code (DE 39).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::de;
use crate::error::{invalid, FieldError};

/// Response code (DE 39).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ResponseCode {
    Approved,
    InvalidMerchant,
    DoNotHonour,
    InvalidTransaction,
    InvalidAmount,
    InvalidCardNumber,
    OriginalNotFound,
    FormatError,
    InsufficientFunds,
    ExpiredCard,
    NotPermittedToCardholder,
    NotPermittedToTerminal,
    ExceedsAmountLimit,
    RestrictedCard,
    SecurityViolation,
    DuplicateTransmission,
    SystemMalfunction,
}

impl ResponseCode {
    pub const ALL: [ResponseCode; 17] = [
        ResponseCode::Approved,
        ResponseCode::InvalidMerchant,
        ResponseCode::DoNotHonour,
        ResponseCode::InvalidTransaction,
        ResponseCode::InvalidAmount,
        ResponseCode::InvalidCardNumber,
        ResponseCode::OriginalNotFound,
        ResponseCode::FormatError,
        ResponseCode::InsufficientFunds,
        ResponseCode::ExpiredCard,
        ResponseCode::NotPermittedToCardholder,
        ResponseCode::NotPermittedToTerminal,
        ResponseCode::ExceedsAmountLimit,
        ResponseCode::RestrictedCard,
        ResponseCode::SecurityViolation,
        ResponseCode::DuplicateTransmission,
        ResponseCode::SystemMalfunction,
    ];

    pub fn code(self) -> &'static [u8; 2] {
        match self {
            ResponseCode::Approved => b"00",
            ResponseCode::InvalidMerchant => b"03",
            ResponseCode::DoNotHonour => b"05",
            ResponseCode::InvalidTransaction => b"12",
            ResponseCode::InvalidAmount => b"13",
            ResponseCode::InvalidCardNumber => b"14",
            ResponseCode::OriginalNotFound => b"25",
            ResponseCode::FormatError => b"30",
            ResponseCode::InsufficientFunds => b"51",
            ResponseCode::ExpiredCard => b"54",
            ResponseCode::NotPermittedToCardholder => b"57",
            ResponseCode::NotPermittedToTerminal => b"58",
            ResponseCode::ExceedsAmountLimit => b"61",
            ResponseCode::RestrictedCard => b"62",
            ResponseCode::SecurityViolation => b"63",
            ResponseCode::DuplicateTransmission => b"94",
            ResponseCode::SystemMalfunction => b"96",
        }
    }

    pub fn as_str(self) -> &'static str {
        std::str::from_utf8(self.code()).unwrap_or("96")
    }

    pub fn from_bytes(raw: &[u8]) -> Result<ResponseCode, FieldError> {
        Self::ALL
            .into_iter()
            .find(|c| &c.code()[..] == raw)
            .ok_or(invalid(
                de::RESPONSE_CODE,
                "not a response code of the profile",
            ))
    }

    pub fn description(self) -> &'static str {
        match self {
            ResponseCode::Approved => "approved",
            ResponseCode::InvalidMerchant => "invalid merchant",
            ResponseCode::DoNotHonour => "do not honour",
            ResponseCode::InvalidTransaction => "invalid transaction",
            ResponseCode::InvalidAmount => "invalid amount",
            ResponseCode::InvalidCardNumber => "invalid card number",
            ResponseCode::OriginalNotFound => "original not found",
            ResponseCode::FormatError => "format error",
            ResponseCode::InsufficientFunds => "insufficient funds",
            ResponseCode::ExpiredCard => "expired card",
            ResponseCode::NotPermittedToCardholder => "not permitted to cardholder",
            ResponseCode::NotPermittedToTerminal => "not permitted to terminal",
            ResponseCode::ExceedsAmountLimit => "exceeds amount limit",
            ResponseCode::RestrictedCard => "restricted card",
            ResponseCode::SecurityViolation => "security violation",
            ResponseCode::DuplicateTransmission => "duplicate transmission",
            ResponseCode::SystemMalfunction => "system malfunction",
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_round_trip() {
        for rc in ResponseCode::ALL {
            assert_eq!(ResponseCode::from_bytes(rc.code()).unwrap(), rc);
        }
        assert!(ResponseCode::from_bytes(b"99").is_err());
    }
}
