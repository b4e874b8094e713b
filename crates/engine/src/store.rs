//! The storage boundary. Everything the engine persists goes through
//! [`Store`] (reads, scans, ids, flush) and [`Tx`] (reads and writes inside
//! one atomic transaction), keyed by [`Table`]. Nothing else in the engine
//! touches sled, so another backend (a networked database shared by several
//! switch nodes) replaces this module alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::codec::{self, Record};
use crate::durability::{FlushMark, FlushStats, FlushTicket, GroupCommit};
use crate::error::{EngineError, Result};

/// The trees of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Format version and engine settings.
    Meta,
    Merchants,
    Terminals,
    Cards,
    Members,
    /// Customer balances and pending holds, by account key.
    Accounts,
    /// Transactions (purchases, refunds), by RRN: RRNs are issued in time
    /// order, so this is also the order holds expire in.
    Txns,
    /// Idempotency records by request key (DE 41 ‖ DE 11 ‖ DE 7).
    Requests,
    /// Journal entries by sequence number.
    Journal,
    /// Confirmed, not yet settled items: merchant ‖ RRN.
    Unsettled,
    /// Discount rules and campaign budgets by merchant ‖ rule id.
    Rules,
    /// Per-card discount allowance used: card ‖ rule ‖ day.
    Allowance,
    /// Per-card daily club spend: card ‖ day.
    DailySpend,
    /// Settlement batches by id.
    Settlements,
    /// What the archive took out of the live ledger: how far each sequence
    /// was archived, and the sums the audit needs (see `archive`).
    Archived,
    /// Merchants' loyalty programmes, by merchant.
    Programs,
    /// Members' loyalty standing (spend by month, VIP, referral), by member.
    Standing,
    /// What a confirmed purchase earned, by RRN, so a reversal or refund
    /// can take it back: written by record format 1 only (format 2 keeps it
    /// on the transaction); a take-back moves it there.
    Earnings,
    /// Member notices awaiting delivery, by sequence number.
    Outbox,
    /// Lucky draws as run, by id.
    Draws,
    /// Coalitions by name (`C` ‖ name) and each member merchant's
    /// coalition (`M` ‖ merchant).
    Coalitions,
    /// What the daily pass works through: birthdays by date (`B` ‖ month ‖
    /// day ‖ member) and by member (`b` ‖ member); and, written by record
    /// format 1 only, the lots of a member's points and store credit at a
    /// merchant (`L` ‖ member ‖ merchant), which the pass moves into the
    /// accounts.
    Daily,
}

impl Table {
    pub const ALL: [Table; 22] = [
        Table::Meta,
        Table::Merchants,
        Table::Terminals,
        Table::Cards,
        Table::Members,
        Table::Accounts,
        Table::Txns,
        Table::Requests,
        Table::Journal,
        Table::Unsettled,
        Table::Rules,
        Table::Allowance,
        Table::DailySpend,
        Table::Settlements,
        Table::Archived,
        Table::Programs,
        Table::Standing,
        Table::Earnings,
        Table::Outbox,
        Table::Draws,
        Table::Coalitions,
        Table::Daily,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Merchants => "merchants",
            Table::Terminals => "terminals",
            Table::Cards => "cards",
            Table::Members => "members",
            Table::Accounts => "accounts",
            Table::Txns => "txns",
            Table::Requests => "requests",
            Table::Journal => "journal",
            Table::Unsettled => "unsettled",
            Table::Rules => "rules",
            Table::Allowance => "allowance",
            Table::DailySpend => "daily_spend",
            Table::Settlements => "settlements",
            Table::Archived => "archived",
            Table::Programs => "programs",
            Table::Standing => "standing",
            Table::Earnings => "earnings",
            Table::Outbox => "outbox",
            Table::Draws => "draws",
            Table::Coalitions => "coalitions",
            Table::Daily => "daily",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An error inside a transaction: aborts it (and everything it wrote).
pub type TxError = ConflictableTransactionError<EngineError>;
pub type TxResult<T> = std::result::Result<T, TxError>;

/// Aborts the running transaction with `e`.
pub fn abort<T>(e: EngineError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Storage settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Page cache size in bytes.
    pub cache_bytes: u64,
    /// Background flush interval for what does not wait for a flush.
    pub flush_every_ms: Option<u64>,
    /// Whether a flush ends with `fdatasync` (see [`DiskSync`]). Only a
    /// test turns it off, to show that the power-loss test catches the
    /// loss it prevents.
    pub fdatasync: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_bytes: 256 * 1024 * 1024,
            flush_every_ms: Some(200),
            fdatasync: true,
        }
    }
}

