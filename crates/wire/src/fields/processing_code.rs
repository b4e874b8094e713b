//! The processing code (DE 3): what a request asks for.

use serde::{Deserialize, Serialize};

use super::de;
use super::digits::digits;
use crate::error::FieldError;

/// What a request asks for, from its processing code (DE 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ProcessingCode {
    /// 000000: bank-card purchase, discount lookup.
    BankDiscount,
    /// 009100: purchase from the card's club (rial) account.
    ClubPurchase,
    /// 009200: purchase from store credit at this merchant.
    StorePurchase,
    /// 319100: balance inquiry, club account.
    ClubBalance,
    /// 319200: balance inquiry, store credit and points at this merchant.
    StoreBalance,
    /// 209100: refund to the club account.
    ClubRefund,
    /// 209200: refund to store credit.
    StoreRefund,
    /// 009300 (profile 1.1): purchase paid with the member's points at this
    /// merchant.
    PointsPurchase,
    /// 209300 (profile 1.1): refund of a points purchase; the points go
    /// back.
    PointsRefund,
}

impl ProcessingCode {
    pub const ALL: [ProcessingCode; 9] = [
        ProcessingCode::BankDiscount,
        ProcessingCode::ClubPurchase,
        ProcessingCode::StorePurchase,
        ProcessingCode::ClubBalance,
        ProcessingCode::StoreBalance,
        ProcessingCode::ClubRefund,
        ProcessingCode::StoreRefund,
        ProcessingCode::PointsPurchase,
        ProcessingCode::PointsRefund,
    ];

    pub fn code(self) -> &'static [u8; 6] {
        match self {
            ProcessingCode::BankDiscount => b"000000",
            ProcessingCode::ClubPurchase => b"009100",
            ProcessingCode::StorePurchase => b"009200",
            ProcessingCode::ClubBalance => b"319100",
            ProcessingCode::StoreBalance => b"319200",
            ProcessingCode::ClubRefund => b"209100",
            ProcessingCode::StoreRefund => b"209200",
            ProcessingCode::PointsPurchase => b"009300",
            ProcessingCode::PointsRefund => b"209300",
        }
    }

    /// The processing code for DE 3's raw bytes. A well-formed code the
    /// profile does not know is `Ok(None)` (answered 12); malformed bytes are
    /// an error (answered 30).
    pub fn from_bytes(raw: &[u8]) -> Result<Option<ProcessingCode>, FieldError> {
        digits::<6>(de::PROCESSING_CODE, raw)?;
        Ok(Self::ALL.into_iter().find(|p| &p.code()[..] == raw))
    }

    /// Whether this is a purchase (a two-phase transaction with a hold).
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            ProcessingCode::BankDiscount
                | ProcessingCode::ClubPurchase
                | ProcessingCode::StorePurchase
                | ProcessingCode::PointsPurchase
        )
    }

    /// Whether this is a refund (single phase, naming a purchase by DE 37).
    pub fn is_refund(self) -> bool {
        matches!(
            self,
            ProcessingCode::ClubRefund | ProcessingCode::StoreRefund | ProcessingCode::PointsRefund
        )
    }

    /// The purchase a refund code refunds.
    pub fn refunds(self) -> Option<ProcessingCode> {
        match self {
            ProcessingCode::ClubRefund => Some(ProcessingCode::ClubPurchase),
            ProcessingCode::StoreRefund => Some(ProcessingCode::StorePurchase),
            ProcessingCode::PointsRefund => Some(ProcessingCode::PointsPurchase),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_codes_round_trip_and_unknown_is_none() {
        for p in ProcessingCode::ALL {
            assert_eq!(ProcessingCode::from_bytes(p.code()).unwrap(), Some(p));
        }
        assert_eq!(ProcessingCode::from_bytes(b"010000").unwrap(), None);
        assert!(ProcessingCode::from_bytes(b"00910A").is_err());
    }
}
