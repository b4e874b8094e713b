//! Settlement: closing confirmed club purchases, bank-card lookup fees and
//! club refunds into one batch per merchant, and exporting the batches.
//!
//! A run with a cut-off takes every unsettled item confirmed at or before
//! the cut-off. Per merchant, a few thousand items per transaction, it
//! marks the items settled, adds them to the merchant's batch and moves
//! their net payable to the clearing account, so every step leaves the
//! ledger consistent and a crash mid-run leaves a smaller batch (the next
//! run takes the rest). A merchant's batch closes once it reaches
//! [`MAX_BATCH_ITEMS`] and another opens. A batch is due on the next
//! working day after the run. A settled purchase can still be
//! refunded (the refund goes into the next batch) but no longer reversed.
//!
//! **Finding the items.** A run reads the transactions in RRN order (the
//! order they were created) from a cursor kept in `meta`, and leaves the
//! cursor at the first one that may still become an item: one not
//! [finished](Txn::finished) that this run did not settle (a hold, a
//! purchase confirmed after the cut-off, or an item a stopped run did not
//! reach). It reads only RRNs below an id it takes first, inside a
//! transaction. On a ledger one process owns, transactions run one at a
//! time and take their ids as they run, so every transaction with a lower
//! id has committed by then and the run sees it: every transaction before
//! the cursor is finished, and a finished transaction stays finished, so no
//! item is ever left behind it.
//!
//! So a confirm writes nothing for settlement there. Up to record format 8
//! it indexed its item as unsettled (`unsettled`, merchant ‖ RRN), one
//! more key for each confirm to insert and each settlement to remove: 6% of
//! a discount flow's instructions and 14% of the bytes it wrote. A run
//! reads that index too, wherever the cursor is, and removes each entry as
//! its item settles.
//!
//! On a ledger several nodes share, each node takes its ids in blocks, so
//! a transaction one node makes now can have a lower RRN than one another
//! node made long before, which the cursor may have passed: holds and
//! items lie behind it there, and a confirm still indexes its item
//! ([`item_confirmed`]), so the index finds what the cursor cannot. The
//! cursor still finds what the index does not hold: items an embedded
//! ledger confirmed before it was copied onto a shared one. (A restore into
//! an embedded ledger drops the cursor, see `backup`.)

use std::collections::BTreeMap;

use clubswitch_wire::{MerchantId, ProcessingCode, Rrn};
use serde::Serialize;

use crate::core::Core;
use crate::error::Result;
use crate::expiry::successor;
use crate::ledger;
use crate::model::{
    keys, AccountKey, JournalKind, Merchant, SettlementBatch, Txn, TxnState, UnixTime,
};
use crate::storage::{Durable, Range, Table, Tx, TxResult};

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
/// 45-85 ms under load, which was the soak's p999 while a settlement ran.
/// Before each step the run rests as long as the previous step that wrote
/// took, so the terminals' queue drains between steps (a run takes about
/// twice as long).
pub const ITEMS_PER_TRANSACTION: usize = 256;
/// A batch closes once it has this many items and the merchant's next
/// items open another. The batch record, which lists its items, is
/// rewritten with each step, so this bounds what a step rewrites (about
/// 50 KB) and what the steps of one batch write in all (16 records of
/// 25 KB on average, about 100 bytes per item).
pub const MAX_BATCH_ITEMS: usize = 4_096;

/// What a settlement run made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The batches it made or added to, in the order it made them.
    pub batches: Vec<SettlementBatch>,
    /// Whether it went through every item it found. `false`: it was told
    /// to stop, and what it did not reach is left for the next run.
    pub complete: bool,
}

/// Sleeps for `rest` between two steps of a run, or less once `stop` says
/// so (looked at every 10 ms): a stop waits for the step under way, not
/// for the rest after it too.
fn rest_unless_stopped(rest: std::time::Duration, stop: &dyn Fn() -> bool) {
    if rest.is_zero() {
        return;
    }
    let until = std::time::Instant::now() + rest;
    while !stop() {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(10)));
    }
}

/// Where the day of the last daily settlement is kept (a local day number).
const DAILY_DONE: &[u8] = b"daily_settlement_day";

/// `meta` keys: a batch whose files are not written yet, under its id,
/// holding how many items it had then. Put by each step that makes or
/// grows the batch, in that step's transaction; taken away once files of
/// that many items are durable ([`Settlement::mark_filed`]). So a run
/// whose files could not be written (a full disk) leaves its batches to
/// the next run's files, on whichever node runs it, and a batch another
/// node grew after it was read for its files stays to be filed again.
const UNFILED: &[u8] = b"unfiled_batch/";

