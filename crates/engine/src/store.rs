//! The storage boundary. Everything the engine persists goes through
//! [`Store`] (reads, scans, ids, flush) and [`Tx`] (reads and writes inside
//! one atomic transaction), keyed by [`Table`]. Nothing else in the engine
//! touches sled, so another backend (a networked database shared by several
//! switch nodes) replaces this module alone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::codec::{self, Record};
use crate::durability::{FlushMark, FlushStats, FlushTicket, GroupCommit};
use crate::error::{EngineError, Result};

/// The trees of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn name(self) -> &'static str {
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
        Ok(Open {
            db,
            trees: trees.into(),
            sync: None,
        })
    }

    fn from_open(open: Open, reopen: Option<(PathBuf, StoreConfig)>) -> Store {
        let shared = Arc::new(Shared {
            current: ArcSwapOption::from_pointee(open),
            failed: AtomicBool::new(false),
            reopen,
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
        let result = open.trees[..].transaction(|trees: &Vec<TransactionalTree>| {
            let tx = Tx { trees };
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
        self.check(
            self.open_now()?
                .tree(table)
                .insert(key, raw)
                .map(|_| ())
                .map_err(Into::into),
        )
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
        self.check(self.open_now()?.db.generate_id().map_err(Into::into))
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

/// A view of every table inside one transaction.
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
}

impl Tx<'_> {
    fn tree(&self, table: Table) -> &TransactionalTree {
        &self.trees[table.index()]
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
        self.tree(table).insert(key, raw)?;
        Ok(())
    }

    /// Stores a key with no value (index entries).
    pub fn mark(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.tree(table).insert(key, &[][..])?;
        Ok(())
    }

    pub fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.tree(table).remove(key)?;
        Ok(())
    }

    /// A unique id (may skip numbers when the transaction retries).
    pub fn next_id(&self) -> TxResult<u64> {
        Ok(self.tree(Table::Meta).generate_id()?)
    }
}