/// One open sled database and its trees.
struct Open {
    db: sled::Db,
    trees: Box<[sled::Tree]>,
    /// Added to sled's ids: a ledger restored from a backup goes on from
    /// the ids its source had issued (`meta` key `id_base`).
    id_base: AtomicU64,
    /// What makes a flush durable; `None` for a temporary store (or with
    /// [`StoreConfig::fdatasync`] off).
    sync: Option<DiskSync>,
}

impl Open {
    /// Writes out everything committed so far and makes it durable.
    fn flush(&self) -> std::result::Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())?;
        match &self.sync {
            Some(sync) => sync.sync().map_err(|e| format!("fdatasync: {e}")),
            None => Ok(()),
        }
    }
}

/// What sled's own flush leaves undone, done after it.
///
/// sled 0.34 ends a flush of its log with `sync_file_range`, which writes
/// the pages out but neither the disk's volatile write cache nor the
/// metadata needed to find them (a grown file's size): after a power cut a
/// flushed write can be gone. It also never syncs the files it keeps large
/// pages in (`blobs/`), nor the directory after renaming a snapshot into
/// place. So a durable flush is sled's flush followed by this: every blob
/// file not yet synced, the directories whose entries changed, and an
/// `fdatasync` of the log file. The flusher thread runs it once per round
/// for every operation waiting, so its cost is shared.
struct DiskSync {
    dir: PathBuf,
    /// sled's log file (`db`).
    log: std::fs::File,
    /// Entries of the ledger directory and of `blobs/` as last synced.
    seen: std::sync::Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    dir: Vec<std::ffi::OsString>,
    blobs: Vec<std::ffi::OsString>,
}

impl DiskSync {
    /// Opens the log of the sled database in `dir` and syncs what opening
    /// it may have created and sled never syncs: its files (`conf` among
    /// them, without which it does not open), the directory and its name.
    fn open(dir: &Path) -> std::io::Result<DiskSync> {
        let log = std::fs::File::open(dir.join("db"))?;
        for name in names(dir)? {
            let path = dir.join(name);
            if path.is_file() {
                std::fs::File::open(path)?.sync_all()?;
            }
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::durable_file::sync_dir(parent)?;
        }
        let sync = DiskSync {
            dir: dir.to_path_buf(),
            log,
            seen: std::sync::Mutex::new(Seen::default()),
        };
        sync.sync()?;
        Ok(sync)
    }

    fn sync(&self) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let blobs_dir = self.dir.join("blobs");
        let blobs = names(&blobs_dir)?;
        let new: Vec<_> = blobs
            .iter()
            .filter(|b| seen.blobs.binary_search(b).is_err())
            .collect();
        for b in &new {
            std::fs::File::open(blobs_dir.join(b))?.sync_data()?;
        }
        if !new.is_empty() {
            crate::durable_file::sync_dir(&blobs_dir)?;
        }
        seen.blobs = blobs;
        let entries = names(&self.dir)?;
        if entries != seen.dir {
            crate::durable_file::sync_dir(&self.dir)?;
            seen.dir = entries;
        }
        self.log.sync_data()
    }
}

/// The names in `dir`, sorted; none if it does not exist.
fn names(dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
    let mut out = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<Vec<_>>>()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    out.sort_unstable();
    Ok(out)
}

impl Open {
    fn tree(&self, table: Table) -> &sled::Tree {
        &self.trees[table.index()]
    }
}

/// What every clone of a [`Store`] shares.
struct Shared {
    /// The open database; `None` while it is being reopened.
    current: ArcSwapOption<Open>,
    /// A write failed: sled refuses everything after an I/O error until the
    /// database is reopened.
    failed: AtomicBool,
    /// Where to reopen it (`None`: a temporary store, never reopened).
    reopen: Option<(PathBuf, StoreConfig)>,
    /// Every write holds it shared; a snapshot takes it exclusively for an
    /// instant, so it begins between writes (see [`Snapshot`]).
    gate: RwLock<()>,
    /// While a snapshot is read: the value each key had when it began.
    capture: ArcSwapOption<Capture>,
    /// A snapshot is being read (one at a time).
    snapshotting: AtomicBool,
}

