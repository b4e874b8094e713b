//! Accounts and the journal: every movement of value is one balanced
//! journal entry; customer accounts keep a stored balance.

use clubswitch_wire::{MerchantId, Rrn};
use serde::{Deserialize, Serialize};

use super::lots::Grants;
use super::{MemberId, UnixTime};
use crate::codec::{with_tail, Record};

/// A ledger account.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum AccountKey {
    /// A club card's rial balance (owed to the member).
    Club(u64),
    /// A member's store credit at a merchant.
    Store {
        member: MemberId,
        merchant: MerchantId,
    },
    /// What the network owes a merchant (negative: what the merchant owes).
    Payable(MerchantId),
    /// The network's fee income.
    FeeIncome,
    /// Settled and due to merchants, awaiting the bank transfer.
    Clearing,
    /// Money members paid in by top-up.
    ClubFunding,
    /// Store credit a merchant has granted and not yet seen redeemed.
    StoreIssued(MerchantId),
    /// A member's loyalty points at a merchant (in points, not rials).
    Points {
        member: MemberId,
        merchant: MerchantId,
    },
    /// Points a merchant has awarded and not yet seen converted or taken
    /// back (in points).
    PointsIssued(MerchantId),
    /// Store credit `debtor` issued that a member spent at `creditor`, a
    /// merchant of the same coalition: what the one owes the other.
    CoalitionDue {
        debtor: MerchantId,
        creditor: MerchantId,
    },
    /// Paid to merchants by bank transfer, as the bank's statement
    /// confirmed (out of [`AccountKey::Clearing`]).
    PaidOut,
}

impl AccountKey {
    /// The storage key; a tag byte keeps account kinds apart.
    pub fn to_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(32);
        match self {
            AccountKey::Club(id) => {
                k.push(b'C');
                k.extend_from_slice(&id.to_be_bytes());
            }
            AccountKey::Store { member, merchant } => {
                k.push(b'S');
                k.extend_from_slice(&member.0.to_be_bytes());
                k.extend_from_slice(merchant.as_bytes());
            }
            AccountKey::Payable(m) => {
                k.push(b'P');
                k.extend_from_slice(m.as_bytes());
            }
            AccountKey::FeeIncome => k.push(b'F'),
            AccountKey::Clearing => k.push(b'K'),
            AccountKey::ClubFunding => k.push(b'T'),
            AccountKey::StoreIssued(m) => {
                k.push(b'I');
                k.extend_from_slice(m.as_bytes());
            }
            AccountKey::Points { member, merchant } => {
                k.push(b'Q');
                k.extend_from_slice(&member.0.to_be_bytes());
                k.extend_from_slice(merchant.as_bytes());
            }
            AccountKey::PointsIssued(m) => {
                k.push(b'J');
                k.extend_from_slice(m.as_bytes());
            }
            AccountKey::CoalitionDue { debtor, creditor } => {
                k.push(b'X');
                k.extend_from_slice(debtor.as_bytes());
                k.extend_from_slice(creditor.as_bytes());
            }
            AccountKey::PaidOut => k.push(b'O'),
        }
        k
    }

    /// The account a storage key names ([`AccountKey::to_key`]'s inverse).
    pub fn from_key(k: &[u8]) -> Option<AccountKey> {
        let (tag, rest) = k.split_first()?;
        let merchant = |b: &[u8]| MerchantId::from_bytes(b).ok();
        let member = |b: &[u8]| Some(MemberId(u64::from_be_bytes(b.try_into().ok()?)));
        let member_at = |b: &[u8]| Some((member(b.get(..8)?)?, merchant(b.get(8..)?)?));
        Some(match (tag, rest.len()) {
            (b'C', 8) => AccountKey::Club(u64::from_be_bytes(rest.try_into().ok()?)),
            (b'S', 23) => {
                let (member, merchant) = member_at(rest)?;
                AccountKey::Store { member, merchant }
            }
            (b'P', 15) => AccountKey::Payable(merchant(rest)?),
            (b'F', 0) => AccountKey::FeeIncome,
            (b'K', 0) => AccountKey::Clearing,
            (b'T', 0) => AccountKey::ClubFunding,
            (b'I', 15) => AccountKey::StoreIssued(merchant(rest)?),
            (b'Q', 23) => {
                let (member, merchant) = member_at(rest)?;
                AccountKey::Points { member, merchant }
            }
            (b'J', 15) => AccountKey::PointsIssued(merchant(rest)?),
            (b'O', 0) => AccountKey::PaidOut,
            (b'X', 30) => AccountKey::CoalitionDue {
                debtor: merchant(&rest[..15])?,
                creditor: merchant(&rest[15..])?,
            },
            _ => return None,
        })
    }

    /// Whether the account holds a customer's value, which may never go
    /// below zero. Only customer accounts keep a stored balance (it is
    /// checked on every purchase); the network's and merchants' accounts
    /// exist in the journal alone, so confirms at many terminals never
    /// contend on one shared balance record.
    pub fn is_customer(&self) -> bool {
        matches!(
            self,
            AccountKey::Club(_) | AccountKey::Store { .. } | AccountKey::Points { .. }
        )
    }
}

