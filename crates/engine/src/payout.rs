//! Payouts: paying settled batches to merchants by bank transfer, and
//! reconciling the bank's answer.
//!
//! Settlement moves what the network owes a merchant into
//! [`AccountKey::Clearing`]; a payout takes every settled batch with a
//! positive net that is not paid and not already on its way (new ones, and
//! ones the bank returned), gives each an end-to-end id naming the payout
//! and the batch, and records them as one payout file: the switch renders
//! it as an ISO 20022 `pain.001` credit transfer or a CSV for the bank.
//! The bank's statement then says, per end-to-end id, paid or returned:
//!
//! - **paid**: the amount leaves Clearing for [`AccountKey::PaidOut`] in a
//!   journal entry of its own; the item is done;
//! - **returned** (a wrong IBAN, a closed account): the item goes back into
//!   the next payout, with the bank's reason kept; if it had been booked as
//!   paid, that booking is reversed.
//!
//! Every step is one transaction, and reconciling the same statement twice
//! changes nothing the second time. A batch whose net is negative (the
//! merchant owes the network) is never paid out; the outstanding report
//! shows it.

use std::collections::BTreeMap;

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::idempotency::{Caller, Idempotency};
use crate::ledger;
use crate::model::{AccountKey, JournalKind, Merchant, SettlementBatch, UnixTime};
use crate::storage::{abort, Durable, Table, Tx, TxResult};

/// Payouts and their reconciliation.
pub struct Payouts<'a> {
    core: &'a Core,
    /// On whose behalf and under which key its money moves run.
    caller: Caller,
}

impl<'a> Payouts<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Payouts {
            core,
            caller: Caller::default(),
        }
    }

    /// These calls under the caller's idempotency key: a repeated
    /// [`Payouts::create`] or [`Payouts::reconcile`] answers as the first
    /// (see [`crate::idempotency`]).
    pub fn keyed(mut self, idem: Option<Idempotency>) -> Self {
        self.caller.idem = idem;
        self
    }

    /// These calls on behalf of `actor` (a user, a cashier, a payment
    /// gateway): the journal entries of the money they move name it.
    pub fn by(mut self, actor: Option<String>) -> Self {
        self.caller.actor = actor;
        self
    }
}

/// Where a settlement batch's transfer stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    /// In a payout file the bank has not answered for yet.
    Sent,
    /// The bank's statement shows it paid.
    Paid,
    /// The bank returned it: it goes into the next payout.
    Returned,
}

/// A return the bank reported.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Return {
    pub at: UnixTime,
    /// The payout it was returned from.
    pub payout: u64,
    /// The bank's reason (an ISO 20022 return reason code, or text).
    pub reason: String,
}

/// One settlement batch's bank transfer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayoutItem {
    /// The settlement batch it pays.
    pub batch: u64,
    pub merchant: MerchantId,
    /// The merchant's account, as it was when the batch was settled.
    pub iban: String,
    /// Rials.
    pub amount: i64,
    pub state: ItemState,
    /// The payout it was last sent in, and the end-to-end id it was sent
    /// with (one per sending: a returned item goes again under a new one).
    pub payout: u64,
    pub end_to_end: String,
    /// Earlier returns, oldest first.
    pub returns: Vec<Return>,
}

impl crate::codec::Record for PayoutItem {}

/// One payout file: the transfers sent together.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Payout {
    pub id: u64,
    pub created: UnixTime,
    /// The settlement batches it pays, in order.
    pub batches: Vec<u64>,
    /// Rials, over all its transfers.
    pub total: i64,
}

impl crate::codec::Record for Payout {}
impl crate::codec::Record for Option<Payout> {}
impl crate::codec::Record for Reconciled {}

/// What a bank statement says of one transfer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BankResult {
    pub end_to_end: String,
    pub outcome: BankOutcome,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BankOutcome {
    Paid,
    Returned { reason: String },
}