fn unfiled_key(id: u64) -> Vec<u8> {
    let mut k = UNFILED.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// `meta` key: the transaction key the next run reads from (see the module
/// comment).
pub(crate) const CURSOR: &[u8] = b"settlement_cursor";

/// Whether `t` goes into a run with `cutoff`: a confirmed item of a kind
/// that settles, confirmed by the cut-off, not settled yet. Checked again
/// inside each step's transaction.
fn is_item(t: &Txn, cutoff: UnixTime) -> bool {
    t.state == TxnState::Confirmed
        && t.settles()
        && t.settled.is_none()
        && t.confirmed.is_some_and(|c| c <= cutoff)
}

/// Records, in a confirm's transaction, that it made `rrn` of `merchant`
/// an item: in the index of unsettled items where the ledger is shared
/// (see the module comment); nothing elsewhere.
pub(crate) fn item_confirmed(tx: &Tx<'_>, merchant: &MerchantId, rrn: &Rrn) -> TxResult<()> {
    if !tx.shared() {
        return Ok(());
    }
    tx.mark(Table::Unsettled, &keys::unsettled(merchant, rrn))
}

/// The items a run found, and where its scan says the next run may start.
struct Found {
    /// Candidates by merchant, each merchant's in RRN order: the items the
    /// scan found and everything the index names (each step checks them
    /// again).
    items: BTreeMap<MerchantId, Vec<Rrn>>,
    /// Where the scan began.
    from: Vec<u8>,
    /// The key of the first transaction read that may still become an item
    /// and is not one now; else just past the last one read (or where the
    /// scan began, if it read none).
    resume: Vec<u8>,
    /// Whether the index of unsettled items holds anything (its entries go
    /// as their items settle).
    indexed: bool,
}

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
        // The archive takes no batch's list while this runs: the batches
        // it makes are written whole, list and all, from `open` at each
        // step.
        let _running = self
            .core
            .settling
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = self.find(cutoff)?;
        let mut resume = found.resume.clone();
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
        let per_transaction = per_transaction.max(1);
        'merchants: for (merchant, rrns) in &found.items {
            let merchant = *merchant;
            let mut open: Option<SettlementBatch> = None;
            for (step_no, chunk) in rrns.chunks(per_transaction).enumerate() {
                let id = match &open {
                    Some(b) => b.id,
                    None => self.core.store.next_id()? + 1,
                };
                rest_unless_stopped(std::mem::take(&mut rest), stop);
                if stop() {
                    // Every step so far left the ledger consistent; the
                    // open batch is as its last step wrote it. The items
                    // not reached keep the cursor before them.
                    out.extend(open);
                    complete = false;
                    let unreached = &rrns[step_no * per_transaction..];
                    resume = first_left(&found, &merchant, unreached, resume);
                    break 'merchants;
                }
                let step = std::time::Instant::now();
                let settled_before = open.as_ref().map_or(0, |b| b.items.len());
                let batch = self.core.store.transaction(|tx| {
                    let mut b = match &open {
                        Some(b) => b.clone(),
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
                            items_archived: 0,
                        },
                    };
                    let (items_before, net_before) = (b.items.len(), b.net);
                    for rrn in chunk {
                        // Not an item (any more): reversed or settled by
                        // another run since the scan, or named by the
                        // index and confirmed after the cut-off.
                        let mut t = match tx.get_each::<Txn>(Table::Txns, rrn.as_bytes())? {
                            Some(Ok(t)) => t,
                            None => continue,
                            // Left, with its index entry on a shared
                            // ledger: settled once repaired.
                            Some(Err(e)) => {
                                tracing::error!(%rrn, "settlement passes over a transaction it cannot read: {e}");
                                continue;
                            }
                        };
                        if !is_item(&t, cutoff) {
                            continue;
                        }
                        add_item(&mut b, &t)?;
                        t.settled = Some(id);
                        tx.put(Table::Txns, rrn.as_bytes(), &t)?;
                        if found.indexed {
                            tx.remove(Table::Unsettled, &keys::unsettled(&merchant, rrn))?;
                        }
                    }
                    if b.items.len() == items_before {
                        return Ok(b);
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
                    tx.put(Table::Meta, &unfiled_key(id), &b.item_count())?;
                    Ok(b)
                })?;
                // Settlement then holds the ledger at most half the time,
                // and the terminals' queue drains between its steps.
                if batch.items.len() > settled_before {
                    rest = step.elapsed();
                }
                if batch.items.len() >= max_items {
                    out.push(batch);
                    open = None;
                } else if !batch.items.is_empty() {
                    open = Some(batch);
                }
            }
            out.extend(open);
        }
        // Every item before `resume` is settled now: the next run starts
        // there. Not in a step's transaction: a cursor left behind by a
        // crash only makes the next run read more.
        self.core.store.put(Table::Meta, CURSOR, &resume)?;
        let settled = Settled {
            batches: out,
            complete,
        };
        Ok(Durable::new(settled, self.core.store.durable_since(mark)))
    }

    /// The items of a run with `cutoff`, and where the next run may start
    /// (see the module comment). Read outside any transaction (a
    /// backend need not scan inside one); each step checks its items again.
    fn find(&self, cutoff: UnixTime) -> Result<Found> {
        let store = &self.core.store;
        let from: Vec<u8> = store.get(Table::Meta, CURSOR)?.unwrap_or_default();
        // Every transaction with a lower id has committed once this one
        // runs, on a ledger one process owns (see the module comment).
        let bound = store.transaction(|tx| tx.next_id())?;
        let to = Rrn::from_sequence(bound.saturating_add(1));
        let mut items: BTreeMap<MerchantId, Vec<Rrn>> = BTreeMap::new();
        let mut resume = None;
        let mut last = None;
        for item in store.scan_each::<Txn>(Table::Txns, Range::Between(&from, to.as_bytes())) {
            let (key, t) = item?;
            // A record that does not decode may be an item: the next run
            // starts no later than it, so it is settled once it is
            // repaired, and this run settles the rest.
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(
                        rrn = %String::from_utf8_lossy(&key),
                        "settlement passes over a transaction it cannot read: {e}"
                    );
                    if resume.is_none() {
                        resume = Some(key.clone());
                    }
                    last = Some(key);
                    continue;
                }
            };
            if is_item(&t, cutoff) {
                items.entry(t.merchant).or_default().push(t.rrn);
            } else if resume.is_none() && !t.finished() {
                resume = Some(key.clone());
            }
            last = Some(key);
        }
        let resume = resume
            .or_else(|| last.map(|k| successor(&k)))
            .unwrap_or_else(|| from.clone());
        let mut indexed = false;
        for key in store.keys_in(Table::Unsettled, b"", &[0xFF]) {
            indexed = true;
            if let Some((m, r)) = keys::unsettled_parts(&key?) {
                items.entry(m).or_default().push(r);
            }
        }
        // The index may name what the scan found: each item once, in order.
        for rrns in items.values_mut() {
            rrns.sort_unstable();
            rrns.dedup();
        }
        Ok(Found {
            items,
            from,
            resume,
            indexed,
        })
    }

    /// Every settlement batch, oldest first.
    pub fn batches(&self) -> Result<Vec<SettlementBatch>> {
        self.core.store.values(Table::Settlements, b"")
    }

    /// The batches whose files are not written yet, by id: the last run's,
    /// and any an earlier run could not file. Waits for any run under way
    /// in this process (the daily one while an operator's ends), so no
    /// batch is read while a run still grows it: filed half, it would be
    /// filed again whole. (Runs on other nodes of a shared ledger are not
    /// waited for: one node holds the daily job.)
    pub fn unfiled(&self) -> Result<Vec<SettlementBatch>> {
        let _quiet = self
            .core
            .settling
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys: Vec<Vec<u8>> = self
            .core
            .store
            .scan_keys(Table::Meta, UNFILED)
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(id) = key.get(UNFILED.len()..) else {
                continue;
            };
            if let Some(b) = self.core.store.get(Table::Settlements, id)? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// Records that files of `batches`, as they are here, are written (and
    /// durable). A batch that has grown since it was read keeps its mark:
    /// its files do not hold all of it.
    pub fn mark_filed(&self, batches: &[SettlementBatch]) -> Result<Durable<()>> {
        self.core.store.transaction_durable(|tx| {
            for b in batches {
                let key = unfiled_key(b.id);
                let marked = tx.get::<u64>(Table::Meta, &key)?;
                if marked.is_some_and(|n| n <= b.item_count()) {
                    tx.remove(Table::Meta, &key)?;
                }
            }
            Ok(())
        })
    }
}