impl Shared {
    /// Held for the length of a write, with the capture to feed.
    fn writing(&self) -> (RwLockReadGuard<'_, ()>, Option<Arc<Capture>>) {
        let gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        // Loaded under the gate: a write either ends before a snapshot
        // begins or sees its capture.
        (gate, self.capture.load_full())
    }
}

/// The engine's database.
///
/// After a storage failure (a full disk, a write error) sled fails every
/// operation until it is reopened. The store notices the failure, and a
/// recovery thread reopens the data directory once a second until it
/// succeeds; meanwhile every operation fails quickly with
/// [`EngineError::Unavailable`] or the storage error, so the switch answers
/// 96 and approves nothing. Whatever was not flushed before the failure is
/// lost exactly as in a crash.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    flusher: Arc<GroupCommit>,
}

/// The group-commit flusher flushes whichever database is open.
struct FlushCurrent(Arc<Shared>);

impl crate::durability::Flush for FlushCurrent {
    fn flush(&self) -> std::result::Result<(), String> {
        let Some(open) = self.0.current.load_full() else {
            return Err("the ledger is being reopened after a storage failure".into());
        };
        let result = open.flush();
        if result.is_err() {
            self.0.failed.store(true, Ordering::Release);
        }
        result
    }
}

impl Store {
    /// Opens (creating if needed) the data directory `path`.
    pub fn open(path: &Path, cfg: &StoreConfig) -> Result<Store> {
        let open = Self::open_db(path, cfg)?;
        let store = Self::from_open(open, Some((path.to_path_buf(), cfg.clone())));
        let shared = Arc::downgrade(&store.shared);
        let flusher = Arc::downgrade(&store.flusher);
        let spawned = std::thread::Builder::new()
            .name("clubswitch-storage-recovery".into())
            .spawn(move || recovery(&shared, &flusher));
        if let Err(e) = spawned {
            tracing::error!("starting the storage recovery thread: {e}");
        }
        Ok(store)
    }

