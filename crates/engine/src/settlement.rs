//! Settlement: closing confirmed club purchases, bank-card lookup fees and
//! club refunds into one batch per merchant, and exporting the batches.
//!
//! A run with a cut-off takes every unsettled item confirmed at or before
//! the cut-off. Per merchant, a few hundred items per transaction, it
//! marks the items settled, adds them to the merchant's batch and moves
//! their net payable to the clearing account, so every step leaves the
//! ledger consistent and a crash mid-run leaves a smaller batch (the next
//! run takes the rest). A merchant's batch closes once it reaches
//! [`MAX_BATCH_ITEMS`] and another opens. A batch is due on the next
//! working day after the run. A settled purchase can still be
//! refunded (the refund goes into the next batch) but no longer reversed.
//!
//! A batch is stored as its record (key: its id), whose totals each step
//! rewrites, and one record per step listing the items that step added
//! (key: the batch id, then the index of the step's first item), so a
//! step writes what it settled and not the whole batch again. The records
//! of one batch sit together in key order; [`stored_batches`] reads them back as
//! one. A batch settled by format 7 lists its items in its own record and
//! has no item records.

use clubswitch_wire::{MerchantId, ProcessingCode, Rrn};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::ledger;
use crate::model::{keys, AccountKey, JournalKind, Merchant, Txn, UnixTime};
use crate::storage::{Durable, Store, Table, TxResult};

/// Settlement: closing confirmed items into batches per merchant.
pub struct Settlement<'a> {
    core: &'a Core,
}

impl<'a> Settlement<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Settlement { core }
    }
}

/// Items settled per transaction: a busy merchant's day is settled in
/// steps, so the terminals' transactions are never held up for long and
/// the run's memory stays small. Each step leaves the ledger consistent:
/// the batch record, its items and its journal entry move together.
///
/// A step holds the embedded ledger while it runs, and a terminal's
/// transaction that arrives then waits for it: 2,048 items held it for
/// 45-85 ms under load, which was the soak's p999 while a settlement ran;
/// 256 items about 2.5 ms (p50; 0.8 ms reading and 1.5 ms committing
/// their 500-odd writes). Before each step the run rests as long as the
/// previous step that wrote took, so the terminals' queue drains between
/// steps (a run takes about twice as long).
///
/// Not fewer: 64-item steps held the ledger about 0.7 ms and gave the
/// 30-minute soak a lower p99, but its live ledger grew by about 90 MB a
/// minute once archiving ran (sled's doing; not understood yet), where
/// 256-item steps keep it flat.
pub const ITEMS_PER_TRANSACTION: usize = 256;
/// A batch closes once it has this many items and the merchant's next
/// items open another: each batch is one bank transfer, and one record
/// listing every item when read back.
pub const MAX_BATCH_ITEMS: usize = 4_096;

/// One merchant's settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementBatch {
    pub id: u64,
    pub merchant: MerchantId,
    pub settlement_account: String,
    pub cutoff: UnixTime,
    pub created: UnixTime,
    /// Due date, days since 1970-01-01 (local).
    pub due_day: i64,
    /// The RRNs settled into the batch. Stored in the item records of
    /// the steps that added them (a format-7 batch: here); the batch's own
    /// record leaves this empty, so read batches with [`stored_batches`].
    pub items: Vec<Rrn>,
    /// Confirmed club purchases.
    pub gross: u64,
    /// Discounts given on bank-card lookups (informational: paid by the
    /// merchant at the till, not through the switch).
    pub discounts: u64,
    /// Fees on purchases and lookups, less fees returned with refunds.
    pub fees: i64,
    /// Club refunds.
    pub refunds: u64,
    /// What the network pays the merchant (negative: what it owes).
    pub net: i64,
}

/// What a settlement run made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The batches it made or added to, in the order it made them.
    pub batches: Vec<SettlementBatch>,
    /// Whether it went through every item it found. `false`: it was told
    /// to stop, and what it did not reach is left for the next run.
    pub complete: bool,
}