/// What a reconciliation did.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reconciled {
    pub paid: u64,
    pub returned: u64,
    /// Results for transfers already in that state (a statement read
    /// twice).
    pub unchanged: u64,
    /// End-to-end ids the switch did not send (or sent under another id
    /// since): left for a person to look at.
    pub unmatched: Vec<String>,
}

/// One merchant's standing with the network's bank transfers.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Outstanding {
    pub merchant: String,
    /// Net of every settled batch the network owes it (positive nets).
    pub settled: i64,
    /// Confirmed paid by the bank.
    pub paid: i64,
    /// Sent, awaiting the bank's answer.
    pub in_transfer: i64,
    /// Returned by the bank, to go in the next payout.
    pub returned: i64,
    /// Settled and not yet in any payout.
    pub not_sent: i64,
    /// What the merchant owes the network (batches with a negative net).
    pub owed_by_merchant: i64,
    /// Still to pay: settled − paid.
    pub outstanding: i64,
}

fn item_key(batch: u64) -> Vec<u8> {
    let mut k = vec![b'I'];
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

fn payout_key(id: u64) -> Vec<u8> {
    let mut k = vec![b'P'];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The end-to-end id of batch `batch` sent in payout `payout`: `C`, both
/// in hexadecimal, so at most 34 characters (ISO 20022 allows 35).
pub fn end_to_end(payout: u64, batch: u64) -> String {
    format!("C{payout:X}-{batch:X}")
}

/// The payout and batch an end-to-end id names.
fn parse_end_to_end(s: &str) -> Option<(u64, u64)> {
    let (p, b) = s.strip_prefix('C')?.split_once('-')?;
    Some((
        u64::from_str_radix(p, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
    ))
}

impl Payouts<'_> {
    /// A new payout of every settled batch with a positive net that is
    /// neither paid nor on its way; `None` when there is nothing to pay.
    pub fn create(&self, now: UnixTime) -> Result<Durable<Option<Payout>>> {
        let batches: Vec<SettlementBatch> = self
            .core
            .store
            .scan::<SettlementBatch>(Table::Settlements, b"")
            .filter_map(|r| match r {
                Ok((_, b)) if b.net > 0 => Some(Ok(b)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        let id = self.core.store.next_id()?;
        self.caller.moves(&self.core.store, now, |tx| {
            self.create_in(tx, &batches, id, now)
        })
    }

    fn create_in(
        &self,
        tx: &Tx<'_>,
        batches: &[SettlementBatch],
        id: u64,
        now: UnixTime,
    ) -> TxResult<Option<Payout>> {
        let mut payout = Payout {
            id,
            created: now,
            batches: Vec::new(),
            total: 0,
        };
        for b in batches {
            let key = item_key(b.id);
            let stored = tx.get::<PayoutItem>(Table::Payouts, &key)?;
            if stored
                .as_ref()
                .is_some_and(|i| i.state != ItemState::Returned)
            {
                continue;
            }
            // Where the money goes: a batch sent for the first time, to
            // the account it was settled for; one the bank returned (a
            // closed or wrong account, most often), to the merchant's
            // account now, which the operator has had the chance to
            // correct. Never to no account: the batch waits for one.
            let iban = match &stored {
                None if !b.settlement_account.trim().is_empty() => b.settlement_account.clone(),
                _ => tx
                    .get::<Merchant>(Table::Merchants, b.merchant.as_bytes())?
                    .map(|m| m.settlement_account)
                    .unwrap_or_default(),
            };
            if iban.trim().is_empty() {
                continue;
            }
            let item = match stored {
                Some(i) => PayoutItem {
                    state: ItemState::Sent,
                    payout: id,
                    end_to_end: end_to_end(id, b.id),
                    iban,
                    ..i
                },
                None => PayoutItem {
                    batch: b.id,
                    merchant: b.merchant,
                    iban,
                    amount: b.net,
                    state: ItemState::Sent,
                    payout: id,
                    end_to_end: end_to_end(id, b.id),
                    returns: Vec::new(),
                },
            };
            payout.total = payout
                .total
                .checked_add(item.amount)
                .map_or_else(|| abort(EngineError::Overflow("payout total")), Ok)?;
            payout.batches.push(b.id);
            tx.put(Table::Payouts, &key, &item)?;
        }
        if payout.batches.is_empty() {
            return Ok(None);
        }
        tx.put(Table::Payouts, &payout_key(id), &payout)?;
        Ok(Some(payout))
    }

    /// A payout and its items, in order.
    pub fn get(&self, id: u64) -> Result<Option<(Payout, Vec<PayoutItem>)>> {
        let Some(p) = self
            .core
            .store
            .get::<Payout>(Table::Payouts, &payout_key(id))?
        else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(p.batches.len());
        for b in &p.batches {
            if let Some(i) = self
                .core
                .store
                .get::<PayoutItem>(Table::Payouts, &item_key(*b))?
            {
                items.push(i);
            }
        }
        Ok(Some((p, items)))
    }

    /// Every payout, oldest first.
    pub fn list(&self) -> Result<Vec<Payout>> {
        self.core.store.values::<Payout>(Table::Payouts, b"P")
    }

    /// Applies a bank statement's results, all in one transaction.
    pub fn reconcile(&self, results: &[BankResult], now: UnixTime) -> Result<Durable<Reconciled>> {
        self.caller.moves(&self.core.store, now, |tx| {
            let mut out = Reconciled::default();
            for r in results {
                apply(tx, r, now, &mut out)?;
            }
            Ok(out)
        })
    }

    /// Every merchant's standing with the bank transfers (`merchant`: only
    /// that one).
    pub fn outstanding(&self, merchant: Option<&MerchantId>) -> Result<Vec<Outstanding>> {
        let mut by: BTreeMap<MerchantId, Outstanding> = BTreeMap::new();
        for r in self
            .core
            .store
            .scan::<SettlementBatch>(Table::Settlements, b"")
        {
            let (_, b) = r?;
            if merchant.is_some_and(|m| *m != b.merchant) {
                continue;
            }
            let o = by.entry(b.merchant).or_default();
            if b.net < 0 {
                o.owed_by_merchant -= b.net;
                continue;
            }
            o.settled += b.net;
            match self
                .core
                .store
                .get::<PayoutItem>(Table::Payouts, &item_key(b.id))?
                .map(|i| i.state)
            {
                None => o.not_sent += b.net,
                Some(ItemState::Sent) => o.in_transfer += b.net,
                Some(ItemState::Paid) => o.paid += b.net,
                Some(ItemState::Returned) => o.returned += b.net,
            }
        }
        Ok(by
            .into_iter()
            .map(|(m, mut o)| {
                o.merchant = m.as_str().trim().to_owned();
                o.outstanding = o.settled - o.paid;
                o
            })
            .collect())
    }
}

/// One settled batch on a merchant's statement.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatementLine {
    pub batch: u64,
    /// RFC 3339.
    pub settled: String,
    /// YYYY-MM-DD.
    pub due_date: String,
    pub items: u64,
    pub gross: u64,
    pub discounts: u64,
    pub fees: i64,
    pub refunds: u64,
    pub net: i64,
    /// `not_sent`, `sent`, `paid`, `returned`, or `owed_by_merchant` (a
    /// negative net).
    pub transfer: &'static str,
    /// Returns the bank reported, with their reasons.
    pub returns: Vec<String>,
}

/// A merchant's statement for a period: its settled batches and where
/// each transfer stands, with totals.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statement {
    pub merchant: String,
    pub from: String,
    pub to: String,
    pub lines: Vec<StatementLine>,
    pub gross: u64,
    pub fees: i64,
    pub refunds: u64,
    pub net: i64,
    pub paid: i64,
}

impl Payouts<'_> {
    /// `merchant`'s statement of the batches settled on local days
    /// `from..=to`.
    pub fn statement(&self, merchant: &MerchantId, from: i64, to: i64) -> Result<Statement> {
        let offset = self.core.cfg.utc_offset_secs;
        let mut st = Statement {
            merchant: merchant.as_str().trim().to_owned(),
            from: crate::model::iso_date(from),
            to: crate::model::iso_date(to),
            lines: Vec::new(),
            gross: 0,
            fees: 0,
            refunds: 0,
            net: 0,
            paid: 0,
        };
        for r in self
            .core
            .store
            .scan::<SettlementBatch>(Table::Settlements, b"")
        {
            let (_, b) = r?;
            let day = b.created.local_day(offset);
            if b.merchant != *merchant || day < from || day > to {
                continue;
            }
            let item = self
                .core
                .store
                .get::<PayoutItem>(Table::Payouts, &item_key(b.id))?;
            let transfer = match (b.net < 0, item.as_ref().map(|i| i.state)) {
                (true, _) => "owed_by_merchant",
                (false, None) => "not_sent",
                (false, Some(ItemState::Sent)) => "sent",
                (false, Some(ItemState::Paid)) => "paid",
                (false, Some(ItemState::Returned)) => "returned",
            };
            if transfer == "paid" {
                st.paid += b.net;
            }
            st.gross += b.gross;
            st.fees += b.fees;
            st.refunds += b.refunds;
            st.net += b.net;
            st.lines.push(StatementLine {
                batch: b.id,
                settled: b.created.to_rfc3339(),
                due_date: crate::model::iso_date(b.due_day),
                items: b.item_count(),
                gross: b.gross,
                discounts: b.discounts,
                fees: b.fees,
                refunds: b.refunds,
                net: b.net,
                transfer,
                returns: item
                    .map(|i| i.returns.into_iter().map(|r| r.reason).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(st)
    }
}

fn apply(tx: &Tx<'_>, r: &BankResult, now: UnixTime, out: &mut Reconciled) -> TxResult<()> {
    let unmatched = |out: &mut Reconciled| out.unmatched.push(r.end_to_end.clone());
    let Some((_, batch)) = parse_end_to_end(&r.end_to_end) else {
        unmatched(out);
        return Ok(());
    };
    let key = item_key(batch);
    let Some(mut item) = tx.get::<PayoutItem>(Table::Payouts, &key)? else {
        unmatched(out);
        return Ok(());
    };
    if item.end_to_end != r.end_to_end {
        // An earlier sending of a batch sent again since: its result was
        // applied then, or belongs to a person to look at.
        unmatched(out);
        return Ok(());
    }
    let booking = |sign: i64| -> TxResult<()> {
        ledger::post(
            tx,
            now,
            JournalKind::Payout,
            None,
            vec![
                (AccountKey::Clearing, -sign * item.amount),
                (AccountKey::PaidOut, sign * item.amount),
            ],
        )
    };
    match (&r.outcome, item.state) {
        (BankOutcome::Paid, ItemState::Sent) => {
            booking(1)?;
            item.state = ItemState::Paid;
            out.paid += 1;
        }
        (BankOutcome::Returned { reason }, ItemState::Sent | ItemState::Paid) => {
            if item.state == ItemState::Paid {
                booking(-1)?;
            }
            item.state = ItemState::Returned;
            item.returns.push(Return {
                at: now,
                payout: item.payout,
                reason: reason.clone(),
            });
            out.returned += 1;
        }
        _ => {
            out.unchanged += 1;
            return Ok(());
        }
    }
    tx.put(Table::Payouts, &key, &item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_to_end_id_names_its_payout_and_batch_and_fits_iso_20022() {
        let id = end_to_end(u64::MAX, u64::MAX);
        assert!(id.len() <= 35, "{id}");
        assert_eq!(parse_end_to_end(&end_to_end(12, 3_456)), Some((12, 3_456)));
        assert_eq!(parse_end_to_end("Cx-1"), None);
        assert_eq!(parse_end_to_end("E2E-1"), None);
    }
}