/// A balance and the holds on it. Available = balance − held.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Account {
    pub balance: i64,
    pub held: i64,
    /// For a member's points and store credit: when what the balance holds
    /// was granted, so it expires oldest first. Kept with the balance, so a
    /// grant writes one record (format version 2).
    pub grants: Grants,
}

impl Record for Account {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 => with_tail(body, &Grants::default()),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}

impl Account {
    pub fn available(&self) -> i64 {
        self.balance - self.held
    }
}

/// What a journal entry records.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    Purchase,
    Reversal,
    Refund,
    RefundReversal,
    TopUp,
    StoreGrant,
    Settlement,
    CardRenewal,
    /// Points and cashback given back when a refund is undone (what a
    /// purchase earns is posted in its own `Purchase` entry).
    Loyalty,
    /// Points and cashback taken back by a reversal or refund.
    LoyaltyReturn,
    /// Points turned into store credit at the merchant's rate.
    PointsConversion,
    /// Referral bonus points, to the referrer and the newcomer.
    ReferralBonus,
    /// Points won in a lucky draw.
    DrawPrize,
    /// Points or store credit past their validity, taken back by the daily
    /// pass.
    Expiry,
    /// Points an operator or merchant granted (or, negative, took back) by
    /// hand.
    PointsGrant,
    /// A bank transfer to a merchant confirmed (or, reversed, returned).
    Payout,
}

/// One balanced movement of value.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: u64,
    pub at: UnixTime,
    pub kind: JournalKind,
    pub rrn: Option<Rrn>,
    /// Signed amounts per account (credit positive); they sum to zero.
    pub postings: Vec<(AccountKey, i64)>,
    /// Who moved it: the admin user, cashier or payment gateway
    /// (`gateway:NAME`); `None` for a terminal's request (its terminal is
    /// the transaction's, by `rrn`) and the switch's own work (expiry,
    /// settlement runs, the daily pass). Format version 3.
    pub actor: Option<String>,
}

impl Record for JournalEntry {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 | 2 => with_tail(body, &None::<String>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}
/// An account's archived sum (kept by the archive for the audit).
impl Record for (AccountKey, i64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_key_reads_back_from_its_storage_key() {
        let m: MerchantId = "MERCHANT0000001".parse().unwrap();
        let n: MerchantId = "MERCHANT0000002".parse().unwrap();
        let member = MemberId(42);
        for key in [
            AccountKey::Club(7),
            AccountKey::Store {
                member,
                merchant: m,
            },
            AccountKey::Payable(m),
            AccountKey::FeeIncome,
            AccountKey::Clearing,
            AccountKey::ClubFunding,
            AccountKey::StoreIssued(m),
            AccountKey::Points {
                member,
                merchant: n,
            },
            AccountKey::PointsIssued(n),
            AccountKey::CoalitionDue {
                debtor: m,
                creditor: n,
            },
            AccountKey::PaidOut,
        ] {
            assert_eq!(AccountKey::from_key(&key.to_key()), Some(key));
        }
        assert_eq!(AccountKey::from_key(b"C123"), None);
        assert_eq!(AccountKey::from_key(b""), None);
    }
}