    /// A throwaway store in a temporary directory (tests, benchmarks).
    pub fn temporary() -> Result<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Self::from_open(Self::trees(db)?, None))
    }

    fn open_db(path: &Path, cfg: &StoreConfig) -> Result<Open> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cfg.cache_bytes)
            .flush_every_ms(cfg.flush_every_ms)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let mut open = Self::trees(db)?;
        Self::check_format(&open)?;
        open.sync = Some(DiskSync::open(path).map_err(sled::Error::Io)?);
        if !cfg.fdatasync {
            tracing::error!(
                "fdatasync is off: a power cut can lose operations the switch answered as done (test setting only)"
            );
            open.sync = None;
        }
        Ok(open)
    }

    fn trees(db: sled::Db) -> Result<Open> {
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let id_base = match trees[Table::Meta.index()].get(ID_BASE)? {
            Some(raw) => codec::from_slice(&raw)?,
            None => 0,
        };
        Ok(Open {
            db,
            trees: trees.into(),
            id_base: AtomicU64::new(id_base),
            sync: None,
        })
    }

    fn from_open(open: Open, reopen: Option<(PathBuf, StoreConfig)>) -> Store {
        let shared = Arc::new(Shared {
            current: ArcSwapOption::from_pointee(open),
            failed: AtomicBool::new(false),
            reopen,
            gate: RwLock::new(()),
            capture: ArcSwapOption::empty(),
            snapshotting: AtomicBool::new(false),
        });
        Store {
            flusher: Arc::new(GroupCommit::start(FlushCurrent(Arc::clone(&shared)))),
            shared,
        }
    }

    /// Refuses a data directory written by a newer release; records the
    /// version of this one, whose records it reads whatever version they
    /// were written in (see `codec`).
    fn check_format(open: &Open) -> Result<()> {
        let meta = open.tree(Table::Meta);
        let found = meta.get(b"format_version")?;
        match found.as_deref() {
            Some([v]) if *v == codec::FORMAT_VERSION => Ok(()),
            Some([v]) if (codec::OLDEST_VERSION..codec::FORMAT_VERSION).contains(v) => {
                tracing::info!(
                    from = v,
                    to = codec::FORMAT_VERSION,
                    "data directory written by an earlier release: records are read as they are and rewritten as they change"
                );
                meta.insert(b"format_version", &[codec::FORMAT_VERSION])?;
                Ok(())
            }
            Some(v) => Err(EngineError::FormatVersion {
                found: v.first().copied().unwrap_or(0),
                supported: codec::FORMAT_VERSION,
            }),
            None => {
                meta.insert(b"format_version", &[codec::FORMAT_VERSION])?;
                Ok(())
            }
        }
    }

    /// The open database, or `Unavailable` while it is being reopened.
    fn open_now(&self) -> Result<Arc<Open>> {
        self.shared
            .current
            .load_full()
            .ok_or(EngineError::Unavailable)
    }

    /// Notes a storage error so the recovery thread reopens the database.
    fn check<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(EngineError::Storage(_)) = &r {
            self.shared.failed.store(true, Ordering::Release);
        }
        r
    }

    /// False after a storage failure until the database is reopened.
    pub fn healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire) && self.shared.current.load().is_some()
    }

    /// Runs `f` as one atomic, serializable transaction over every table.
    /// `f` may run more than once (on conflict) and must have no effect
    /// outside the transaction.
    pub fn transaction<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        let open = self.open_now()?;
        let (_gate, capture) = self.shared.writing();
        let result = open.trees[..].transaction(|trees: &Vec<TransactionalTree>| {
            let tx = Tx {
                trees,
                id_base: open.id_base.load(Ordering::Acquire),
                capture: capture.as_deref(),
            };
            f(&tx)
        });
        self.check(match result {
            Ok(v) => Ok(v),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(EngineError::Storage(e)),
        })
    }

    pub fn get<T: Record>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        let raw = self.check(self.open_now()?.tree(table).get(key).map_err(Into::into))?;
        match raw {
            Some(raw) => codec::from_slice(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// Records whose key starts with `prefix`, in key order.
    pub fn scan<T: Record>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        self.records(self.open_now().map(|o| o.tree(table).scan_prefix(prefix)))
    }

    /// Records from `from` on, in key order.
    pub fn scan_from<T: Record>(
        &self,
        table: Table,
        from: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        self.records(
            self.open_now()
                .map(|o| o.tree(table).range(from.to_vec()..)),
        )
    }

    /// Keys that start with `prefix`, in order.
    pub fn scan_keys(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.entries(self.open_now().map(|o| o.tree(table).scan_prefix(prefix)))
            .map(|item| item.map(|(k, _)| k.to_vec()))
    }

    /// Keys in `[from, to)`, in order.
    pub fn keys_in(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.entries(
            self.open_now()
                .map(|o| o.tree(table).range(from.to_vec()..to.to_vec())),
        )
        .map(|item| item.map(|(k, _)| k.to_vec()))
    }

    fn records<T: Record>(
        &self,
        iter: Result<sled::Iter>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        self.entries(iter).map(|item| {
            let (k, v) = item?;
            Ok((k.to_vec(), codec::from_slice(&v)?))
        })
    }

    /// Raw entries of a range; a storage error (or an unavailable store)
    /// is the iterator's one item.
    fn entries(
        &self,
        iter: Result<sled::Iter>,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        let (iter, unavailable) = match iter {
            Ok(iter) => (Some(iter), None),
            Err(e) => (None, Some(Err(e))),
        };
        iter.into_iter()
            .flatten()
            .map(|item| self.check(item.map_err(Into::into)))
            .chain(unavailable)
    }

    /// Stores a record outside any transaction (bookkeeping such as cursors).
    pub fn put<T: Record>(&self, table: Table, key: &[u8], value: &T) -> Result<()> {
        let raw = codec::to_vec(value)?;
        let open = self.open_now()?;
        let tree = open.tree(table);
        let (_gate, capture) = self.shared.writing();
        if let Some(c) = capture {
            self.check(c.note(table, key, || tree.get(key)).map_err(Into::into))?;
        }
        self.check(tree.insert(key, raw).map(|_| ()).map_err(Into::into))
    }

    pub fn contains(&self, table: Table, key: &[u8]) -> Result<bool> {
        self.check(
            self.open_now()?
                .tree(table)
                .contains_key(key)
                .map_err(Into::into),
        )
    }

    pub fn len(&self, table: Table) -> usize {
        self.open_now().map_or(0, |open| open.tree(table).len())
    }

    /// A unique, monotonic id that survives restarts.
    pub fn next_id(&self) -> Result<u64> {
        let open = self.open_now()?;
        let id = self.check(open.db.generate_id().map_err(Into::into))?;
        Ok(open.id_base.load(Ordering::Acquire) + id)
    }

    /// A consistent view of every table as it was at one instant between
    /// two writes, read while the switch goes on writing (an online
    /// backup). One at a time.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let open = self.open_now()?;
        if self.shared.snapshotting.swap(true, Ordering::AcqRel) {
            return Err(EngineError::invalid("a snapshot is already being taken"));
        }
        let capture = Arc::new(Capture::default());
        let next_id = {
            let _gate = self.shared.gate.write().unwrap_or_else(|p| p.into_inner());
            self.shared.capture.store(Some(Arc::clone(&capture)));
            // Every id issued so far is below this one: each write that
            // took one has committed.
            self.next_id()
        };
        // Built first, so a failure below ends the capture it began.
        let mut snapshot = Snapshot {
            store: self.clone(),
            open,
            capture,
            next_id: 0,
        };
        snapshot.next_id = next_id?;
        Ok(snapshot)
    }

    /// Writes raw records, as a [`Snapshot`] reads them, into a store no
    /// one else uses yet (a backup being made).
    pub fn import(&self, table: Table, records: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (k, v) in records {
            batch.insert(k.as_slice(), v.as_slice());
        }
        let open = self.open_now()?;
        self.check(open.tree(table).apply_batch(batch).map_err(Into::into))
    }

    /// Makes every id this store issues from now on `base` or above (a
    /// backup goes on from the ids its source issued). Never lowers it.
    pub fn raise_id_base(&self, base: u64) -> Result<()> {
        let open = self.open_now()?;
        let stored: u64 = self.get(Table::Meta, ID_BASE)?.unwrap_or(0);
        let raised = base.max(stored).max(open.id_base.load(Ordering::Acquire));
        self.put(Table::Meta, ID_BASE, &raised)?;
        open.id_base.store(raised, Ordering::Release);
        Ok(())
    }

    /// A ticket resolved once everything committed so far is on disk.
    pub fn durable(&self) -> FlushTicket {
        self.flusher.ticket()
    }

    /// Taken before a transaction whose result must be durable, for
    /// [`Store::durable_since`].
    pub fn mark(&self) -> FlushMark {
        self.flusher.mark()
    }

    /// A ticket resolved once everything committed so far is on disk, and
    /// failed if any flush failed since `mark`: a transaction that
    /// committed to a database that then failed and was reopened is not
    /// made durable by the new database's flush.
    pub fn durable_since(&self, mark: FlushMark) -> FlushTicket {
        self.flusher.ticket_since(mark)
    }

    /// Runs `f` as [`Store::transaction`] and waits until its writes are on
    /// disk.
    pub fn transaction_durable<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        let mark = self.mark();
        let v = self.transaction(f)?;
        self.durable_since(mark)
            .wait()
            .map_err(|e| EngineError::NotDurable(e.to_string()))?;
        Ok(v)
    }

    pub fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }

    /// Flushes everything now and stops the flusher once its tickets are
    /// served.
    pub fn close(&self) -> Result<()> {
        let flushed = self.open_now()?.flush();
        self.flusher.shutdown();
        flushed.map_err(EngineError::NotDurable)
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        self.check(self.open_now()?.db.size_on_disk().map_err(Into::into))
    }
}