/// Where the day of the last daily settlement is kept (a local day number).
const DAILY_DONE: &[u8] = b"daily_settlement_day";

impl Settlement<'_> {
    /// The local day the daily settlement last ran for, on any node.
    pub fn daily_done(&self) -> Result<Option<i64>> {
        self.core.store.get::<i64>(Table::Meta, DAILY_DONE)
    }

    /// Records that the daily settlement of `day` ran, so no node runs it
    /// again that day (kept in the ledger: it survives a restart and is
    /// seen by the node that takes over the job).
    pub fn mark_daily_done(&self, day: i64) -> Result<Durable<()>> {
        self.core.store.transaction_durable(|tx| {
            let done: Option<i64> = tx.get(Table::Meta, DAILY_DONE)?;
            if done.is_some_and(|d| d >= day) {
                return Ok(());
            }
            tx.put(Table::Meta, DAILY_DONE, &day)
        })
    }

    /// Settles everything confirmed up to `cutoff`. Returns the new batches.
    pub fn run(&self, cutoff: UnixTime, now: UnixTime) -> Result<Durable<Vec<SettlementBatch>>> {
        Ok(self.run_until(cutoff, now, &|| false)?.map(|s| s.batches))
    }

    /// [`Settlement::run`] that ends before its next step once `stop`
    /// says so (the daemon is stopping), with the batches made until then.
    /// What it did not reach stays unsettled for the next run.
    pub fn run_until(
        &self,
        cutoff: UnixTime,
        now: UnixTime,
        stop: &dyn Fn() -> bool,
    ) -> Result<Durable<Settled>> {
        self.run_in_steps(cutoff, now, ITEMS_PER_TRANSACTION, MAX_BATCH_ITEMS, stop)
    }

    /// [`Settlement::run_until`] with `per_transaction` items per step and
    /// batches closing at `max_items` (tests use small ones).
    pub fn run_in_steps(
        &self,
        cutoff: UnixTime,
        now: UnixTime,
        per_transaction: usize,
        max_items: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<Durable<Settled>> {
        // Gather candidates outside the transactions (a backend need not scan inside
        // one); each merchant's transaction re-checks every item.
        let mut by_merchant: Vec<(MerchantId, Vec<Rrn>)> = Vec::new();
        for key in self.core.store.keys_in(Table::Unsettled, b"", &[0xFF]) {
            let key = key?;
            if key.len() != 27 {
                continue;
            }
            let (Ok(m), Ok(r)) = (
                MerchantId::from_bytes(&key[..15]),
                Rrn::from_bytes(&key[15..]),
            ) else {
                continue;
            };
            match by_merchant.last_mut() {
                Some((last, items)) if *last == m => items.push(r),
                _ => by_merchant.push((m, vec![r])),
            }
        }
        let due_day = self
            .core
            .cfg
            .calendar
            .next_working_day(now.local_day(self.core.cfg.utc_offset_secs));
        let mark = self.core.store.mark();
        let mut out = Vec::new();
        // How long to rest before the next step: as long as the last step
        // that wrote took, so no rest after the last step or an empty one.
        let mut rest = std::time::Duration::ZERO;
        let mut complete = true;
        'merchants: for (merchant, rrns) in by_merchant {
            // The merchant's open batch: its record as the last step wrote
            // it (no items) and the items its steps listed.
            let mut open: Option<(SettlementBatch, Vec<Rrn>)> = None;
            for chunk in rrns.chunks(per_transaction.max(1)) {
                let id = match &open {
                    Some((b, _)) => b.id,
                    None => self.core.store.next_id()? + 1,
                };
                std::thread::sleep(std::mem::take(&mut rest));
                if stop() {
                    // Every step so far left the ledger consistent; the
                    // open batch is as its last step wrote it.
                    out.extend(open.map(with_items));
                    complete = false;
                    break 'merchants;
                }
                let step = std::time::Instant::now();
                let settled_before = open.as_ref().map_or(0, |(_, items)| items.len());
                let part = items_key(id, settled_before)?;
                let (batch, added) = self.core.store.transaction(|tx| {
                    let mut b = match &open {
                        Some((b, _)) => b.clone(),
                        None => SettlementBatch {
                            id,
                            merchant,
                            settlement_account: tx
                                .get::<Merchant>(Table::Merchants, merchant.as_bytes())?
                                .map(|m| m.settlement_account)
                                .unwrap_or_default(),
                            cutoff,
                            created: now,
                            due_day,
                            items: Vec::new(),
                            gross: 0,
                            discounts: 0,
                            fees: 0,
                            refunds: 0,
                            net: 0,
                        },
                    };
                    let net_before = b.net;
                    let mut added = Vec::new();
                    for rrn in chunk {
                        let ukey = keys::unsettled(&merchant, rrn);
                        if !tx.contains(Table::Unsettled, &ukey)? {
                            continue;
                        }
                        let Some(mut t) = tx.get::<Txn>(Table::Txns, rrn.as_bytes())? else {
                            continue;
                        };
                        if t.settled.is_some() || t.confirmed.is_none_or(|c| c > cutoff) {
                            continue;
                        }
                        add_item(&mut b, &t)?;
                        added.push(t.rrn);
                        t.settled = Some(id);
                        tx.put(Table::Txns, rrn.as_bytes(), &t)?;
                        tx.remove(Table::Unsettled, &ukey)?;
                    }
                    if added.is_empty() {
                        return Ok((b, added));
                    }
                    let net = b.net - net_before;
                    ledger::post(
                        tx,
                        now,
                        JournalKind::Settlement,
                        None,
                        vec![
                            (AccountKey::Payable(merchant), -net),
                            (AccountKey::Clearing, net),
                        ],
                    )?;
                    tx.put(Table::Settlements, &id.to_be_bytes(), &b)?;
                    tx.put(Table::Settlements, &part, &added)?;
                    Ok((b, added))
                })?;
                if added.is_empty() {
                    continue;
                }
                // Settlement then holds the ledger at most half the time,
                // and the terminals' queue drains between its steps.
                rest = step.elapsed();
                let mut items = open.map(|(_, items)| items).unwrap_or_default();
                items.extend(added);
                if items.len() >= max_items {
                    out.push(with_items((batch, items)));
                    open = None;
                } else {
                    open = Some((batch, items));
                }
            }
            out.extend(open.map(with_items));
        }
        let settled = Settled {
            batches: out,
            complete,
        };
        Ok(Durable::new(settled, self.core.store.durable_since(mark)))
    }

    /// Every settlement batch, oldest first. Not a snapshot: read while a
    /// run adds to a batch, its totals and its items may be a step apart
    /// (the files a run writes come from the run itself); a closed batch
    /// does not change.
    pub fn batches(&self) -> Result<Vec<SettlementBatch>> {
        stored_batches(&self.core.store).collect()
    }
}