/// Where the next run starts when this one stopped before `unreached`,
/// items of `merchant`: at the earliest of `resume`, those items, and the
/// items of the merchants after it (none of which it reached either).
/// Items before where the scan began came from the index, which finds them
/// again.
fn first_left(found: &Found, merchant: &MerchantId, unreached: &[Rrn], resume: Vec<u8>) -> Vec<u8> {
    let left = found
        .items
        .range(merchant..)
        .skip(1)
        .flat_map(|(_, rrns)| rrns.iter())
        .chain(unreached)
        .map(|r| r.as_bytes().as_slice())
        .filter(|r| *r >= found.from.as_slice())
        .min();
    match left {
        Some(r) if r < resume.as_slice() => r.to_vec(),
        _ => resume,
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
    b.items.push(t.rrn);
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
            b.item_count(),
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
    /// How many items it settled.
    pub item_count: u64,
    /// The RRNs of its items: all of them until the archive takes the
    /// list, then none (`item_count` still counts them). The archive takes
    /// it once the batch is `archive.after_secs` old and the archive holds
    /// every transaction it lists, after every earlier batch's. The archive
    /// files keep those transactions, each naming its batch.
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
            item_count: self.item_count(),
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

#[cfg(test)]
mod tests {
    use super::rest_unless_stopped;
    use std::cell::Cell;
    use std::time::Duration;

    #[test]
    fn a_rest_between_steps_ends_when_the_stop_comes() {
        // A long rest, and a stop on the third look: the rest looks again
        // and again, and ends at the stop (a rest that only slept would
        // look no time, and fail here after ten seconds).
        let looked = Cell::new(0);
        let stop = || {
            looked.set(looked.get() + 1);
            looked.get() >= 3
        };
        rest_unless_stopped(Duration::from_secs(10), &stop);
        assert_eq!(looked.get(), 3);
    }

    #[test]
    fn no_rest_asks_nothing() {
        let looked = Cell::new(0);
        rest_unless_stopped(Duration::ZERO, &|| {
            looked.set(looked.get() + 1);
            false
        });
        assert_eq!(looked.get(), 0);
    }
}