/// Reopens the database after a storage failure, once a second until it
/// succeeds. Stops when the last store handle is dropped.
fn recovery(shared: &Weak<Shared>, flusher: &Weak<GroupCommit>) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.failed.load(Ordering::Acquire) {
            continue;
        }
        let Some((path, cfg)) = &shared.reopen else {
            continue;
        };
        // Take the failed database out of service and wait for the
        // operations still holding it to finish: sled's directory lock is
        // released only when its last handle is dropped.
        if let Some(old) = shared.current.swap(None) {
            tracing::error!("storage failure: reopening the ledger");
            // What the old database held but did not flush is gone: no
            // operation that committed to it may be reported durable.
            if let Some(f) = flusher.upgrade() {
                f.lost();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(old);
        }
        match Store::open_db(path, cfg) {
            Ok(open) => {
                shared.current.store(Some(Arc::new(open)));
                shared.failed.store(false, Ordering::Release);
                tracing::warn!("ledger reopened; the switch is taking requests again");
            }
            Err(e) => tracing::error!("reopening the ledger: {e}; retrying"),
        }
    }
}

/// Live records a snapshot reads between two looks at its capture.
const SNAPSHOT_CHUNK: usize = 256;

/// `meta` key: what sled's ids are offset by.
const ID_BASE: &[u8] = b"id_base";

