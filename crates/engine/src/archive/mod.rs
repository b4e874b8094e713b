//! Archiving: keeping the live ledger bounded.
//!
//! The live ledger holds what the switch may still need to answer a
//! terminal or settle: pending holds, unsettled items, purchases inside the
//! refund window, recent journal entries. Everything older than a horizon
//! moves, oldest first, out of the ledger into append-only archive files (see
//! [`mod@file`]), so the ledger's size (and the embedded store's memory, which
//! grows with it)
//! follows the traffic of the horizon rather than the switch's whole life.
//!
//! - Transactions go in RRN order (the order they were created) once they
//!   are finished ([`Txn::finished`]). The first one that is not (a
//!   confirmed purchase not yet settled) stops the run there, so "archived"
//!   is always exactly the RRNs up to a point.
//! - Journal entries go in id order.
//! - A settlement batch's list of its items' RRNs goes once the archive
//!   holds every transaction it lists and the batch is older than the
//!   horizon ([`SettlementBatch::items_archived`] counts them): otherwise
//!   the live ledger would keep an RRN for every item ever settled. The
//!   archived transactions name their batch, so the files still say which
//!   items each batch had.
//!
//! The `archived` tree keeps what the audit needs to go on checking the
//! whole ledger: how far each sequence was archived and how many records,
//! the sum of each account's archived postings, and each settlement batch's
//! archived items; and the last batch whose list it took.
//! [`Archive::verify`] checks the files against it.
//!
//! A file is complete on disk before the records it holds leave the ledger, one
//! chunk per transaction. A run interrupted in between leaves a file that
//! reaches past what the ledger says was archived; the next run cuts it back, and
//! the verifier ignores what lies past that point (it is still live).

pub mod file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clubswitch_wire::Rrn;
use serde::{Deserialize, Serialize};

use crate::codec::Record;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::expiry::successor;
use crate::model::{AccountKey, JournalEntry, SettlementBatch, Txn, UnixTime};
use crate::storage::{abort, Table, Tx, TxResult};
use file::Kind;

/// The archive: moving finished history out of the live ledger into
/// archive files, and checking the files against it.
pub struct Archive<'a> {
    core: &'a Core,
}

impl<'a> Archive<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Archive { core }
    }
}

const STATE: &[u8] = b"state";
/// The id of the last settlement batch whose list of items the archive
/// took ([`Archive::drop_batch_lists`]); every batch before it is done too.
const LISTS_THROUGH: &[u8] = b"lists_through";
/// Records per archive file.
const FILE_RECORDS: usize = 50_000;

/// Records leaving the ledger per transaction: small enough not to hold up the
/// terminals' transactions for long.
const CHUNK: usize = 256;

/// Where a run writes its files, and how many records each holds at most.
#[derive(Clone, Copy)]
struct Files<'p> {
    dir: &'p Path,
    records: usize,
}

/// How far the archive reaches.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    /// Journal entries with ids up to this one are archived.
    pub journal_through: Option<u64>,
    pub journal_entries: u64,
    /// Transactions with RRNs up to this one are archived.
    pub txns_through: Option<Rrn>,
    pub transactions: u64,
}

impl ArchiveState {
    /// Whether the transaction `rrn` was archived.
    pub fn archived(&self, rrn: &Rrn) -> bool {
        self.txns_through
            .is_some_and(|t| rrn.as_bytes() <= t.as_bytes())
    }
}

/// What one archive run moved.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ArchiveRun {
    pub transactions: usize,
    pub journal_entries: usize,
    /// Daily spend and allowance counters of days long past, dropped.
    pub counters: usize,
    /// Settlement batches whose lists of items it took (their
    /// transactions archived before).
    pub batch_lists: usize,
    pub files: Vec<PathBuf>,
    /// The oldest transaction before the horizon that is not finished (held,
    /// or confirmed and not yet settled): transactions after it wait for it.
    /// `None` also when a stopped run ended before its scan came to one.
    pub waiting_on: Option<Rrn>,
    /// Whether the run went as far as the horizon allowed. `false`: a stop
    /// ended it before it was through (between two files, or before it
    /// dropped the old counters), and the next run goes on.
    pub complete: bool,
}