/// A batch's record with the items its steps listed.
fn with_items((mut b, items): (SettlementBatch, Vec<Rrn>)) -> SettlementBatch {
    b.items = items;
    b
}

/// The key of the record listing the items a step added to batch `id`,
/// the first of them the batch's `first`-th: after the batch's own key
/// (its id) and in the order of the steps.
fn items_key(id: u64, first: usize) -> Result<[u8; 12]> {
    let first = u32::try_from(first)
        .map_err(|_| EngineError::invalid("a settlement batch of more than 2^32 items"))?;
    let mut k = [0; 12];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&first.to_be_bytes());
    Ok(k)
}

/// A record as stored: its key and its value.
type Raw = Result<(Vec<u8>, Vec<u8>)>;

/// The stored settlement batches in id order, each with every item: its
/// record, then the item records of its steps, which follow it in key
/// order.
pub(crate) fn stored_batches(store: &Store) -> Batches<impl Iterator<Item = Raw> + '_> {
    Batches {
        records: store.scan_raw(Table::Settlements, b"").peekable(),
    }
}

/// See [`stored_batches`].
pub(crate) struct Batches<I: Iterator<Item = Raw>> {
    records: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = Raw>> Iterator for Batches<I> {
    type Item = Result<SettlementBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let (key, value) = match self.records.next()? {
            Ok(record) => record,
            Err(e) => return Some(Err(e)),
        };
        if key.len() != 8 {
            return Some(Err(orphan(&key)));
        }
        let mut batch = match codec::from_slice::<SettlementBatch>(&value) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let own = batch.id.to_be_bytes();
        loop {
            match self.records.peek() {
                Some(Ok((key, _))) if key.len() == 12 && key[..8] == own => {}
                // A failed read may have been one of this batch's records:
                // fail rather than give the batch without its items.
                Some(Err(_)) => return self.records.next().and_then(Result::err).map(Err),
                _ => break,
            }
            let Some(Ok((key, value))) = self.records.next() else {
                break;
            };
            // Each step's record follows the items of the steps before:
            // a gap means a record is missing.
            if !items_key(batch.id, batch.items.len()).is_ok_and(|k| k[..] == key[..]) {
                return Some(Err(EngineError::Corrupt {
                    what: "settlement batch",
                    reason: format!(
                        "batch {}: an item record (key {key:02x?}) after {} items",
                        batch.id,
                        batch.items.len()
                    ),
                }));
            }
            match codec::from_slice::<Vec<Rrn>>(&value) {
                Ok(items) => batch.items.extend(items),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(batch))
    }
}

/// A settlement record that is neither a batch nor the items of the batch
/// before it.
fn orphan(key: &[u8]) -> EngineError {
    EngineError::Corrupt {
        what: "settlement batch",
        reason: format!("a settlement record with no batch before it (key {key:02x?})"),
    }
}

fn add_item(b: &mut SettlementBatch, t: &Txn) -> TxResult<()> {
    let fee = ledger::signed(t.fee)?;
    match t.code {
        ProcessingCode::ClubPurchase => {
            b.gross += t.final_amount;
            b.fees += fee;
        }
        ProcessingCode::BankDiscount => {
            b.discounts += t.discount;
            b.fees += fee;
        }
        ProcessingCode::ClubRefund => {
            b.refunds += t.final_amount;
            b.fees -= fee;
        }
        _ => {}
    }
    b.net += t.payable_delta;
    Ok(())
}

/// The batches as CSV, one line per batch, amounts in rials.
pub fn to_csv(batches: &[SettlementBatch]) -> String {
    let mut out = String::from(
        "batch,merchant,settlement_account,due_date,items,gross,discounts,fees,refunds,net\n",
    );
    for b in batches {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            b.id,
            b.merchant.as_str().trim(),
            csv_field(&b.settlement_account),
            crate::model::iso_date(b.due_day),
            b.items.len(),
            b.gross,
            b.discounts,
            b.fees,
            b.refunds,
            b.net
        ));
    }
    out
}

