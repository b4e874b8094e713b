//! Terminal transactions: the idempotency key and stored answer of a
//! request, and the purchase or refund it created.

use clubswitch_wire::{
    AmountBlock, AuthId, Currency, MerchantId, ProcessingCode, ResponseCode, Rrn, Stan, TerminalId,
    TransmissionTime,
};
use serde::{Deserialize, Serialize};

use super::earned::Earned;
use super::{AccountKey, CardHash, UnixTime};
use crate::codec::{with_tail, Record};

/// The idempotency key of a request: DE 41 ‖ DE 11 ‖ DE 7.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct RequestKey {
    pub terminal: TerminalId,
    pub stan: Stan,
    pub transmitted: TransmissionTime,
}

impl RequestKey {
    /// The key of the request's record: the Unix time DE 7 names, as seen
    /// from `now` (big-endian, so records sort by when they were sent),
    /// then DE 41 ‖ DE 11 ‖ DE 7 ([`RequestKey::first_layout_key`]). See
    /// `requests` for why, and why a retransmission meets the same key.
    pub fn to_key(&self, now: UnixTime) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&sent_key(self.transmitted.nearest_unix(now.0)));
        k[8..].copy_from_slice(&self.first_layout_key());
        k
    }

    /// The key records had up to record format 7: DE 41 ‖ DE 11 ‖ DE 7.
    pub fn first_layout_key(&self) -> [u8; 24] {
        let mut k = [0u8; 24];
        k[..8].copy_from_slice(self.terminal.as_bytes());
        k[8..14].copy_from_slice(&self.stan.to_bytes());
        k[14..].copy_from_slice(&self.transmitted.to_bytes());
        k
    }
}

/// A time as the first bytes of a request record's key: big-endian, and
/// never below 0 (so the first byte is 0 for the next two billion years,
/// below every first-layout key, which starts with a printable character).
pub(crate) fn sent_key(unix: i64) -> [u8; 8] {
    unix.max(0).to_be_bytes()
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
    pub earned: Option<Earned>,
    /// For a points purchase (009300) or refund (209300): the points it
    /// moved (format version 3).
    pub points: Option<PointsPaid>,
}

/// The points a purchase paid with at the till (profile 1.1). The rials of
/// DE 4 are in [`Txn::amount`] and [`Txn::final_amount`] as for any
/// purchase; these are the points that stand for them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct PointsPaid {
    /// Rials a point pays for, the programme's rate at the request.
    pub rate: u64,
    /// Held by the request, until the confirm, an undo or expiry ends the
    /// hold (the account's `held` includes it exactly while the purchase is
    /// `Held`).
    pub held: u64,
    /// Paid at confirm (at most `held`).
    pub paid: u64,
    /// For a purchase: given back by its refunds so far (at most `paid`);
    /// for a refund: given back by this refund.
    pub returned: u64,
}

impl Record for Txn {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 => {
                let v2 = with_tail(body, &None::<Earned>)?.into_owned();
                Ok(std::borrow::Cow::Owned(
                    with_tail(&v2, &None::<PointsPaid>)?.into_owned(),
                ))
            }
            2 => with_tail(body, &None::<PointsPaid>),
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

    /// What a confirmed purchase counts as the member's spend (toward the
    /// tier) and earns on: what the member paid, after the discount; for
    /// a purchase paid with points, nothing (it is still a visit). Refunds
    /// and reversals take back from spend what this counted, no more.
    pub fn charged(&self) -> u64 {
        match self.code {
            ProcessingCode::PointsPurchase => 0,
            _ => self.final_amount - self.discount.min(self.final_amount),
        }
    }

    /// What the purchase holds on its account while `Held`, in the
    /// account's unit (rials, or points for a points purchase).
    pub fn hold_amount(&self) -> u64 {
        match self.points {
            Some(p) => p.held,
            None => self.amount,
        }
    }

    /// Whether it can never again be held or become a settlement item: it
    /// is no longer held and, if it settles, it has settled. (A refund can
    /// still change it, and so can a reversal where it does not settle.)
    pub fn finished(&self) -> bool {
        match self.state {
            TxnState::Held => false,
            TxnState::Confirmed => self.settled.is_some() || !self.settles(),
            TxnState::Voided | TxnState::Expired | TxnState::Reversed => true,
        }
    }
}

impl Record for RequestRecord {}