/// The values keys had when a snapshot began, recorded by the first write
/// to each key after it. A key written since the snapshot began is in
/// here (it is noted before the write commits); a key not in here still
/// has the value it had then.
#[derive(Default)]
struct Capture {
    before: Mutex<Before>,
}

/// A key's value at a snapshot (`None`: it had none), by table and key.
type Before = HashMap<(Table, Vec<u8>), Option<sled::IVec>>;

impl Capture {
    fn lock(&self) -> std::sync::MutexGuard<'_, Before> {
        self.before.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before a write to `key`: records its value as `read` gives it, if
    /// no earlier write since the snapshot did. Only the first write
    /// records; whatever it read is the value at the snapshot, since any
    /// write that changed it since would have recorded first.
    fn note<E>(
        &self,
        table: Table,
        key: &[u8],
        read: impl FnOnce() -> std::result::Result<Option<sled::IVec>, E>,
    ) -> std::result::Result<(), E> {
        let k = (table, key.to_vec());
        if self.lock().contains_key(&k) {
            return Ok(());
        }
        let value = read()?;
        self.lock().entry(k).or_insert(value);
        Ok(())
    }

    /// Of records just read live from `table`, those whose key was not
    /// written since the snapshot began.
    fn unwritten(
        &self,
        table: Table,
        read: Vec<sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Vec<Result<(Vec<u8>, Vec<u8>)>> {
        let before = self.lock();
        read.into_iter()
            .filter_map(|item| match item {
                Ok((k, v)) if !before.contains_key(&(table, k.to_vec())) => {
                    Some(Ok((k.to_vec(), v.to_vec())))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e.into())),
            })
            .collect()
    }

    /// What `table` held at the snapshot of the keys written since.
    fn values(&self, table: Table) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lock()
            .iter()
            .filter(|((t, _), _)| *t == table)
            .filter_map(|((_, k), v)| Some((k.clone(), v.as_ref()?.to_vec())))
            .collect()
    }
}

/// Every table as it was when [`Store::snapshot`] was called.
///
/// The live tables are read as they are; a key written since the snapshot
/// began is skipped and its value at the snapshot (if it had one) given at
/// the end of its table instead. Writes go on meanwhile at the cost of one
/// read and a note per key written. Dropping the snapshot ends the capture.
pub struct Snapshot {
    store: Store,
    open: Arc<Open>,
    capture: Arc<Capture>,
    next_id: u64,
}

impl Snapshot {
    /// Each record of `table` as raw bytes (key, stored value), each key
    /// once, in no guaranteed order.
    pub fn records(&self, table: Table) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + '_ {
        let mut live = self.open.tree(table).iter();
        let mut chunk: std::vec::IntoIter<Result<(Vec<u8>, Vec<u8>)>> = Vec::new().into_iter();
        let mut written: Option<std::vec::IntoIter<(Vec<u8>, Vec<u8>)>> = None;
        std::iter::from_fn(move || loop {
            if let Some(next) = chunk.next() {
                return Some(next);
            }
            if let Some(w) = &mut written {
                return w.next().map(Ok);
            }
            // Records are read in chunks and checked against the capture
            // under one lock per chunk: the terminals' writes take that
            // lock too, and must not wait behind one per record.
            let read: Vec<_> = live.by_ref().take(SNAPSHOT_CHUNK).collect();
            if read.is_empty() {
                written = Some(self.capture.values(table).into_iter());
                continue;
            }
            chunk = self.capture.unwritten(table, read).into_iter();
        })
    }

    /// An id above every id issued before the snapshot.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let shared = &self.store.shared;
        shared.capture.store(None);
        shared.snapshotting.store(false, Ordering::Release);
    }
}

/// A view of every table inside one transaction.
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
    id_base: u64,
    /// The running snapshot's capture, if one is being read.
    capture: Option<&'a Capture>,
}