/// `s` as one CSV field: quoted, its quotes doubled, when it holds a comma,
/// a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A batch as JSON shows it to people and banks' systems: ids and RRNs as
/// strings, the due date as an ISO 8601 date, times as RFC 3339 (the
/// stored record keeps raw bytes and a day number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchView {
    pub id: u64,
    pub merchant: String,
    pub settlement_account: String,
    /// RFC 3339, UTC.
    pub cutoff: String,
    pub created: String,
    /// YYYY-MM-DD (local).
    pub due_date: String,
    pub items: Vec<String>,
    pub gross: u64,
    pub discounts: u64,
    pub fees: i64,
    pub refunds: u64,
    pub net: i64,
}

impl SettlementBatch {
    pub fn view(&self) -> BatchView {
        BatchView {
            id: self.id,
            merchant: self.merchant.as_str().trim().to_owned(),
            settlement_account: self.settlement_account.clone(),
            cutoff: self.cutoff.to_rfc3339(),
            created: self.created.to_rfc3339(),
            due_date: crate::model::iso_date(self.due_day),
            items: self.items.iter().map(|r| r.as_str().to_owned()).collect(),
            gross: self.gross,
            discounts: self.discounts,
            fees: self.fees,
            refunds: self.refunds,
            net: self.net,
        }
    }
}