/// What checking the archive files against the ledger found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ArchiveCheck {
    pub files: usize,
    pub journal_entries: u64,
    pub transactions: u64,
    pub violations: Vec<String>,
}

fn account_key(key: &AccountKey) -> Vec<u8> {
    let mut k = vec![b'A'];
    k.extend_from_slice(&key.to_key());
    k
}

fn batch_key(batch: u64) -> Vec<u8> {
    let mut k = vec![b'B'];
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

fn journal_name(id: u64) -> String {
    format!("{id:020}")
}

fn state(tx: &Tx<'_>) -> TxResult<ArchiveState> {
    Ok(tx.get(Table::Archived, STATE)?.unwrap_or_default())
}

fn overflow<T>() -> TxResult<T> {
    abort(EngineError::Overflow("archived sum"))
}

impl Archive<'_> {
    /// How far the archive reaches.
    pub fn state(&self) -> Result<ArchiveState> {
        Ok(self
            .core
            .store
            .get(Table::Archived, STATE)?
            .unwrap_or_default())
    }

    /// The sum of `key`'s archived postings.
    pub(crate) fn archived_sum(&self, key: &AccountKey) -> Result<i64> {
        Ok(self
            .core
            .store
            .get::<(AccountKey, i64)>(Table::Archived, &account_key(key))?
            .map_or(0, |(_, v)| v))
    }

    /// Every account's archived postings, by account storage key.
    pub(crate) fn archived_sums(&self) -> Result<BTreeMap<Vec<u8>, (AccountKey, i64)>> {
        self.core
            .store
            .scan::<(AccountKey, i64)>(Table::Archived, b"A")
            .map(|item| item.map(|(_, (key, v))| (key.to_key(), (key, v))))
            .collect()
    }

    /// Each settlement batch's archived items' payable, by batch id.
    pub(crate) fn archived_batches(&self) -> Result<BTreeMap<u64, i64>> {
        let mut out = BTreeMap::new();
        for item in self.core.store.scan::<i64>(Table::Archived, b"B") {
            let (k, v) = item?;
            if let Some(id) = k.get(1..).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                out.insert(u64::from_be_bytes(id), v);
            }
        }
        Ok(out)
    }

    /// Moves what is older than `horizon` into archive files in `dir`:
    /// finished transactions created before it and journal entries posted
    /// before it. Also drops daily counters of days long past. One run at a
    /// time; returns what it moved.
    pub fn run(&self, horizon: UnixTime, dir: &Path) -> Result<ArchiveRun> {
        self.run_until(horizon, dir, &|| false)
    }

    /// [`Archive::run`] that ends between two files once `stop` says so
    /// (the daemon is stopping): a large backlog is otherwise moved in one
    /// run. Every file it wrote has left the ledger; the next run goes on.
    pub fn run_until(
        &self,
        horizon: UnixTime,
        dir: &Path,
        stop: &dyn Fn() -> bool,
    ) -> Result<ArchiveRun> {
        self.run_in_files(horizon, dir, FILE_RECORDS, stop)
    }

    /// [`Archive::run_until`] with files of `file_records` records (tests
    /// use small ones).
    pub fn run_in_files(
        &self,
        horizon: UnixTime,
        dir: &Path,
        file_records: usize,
        stop: &dyn Fn() -> bool,
    ) -> Result<ArchiveRun> {
        let file_records = file_records.max(1);
        let Ok(_running) = self.core.archiving.try_lock() else {
            return Err(EngineError::invalid(
                "the archive is busy (another archive run, or an audit)",
            ));
        };
        crate::durable_file::create_dir_all(dir).map_err(|e| EngineError::File {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        self.repair_archive(dir)?;
        let mut run = ArchiveRun::default();
        let files = Files {
            dir,
            records: file_records,
        };
        while !stop() && self.archive_txns(horizon, files, &mut run)? == file_records {}
        if !stop() {
            run.batch_lists = self.drop_batch_lists(horizon, stop)?;
        }
        while !stop() && self.archive_journal(horizon, files, &mut run)? == file_records {}
        if !stop() {
            run.counters = self.prune_counters(horizon)?;
            run.complete = true;
        }
        Ok(run)
    }

    /// Archives up to one file of transactions; returns how many.
    fn archive_txns(
        &self,
        horizon: UnixTime,
        files: Files<'_>,
        run: &mut ArchiveRun,
    ) -> Result<usize> {
        let from = self
            .state()?
            .txns_through
            .map(|r| successor(r.as_bytes()))
            .unwrap_or_default();
        let mut waiting_on = None;
        let (moved, file) = self.move_out(
            Kind::Transactions,
            &from,
            files,
            |t: &Txn| {
                if t.created >= horizon {
                    return false;
                }
                if !t.finished() {
                    waiting_on = Some(t.rrn);
                    return false;
                }
                true
            },
            |t| t.rrn.as_str().to_string(),
            |tx, chunk, st| {
                let mut by_batch: BTreeMap<u64, i64> = BTreeMap::new();
                for t in chunk {
                    let live: Option<Txn> = tx.get(Table::Txns, t.rrn.as_bytes())?;
                    if live.as_ref() != Some(t) {
                        return abort(EngineError::invalid(format!(
                            "transaction {} changed while being archived; the next run takes it",
                            t.rrn
                        )));
                    }
                    tx.remove(Table::Txns, t.rrn.as_bytes())?;
                    // Past the refund window nothing takes earnings back
                    // (a record of its own only if format 1 wrote it).
                    tx.remove(Table::Earnings, t.rrn.as_bytes())?;
                    if let Some(b) = t.settled {
                        let slot = by_batch.entry(b).or_default();
                        *slot = slot
                            .checked_add(t.payable_delta)
                            .map_or_else(overflow, Ok)?;
                    }
                }
                for (b, v) in by_batch {
                    let key = batch_key(b);
                    let sum: i64 = tx.get(Table::Archived, &key)?.unwrap_or(0);
                    let sum = sum.checked_add(v).map_or_else(overflow, Ok)?;
                    tx.put(Table::Archived, &key, &sum)?;
                }
                st.txns_through = chunk.last().map(|t| t.rrn);
                st.transactions += chunk.len() as u64;
                Ok(())
            },
        )?;
        run.files.extend(file);
        run.waiting_on = waiting_on;
        run.transactions += moved;
        Ok(moved)
    }

    /// Takes the item lists of settlement batches out of the live ledger,
    /// in id order from the batch after the last one it took: each batch
    /// made before `horizon` whose every listed transaction is archived,
    /// up to the first that is not. Returns how many.
    ///
    /// A settlement run adds to a batch only while it runs, writing it
    /// whole from its own copy at each step: this takes nothing while a
    /// run is under way (the next archive run does), and a run waits for
    /// it to finish.
    ///
    /// Not on a ledger several nodes share, where ids come in blocks per
    /// node: a batch made later could take an id behind the cursor, and a
    /// transaction an RRN the archive has passed (the daemon archives no
    /// such ledger).
    fn drop_batch_lists(&self, horizon: UnixTime, stop: &dyn Fn() -> bool) -> Result<usize> {
        let store = &self.core.store;
        if store.shared() {
            return Ok(0);
        }
        let _no_run = match self.core.settling.try_write() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(0),
        };
        let archived = self.state()?;
        let from = store
            .get::<u64>(Table::Archived, LISTS_THROUGH)?
            .map_or(0, |id| id.saturating_add(1));
        let ready = |b: &SettlementBatch, st: &ArchiveState| {
            b.created < horizon && b.items.iter().all(|r| st.archived(r))
        };
        let mut ids = Vec::new();
        for item in store.scan_from::<SettlementBatch>(Table::Settlements, &from.to_be_bytes()) {
            let (_, b) = item?;
            if stop() || !ready(&b, &archived) {
                break;
            }
            ids.push(b.id);
        }
        let mut dropped = 0;
        for id in ids {
            if stop() {
                break;
            }
            // Read again with the archive's state: one batch (a list of
            // up to `MAX_BATCH_ITEMS` RRNs) per transaction.
            let took = store.transaction(|tx| {
                let key = id.to_be_bytes();
                let Some(mut b) = tx.get::<SettlementBatch>(Table::Settlements, &key)? else {
                    return Ok(false);
                };
                if !ready(&b, &state(tx)?) {
                    return Ok(false);
                }
                b.items_archived = b.items_archived.saturating_add(b.items.len() as u64);
                b.items = Vec::new();
                tx.put(Table::Settlements, &key, &b)?;
                tx.put(Table::Archived, LISTS_THROUGH, &id)?;
                Ok(true)
            })?;
            if !took {
                break;
            }
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Archives up to one file of journal entries; returns how many.
    fn archive_journal(
        &self,
        horizon: UnixTime,
        files: Files<'_>,
        run: &mut ArchiveRun,
    ) -> Result<usize> {
        let from = self
            .state()?
            .journal_through
            .map_or(0, |id| id.saturating_add(1));
        let (moved, file) = self.move_out(
            Kind::Journal,
            &from.to_be_bytes(),
            files,
            |e: &JournalEntry| e.at < horizon,
            |e| journal_name(e.id),
            |tx, chunk, st| {
                let mut sums: BTreeMap<Vec<u8>, (AccountKey, i64)> = BTreeMap::new();
                for e in chunk {
                    let key = e.id.to_be_bytes();
                    if !tx.contains(Table::Journal, &key)? {
                        return abort(EngineError::invalid(format!(
                            "journal entry {} vanished while being archived",
                            e.id
                        )));
                    }
                    tx.remove(Table::Journal, &key)?;
                    for (acc, v) in &e.postings {
                        let slot = sums.entry(acc.to_key()).or_insert((acc.clone(), 0));
                        slot.1 = slot.1.checked_add(*v).map_or_else(overflow, Ok)?;
                    }
                }
                for (acc, v) in sums.into_values() {
                    let key = account_key(&acc);
                    let sum = tx
                        .get::<(AccountKey, i64)>(Table::Archived, &key)?
                        .map_or(0, |(_, s)| s);
                    let sum = sum.checked_add(v).map_or_else(overflow, Ok)?;
                    tx.put(Table::Archived, &key, &(acc, sum))?;
                }
                st.journal_through = chunk.last().map(|e| e.id);
                st.journal_entries += chunk.len() as u64;
                Ok(())
            },
        )?;
        run.files.extend(file);
        run.journal_entries += moved;
        Ok(moved)
    }

    /// The steps both kinds share: collects the records of `kind`'s table
    /// from `from` on while `take` accepts them (at most `files.records`),
    /// writes them to one file named by `name` of the first and last, then
    /// takes them out of the ledger a chunk per transaction with `commit`,
    /// which also advances the archive state. Returns how many, and the
    /// file.
    fn move_out<T: Record>(
        &self,
        kind: Kind,
        from: &[u8],
        files: Files<'_>,
        mut take: impl FnMut(&T) -> bool,
        name: impl Fn(&T) -> String,
        commit: impl Fn(&Tx<'_>, &[T], &mut ArchiveState) -> TxResult<()>,
    ) -> Result<(usize, Option<PathBuf>)> {
        let table = match kind {
            Kind::Journal => Table::Journal,
            Kind::Transactions => Table::Txns,
        };
        let mut batch: Vec<T> = Vec::new();
        for item in self.core.store.scan_from::<T>(table, from) {
            let (_, record) = item?;
            if !take(&record) {
                break;
            }
            batch.push(record);
            if batch.len() == files.records {
                break;
            }
        }
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok((0, None));
        };
        let path = file::write(files.dir, kind, &name(first), &name(last), &batch)?;
        for chunk in batch.chunks(CHUNK) {
            self.core.store.transaction(|tx| {
                let mut st = state(tx)?;
                commit(tx, chunk, &mut st)?;
                tx.put(Table::Archived, STATE, &st)
            })?;
        }
        Ok((batch.len(), Some(path)))
    }

    /// Drops per-card daily counters (club spend, discount allowance) of
    /// days before the horizon's day less one: no hold lives long enough
    /// to touch them again. Part of [`Archive::run`]; on its own for a
    /// ledger that keeps its history (a shared one), whose counters must
    /// not grow with every card and day either.
    pub fn prune_counters(&self, horizon: UnixTime) -> Result<usize> {
        let before = horizon.local_day(self.core.cfg.utc_offset_secs) - 1;
        let mut dropped = 0;
        for table in [Table::DailySpend, Table::Allowance] {
            let old: Vec<Vec<u8>> = self
                .core
                .store
                .keys_in(table, b"", &[0xFF; 64])
                .filter_map(|k| match k {
                    Ok(k) => counter_day(&k).filter(|d| *d < before).map(|_| Ok(k)),
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_>>()?;
            for chunk in old.chunks(CHUNK) {
                self.core
                    .store
                    .transaction(|tx| chunk.iter().try_for_each(|k| tx.remove(table, k)))?;
            }
            dropped += old.len();
        }
        Ok(dropped)
    }

    /// Removes leftovers of interrupted runs: temporary files, files wholly
    /// past what the ledger says was archived, and the part past it of a
    /// file that straddles it.
    fn repair_archive(&self, dir: &Path) -> Result<()> {
        let st = self.state()?;
        let (files, temporary) = file::list(dir)?;
        for t in temporary {
            file::remove(&t)?;
        }
        for f in files {
            let through = match f.kind {
                Kind::Journal => st.journal_through.map(journal_name),
                Kind::Transactions => st.txns_through.map(|r| r.as_str().to_string()),
            };
            let Some(through) = through.filter(|t| f.first <= *t) else {
                tracing::warn!(file = %f.path.display(), "removing an archive file an interrupted run left");
                file::remove(&f.path)?;
                continue;
            };
            if f.last <= through {
                continue;
            }
            tracing::warn!(file = %f.path.display(), "cutting back an archive file an interrupted run left");
            match f.kind {
                Kind::Journal => {
                    let keep: Vec<JournalEntry> = file::read(&f.path, Kind::Journal)?
                        .into_iter()
                        .filter(|e: &JournalEntry| journal_name(e.id) <= through)
                        .collect();
                    if let Some(last) = keep.last() {
                        file::write(dir, f.kind, &f.first, &journal_name(last.id), &keep)?;
                    }
                }
                Kind::Transactions => {
                    let keep: Vec<Txn> = file::read(&f.path, Kind::Transactions)?
                        .into_iter()
                        .filter(|t: &Txn| t.rrn.as_str() <= through.as_str())
                        .collect();
                    if let Some(last) = keep.last() {
                        file::write(dir, f.kind, &f.first, last.rrn.as_str(), &keep)?;
                    }
                }
            }
            file::remove(&f.path)?;
        }
        Ok(())
    }

    /// Checks the archive files in `dir` against the ledger: every file is
    /// whole, no record is archived twice, each journal entry balances, the
    /// counts match, every account's archived postings and every batch's
    /// archived items add up to the sums the ledger kept.
    pub fn verify(&self, dir: &Path) -> Result<ArchiveCheck> {
        let st = self.state()?;
        let (files, _) = file::list(dir)?;
        let mut check = ArchiveCheck {
            files: files.len(),
            ..ArchiveCheck::default()
        };
        let v = &mut check.violations;

        let mut sums: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut last_id: Option<u64> = None;
        for f in files.iter().filter(|f| f.kind == Kind::Journal) {
            let entries: Vec<JournalEntry> = match file::read(&f.path, Kind::Journal) {
                Ok(e) => e,
                Err(e) => {
                    v.push(e.to_string());
                    continue;
                }
            };
            for e in entries {
                if st.journal_through.is_none_or(|t| e.id > t) {
                    continue; // an interrupted run's: still in the ledger
                }
                if last_id.is_some_and(|l| e.id <= l) {
                    v.push(format!(
                        "journal entry {} archived twice or out of order",
                        e.id
                    ));
                }
                last_id = Some(e.id);
                check.journal_entries += 1;
                let total: i128 = e.postings.iter().map(|(_, x)| i128::from(*x)).sum();
                if total != 0 {
                    v.push(format!(
                        "archived journal entry {} does not balance ({total})",
                        e.id
                    ));
                }
                for (acc, x) in &e.postings {
                    let slot = sums.entry(acc.to_key()).or_default();
                    *slot = slot.saturating_add(*x);
                }
            }
        }
        if check.journal_entries != st.journal_entries {
            v.push(format!(
                "the ledger archived {} journal entries but the files hold {}",
                st.journal_entries, check.journal_entries
            ));
        }
        for (k, (acc, kept)) in self.archived_sums()? {
            let found = sums.remove(&k).unwrap_or(0);
            if found != kept {
                v.push(format!(
                    "{acc:?}: archived postings sum to {found} but the ledger kept {kept}"
                ));
            }
        }
        for (k, found) in sums.into_iter().filter(|(_, x)| *x != 0) {
            v.push(format!(
                "{}: archived postings sum to {found} but the ledger kept nothing",
                hex::encode(k)
            ));
        }

        let mut batches: BTreeMap<u64, i64> = BTreeMap::new();
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        let mut last_rrn: Option<Rrn> = None;
        for f in files.iter().filter(|f| f.kind == Kind::Transactions) {
            let txns: Vec<Txn> = match file::read(&f.path, Kind::Transactions) {
                Ok(t) => t,
                Err(e) => {
                    v.push(e.to_string());
                    continue;
                }
            };
            for t in txns {
                if !st.archived(&t.rrn) {
                    continue;
                }
                if last_rrn.is_some_and(|l| t.rrn.as_bytes() <= l.as_bytes()) {
                    v.push(format!(
                        "transaction {} archived twice or out of order",
                        t.rrn
                    ));
                }
                last_rrn = Some(t.rrn);
                check.transactions += 1;
                if !t.finished() {
                    v.push(format!("transaction {} was archived unfinished", t.rrn));
                }
                if let Some(b) = t.settled {
                    let slot = batches.entry(b).or_default();
                    *slot = slot.saturating_add(t.payable_delta);
                    *counts.entry(b).or_default() += 1;
                }
            }
        }
        // A batch whose list the archive took counts the transactions the
        // files hold for it.
        for item in self
            .core
            .store
            .scan::<SettlementBatch>(Table::Settlements, b"")
        {
            let (_, b) = item?;
            let found = counts.get(&b.id).copied().unwrap_or(0);
            if b.items.is_empty() && b.items_archived != found {
                v.push(format!(
                    "batch {}: {} items left its list for the archive but the files hold {found}",
                    b.id, b.items_archived
                ));
            }
        }
        if check.transactions != st.transactions {
            v.push(format!(
                "the ledger archived {} transactions but the files hold {}",
                st.transactions, check.transactions
            ));
        }
        for (b, kept) in self.archived_batches()? {
            let found = batches.remove(&b).unwrap_or(0);
            if found != kept {
                v.push(format!(
                    "batch {b}: archived items sum to {found} but the ledger kept {kept}"
                ));
            }
        }
        for (b, found) in batches {
            v.push(format!(
                "batch {b}: archived items sum to {found} but the ledger kept nothing"
            ));
        }
        Ok(check)
    }
}

/// The day a daily counter key ends with (`… ‖ day as i64, big-endian`).
fn counter_day(key: &[u8]) -> Option<i64> {
    let at = key.len().checked_sub(8)?;
    let day: [u8; 8] = key.get(at..)?.try_into().ok()?;
    Some(i64::from_be_bytes(day))
}

impl crate::codec::Record for ArchiveState {}
