//! The records the engine stores, and their keys: the ledger's data model.
//! It imports nothing of the engine but the codec's machinery, so every
//! other module can use it and it uses none of them.
//!
//! Layout:
//! - `mod.rs`: the small shared types (times, card hashes, member ids,
//!   status) and index keys.
//! - `party.rs`: merchants, terminals, cards and members.
//! - `account.rs`: accounts, balances and the journal.
//! - `txn.rs`: transactions, request keys and outcomes.
//! - `lots.rs`: when a balance's points and credit were granted.
//! - `earned.rs`: what a purchase earned, and what was taken back.
//! - `batch.rs`: settlement batches.
//! - `contact.rs`: members' names, phone numbers and language, checked.

mod account;
mod batch;
pub mod contact;
mod earned;
pub mod lots;
mod party;
mod txn;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use account::{Account, AccountKey, JournalEntry, JournalKind};
pub use batch::SettlementBatch;
pub use contact::Language;
pub use earned::{Earned, Recovered};
pub use lots::{Grants, Lot, Lots, Unit};
pub use party::{Card, CardKind, FeeBase, Member, Merchant, Offers, Terminal, Tier};
pub(crate) use txn::sent_key;
pub use txn::{Outcome, PointsPaid, RequestKey, RequestRecord, Txn, TxnState};

/// Seconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn now() -> UnixTime {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixTime(d.as_secs() as i64)
    }

    pub fn plus(self, secs: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// Days since 1970-01-01 in a zone `offset` seconds east of UTC.
    pub fn local_day(self, offset: i64) -> i64 {
        (self.0 + offset).div_euclid(86_400)
    }

    /// RFC 3339, UTC, whole seconds: "2026-12-02T07:13:54Z".
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.rem_euclid(86_400);
        format!(
            "{}T{:02}:{:02}:{:02}Z",
            iso_date(self.0.div_euclid(86_400)),
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

/// ISO 8601 "YYYY-MM-DD" of a day number (days since 1970-01-01).
pub fn iso_date(day: i64) -> String {
    let (y, m, d) = clubswitch_wire::fields::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Keyed hash of a card number (HMAC-SHA256 under the switch's card key).
/// The clear number is never stored.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CardHash(pub [u8; 32]);

impl fmt::Debug for CardHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardHash({})", hex::encode(&self.0[..6]))
    }
}

impl CardHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<CardHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(CardHash(out))
    }
}

/// A member of the club.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
pub struct MemberId(pub u64);

/// Whether a merchant, terminal, card or member may transact.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Active,
    Blocked,
}

/// Index keys.
pub(crate) mod keys {
    use clubswitch_wire::{MerchantId, Rrn};

    use super::{CardHash, UnixTime};

    pub fn unsettled(merchant: &MerchantId, rrn: &Rrn) -> Vec<u8> {
        let mut k = merchant.as_bytes().to_vec();
        k.extend_from_slice(rrn.as_bytes());
        k
    }

    /// The merchant and RRN an [`unsettled`] key names; `None` for a key
    /// not of that shape.
    pub fn unsettled_parts(key: &[u8]) -> Option<(MerchantId, Rrn)> {
        let (m, r) = key.split_at_checked(15)?;
        Some((MerchantId::from_bytes(m).ok()?, Rrn::from_bytes(r).ok()?))
    }

    pub fn allowance(card: &CardHash, rule: u64, day: i64) -> Vec<u8> {
        let mut k = card.0.to_vec();
        k.extend_from_slice(&rule.to_be_bytes());
        k.extend_from_slice(&day.to_be_bytes());
        k
    }

    pub fn daily(card: &CardHash, day: i64) -> Vec<u8> {
        let mut k = card.0.to_vec();
        k.extend_from_slice(&day.to_be_bytes());
        k
    }

    /// A hold in the expiry index: when it expires, then its RRN.
    pub fn hold_due(expires: UnixTime, rrn: &Rrn) -> [u8; 20] {
        let mut k = [0u8; 20];
        k[..8].copy_from_slice(&expires.0.to_be_bytes());
        k[8..].copy_from_slice(rrn.as_bytes());
        k
    }

    /// The RRN a [`hold_due`] key names; `None` for a key not of that
    /// shape.
    pub fn hold_due_rrn(key: &[u8]) -> Option<Rrn> {
        Rrn::from_bytes(key.get(8..)?).ok()
    }

    pub fn rule(merchant: &MerchantId, id: u64) -> Vec<u8> {
        let mut k = merchant.as_bytes().to_vec();
        k.extend_from_slice(&id.to_be_bytes());
        k
    }
}
