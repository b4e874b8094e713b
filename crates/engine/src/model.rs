//! The records the engine stores, and their keys.

use std::fmt;

use clubswitch_wire::{
    Amount, AmountBlock, AuthId, Currency, Expiry, MerchantId, ProcessingCode, ResponseCode, Rrn,
    Stan, TerminalId, TransmissionTime,
};
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
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

/// On what amount a merchant's fee is computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeeBase {
    #[default]
    Gross,
    Discounted,
}

/// Which transactions a merchant offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Offers {
    pub discount: bool,
    pub club: bool,
    pub store: bool,
}

impl Default for Offers {
    fn default() -> Self {
        Offers {
            discount: true,
            club: true,
            store: true,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub status: Status,
    /// Fee the merchant owes the network, in basis points.
    pub fee_bps: u32,
    pub fee_base: FeeBase,
    /// Where settlements are paid (an IBAN).
    pub settlement_account: String,
    pub offers: Offers,
    /// Largest amount of one purchase, if limited.
    pub max_amount: Option<Amount>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Terminal {
    pub id: TerminalId,
    pub merchant: MerchantId,
    pub status: Status,
    /// The TMK, sealed under the switch master key by the daemon; the engine
    /// never sees it in clear.
    pub sealed_tmk: Vec<u8>,
    /// The key being replaced by a key change, and until when it is valid.
    pub previous_tmk: Option<(Vec<u8>, UnixTime)>,
    pub security_failures: u32,
    pub locked: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardKind {
    /// Issued by this switch: club balance, store credit.
    Club,
    /// A bank card enrolled for discounts and loyalty.
    Bank,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Card {
    pub hash: CardHash,
    pub last4: [u8; 4],
    pub kind: CardKind,
    pub member: Option<MemberId>,
    /// The club (rial) account of a club card.
    pub account: Option<u64>,
    pub status: Status,
    pub expiry: Option<Expiry>,
    /// Largest purchase, if limited.
    pub max_amount: Option<Amount>,
    /// Largest club spend per local day, if limited.
    pub daily_limit: Option<Amount>,
    /// The card this one was renewed onto.
    pub replaced_by: Option<CardHash>,
}

/// Loyalty tier of a member.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Bronze,
    Silver,
    Gold,
    Platinum,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub phone: String,
    pub tier: Tier,
    pub groups: Vec<String>,
    pub status: Status,
}

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
    pub grants: crate::loyalty::Grants,
}

impl crate::codec::Record for Account {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 => crate::codec::with_tail(body, &crate::loyalty::Grants::default()),
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
}

/// The idempotency key of a request: DE 41 ‖ DE 11 ‖ DE 7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct RequestKey {
    pub terminal: TerminalId,
    pub stan: Stan,
    pub transmitted: TransmissionTime,
}

impl RequestKey {
    pub fn to_key(&self) -> [u8; 24] {
        let mut k = [0u8; 24];
        k[..8].copy_from_slice(self.terminal.as_bytes());
        k[8..14].copy_from_slice(&self.stan.to_bytes());
        k[14..].copy_from_slice(&self.transmitted.to_bytes());
        k
    }
}

/// The answer to a request, as stored for retransmissions.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub code: ResponseCode,
    pub rrn: Option<Rrn>,
    pub auth_id: Option<AuthId>,
    pub amounts: Vec<AmountBlock>,
}

impl Outcome {
    pub fn decline(code: ResponseCode) -> Outcome {
        Outcome {
            code,
            rrn: None,
            auth_id: None,
            amounts: Vec::new(),
        }
    }

    pub fn approved(&self) -> bool {
        self.code == ResponseCode::Approved
    }
}

/// What the switch remembers of a request key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RequestRecord {
    pub fingerprint: [u8; 32],
    pub at: UnixTime,
    pub outcome: Outcome,
    /// The transaction the request created, if any.
    pub rrn: Option<Rrn>,
    /// Whether answering it again must wait for a flush (money moved).
    pub durable: bool,
}

/// Where a transaction stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxnState {
    /// Phase 1 approved, value held.
    Held,
    /// Final.
    Confirmed,
    /// Hold ended by an undo.
    Voided,
    /// Hold ended by time.
    Expired,
    /// Confirmed, then undone in full.
    Reversed,
}

/// A purchase or refund, by RRN.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Txn {
    pub rrn: Rrn,
    pub auth_id: AuthId,
    pub code: ProcessingCode,
    pub request: RequestKey,
    pub merchant: MerchantId,
    pub card: Option<CardHash>,
    pub account: Option<AccountKey>,
    pub currency: Currency,
    /// Amount requested (and held, for club and store purchases).
    pub amount: u64,
    /// Amount confirmed.
    pub final_amount: u64,
    /// Discount (bank-card lookups): held at request, final at confirm.
    pub discount: u64,
    pub fee: u64,
    pub rule: Option<u64>,
    pub state: TxnState,
    pub created: UnixTime,
    pub expires: UnixTime,
    pub confirmed: Option<UnixTime>,
    /// The confirm's answer, returned to a repeated confirm.
    pub confirm_outcome: Option<Outcome>,
    /// The undo's answer, returned to a repeated undo.
    pub undo_outcome: Option<Outcome>,
    /// Settlement batch that closed it.
    pub settled: Option<u64>,
    /// Refunded so far, and the fee returned with it.
    pub refunded: u64,
    pub fee_refunded: u64,
    /// For a refund: the purchase it refunds.
    pub refund_of: Option<Rrn>,
    /// Change this transaction made to the merchant's payable.
    pub payable_delta: i64,
    /// Whether the card's daily spend counter includes this transaction
    /// (only cards with a daily limit keep one).
    pub daily_tracked: bool,
    /// For a purchase: what it earned and what has been taken back; for a
    /// refund: what it recovered (format version 2; before, a record of its
    /// own in the earnings table).
    pub earned: Option<crate::loyalty::Earned>,
}

impl crate::codec::Record for Txn {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 => crate::codec::with_tail(body, &None::<crate::loyalty::Earned>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}

impl Txn {
    /// Whether a confirmed transaction of this kind goes into a settlement
    /// batch (club purchases and refunds, bank-card lookup fees).
    pub fn settles(&self) -> bool {
        matches!(
            self.code,
            ProcessingCode::ClubPurchase
                | ProcessingCode::BankDiscount
                | ProcessingCode::ClubRefund
        )
    }

    /// Whether nothing a terminal or a settlement run does can change it
    /// any more except a refund: it is no longer held and, if it settles,
    /// it has settled.
    pub fn finished(&self) -> bool {
        match self.state {
            TxnState::Held => false,
            TxnState::Confirmed => self.settled.is_some() || !self.settles(),
            TxnState::Voided | TxnState::Expired | TxnState::Reversed => true,
        }
    }
}

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
        ] {
            assert_eq!(AccountKey::from_key(&key.to_key()), Some(key));
        }
        assert_eq!(AccountKey::from_key(b"C123"), None);
        assert_eq!(AccountKey::from_key(b""), None);
    }
}

/// Index keys.
pub(crate) mod keys {
    use super::*;

    pub fn unsettled(merchant: &MerchantId, rrn: &Rrn) -> Vec<u8> {
        let mut k = merchant.as_bytes().to_vec();
        k.extend_from_slice(rrn.as_bytes());
        k
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

    pub fn rule(merchant: &MerchantId, id: u64) -> Vec<u8> {
        let mut k = merchant.as_bytes().to_vec();
        k.extend_from_slice(&id.to_be_bytes());
        k
    }
}