impl Tx<'_> {
    fn tree(&self, table: Table) -> &TransactionalTree {
        &self.trees[table.index()]
    }

    /// Before writing `key`: its value for a running snapshot.
    fn note(&self, table: Table, key: &[u8]) -> TxResult<()> {
        match self.capture {
            Some(c) => Ok(c.note(table, key, || self.tree(table).get(key))?),
            None => Ok(()),
        }
    }

    pub fn get<T: Record>(&self, table: Table, key: &[u8]) -> TxResult<Option<T>> {
        match self.tree(table).get(key)? {
            Some(raw) => codec::from_slice(&raw).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    pub fn contains(&self, table: Table, key: &[u8]) -> TxResult<bool> {
        Ok(self.tree(table).get(key)?.is_some())
    }

    pub fn put<T: Record>(&self, table: Table, key: &[u8], value: &T) -> TxResult<()> {
        let raw = codec::to_vec(value).or_else(abort)?;
        self.note(table, key)?;
        self.tree(table).insert(key, raw)?;
        Ok(())
    }

    /// Stores a key with no value (index entries).
    pub fn mark(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.note(table, key)?;
        self.tree(table).insert(key, &[][..])?;
        Ok(())
    }

    pub fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.note(table, key)?;
        self.tree(table).remove(key)?;
        Ok(())
    }

    /// A unique id (may skip numbers when the transaction retries).
    pub fn next_id(&self) -> TxResult<u64> {
        Ok(self.id_base + self.tree(Table::Meta).generate_id()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn read(snapshot: &Snapshot) -> BTreeMap<Vec<u8>, u64> {
        snapshot
            .records(Table::Members)
            .map(|r| {
                let (k, v) = r.unwrap();
                (k, codec::from_slice::<u64>(&v).unwrap())
            })
            .collect()
    }

    #[test]
    fn a_snapshot_reads_every_table_as_it_was_when_it_began() {
        let store = Store::temporary().unwrap();
        for (k, v) in [(b"a", 1u64), (b"b", 2), (b"c", 3), (b"d", 4)] {
            store.put(Table::Members, k, &v).unwrap();
        }
        let snapshot = store.snapshot().unwrap();
        assert!(store.snapshot().is_err(), "one snapshot at a time");

        // Writes after it began, in and outside transactions: a change, a
        // removal, a new key, a key written twice.
        store
            .transaction(|tx| {
                tx.put(Table::Members, b"a", &10u64)?;
                tx.remove(Table::Members, b"b")?;
                tx.put(Table::Members, b"e", &5u64)?;
                tx.put(Table::Members, b"a", &11u64)
            })
            .unwrap();
        store.put(Table::Members, b"c", &30u64).unwrap();

        // And writes while it is being read: behind it and ahead of it.
        let mut records = snapshot.records(Table::Members);
        let first = records.next().unwrap().unwrap();
        store.put(Table::Members, &first.0, &100u64).unwrap();
        store.put(Table::Members, b"d", &40u64).unwrap();
        let rest: Vec<_> = records.map(Result::unwrap).collect();
        let mut seen: BTreeMap<Vec<u8>, u64> = std::iter::once(first)
            .chain(rest)
            .map(|(k, v)| (k, codec::from_slice(&v).unwrap()))
            .collect();
        let then: BTreeMap<Vec<u8>, u64> = [(b"a", 1), (b"b", 2), (b"c", 3), (b"d", 4)]
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v))
            .collect();
        assert_eq!(seen, then);
        seen = read(&snapshot);
        assert_eq!(seen, then, "read again, the same");

        // Ended, the live tables are as written, and a new snapshot sees them.
        drop(snapshot);
        let now = read(&store.snapshot().unwrap());
        assert_eq!(now.get(b"a".as_slice()), Some(&11));
        assert_eq!(now.get(b"b".as_slice()), None);
        assert_eq!(now.get(b"d".as_slice()), Some(&40));
        assert_eq!(now.get(b"e".as_slice()), Some(&5));
    }

    #[test]
    fn a_raised_id_base_moves_every_later_id_above_it() {
        let store = Store::temporary().unwrap();
        let before = store.next_id().unwrap();
        store.raise_id_base(1_000_000).unwrap();
        assert!(store.next_id().unwrap() >= 1_000_000);
        let in_tx = store.transaction(|tx| tx.next_id()).unwrap();
        assert!(in_tx >= 1_000_000 && in_tx > before);
        store.raise_id_base(5).unwrap();
        assert!(store.next_id().unwrap() > in_tx, "never lowered");
    }
}