/// The batches as JSON ([`BatchView`]s).
pub fn to_json(batches: &[SettlementBatch]) -> String {
    let views: Vec<BatchView> = batches.iter().map(SettlementBatch::view).collect();
    serde_json::to_string_pretty(&views).unwrap_or_else(|_| "[]".into())
}

impl crate::codec::Record for SettlementBatch {}
impl crate::codec::Record for Vec<Rrn> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrn(n: u32) -> Rrn {
        Rrn::from_bytes(format!("{n:012}").as_bytes()).unwrap()
    }

    fn batch(id: u64, items: &[u32]) -> SettlementBatch {
        SettlementBatch {
            id,
            merchant: MerchantId::from_bytes(b"MERCHANT0000001").unwrap(),
            settlement_account: "IR000000000000000000000001".into(),
            cutoff: UnixTime(1_000),
            created: UnixTime(1_000),
            due_day: 12,
            items: items.iter().map(|n| rrn(*n)).collect(),
            gross: 100,
            discounts: 0,
            fees: 2,
            refunds: 0,
            net: 98,
        }
    }

    fn items(store: &Store, id: u64, first: usize, items: &[u32]) {
        let items: Vec<Rrn> = items.iter().map(|n| rrn(*n)).collect();
        store
            .put(Table::Settlements, &items_key(id, first).unwrap(), &items)
            .unwrap();
    }

    #[test]
    fn a_batch_reads_back_with_its_steps_items_and_a_format_7_batch_with_its_own() {
        let store = Store::memory().unwrap();
        // Format 7: the items in the batch's record.
        let v7 = batch(5, &[1, 2]);
        store
            .put(Table::Settlements, &5u64.to_be_bytes(), &v7)
            .unwrap();
        // Format 8: the record without items, then one record per step,
        // keyed by its first item's index, big-endian: the step from 256
        // sorts after the step from 1 (little-endian would put it first,
        // and the reader would find a gap).
        assert_eq!(
            items_key(9, 256).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0]
        );
        store
            .put(Table::Settlements, &9u64.to_be_bytes(), &batch(9, &[]))
            .unwrap();
        let many: Vec<u32> = (10..265).collect();
        items(&store, 9, 256, &[300]);
        items(&store, 9, 0, &[3]);
        items(&store, 9, 1, &many);
        store
            .put(Table::Settlements, &10u64.to_be_bytes(), &batch(10, &[]))
            .unwrap();
        items(&store, 10, 0, &[7]);

        let read = stored_batches(&store).collect::<Result<Vec<_>>>().unwrap();
        let mut nine = vec![3];
        nine.extend(&many);
        nine.push(300);
        assert_eq!(read, [v7, batch(9, &nine), batch(10, &[7])]);
    }

    #[test]
    fn item_records_without_their_batch_or_after_a_gap_are_refused_as_corrupt() {
        let store = Store::memory().unwrap();
        items(&store, 3, 0, &[1]);
        assert!(matches!(
            stored_batches(&store).next(),
            Some(Err(EngineError::Corrupt { .. }))
        ));

        let store = Store::memory().unwrap();
        store
            .put(Table::Settlements, &4u64.to_be_bytes(), &batch(4, &[]))
            .unwrap();
        items(&store, 4, 0, &[1, 2]);
        items(&store, 4, 3, &[3]);
        assert!(matches!(
            stored_batches(&store).next(),
            Some(Err(EngineError::Corrupt { .. }))
        ));
    }
}
