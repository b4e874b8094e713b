//! The embedded backend: the ledger in a data directory, in sled (0.34), a
//! log-structured key-value store in the switch's own process. The default
//! for one node: nothing to run beside the switch. This is the only place
//! the engine touches sled.
//!
//! What sled does not give, this adds:
//! - **Durability through a power cut.** sled ends a flush of its log with
//!   `sync_file_range`, which writes the pages out but neither the disk's
//!   volatile cache nor the metadata needed to find them, and never syncs
//!   its blob files, its `conf` file or the directory after renaming a
//!   snapshot. [`DiskSync`] does, after sled's flush.
//! - **Recovery from a storage failure.** After an I/O error (a full disk)
//!   sled fails every operation until it is reopened. A recovery thread
//!   reopens the directory once a second until it succeeds; meanwhile every
//!   operation fails quickly as unavailable, so the switch answers 96 and
//!   approves nothing. Whatever was not flushed is lost as in a crash, and
//!   the next flush fails, so no operation committed before is reported
//!   durable.
//! - **Snapshots** ([`Capture`]), for online backups.
//! - **Ids that continue a restored ledger's** (`meta` key `id_base`).
//! - **Compression chosen once per ledger.** sled refuses to open a log
//!   with another compression setting than the one it was created with;
//!   [`EmbeddedConfig::compress`] applies to a new ledger, and an existing
//!   one opens with its own ([`created_compressed`]).
//! - **Transactions that do not wait for a flush** ([`Overlay`]): a
//!   transaction's body reads and its commit writes while a flush waits
//!   for the disk, and a commit does not force sled's log buffer out: a
//!   commit of several keys writes a redo record first ([`Open::apply`]).
//!   Only a commit over 64 KiB within one tree and a restore still take
//!   sled's lock alone (a sled batch), and wait for the flush in progress.
//!
//! Every table lives in one sled tree, [`LEDGER`], under its code
//! ([`Table::index`]) as the first byte of each key, as every table lives
//! in one SQL table on PostgreSQL; a terminal request's transaction may
//! touch any table. One table is kept apart, keyed the same way: the hold
//! expiry index, in [`HOLD_INDEX`] (see [`in_index`] for why, and what it
//! still holds). A ledger
//! written in
//! the first layout (a tree per table) is moved into it when it opens
//! ([`adopt_first_layout`]), which leaves a mark where a release of the
//! first layout looks for the format version, so that one refuses the
//! directory rather than start on an empty ledger; an index left in the
//! ledger tree by an earlier release moves into its own tree the same way
//! ([`Open::move_index`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::{
    redo, Backend, Body, Entries, Entry, Range, RawTx, Snapshot, Table, TxError, TxResult,
    EARLIER_HOLD_INDEX_MARK,
};
use crate::error::StorageError;

/// The tree every table lives in, but the hold expiry index.
pub const LEDGER: &str = "ledger";
/// The tree the hold expiry index ([`Table::HoldsDue`]) lives in. Not
/// `holds_due`: that is the index's tree in the first layout, which
/// [`adopt_first_layout`] would move into the ledger tree.
pub const HOLD_INDEX: &str = "hold_index";
/// The tree that holds the redo record of the last transaction that wrote
/// several keys, under [`REDO_KEY`] (see [`Overlay`]). A tree of its own:
/// no scan of a table meets it, and its leaf holds nothing else.
const REDO: &str = "redo";
const REDO_KEY: &[u8] = b"last";
/// The largest redo record written for a transaction whose keys are all in
/// one tree (a batch of 64 terminal requests needs about 40 KB, over both
/// trees). A larger transaction (a restore, an archiving step)
/// commits as a sled batch instead: its two extra log writes and its wait
/// for the flush in progress are small beside it, and a record would
/// double what it writes to the log; but only if all its keys are in one
/// tree, since a sled batch is one tree's.
const REDO_MAX_BYTES: usize = 64 * 1024;
/// `meta` key: what sled's ids are offset by.
const ID_BASE: &[u8] = b"id_base";
/// Records moved by one transaction from one tree into another (a
/// first-layout ledger adopted, an earlier release's index moved).
const MOVE_CHUNK: usize = 1024;
/// The first layout's `meta` key for the format version.
const FORMAT_KEY: &[u8] = b"format_version";
/// What the first layout's `meta` tree holds under [`FORMAT_KEY`] once the
/// ledger has moved into one tree: a version no release of that layout
/// reads, so each refuses the directory (saying it was written by a newer
/// release) instead of taking it for a new, empty ledger.
const FIRST_LAYOUT_MARK: u8 = u8::MAX;
/// Live records a snapshot reads between two looks at its capture.
const SNAPSHOT_CHUNK: usize = 256;

/// How often sled's flusher runs by default (see
/// [`EmbeddedConfig::flush_every_ms`]): up to a hundred segments (50 MB) a
/// second reclaimed. Each run on an idle ledger is a wake-up and an
/// `fsync` with nothing to write; under load the reclaiming costs CPU (the
/// runbook's Storage section has the figures).
const RECLAIM_EVERY_MS: u64 = 10;

/// Settings of the embedded ledger.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// Page cache size in bytes.
    pub cache_bytes: u64,
    /// How often sled's own flusher runs: it writes out what does not
    /// wait for a flush, and it is the only place sled reclaims its log.
    /// sled reuses a segment of its log (512 KB) once at most half of it
    /// is live: at once if nothing in it is, else after rewriting the
    /// pages still live there at the log's end, which its flusher does,
    /// finishing at most one segment each time it runs. So this interval
    /// bounds how fast the space of replaced and removed records comes
    /// back: run every 200 ms (our earlier setting; sled's default is 500),
    /// at most 2.5 MB a second, and in the 30-minute soak the file grew
    /// without end (213 MB a minute; 1,490 segments waiting in minute 2).
    /// `None`: never, so the file only grows (tests that measure writes
    /// alone).
    pub flush_every_ms: Option<u64>,
    /// Whether a flush ends with `fdatasync` (see [`DiskSync`]). Only a
    /// test turns it off, to show that the power-loss test catches the
    /// loss it prevents.
    pub fdatasync: bool,
    /// Whether a **new** ledger compresses what it writes to its log
    /// (zstd at level 1, each page and page fragment on its own). About
    /// half the disk, and so fewer bytes per flush, for more CPU in every
    /// commit, and a longer hold on sled's lock by each commit of several
    /// keys (the runbook's Storage section has the figures). An existing
    /// ledger keeps the setting it was created with: sled cannot change it.
    pub compress: bool,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            cache_bytes: 256 * 1024 * 1024,
            flush_every_ms: Some(RECLAIM_EVERY_MS),
            fdatasync: true,
            compress: false,
        }
    }
}

/// sled's parameters file in a ledger directory: its text lines (then a
/// checksum) include `use_compression: true|false`.
const SLED_CONF: &str = "conf";

/// Whether the ledger in `path` was created compressed; `None` when its
/// parameters do not say: no ledger yet, or a damaged file. sled then
/// decides as it opens the directory: it refuses damaged parameters, and
/// writes a new ledger's (synced by [`DiskSync::open`] before anything is
/// committed).
fn created_compressed(path: &Path) -> std::io::Result<Option<bool>> {
    let bytes = match std::fs::read(path.join(SLED_CONF)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"use_compression: "))
        .and_then(|v| match v {
            b"true" => Some(true),
            b"false" => Some(false),
            _ => None,
        }))
}

fn storage_error(e: sled::Error) -> StorageError {
    match e {
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => {
            StorageError::Corrupt(e.to_string())
        }
        e => StorageError::Io(e.to_string()),
    }
}

/// Each table's code and name (for tools and tests that read a closed
/// ledger straight through sled).
pub fn tables() -> impl Iterator<Item = (u8, &'static str)> {
    Table::ALL.iter().map(|t| (t.index() as u8, t.name()))
}

/// Opens a sled database with `open` (which may fail on its own, `E`),
/// again while sled says the directory is locked, for up to 3 s. A ledger
/// this process has just closed can stay locked for a moment while sled's
/// background threads let go of it; another process holding it still
/// fails, later. Public for tests that open a closed ledger directly.
pub fn when_unlocked<T, E>(
    mut open: impl FnMut() -> Result<sled::Result<T>, E>,
) -> Result<sled::Result<T>, E> {
    const LOCK_WAIT: Duration = Duration::from_secs(3);
    let started = Instant::now();
    loop {
        match open()? {
            // sled says so only in the message (an `Other` error).
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other),
        }
    }
}

/// `key` of `table` as the trees hold it: the table's code first.
fn tree_key(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(table.index() as u8);
    k.extend_from_slice(key);
    k
}

/// A tree key without its table's code.
fn table_key(key: &[u8]) -> Vec<u8> {
    key.get(1..).unwrap_or_default().to_vec()
}

/// Whether the tree key `key_in` is the hold expiry index's, kept in
/// [`HOLD_INDEX`] rather than the ledger tree.
///
/// Why a tree of its own: up to record format 9 each authorization put
/// its hold in the index and its confirm, milliseconds later, took it
/// out, so the few live entries at the index's end split and merged their
/// leaves over and over. In the ledger tree each of those splits and
/// merges was linked into its wide index nodes (up to 256 children),
/// which sled copies on every link and writes out whole every tenth:
/// about a sixth of all the ledger wrote. With the index in a small tree
/// of its own a terminal flow wrote 10-14% fewer bytes (the runbook's
/// Storage section has the figures). Since format 10 the sweep finds an
/// embedded ledger's holds among the transactions (see `expiry`), and the
/// index holds only what an earlier format or a shared ledger indexed,
/// until it is due. Both trees are in sled's one log, which a crash cuts
/// to a prefix: a redo record covers a transaction over both as over one.
fn in_index(key_in: &[u8]) -> bool {
    key_in.first() == Some(&(Table::HoldsDue.index() as u8))
}

/// The keys in `range` of `table` in `tree`, the tree that holds it.
fn tree_range(tree: &sled::Tree, table: Table, range: Range<'_>) -> sled::Iter {
    match range {
        Range::Prefix(p) => tree.scan_prefix(tree_key(table, p)),
        Range::From(from) => tree.range(tree_key(table, from)..vec![table.index() as u8 + 1]),
        Range::Between(from, to) => tree.range(tree_key(table, from)..tree_key(table, to)),
    }
}

/// Moves a ledger written in the first layout (one sled tree per table,
/// named after it) into the ledger tree, table by table. Each chunk moves
/// in one transaction (inserted here, removed there), so a crash halfway
/// leaves every record in exactly one place and the next open goes on
/// where this one stopped. An emptied tree is dropped, and the mark
/// ([`FIRST_LAYOUT_MARK`]) is left in place of the `meta` tree.
fn adopt_first_layout(db: &sled::Db, ledger: &sled::Tree) -> Result<(), StorageError> {
    let names = db.tree_names();
    let mut moved = 0usize;
    for table in Table::ALL {
        if !names.iter().any(|n| n == table.name().as_bytes()) {
            continue;
        }
        let old = db.open_tree(table.name()).map_err(storage_error)?;
        if table == Table::Meta && is_mark(&old)? {
            continue;
        }
        moved += move_records(&old, &[], ledger, |k| tree_key(table, k))?;
        drop(old);
        db.drop_tree(table.name()).map_err(storage_error)?;
    }
    let meta = db.open_tree(Table::Meta.name()).map_err(storage_error)?;
    let marked = !is_mark(&meta)?;
    if marked {
        meta.insert(FORMAT_KEY, &[FIRST_LAYOUT_MARK])
            .map_err(storage_error)?;
    }
    if moved > 0 || marked {
        db.flush().map_err(storage_error)?;
    }
    if moved > 0 {
        tracing::warn!(records = moved, "moved the ledger into one tree");
    }
    Ok(())
}

/// Moves every record of `from` under `prefix` into `to`, under the key
/// `key` gives it there; returns how many it moved. Each chunk moves in one
/// transaction (inserted there, removed here), so a crash halfway leaves
/// every record in exactly one place and a second call goes on where the
/// first stopped.
fn move_records(
    from: &sled::Tree,
    prefix: &[u8],
    to: &sled::Tree,
    key: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<usize, StorageError> {
    let mut moved = 0;
    loop {
        let chunk = from
            .scan_prefix(prefix)
            .take(MOVE_CHUNK)
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage_error)?;
        if chunk.is_empty() {
            return Ok(moved);
        }
        (from, to)
            .transaction(|(from, to)| {
                for (k, v) in &chunk {
                    to.insert(key(k), v.clone())?;
                    from.remove(k)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                TransactionError::Storage(e) => storage_error(e),
                TransactionError::Abort(()) => StorageError::Io("moving records".into()),
            })?;
        moved += chunk.len();
    }
}

/// Whether the first layout's `meta` tree is the mark and nothing else.
fn is_mark(meta: &sled::Tree) -> Result<bool, StorageError> {
    let mut records = meta.iter();
    let first = records.next().transpose().map_err(storage_error)?;
    Ok(
        matches!(first, Some((k, v)) if k == FORMAT_KEY && v == [FIRST_LAYOUT_MARK][..])
            && records.next().is_none(),
    )
}

/// One open database and its trees.
struct Open {
    db: sled::Db,
    /// The [`LEDGER`] tree.
    ledger: sled::Tree,
    /// The [`HOLD_INDEX`] tree.
    index: sled::Tree,
    /// The [`REDO`] tree.
    redo: sled::Tree,
    /// What it holds. Only touched under [`Shared::serial`], like the
    /// tree's writes.
    redo_live: parking_lot::Mutex<Redo>,
    /// Added to sled's ids.
    id_base: AtomicU64,
    /// What makes a flush durable; `None` for a temporary ledger (or with
    /// [`EmbeddedConfig::fdatasync`] off).
    sync: Option<DiskSync>,
    /// Records of the [`cached`] tables as the tree holds them, for the
    /// transactions' reads (see [`ReadCache`]).
    cache: ReadCache,
}

/// Whether a table's records are kept in the [`ReadCache`]: the
/// configuration every terminal request reads (its terminal, its
/// merchant, the merchant's rules) and that changes rarely. A table whose
/// keys come from outside (cards by the hash of any bank card) is not:
/// the cache must stay as small as what the operator configured.
fn cached(table: Table) -> bool {
    matches!(table, Table::Merchants | Table::Terminals | Table::Rules)
}

/// The [`cached`] tables' records that transactions read, by tree key.
///
/// Guarantee: an entry holds the value the tree holds for its key. It is
/// only touched by whoever holds the serial lock (a transaction's reads
/// and commit, a write outside one), which every write to the tree holds
/// too: an entry is filled from the tree, and every write of a cached
/// table's key updates or drops it after the tree took the write. A write
/// that fails leaves the tree's state unknown, so it empties the cache.
/// Only keys found are kept, so lookups of unknown terminals (from the
/// wire) cannot grow it. A reopened database starts with an empty one.
///
/// Why: a sled read walks the tree and touches its page cache and LRU;
/// a terminal request reads these records three or four times, which was
/// over half of its reads.
#[derive(Default)]
struct ReadCache(parking_lot::Mutex<HashMap<Vec<u8>, sled::IVec>>);

impl ReadCache {
    fn get(&self, key_in: &[u8]) -> Option<sled::IVec> {
        self.0.lock().get(key_in).cloned()
    }

    /// The tree holds `value` for `key_in` now (`None`: nothing), read
    /// from it or written to it.
    fn keep(&self, key_in: &[u8], value: Option<&sled::IVec>) {
        let mut map = self.0.lock();
        match value {
            Some(v) => map.insert(key_in.to_vec(), v.clone()),
            None => map.remove(key_in),
        };
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

impl Open {
    /// Opens the trees of `db`, and completes what its last run or an
    /// earlier release left: the earlier releases' index mark removed
    /// first (nothing is written to the index tree before it is gone, so
    /// an earlier release never trusts a ledger-tree index that misses a
    /// hold), the last transaction written again from its redo record, a
    /// first-layout ledger adopted, the index moved into its own tree.
    fn with_tree(db: sled::Db) -> Result<Open, StorageError> {
        let open = Open {
            ledger: db.open_tree(LEDGER).map_err(storage_error)?,
            index: db.open_tree(HOLD_INDEX).map_err(storage_error)?,
            redo: db.open_tree(REDO).map_err(storage_error)?,
            db,
            redo_live: parking_lot::Mutex::new(Redo::Clear),
            id_base: AtomicU64::new(0),
            sync: None,
            cache: ReadCache::default(),
        };
        open.forget_earlier_index_mark()?;
        open.replay_redo()?;
        adopt_first_layout(&open.db, &open.ledger)?;
        open.move_index()?;
        open.id_base
            .store(open.stored_id_base()?, Ordering::Release);
        Ok(open)
    }

    /// The tree that holds `table`.
    fn tree(&self, table: Table) -> &sled::Tree {
        self.tree_of(&[table.index() as u8])
    }

    /// The tree that holds the tree key `key_in`.
    fn tree_of(&self, key_in: &[u8]) -> &sled::Tree {
        if in_index(key_in) {
            &self.index
        } else {
            &self.ledger
        }
    }

    /// The id base `meta` holds (0: none).
    fn stored_id_base(&self) -> Result<u64, StorageError> {
        match self
            .ledger
            .get(tree_key(Table::Meta, ID_BASE))
            .map_err(storage_error)?
        {
            Some(raw) => {
                Ok(u64::from_be_bytes(raw.as_ref().try_into().map_err(
                    |_| StorageError::Corrupt("meta id_base".into()),
                )?))
            }
            None => Ok(0),
        }
    }

    /// Removes [`EARLIER_HOLD_INDEX_MARK`] from `meta`, if there, and
    /// flushes the removal before anything else is written: while this
    /// release has a ledger open the ledger tree never holds the mark
    /// (it is removed here, never imported, and the engine no longer
    /// writes it).
    fn forget_earlier_index_mark(&self) -> Result<(), StorageError> {
        let mark = tree_key(Table::Meta, EARLIER_HOLD_INDEX_MARK);
        if self.ledger.contains_key(&mark).map_err(storage_error)? {
            self.ledger.remove(&mark).map_err(storage_error)?;
            self.db.flush().map_err(storage_error)?;
        }
        Ok(())
    }

    /// Moves the hold expiry index an earlier release left in the ledger
    /// tree (or a first-layout ledger brought there) into its own tree,
    /// after removing that release's mark (which a first-layout ledger may
    /// have brought too). An entry in both (this release, then an earlier
    /// one, which rebuilt its index in the ledger tree) is one entry; an
    /// entry whose hold has ended since is dropped by the sweep, as any
    /// stale entry is.
    fn move_index(&self) -> Result<(), StorageError> {
        self.forget_earlier_index_mark()?;
        let code = [Table::HoldsDue.index() as u8];
        let moved = move_records(&self.ledger, &code, &self.index, <[u8]>::to_vec)?;
        if moved > 0 {
            self.db.flush().map_err(storage_error)?;
            tracing::warn!(
                records = moved,
                "moved the hold expiry index into a tree of its own"
            );
        }
        Ok(())
    }

    /// Completes the last transaction a crash may have cut short: writes
    /// its redo record again, each key in its tree, then removes the
    /// record (a ledger closed in order has none, see `Drop for Open`).
    /// Every write the record holds is its key's last (a later write to
    /// any of its keys removed the record first, and no write follows a
    /// record whose keys failed: see [`Redo::Torn`]), so writing it again
    /// is harmless when nothing was cut. A record an earlier release left
    /// puts its index entries in the index's own tree: where this release
    /// would have moved them.
    fn replay_redo(&self) -> Result<(), StorageError> {
        let Some(record) = self.redo.get(REDO_KEY).map_err(storage_error)? else {
            return Ok(());
        };
        let writes = redo::decode(&record)?;
        for (k, v) in &writes {
            write_one(self.tree_of(k), k, *v).map_err(storage_error)?;
        }
        self.redo.remove(REDO_KEY).map_err(storage_error)?;
        self.db.flush().map_err(storage_error)?;
        tracing::warn!(
            writes = writes.len(),
            "the ledger was not closed in order: wrote its last transaction again from its redo record"
        );
        Ok(())
    }

    /// Writes out everything committed so far and makes it durable.
    fn flush(&self) -> Result<(), StorageError> {
        self.db.flush().map_err(storage_error)?;
        match &self.sync {
            Some(sync) => sync
                .sync()
                .map_err(|e| StorageError::Io(format!("fdatasync: {e}"))),
            None => Ok(()),
        }
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        let id = self.db.generate_id().map_err(storage_error)?;
        Ok(self.id_base.load(Ordering::Acquire) + id)
    }

    /// Applies a transaction's writes (sorted by key) so that a crash
    /// keeps all of them or none (see [`Overlay`] for why this way).
    fn apply(&self, writes: &[Write]) -> Result<(), StorageError> {
        match writes {
            [] => Ok(()),
            [(k, _, v)] => {
                self.retire_redo(std::iter::once(k.as_slice()))?;
                write_one(self.tree_of(k), k, v.clone()).map_err(storage_error)
            }
            [(first, _, _), ..] => {
                let view = || writes.iter().map(|(k, _, v)| (k.as_slice(), v.as_deref()));
                let len = redo::encoded_len(view());
                // A sled batch is one tree's: a large transaction over both
                // takes a redo record, whatever its size.
                let one_tree = writes
                    .iter()
                    .all(|(k, _, _)| in_index(k) == in_index(first));
                if len > REDO_MAX_BYTES && one_tree {
                    self.retire_redo(writes.iter().map(|(k, _, _)| k.as_slice()))?;
                    let mut batch = sled::Batch::default();
                    for (k, _, v) in writes {
                        match v {
                            Some(v) => batch.insert(k.as_slice(), v.clone()),
                            None => batch.remove(k.as_slice()),
                        }
                    }
                    return self
                        .tree_of(first)
                        .apply_batch(batch)
                        .map_err(storage_error);
                }
                let record = sled::IVec::from(redo::encode(view(), len));
                let mut live = self.redo_live.lock();
                if let Redo::Torn = *live {
                    return Err(torn());
                }
                *live = Redo::Unknown;
                self.redo
                    .insert(REDO_KEY, record.clone())
                    .map_err(storage_error)?;
                *live = Redo::Torn;
                writes
                    .iter()
                    .try_for_each(|(k, _, v)| write_one(self.tree_of(k), k, v.clone()))
                    .map_err(storage_error)?;
                *live = Redo::Live(record);
                Ok(())
            }
        }
    }

    /// Before a write that no redo record carries: removes the live record
    /// if it writes any of `keys`, since replaying it after a crash would
    /// put back what this write replaces. Removed first, the record is gone
    /// from any log that holds the write (sled recovers a prefix of it; see
    /// [`Overlay`]).
    fn retire_redo<'k>(
        &self,
        mut keys: impl Iterator<Item = &'k [u8]>,
    ) -> Result<(), StorageError> {
        let mut live = self.redo_live.lock();
        let stale = match &*live {
            Redo::Clear => false,
            Redo::Live(record) => keys.any(|k| redo::names(record, k)),
            Redo::Unknown => true,
            Redo::Torn => return Err(torn()),
        };
        if stale {
            self.redo.remove(REDO_KEY).map_err(storage_error)?;
            *live = Redo::Clear;
        }
        Ok(())
    }
}

/// A ledger closed in order has no redo record left: every transaction is
/// whole, so the next open has nothing to replay (and a record left would
/// be written again over whatever changed the ledger while it was closed).
/// Best effort: a record that stays is harmless to the ledger as this
/// release left it.
impl Drop for Open {
    fn drop(&mut self) {
        if matches!(*self.redo_live.get_mut(), Redo::Live(_)) {
            let removed = self.redo.remove(REDO_KEY).and_then(|_| self.db.flush());
            if let Err(e) = removed {
                tracing::debug!("leaving the redo record to the next open: {e}");
            }
        }
    }
}

/// The error of a write refused while a transaction is torn: an I/O
/// error, so the ledger is reopened (and the transaction completed).
fn torn() -> StorageError {
    StorageError::Io(
        "a transaction is half written: the ledger must be reopened to complete it".into(),
    )
}

/// What the [`REDO`] tree holds.
enum Redo {
    /// No record.
    Clear,
    /// The record of a transaction written whole.
    Live(sled::IVec),
    /// Writing a record failed: it may be there or not, and none of its
    /// keys was written.
    Unknown,
    /// The record is there and writing its keys failed: only a replay
    /// (the ledger reopened) makes the transaction whole, so no other
    /// write may run meanwhile.
    Torn,
}

/// A write as [`Open::apply`] takes it: the key as the tree holds it, its
/// table, and its value (`None`: removed), shared with the read cache.
type Write = (Vec<u8>, Table, Option<sled::IVec>);

/// Writes `value` under `key` (`None`: removes it).
fn write_one(
    tree: &sled::Tree,
    key: &[u8],
    value: Option<impl Into<sled::IVec>>,
) -> sled::Result<()> {
    match value {
        Some(v) => tree.insert(key, v).map(|_| ()),
        None => tree.remove(key).map(|_| ()),
    }
}

/// What sled's own flush leaves undone, done after it: every blob file not
/// yet synced, the directories whose entries changed, and an `fdatasync` of
/// the log file. The flusher thread runs it once per round for every
/// operation waiting, so its cost is shared.
struct DiskSync {
    dir: PathBuf,
    /// sled's log file (`db`).
    log: std::fs::File,
    /// Entries of the ledger directory and of `blobs/` as last synced.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    dir: Vec<std::ffi::OsString>,
    blobs: Vec<std::ffi::OsString>,
}

impl DiskSync {
    /// Opens the log of the database in `dir` and syncs what opening it may
    /// have created and sled never syncs: its files (`conf` among them,
    /// without which it does not open), the directory and its name.
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
            seen: Mutex::new(Seen::default()),
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
            sync_blob(&blobs_dir.join(b))?;
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

/// Syncs the blob file at `path`. sled removes a blob once its value is
/// replaced or removed, which may happen between the listing and the open:
/// a blob gone is no longer part of the ledger and needs no sync (the
/// directory's sync that follows records that it is gone), so it is not a
/// failure. A flush that failed on it would fail every operation waiting.
fn sync_blob(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
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

/// The embedded backend. Clones share one database.
pub(crate) struct Embedded {
    shared: Arc<Shared>,
}

/// What the backend and its recovery thread share.
struct Shared {
    /// The open database; `None` while it is being reopened.
    current: ArcSwapOption<Open>,
    /// A write failed: sled refuses everything after an I/O error until the
    /// database is reopened.
    failed: AtomicBool,
    /// The database was replaced since the last flush: what the old one
    /// held unflushed is gone, so the next flush must fail.
    lost: AtomicBool,
    /// Where to reopen it (`None`: a temporary ledger, never reopened).
    reopen: Option<(PathBuf, EmbeddedConfig)>,
    /// Every write holds it shared; a snapshot takes it exclusively for an
    /// instant, so it begins between writes (see [`Capture`]).
    gate: RwLock<()>,
    /// Held by each transaction from its first read to its last write, and
    /// by each write outside one: transactions run one at a time, so each
    /// reads and writes as if alone (see [`Overlay`]).
    serial: parking_lot::Mutex<()>,
    /// While a snapshot is read: the value each key had when it began.
    capture: ArcSwapOption<Capture>,
    /// A snapshot is being read (one at a time).
    snapshotting: AtomicBool,
}

/// What a write holds: the snapshot gate, shared, and the serial lock.
struct Writing<'a> {
    _gate: RwLockReadGuard<'a, ()>,
    serial: Option<parking_lot::MutexGuard<'a, ()>>,
}

impl Drop for Writing<'_> {
    /// Hands the serial lock to the longest waiter, if any: a job that
    /// runs transaction after transaction (the archiver moves history 256
    /// records at a time) cannot take it back before a terminal batch
    /// that was waiting for it, as it could after a plain unlock (sled's
    /// own lock, parking_lot's, is fair now and then).
    fn drop(&mut self) {
        if let Some(serial) = self.serial.take() {
            parking_lot::MutexGuard::unlock_fair(serial);
        }
    }
}

impl Shared {
    /// Held for the length of a write, with the capture to feed.
    fn writing(&self) -> (Writing<'_>, Option<Arc<Capture>>) {
        let gate = self.gate.read().unwrap_or_else(|p| p.into_inner());
        // The lock after the gate, always: a snapshot takes the gate alone.
        let serial = self.serial.lock();
        // Loaded under the gate: a write either ends before a snapshot
        // begins or sees its capture.
        (
            Writing {
                _gate: gate,
                serial: Some(serial),
            },
            self.capture.load_full(),
        )
    }

    /// The open database, or unavailable while it is being reopened.
    fn open(&self) -> Result<Arc<Open>, StorageError> {
        self.current.load_full().ok_or_else(|| {
            StorageError::Unavailable("the ledger is being reopened after a storage failure".into())
        })
    }

    /// Notes a storage error so the recovery thread reopens the database.
    fn check<T>(&self, r: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(StorageError::Io(_) | StorageError::Corrupt(_)) = &r {
            self.failed.store(true, Ordering::Release);
        }
        r
    }
}

impl Embedded {
    /// Opens (creating if needed) the ledger in the directory `path`.
    pub(crate) fn open(path: &Path, cfg: &EmbeddedConfig) -> Result<Arc<Embedded>, StorageError> {
        if let Ok(Some(created)) = created_compressed(path) {
            if created != cfg.compress {
                tracing::warn!(
                    compressed = created,
                    "the ledger stays as it was created; `[storage] compress` applies only to a ledger being created (runbook: Storage)"
                );
            }
        }
        let open = Self::open_db(path, cfg)?;
        let backend = Arc::new(Self::with(open, Some((path.to_path_buf(), cfg.clone()))));
        let shared = Arc::downgrade(&backend.shared);
        let spawned = std::thread::Builder::new()
            .name("clubswitch-storage-recovery".into())
            .spawn(move || recovery(&shared));
        if let Err(e) = spawned {
            tracing::error!("starting the storage recovery thread: {e}");
        }
        Ok(backend)
    }

    /// A throwaway ledger in a temporary directory.
    pub(crate) fn temporary() -> Result<Arc<Embedded>, StorageError> {
        let db = sled::Config::new()
            .temporary(true)
            .open()
            .map_err(storage_error)?;
        Ok(Arc::new(Self::with(Open::with_tree(db)?, None)))
    }

    fn with(open: Open, reopen: Option<(PathBuf, EmbeddedConfig)>) -> Embedded {
        Embedded {
            shared: Arc::new(Shared {
                current: ArcSwapOption::from_pointee(open),
                failed: AtomicBool::new(false),
                lost: AtomicBool::new(false),
                reopen,
                gate: RwLock::new(()),
                serial: parking_lot::Mutex::new(()),
                capture: ArcSwapOption::empty(),
                snapshotting: AtomicBool::new(false),
            }),
        }
    }

    fn open_db(path: &Path, cfg: &EmbeddedConfig) -> Result<Open, StorageError> {
        let created = created_compressed(path).map_err(|e| StorageError::Io(e.to_string()))?;
        let compress = created.unwrap_or(cfg.compress);
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(cfg.cache_bytes)
            .flush_every_ms(cfg.flush_every_ms)
            .mode(sled::Mode::HighThroughput)
            .use_compression(compress)
            .compression_factor(1);
        // sled's recovery panics on some logs a torn write left behind
        // (holes in its page table): refuse such a ledger with a clear
        // error rather than die on the panic.
        // A ledger this process has just closed (a restore, a reopen after
        // a storage failure) can still be locked: see `when_unlocked`.
        let db = when_unlocked(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())).map_err(
                |panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    StorageError::Corrupt(format!(
                        "the ledger's log cannot be recovered ({why}); restore the last backup (runbook: Power cut)"
                    ))
                },
            )
        })?
        .map_err(storage_error)?;
        let mut open = Open::with_tree(db)?;
        let sync = DiskSync::open(path).map_err(|e| StorageError::Io(e.to_string()))?;
        if cfg.fdatasync {
            open.sync = Some(sync);
        } else {
            tracing::error!(
                "fdatasync is off: a power cut can lose operations the switch answered as done (test setting only)"
            );
        }
        Ok(open)
    }
}

impl Backend for Embedded {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let open = self.shared.open()?;
        let got = open
            .tree(table)
            .get(tree_key(table, key))
            .map_err(storage_error);
        Ok(self.shared.check(got)?.map(|v| v.to_vec()))
    }

    fn scan(&self, table: Table, range: Range<'_>) -> Entries<'_> {
        let open = match self.shared.open() {
            Ok(open) => open,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let iter = tree_range(open.tree(table), table, range);
        Box::new(iter.map(move |item| {
            let (k, v) = self.shared.check(item.map_err(storage_error))?;
            Ok((table_key(&k), v.to_vec()))
        }))
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let open = self.shared.open()?;
        let key_in = tree_key(table, key);
        let (_writing, capture) = self.shared.writing();
        if let Some(c) = capture {
            self.shared.check(
                c.note(table, key, || open.tree(table).get(&key_in))
                    .map_err(storage_error),
            )?;
        }
        let value = sled::IVec::from(value);
        let inserted = open
            .retire_redo(std::iter::once(key_in.as_slice()))
            .and_then(|()| {
                write_one(open.tree(table), &key_in, Some(value.clone())).map_err(storage_error)
            });
        if cached(table) {
            match &inserted {
                Ok(_) => open.cache.keep(&key_in, Some(&value)),
                Err(_) => open.cache.clear(),
            }
        }
        self.shared.check(inserted)
    }

    fn transact(&self, body: Body<'_>) -> TxResult<()> {
        let open = self.shared.open()?;
        let (_writing, capture) = self.shared.writing();
        let tx = Overlay {
            open: &open,
            id_base: open.id_base.load(Ordering::Acquire),
            writes: RefCell::default(),
        };
        let result = body(&tx).and_then(|()| tx.commit(capture.as_deref()));
        if let Err(TxError::Storage(e)) = &result {
            let _ = self.shared.check::<()>(Err(e.clone()));
        }
        result
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        let open = self.shared.open()?;
        self.shared.check(open.next_id())
    }

    fn raise_id_base(&self, base: u64) -> Result<(), StorageError> {
        let open = self.shared.open()?;
        let _writing = self.shared.writing();
        let id_key = tree_key(Table::Meta, ID_BASE);
        let stored = open.stored_id_base()?;
        let raised = base.max(stored).max(open.id_base.load(Ordering::Acquire));
        open.retire_redo(std::iter::once(id_key.as_slice()))?;
        open.ledger
            .insert(&id_key, &raised.to_be_bytes())
            .map_err(storage_error)?;
        open.id_base.store(raised, Ordering::Release);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        let open = self.shared.open()?;
        let result = open.flush();
        if result.is_err() {
            self.shared.failed.store(true, Ordering::Release);
        }
        result?;
        if self.shared.lost.swap(false, Ordering::AcqRel) {
            return Err(StorageError::Io(
                "the ledger was reopened after a storage failure: what it held unflushed is lost"
                    .into(),
            ));
        }
        Ok(())
    }

    fn len(&self, table: Table) -> usize {
        // sled counts by scanning too.
        self.shared.open().map_or(0, |open| {
            open.tree(table).scan_prefix([table.index() as u8]).count()
        })
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        let open = self.shared.open()?;
        if self.shared.snapshotting.swap(true, Ordering::AcqRel) {
            return Err(StorageError::Unavailable(
                "a snapshot is already being taken".into(),
            ));
        }
        let capture = Arc::new(Capture::default());
        let next_id = {
            let _gate = self.shared.gate.write().unwrap_or_else(|p| p.into_inner());
            self.shared.capture.store(Some(Arc::clone(&capture)));
            // Every id issued so far is below this one: each write that
            // took one has committed.
            open.next_id()
        };
        // Built first, so a failure below ends the capture it began.
        let mut snapshot = SledSnapshot {
            shared: Arc::clone(&self.shared),
            open,
            capture,
            next_id: 0,
        };
        snapshot.next_id = next_id?;
        Ok(Box::new(snapshot))
    }

    fn import(&self, table: Table, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        // A backup an earlier release took may hold its index mark: never
        // in a ledger this release writes (see `Open::forget_earlier_index_mark`).
        let records: Vec<_> = records
            .iter()
            .filter(|(k, _)| !(table == Table::Meta && k == EARLIER_HOLD_INDEX_MARK))
            .collect();
        let keys: Vec<Vec<u8>> = records.iter().map(|(k, _)| tree_key(table, k)).collect();
        let mut batch = sled::Batch::default();
        for (k, (_, v)) in keys.iter().zip(&records) {
            batch.insert(k.as_slice(), v.as_slice());
        }
        let open = self.shared.open()?;
        let _writing = self.shared.writing();
        let applied = open
            .retire_redo(keys.iter().map(Vec::as_slice))
            .and_then(|()| open.tree(table).apply_batch(batch).map_err(storage_error));
        if cached(table) {
            // Rare (a restore): the next reads fill it again.
            open.cache.clear();
        }
        self.shared.check(applied)
    }

    fn healthy(&self) -> bool {
        !self.shared.failed.load(Ordering::Acquire) && self.shared.current.load().is_some()
    }

    fn in_use(&self) -> bool {
        self.shared.serial.is_locked()
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        let open = self.shared.open()?;
        open.db.size_on_disk().map_err(storage_error)
    }
}

/// Reopens the database after a storage failure, once a second until it
/// succeeds. Stops when the backend is dropped.
fn recovery(shared: &Weak<Shared>) {
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
            shared.lost.store(true, Ordering::Release);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            drop(old);
        }
        match Embedded::open_db(path, cfg) {
            Ok(open) => {
                shared.current.store(Some(Arc::new(open)));
                shared.failed.store(false, Ordering::Release);
                tracing::warn!("ledger reopened; the switch is taking requests again");
            }
            Err(e) => tracing::error!("reopening the ledger: {e}; retrying"),
        }
    }
}

/// One transaction: reads go to the tree, writes wait in an overlay that
/// later reads see, and the commit applies them all at once.
///
/// Why not a sled transaction or batch: each takes sled's one process-wide
/// lock, which its flush holds while it waits for the disk (so a commit,
/// and with it every request behind it, waited for the flush in progress),
/// and each forces two writes of sled's log buffer through its I/O threads
/// (sealing the buffer before it and the one holding its manifest), each
/// write a wake-up of all seven of those threads and a `sync_file_range`.
/// On a quiet switch that was half a lookup's time: with batches its
/// 0100 took 196-207 us at the median and each message cost sled's
/// threads 12.5 context switches; with this commit, 100-127 us and 4.1
/// (the runbook's Storage section has the figures).
///
/// Here the body runs under [`Shared::serial`] alone, which gives the same
/// isolation (no other write runs until it commits), and the commit
/// writes plain inserts, which share sled's lock with a flush and wait in
/// the log buffer for the next one. A commit of several keys first writes
/// all of them as one redo record, one insert in the [`REDO`] tree, which
/// replaces the last transaction's; [`Open::replay_redo`] writes it again when
/// the ledger opens. After a crash of the process sled recovers a prefix
/// of its log, and one thread writes the record and then the keys, so the
/// ledger keeps either no part of the transaction (record included) or
/// its record, from which the rest is written again: all of it or none,
/// as a batch was. (After a power cut, sled's recovery may skip a damaged
/// message in the part of its log it had handed to the disk but that no
/// `fdatasync` covered, and go on after it: a batch was exposed the same
/// way. What a flush covered, which is all an answer depends on, is whole.)
/// Any other write to a key the record holds removes the record first
/// ([`Open::retire_redo`]), so a replay never undoes a later write. A
/// flush that covers a commit covers everything committed before it.
///
/// A commit that fails with a storage error (the switch answers 96 and
/// the ledger is reopened) may be found whole after the reopen, as a
/// batch could be: the terminal's retransmission or reversal then finds
/// the request's record and is answered as for any request done.
struct Overlay<'a> {
    open: &'a Open,
    id_base: u64,
    writes: RefCell<Writes>,
}

/// A transaction's writes: each key written (as in the tree), with its
/// table and its value (`None`: removed).
type Writes = BTreeMap<Vec<u8>, (Table, Option<Vec<u8>>)>;

impl Overlay<'_> {
    /// Applies the writes (see [`Open::apply`]). Each key's value before
    /// is noted first for a running snapshot.
    fn commit(self, capture: Option<&Capture>) -> TxResult<()> {
        let writes = self.writes.into_inner();
        let open = self.open;
        if let Some(c) = capture {
            for (key_in, (table, _)) in &writes {
                let key = key_in.get(1..).unwrap_or_default();
                c.note(*table, key, || open.tree(*table).get(key_in))
                    .map_err(|e| TxError::Storage(storage_error(e)))?;
            }
        }
        // Each value as sled holds it, once: the tree, the redo record and
        // the read cache share it.
        let writes: Vec<Write> = writes
            .into_iter()
            .map(|(k, (table, v))| (k, table, v.map(sled::IVec::from)))
            .collect();
        let applied = open.apply(&writes);
        // What the cache takes once the tree has: the cached tables' keys.
        if writes.iter().any(|(_, table, _)| cached(*table)) {
            match &applied {
                Ok(()) => {
                    for (k, _, v) in writes.iter().filter(|(_, table, _)| cached(*table)) {
                        open.cache.keep(k, v.as_ref());
                    }
                }
                Err(_) => open.cache.clear(),
            }
        }
        applied.map_err(TxError::Storage)
    }
}

impl RawTx for Overlay<'_> {
    fn read(&self, table: Table, key: &[u8], with: &mut dyn FnMut(&[u8])) -> TxResult<bool> {
        let key_in = tree_key(table, key);
        if let Some((_, written)) = self.writes.borrow().get(&key_in) {
            return Ok(match written {
                Some(v) => {
                    with(v);
                    true
                }
                None => false,
            });
        }
        let cache = cached(table).then_some(&self.open.cache);
        if let Some(v) = cache.and_then(|c| c.get(&key_in)) {
            with(&v);
            return Ok(true);
        }
        match self.open.tree(table).get(&key_in) {
            Ok(Some(v)) => {
                if let Some(c) = cache {
                    c.keep(&key_in, Some(&v));
                }
                with(&v);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(TxError::Storage(storage_error(e))),
        }
    }

    fn write(&self, table: Table, key: &[u8], value: Vec<u8>) -> TxResult<()> {
        self.writes
            .borrow_mut()
            .insert(tree_key(table, key), (table, Some(value)));
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.writes
            .borrow_mut()
            .insert(tree_key(table, key), (table, None));
        Ok(())
    }

    fn next_id(&self) -> TxResult<u64> {
        let id = self
            .open
            .db
            .generate_id()
            .map_err(|e| TxError::Storage(storage_error(e)))?;
        Ok(self.id_base + id)
    }
}

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
        read: impl FnOnce() -> Result<Option<sled::IVec>, E>,
    ) -> Result<(), E> {
        let k = (table, key.to_vec());
        if self.lock().contains_key(&k) {
            return Ok(());
        }
        let value = read()?;
        self.lock().entry(k).or_insert(value);
        Ok(())
    }

    /// Of records of `table` just read live from its tree, those
    /// whose key was not written since the snapshot began, without the
    /// table's code.
    fn unwritten(
        &self,
        table: Table,
        read: Vec<sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Vec<Entry> {
        let before = self.lock();
        read.into_iter()
            .filter_map(|item| match item {
                Ok((k, v)) => {
                    let k = table_key(&k);
                    (!before.contains_key(&(table, k.clone()))).then(|| Ok((k, v.to_vec())))
                }
                Err(e) => Some(Err(storage_error(e))),
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

/// Every table as it was when [`Backend::snapshot`] was called.
///
/// The live tables are read as they are; a key written since the snapshot
/// began is skipped and its value at the snapshot (if it had one) given at
/// the end of its table instead. Writes go on meanwhile at the cost of one
/// read and a note per key written. Dropping the snapshot ends the capture.
struct SledSnapshot {
    shared: Arc<Shared>,
    open: Arc<Open>,
    capture: Arc<Capture>,
    next_id: u64,
}

impl Snapshot for SledSnapshot {
    fn records(&self, table: Table) -> Entries<'_> {
        let mut live = self.open.tree(table).scan_prefix([table.index() as u8]);
        let mut chunk: std::vec::IntoIter<Entry> = Vec::new().into_iter();
        let mut written: Option<std::vec::IntoIter<(Vec<u8>, Vec<u8>)>> = None;
        Box::new(std::iter::from_fn(move || loop {
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
        }))
    }

    fn next_id(&self) -> u64 {
        self.next_id
    }
}

impl Drop for SledSnapshot {
    fn drop(&mut self) {
        self.shared.capture.store(None);
        self.shared.snapshotting.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::*;
    use std::collections::BTreeMap;

    fn read(snapshot: &dyn Snapshot) -> BTreeMap<Vec<u8>, Vec<u8>> {
        snapshot
            .records(Table::Members)
            .map(|r| r.unwrap())
            .collect()
    }

    fn map(pairs: &[(&[u8], &[u8])]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn a_snapshot_reads_every_table_as_it_was_when_it_began() {
        let backend = Embedded::temporary().unwrap();
        for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")] {
            backend.put(Table::Members, k, v).unwrap();
        }
        let snapshot = backend.snapshot().unwrap();
        assert!(backend.snapshot().is_err(), "one snapshot at a time");

        // Writes after it began, in and outside transactions: a change, a
        // removal, a new key, a key written twice.
        backend
            .transact(&|tx| {
                tx.write(Table::Members, b"a", b"10".to_vec())?;
                tx.remove(Table::Members, b"b")?;
                tx.write(Table::Members, b"e", b"5".to_vec())?;
                tx.write(Table::Members, b"a", b"11".to_vec())
            })
            .unwrap();
        backend.put(Table::Members, b"c", b"30").unwrap();

        // And writes while it is being read: behind it and ahead of it.
        let mut records = snapshot.records(Table::Members);
        let first = records.next().unwrap().unwrap();
        backend.put(Table::Members, &first.0, b"100").unwrap();
        backend.put(Table::Members, b"d", b"40").unwrap();
        let seen: BTreeMap<_, _> = std::iter::once(first)
            .chain(records.map(Result::unwrap))
            .collect();
        let then = map(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"d", b"4")]);
        assert_eq!(seen, then);
        assert_eq!(read(&*snapshot), then, "read again, the same");

        // Ended, the live tables are as written, and a new snapshot sees them.
        drop(snapshot);
        let now = read(&*backend.snapshot().unwrap());
        assert_eq!(
            now.get(b"a".as_slice()).map(Vec::as_slice),
            Some(&b"11"[..])
        );
        assert_eq!(now.get(b"b".as_slice()), None);
        assert_eq!(
            now.get(b"d".as_slice()).map(Vec::as_slice),
            Some(&b"40"[..])
        );
        assert_eq!(now.get(b"e".as_slice()).map(Vec::as_slice), Some(&b"5"[..]));
    }

    /// A counter's value in `raw` (0 if absent).
    fn count(raw: Option<&[u8]>) -> u64 {
        raw.map_or(0, |r| u64::from_be_bytes(r.try_into().unwrap()))
    }

    #[test]
    fn a_transaction_reads_its_own_writes_and_an_aborted_one_writes_nothing() {
        let backend = Embedded::temporary().unwrap();
        backend.put(Table::Members, b"a", b"1").unwrap();
        backend.put(Table::Members, b"b", b"2").unwrap();
        let value = |tx: &dyn RawTx, key: &[u8]| {
            let mut seen = None;
            tx.read(Table::Members, key, &mut |v| seen = Some(v.to_vec()))
                .map(|_| seen)
        };
        backend
            .transact(&|tx| {
                tx.write(Table::Members, b"a", b"10".to_vec())?;
                tx.remove(Table::Members, b"b")?;
                assert_eq!(value(tx, b"a")?.as_deref(), Some(&b"10"[..]));
                assert_eq!(value(tx, b"b")?, None, "removed in this transaction");
                // Another table's key with the same bytes is another key.
                tx.write(Table::Cards, b"a", b"card".to_vec())?;
                assert_eq!(value(tx, b"a")?.as_deref(), Some(&b"10"[..]));
                Ok(())
            })
            .unwrap();
        assert_eq!(backend.get(Table::Members, b"a").unwrap().unwrap(), b"10");
        assert_eq!(backend.get(Table::Members, b"b").unwrap(), None);
        assert_eq!(backend.get(Table::Cards, b"a").unwrap().unwrap(), b"card");

        let refused = backend.transact(&|tx| {
            tx.write(Table::Members, b"a", b"99".to_vec())?;
            tx.write(Table::Members, b"c", b"3".to_vec())?;
            Err(TxError::Abort(crate::error::EngineError::invalid("no")))
        });
        assert!(matches!(refused, Err(TxError::Abort(_))));
        assert_eq!(backend.get(Table::Members, b"a").unwrap().unwrap(), b"10");
        assert_eq!(backend.get(Table::Members, b"c").unwrap(), None);
    }

    /// `key` of `table` as a transaction reads it.
    fn read_in_tx(backend: &Embedded, table: Table, key: &[u8]) -> Option<Vec<u8>> {
        let seen = RefCell::new(None);
        backend
            .transact(&|tx| {
                tx.read(table, key, &mut |v| *seen.borrow_mut() = Some(v.to_vec()))
                    .map(drop)
            })
            .unwrap();
        seen.into_inner()
    }

    #[test]
    fn a_cached_record_reads_as_the_last_write_left_it_whichever_way_it_was_written() {
        let backend = Embedded::temporary().unwrap();
        let t = Table::Terminals;
        assert!(cached(t));
        let read = |key: &[u8]| read_in_tx(&backend, t, key);
        backend.put(t, b"T1", b"v1").unwrap();
        assert_eq!(read(b"T1").as_deref(), Some(&b"v1"[..]), "read and cached");

        // One write (a plain insert), then several (a batch), then a removal.
        backend
            .transact(&|tx| tx.write(t, b"T1", b"v2".to_vec()))
            .unwrap();
        assert_eq!(read(b"T1").as_deref(), Some(&b"v2"[..]));
        backend
            .transact(&|tx| {
                tx.write(t, b"T1", b"v3".to_vec())?;
                tx.write(Table::Members, b"m", b"x".to_vec())
            })
            .unwrap();
        assert_eq!(read(b"T1").as_deref(), Some(&b"v3"[..]));
        backend.transact(&|tx| tx.remove(t, b"T1")).unwrap();
        assert_eq!(read(b"T1"), None);

        // Outside a transaction: a write, and an import (a restore).
        backend.put(t, b"T1", b"v4").unwrap();
        assert_eq!(read(b"T1").as_deref(), Some(&b"v4"[..]));
        backend
            .import(t, &[(b"T1".to_vec(), b"v5".to_vec())])
            .unwrap();
        assert_eq!(read(b"T1").as_deref(), Some(&b"v5"[..]));

        // A transaction that aborts leaves what was committed.
        let refused = backend.transact(&|tx| {
            tx.write(t, b"T1", b"v6".to_vec())?;
            Err(TxError::Abort(crate::error::EngineError::invalid("no")))
        });
        assert!(matches!(refused, Err(TxError::Abort(_))));
        assert_eq!(read(b"T1").as_deref(), Some(&b"v5"[..]));
        assert_eq!(backend.get(t, b"T1").unwrap().unwrap(), b"v5");
    }

    #[test]
    fn the_read_cache_keeps_only_records_of_its_tables_that_exist() {
        let backend = Embedded::temporary().unwrap();
        backend.put(Table::Terminals, b"T1", b"v1").unwrap();
        backend.put(Table::Cards, b"C1", b"c").unwrap();
        for n in 0..100u32 {
            // Terminal ids from the wire that name no terminal.
            assert_eq!(
                read_in_tx(&backend, Table::Terminals, &n.to_be_bytes()),
                None
            );
        }
        assert!(read_in_tx(&backend, Table::Cards, b"C1").is_some());
        assert!(read_in_tx(&backend, Table::Terminals, b"T1").is_some());
        let open = backend.shared.open().unwrap();
        let keys: Vec<Vec<u8>> = open.cache.0.lock().keys().cloned().collect();
        assert_eq!(keys, vec![tree_key(Table::Terminals, b"T1")]);
    }

    #[test]
    fn transactions_on_several_threads_never_lose_an_update() {
        let backend = Embedded::temporary().unwrap();
        let (threads, each) = (4, 250);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for _ in 0..each {
                        backend
                            .transact(&|tx| {
                                let mut n = 0;
                                tx.read(Table::Meta, b"n", &mut |v| n = count(Some(v)))?;
                                // A second key in the same commit: a batch,
                                // not a single insert.
                                tx.write(Table::Meta, b"n", (n + 1).to_be_bytes().to_vec())?;
                                tx.write(Table::Meta, b"m", (n + 1).to_be_bytes().to_vec())
                            })
                            .unwrap();
                        backend
                            .transact(&|tx| {
                                let mut n = 0;
                                tx.read(Table::Meta, b"one", &mut |v| n = count(Some(v)))?;
                                tx.write(Table::Meta, b"one", (n + 1).to_be_bytes().to_vec())
                            })
                            .unwrap();
                    }
                });
            }
        });
        let total = (threads * each) as u64;
        for key in [&b"n"[..], b"m", b"one"] {
            let got = backend.get(Table::Meta, key).unwrap();
            assert_eq!(count(got.as_deref()), total, "{key:?}");
        }
    }

    #[test]
    fn the_ledger_is_in_use_while_a_transaction_runs_and_not_after() {
        let backend = Embedded::temporary().unwrap();
        assert!(!backend.in_use());
        let (started, running) = std::sync::mpsc::channel();
        let (finish, finishing) = std::sync::mpsc::channel::<()>();
        let shared = &backend;
        std::thread::scope(|s| {
            let tx = s.spawn(move || {
                shared.transact(&|tx| {
                    started.send(()).unwrap();
                    finishing.recv().unwrap();
                    tx.write(Table::Meta, b"k", b"v".to_vec())
                })
            });
            running.recv().unwrap();
            assert!(backend.in_use(), "a transaction is running");
            finish.send(()).unwrap();
            tx.join().unwrap().unwrap();
        });
        assert!(!backend.in_use());
    }

    /// What a crash of the process leaves: the files as they are while the
    /// ledger is still open (read through the OS's cache, so this pins
    /// sled's flush, not the fdatasync; the power-cut test pins that).
    /// sled flushes when its last handle drops, so a reopen of the
    /// directory itself would find unflushed commits too.
    fn copy_open_ledger(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_open_ledger(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    #[test]
    fn a_flushed_commit_of_one_key_or_of_many_survives_a_crash() {
        let dir = fresh_dir("commit-reopen");
        let cut = fresh_dir("commit-reopen-cut");
        let cfg = EmbeddedConfig {
            flush_every_ms: None,
            ..EmbeddedConfig::default()
        };
        let backend = Embedded::open(&dir, &cfg).unwrap();
        backend
            .transact(&|tx| tx.write(Table::Requests, b"one", b"1".to_vec()))
            .unwrap();
        backend
            .transact(&|tx| {
                tx.write(Table::Txns, b"t", b"held".to_vec())?;
                tx.write(Table::Journal, b"j", b"posted".to_vec())
            })
            .unwrap();
        backend
            .transact(&|tx| tx.remove(Table::Txns, b"t"))
            .unwrap();
        backend.flush().unwrap();
        // Committed after the flush: the cut may keep it or lose it.
        backend
            .transact(&|tx| tx.write(Table::Requests, b"late", b"2".to_vec()))
            .unwrap();
        copy_open_ledger(&dir, &cut);
        drop(backend);

        let backend = Embedded::open(&cut, &cfg).unwrap();
        assert_eq!(backend.get(Table::Requests, b"one").unwrap().unwrap(), b"1");
        assert_eq!(backend.get(Table::Txns, b"t").unwrap(), None);
        assert_eq!(
            backend.get(Table::Journal, b"j").unwrap().unwrap(),
            b"posted"
        );
        let late = backend.get(Table::Requests, b"late").unwrap();
        assert!(matches!(late.as_deref(), None | Some(b"2")), "{late:?}");
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&cut);
    }

    /// Writes a redo record into the closed ledger in `dir` without the
    /// writes it holds: what a crash right after the record leaves.
    fn leave_redo_record(dir: &Path, record: &[u8]) {
        let db = open_closed(dir);
        db.open_tree(REDO)
            .unwrap()
            .insert(REDO_KEY, record)
            .unwrap();
        db.flush().unwrap();
    }

    /// A redo record writing `key`, its last byte cut off.
    fn damaged_redo_record(key: &[u8]) -> Vec<u8> {
        let mut record = redo::encode([(key, Some(b"x".as_slice()))].into_iter(), 0);
        record.truncate(record.len() - 1);
        record
    }

    /// The ledger just closed in `dir`, through sled alone.
    fn open_closed(dir: &Path) -> sled::Db {
        let open = || Ok::<_, ()>(sled::Config::new().path(dir).open());
        when_unlocked(open).unwrap().unwrap()
    }

    #[test]
    fn a_transaction_cut_short_after_its_redo_record_is_completed_when_the_ledger_opens() {
        let dir = fresh_dir("redo-replay");
        let cfg = EmbeddedConfig {
            flush_every_ms: None,
            ..EmbeddedConfig::default()
        };
        let backend = Embedded::open(&dir, &cfg).unwrap();
        backend.put(Table::Txns, b"t", b"held").unwrap();
        backend.put(Table::HoldsDue, b"t", b"due").unwrap();
        backend.put(Table::Members, b"m", b"untouched").unwrap();
        drop(backend);
        // The confirm of `t`: the hold replaced, its due date removed, a
        // journal entry; the crash kept the record and none of the keys.
        // And a new hold `u` put in the index.
        let (txn, due, journal, due_u) = (
            tree_key(Table::Txns, b"t"),
            tree_key(Table::HoldsDue, b"t"),
            tree_key(Table::Journal, b"j"),
            tree_key(Table::HoldsDue, b"u"),
        );
        let writes = [
            (txn.as_slice(), Some(b"confirmed".as_slice())),
            (due.as_slice(), None),
            (due_u.as_slice(), Some(b"".as_slice())),
            (journal.as_slice(), Some(b"posted".as_slice())),
        ];
        leave_redo_record(&dir, &redo::encode(writes.into_iter(), 0));

        let backend = Embedded::open(&dir, &cfg).unwrap();
        let get = |t, k: &[u8]| backend.get(t, k).unwrap();
        assert_eq!(get(Table::Txns, b"t").unwrap(), b"confirmed");
        assert_eq!(get(Table::HoldsDue, b"t"), None);
        assert_eq!(get(Table::HoldsDue, b"u"), Some(vec![]));
        assert_eq!(get(Table::Journal, b"j").unwrap(), b"posted");
        assert_eq!(get(Table::Members, b"m").unwrap(), b"untouched");
        // Written again once, then gone: a later write is not undone by it.
        let shared = backend.shared.open().unwrap();
        assert_eq!(shared.redo.get(REDO_KEY).unwrap(), None);
        drop(shared);
        backend.put(Table::Txns, b"t", b"reversed").unwrap();
        drop(backend);
        let backend = Embedded::open(&dir, &cfg).unwrap();
        assert_eq!(
            backend.get(Table::Txns, b"t").unwrap().unwrap(),
            b"reversed"
        );
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn no_write_after_a_transaction_of_several_keys_is_undone_when_the_ledger_opens() {
        let dir = fresh_dir("redo-later");
        let cfg = EmbeddedConfig {
            flush_every_ms: None,
            ..EmbeddedConfig::default()
        };
        let big = vec![7u8; REDO_MAX_BYTES];
        // After a transaction of two keys (a redo record), one of them
        // written again each way a write can be made, and the ledger
        // closed and opened: the later write stands.
        type Later<'a> = &'a dyn Fn(&Embedded);
        // The last field: whether the record is still there to replay.
        let later: [(&str, Later, Option<&[u8]>, bool); 6] = [
            (
                "a transaction of one key",
                &|b| {
                    b.transact(&|tx| tx.write(Table::Txns, b"a", b"2".to_vec()))
                        .unwrap()
                },
                Some(b"2"),
                false,
            ),
            (
                "a write outside a transaction",
                &|b| b.put(Table::Txns, b"a", b"2").unwrap(),
                Some(b"2"),
                false,
            ),
            (
                "a removal",
                &|b| b.transact(&|tx| tx.remove(Table::Txns, b"a")).unwrap(),
                None,
                false,
            ),
            (
                "a restore",
                &|b| {
                    b.import(Table::Txns, &[(b"a".to_vec(), b"2".to_vec())])
                        .unwrap()
                },
                Some(b"2"),
                false,
            ),
            (
                "a transaction too large for a record",
                &|b| {
                    b.transact(&|tx| {
                        tx.write(Table::Txns, b"a", b"2".to_vec())?;
                        tx.write(Table::Members, b"big", big.clone())
                    })
                    .unwrap()
                },
                Some(b"2"),
                false,
            ),
            // The record stays, and is written again: harmless.
            (
                "a write of another key",
                &|b| b.put(Table::Txns, b"z", b"2").unwrap(),
                Some(b"1"),
                true,
            ),
        ];
        let cut = fresh_dir("redo-later-cut");
        for (how, write, want, record) in later {
            let backend = Embedded::open(&dir, &cfg).unwrap();
            commit_a_and_b(&backend);
            write(&backend);
            backend.flush().unwrap();
            // A crash now: a close in order would remove the record.
            let _ = std::fs::remove_dir_all(&cut);
            copy_open_ledger(&dir, &cut);
            drop(backend);
            let left = open_closed(&cut).open_tree(REDO).unwrap().len();
            assert_eq!(left, usize::from(record), "after {how}");
            let backend = Embedded::open(&cut, &cfg).unwrap();
            let a = backend.get(Table::Txns, b"a").unwrap();
            assert_eq!(a.as_deref(), want, "after {how}");
            assert_eq!(backend.get(Table::Txns, b"b").unwrap().unwrap(), b"1");
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&cut);
    }

    /// Commits `a` and `b` of `Txns` (both `1`) in one transaction: two
    /// keys, so behind a redo record.
    fn commit_a_and_b(backend: &Embedded) {
        backend
            .transact(&|tx| {
                tx.write(Table::Txns, b"a", b"1".to_vec())?;
                tx.write(Table::Txns, b"b", b"1".to_vec())
            })
            .unwrap();
    }

    #[test]
    fn a_ledger_closed_in_order_keeps_no_redo_record() {
        let dir = fresh_dir("redo-closed");
        let backend = Embedded::open(&dir, &EmbeddedConfig::default()).unwrap();
        commit_a_and_b(&backend);
        let open = backend.shared.open().unwrap();
        let record = open.redo.get(REDO_KEY).unwrap().unwrap();
        let (a, b) = (tree_key(Table::Txns, b"a"), tree_key(Table::Txns, b"b"));
        assert_eq!(
            redo::decode(&record).unwrap(),
            [(&a[..], Some(&b"1"[..])), (&b[..], Some(&b"1"[..]))]
        );
        drop(open);
        drop(backend);
        let db = open_closed(&dir);
        assert_eq!(db.open_tree(REDO).unwrap().len(), 0);
        assert_eq!(db.open_tree(LEDGER).unwrap().len(), 2);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn while_a_transaction_is_torn_no_other_write_is_made() {
        let backend = Embedded::temporary().unwrap();
        commit_a_and_b(&backend);
        let open = backend.shared.open().unwrap();
        let record = open.redo.get(REDO_KEY).unwrap();
        // What a failed write of the keys after the record leaves.
        *open.redo_live.lock() = Redo::Torn;
        let refused = |r: TxResult<()>| matches!(r, Err(TxError::Storage(StorageError::Io(_))));
        assert!(refused(backend.transact(&|tx| tx.write(
            Table::Txns,
            b"c",
            b"2".to_vec()
        ))));
        assert!(refused(backend.transact(&|tx| {
            tx.write(Table::Txns, b"c", b"2".to_vec())?;
            tx.write(Table::Txns, b"d", b"2".to_vec())
        })));
        assert!(backend.put(Table::Txns, b"a", b"2").is_err());
        assert_eq!(open.redo.get(REDO_KEY).unwrap(), record);
        assert_eq!(backend.get(Table::Txns, b"a").unwrap().unwrap(), b"1");
        assert_eq!(backend.get(Table::Txns, b"c").unwrap(), None);
    }

    #[test]
    fn a_damaged_redo_record_stops_the_ledger_from_opening() {
        let dir = fresh_dir("redo-damaged");
        let cfg = EmbeddedConfig::default();
        drop(Embedded::open(&dir, &cfg).unwrap());
        leave_redo_record(&dir, &damaged_redo_record(&tree_key(Table::Txns, b"t")));
        match Embedded::open(&dir, &cfg) {
            Err(StorageError::Corrupt(why)) => assert!(why.contains("redo record"), "{why}"),
            other => panic!(
                "opened a ledger with a damaged redo record: {:?}",
                other.is_ok()
            ),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_ledger_in_the_first_layout_moves_into_one_tree_even_after_a_crash_halfway() {
        let dir = std::env::temp_dir().join(format!("first-layout-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let members: Vec<(Vec<u8>, Vec<u8>)> = (0..MOVE_CHUNK as u32 * 2 + 7)
            .map(|i| (i.to_be_bytes().to_vec(), vec![b'm'; 3]))
            .collect();
        {
            // A tree per table, as the first layout wrote it; and a crash
            // halfway through a move: one member already in the ledger tree.
            let db = sled::open(&dir).unwrap();
            let tree = db.open_tree(Table::Members.name()).unwrap();
            for (k, v) in &members[1..] {
                tree.insert(k, v.as_slice()).unwrap();
            }
            let (k, v) = &members[0];
            let ledger = db.open_tree(LEDGER).unwrap();
            ledger
                .insert(tree_key(Table::Members, k), v.as_slice())
                .unwrap();
            let txns = db.open_tree(Table::Txns.name()).unwrap();
            txns.insert(b"rrn", b"t").unwrap();
            db.open_tree(Table::Journal.name()).unwrap();
            db.flush().unwrap();
        }
        let cfg = EmbeddedConfig::default();
        for _ in 0..2 {
            let backend = Embedded::open(&dir, &cfg).unwrap();
            let scanned: Vec<_> = backend
                .scan(Table::Members, Range::From(b""))
                .map(Result::unwrap)
                .collect();
            assert_eq!(scanned, members, "every member once, in order");
            assert_eq!(
                backend.get(Table::Txns, b"rrn").unwrap().as_deref(),
                Some(&b"t"[..])
            );
            assert_eq!(backend.len(Table::Journal), 0);
            let open = backend.shared.open().unwrap();
            let names = open.db.tree_names();
            assert!(
                !names.iter().any(|n| n == b"members" || n == b"txns"),
                "the emptied trees are dropped"
            );
            let meta = open.db.open_tree(Table::Meta.name()).unwrap();
            assert!(
                is_mark(&meta).unwrap(),
                "the first layout's releases refuse it"
            );
            drop(open);
            backend.flush().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_scan_stays_within_its_table() {
        let backend = Embedded::temporary().unwrap();
        backend.put(Table::Cards, b"\xff", b"last card").unwrap();
        backend.put(Table::Members, b"", b"first member").unwrap();
        backend
            .put(Table::Members, b"\xff\xff", b"last member")
            .unwrap();
        backend.put(Table::Accounts, b"", b"first account").unwrap();
        let keys = |range| -> Vec<Vec<u8>> {
            backend
                .scan(Table::Members, range)
                .map(|r| r.unwrap().0)
                .collect()
        };
        assert_eq!(keys(Range::From(b"")), [b"".to_vec(), b"\xff\xff".to_vec()]);
        assert_eq!(keys(Range::Prefix(b"\xff")), [b"\xff\xff".to_vec()]);
        assert_eq!(keys(Range::Between(b"", b"\xff")), [b"".to_vec()]);
        assert_eq!(backend.len(Table::Members), 2);
    }

    /// The keys of `tree` (of the closed ledger in `db`) under `table`'s
    /// code.
    fn keys_of(db: &sled::Db, tree: &str, table: Table) -> Vec<Vec<u8>> {
        db.open_tree(tree)
            .unwrap()
            .scan_prefix([table.index() as u8])
            .map(|r| table_key(&r.unwrap().0))
            .collect()
    }

    #[test]
    fn the_hold_index_lives_in_a_tree_of_its_own_and_reads_like_any_table() {
        let dir = fresh_dir("hold-index-tree");
        let cfg = EmbeddedConfig::default();
        let backend = Embedded::open(&dir, &cfg).unwrap();
        // Written every way a write is made: a transaction with other
        // tables, one of its key alone, a write outside one, an import.
        backend
            .transact(&|tx| {
                tx.write(Table::Txns, b"a", b"held".to_vec())?;
                tx.write(Table::HoldsDue, b"a", Vec::new())?;
                tx.write(Table::HoldsDue, b"b", Vec::new())
            })
            .unwrap();
        backend
            .transact(&|tx| tx.remove(Table::HoldsDue, b"b"))
            .unwrap();
        backend.put(Table::HoldsDue, b"c", b"").unwrap();
        backend
            .import(Table::HoldsDue, &[(b"d".to_vec(), Vec::new())])
            .unwrap();
        let snapshot = backend.snapshot().unwrap();
        backend
            .transact(&|tx| tx.remove(Table::HoldsDue, b"a"))
            .unwrap();
        let index = |b: &Embedded| -> Vec<Vec<u8>> {
            b.scan(Table::HoldsDue, Range::From(b""))
                .map(|r| r.unwrap().0)
                .collect()
        };
        assert_eq!(index(&backend), [b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(backend.len(Table::HoldsDue), 2);
        assert_eq!(backend.get(Table::HoldsDue, b"d").unwrap(), Some(vec![]));
        assert_eq!(backend.get(Table::HoldsDue, b"a").unwrap(), None);
        let in_tx = |k: &[u8]| read_in_tx(&backend, Table::HoldsDue, k);
        assert_eq!((in_tx(b"a"), in_tx(b"c")), (None, Some(vec![])));
        // The snapshot began before the removal of `a` (a key written
        // since comes at the end).
        let mut then: Vec<_> = snapshot
            .records(Table::HoldsDue)
            .map(|r| r.unwrap().0)
            .collect();
        then.sort();
        assert_eq!(then, [b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]);
        drop(snapshot);
        drop(backend);

        let db = open_closed(&dir);
        assert_eq!(keys_of(&db, LEDGER, Table::HoldsDue), Vec::<Vec<u8>>::new());
        assert_eq!(keys_of(&db, LEDGER, Table::Txns), [b"a".to_vec()]);
        assert_eq!(
            keys_of(&db, HOLD_INDEX, Table::HoldsDue),
            [b"c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(
            db.open_tree(HOLD_INDEX).unwrap().len(),
            2,
            "the index alone"
        );
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_index_tree_is_not_named_as_a_first_layout_table() {
        assert!(tables().all(|(_, name)| name != HOLD_INDEX && name != LEDGER && name != REDO));
    }

    #[test]
    fn an_index_an_earlier_release_left_in_the_ledger_tree_moves_to_its_own_and_loses_its_mark() {
        let dir = fresh_dir("hold-index-move");
        let cfg = EmbeddedConfig::default();
        let backend = Embedded::open(&dir, &cfg).unwrap();
        backend.put(Table::HoldsDue, b"new", b"").unwrap();
        backend.put(Table::Txns, b"t", b"held").unwrap();
        drop(backend);
        // As an earlier release run after this one leaves it: its index in
        // the ledger tree, over several chunks, one entry also still in the
        // index's tree, and its mark.
        let db = open_closed(&dir);
        let ledger = db.open_tree(LEDGER).unwrap();
        let earlier: Vec<Vec<u8>> = (0..MOVE_CHUNK as u32 * 2 + 5)
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        for k in &earlier {
            ledger.insert(tree_key(Table::HoldsDue, k), b"").unwrap();
        }
        ledger
            .insert(tree_key(Table::HoldsDue, b"new"), b"")
            .unwrap();
        let mark = tree_key(Table::Meta, EARLIER_HOLD_INDEX_MARK);
        ledger.insert(&mark, b"1").unwrap();
        db.flush().unwrap();
        drop((ledger, db));

        let backend = Embedded::open(&dir, &cfg).unwrap();
        let mut all = earlier.clone();
        all.push(b"new".to_vec());
        all.sort();
        let index: Vec<_> = backend
            .scan(Table::HoldsDue, Range::From(b""))
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(index, all);
        assert_eq!(
            backend.get(Table::Meta, EARLIER_HOLD_INDEX_MARK).unwrap(),
            None
        );
        assert_eq!(backend.get(Table::Txns, b"t").unwrap().unwrap(), b"held");
        drop(backend);
        let db = open_closed(&dir);
        assert_eq!(keys_of(&db, LEDGER, Table::HoldsDue), Vec::<Vec<u8>>::new());
        assert_eq!(keys_of(&db, HOLD_INDEX, Table::HoldsDue), all);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The replay may write index entries into the index's tree: were it
    /// cut short with the mark still in place, an earlier release would
    /// trust a ledger-tree index that misses them. A damaged redo record
    /// stops the open at the replay, so what it left shows the order.
    #[test]
    fn an_earlier_releases_index_mark_is_gone_before_the_redo_record_is_replayed() {
        let dir = fresh_dir("mark-before-replay");
        let cfg = EmbeddedConfig::default();
        drop(Embedded::open(&dir, &cfg).unwrap());
        let mark = tree_key(Table::Meta, EARLIER_HOLD_INDEX_MARK);
        let db = open_closed(&dir);
        db.open_tree(LEDGER).unwrap().insert(&mark, b"1").unwrap();
        db.flush().unwrap();
        drop(db);
        leave_redo_record(&dir, &damaged_redo_record(&tree_key(Table::HoldsDue, b"h")));

        assert!(Embedded::open(&dir, &cfg).is_err());
        let db = open_closed(&dir);
        assert_eq!(db.open_tree(LEDGER).unwrap().get(&mark).unwrap(), None);
        assert!(db.open_tree(REDO).unwrap().get(REDO_KEY).unwrap().is_some());
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_earlier_releases_index_mark_is_never_restored_into_the_ledger() {
        let backend = Embedded::temporary().unwrap();
        let meta = [
            (EARLIER_HOLD_INDEX_MARK.to_vec(), b"1".to_vec()),
            (b"other".to_vec(), b"2".to_vec()),
        ];
        backend.import(Table::Meta, &meta).unwrap();
        assert_eq!(
            backend.get(Table::Meta, EARLIER_HOLD_INDEX_MARK).unwrap(),
            None
        );
        assert_eq!(backend.get(Table::Meta, b"other").unwrap().unwrap(), b"2");
    }

    #[test]
    fn a_large_commit_over_both_trees_takes_a_redo_record_and_over_one_a_batch() {
        let dir = fresh_dir("large-mixed");
        let cut = fresh_dir("large-mixed-cut");
        let cfg = EmbeddedConfig {
            flush_every_ms: None,
            ..EmbeddedConfig::default()
        };
        let big = vec![7u8; REDO_MAX_BYTES];
        let backend = Embedded::open(&dir, &cfg).unwrap();
        backend
            .transact(&|tx| {
                tx.write(Table::Txns, b"big", big.clone())?;
                tx.write(Table::HoldsDue, b"due", Vec::new())
            })
            .unwrap();
        let open = backend.shared.open().unwrap();
        let record = open.redo.get(REDO_KEY).unwrap().expect("a redo record");
        assert!(redo::names(&record, &tree_key(Table::HoldsDue, b"due")));
        // Large over one tree: a sled batch, no record of its own.
        backend
            .transact(&|tx| {
                tx.write(Table::Txns, b"big2", big.clone())?;
                tx.write(Table::Txns, b"small", b"1".to_vec())
            })
            .unwrap();
        backend
            .transact(&|tx| {
                tx.write(Table::HoldsDue, b"due2", big.clone())?;
                tx.write(Table::HoldsDue, b"due3", Vec::new())
            })
            .unwrap();
        assert_eq!(open.redo.get(REDO_KEY).unwrap(), Some(record));
        // Each in its tree (read before a reopen would move a stray one).
        let index = |k: &[u8]| open.index.get(tree_key(Table::HoldsDue, k)).unwrap();
        assert_eq!(index(b"due2").as_deref(), Some(&big[..]));
        assert_eq!(index(b"due3").as_deref(), Some(&[][..]));
        assert!(open
            .ledger
            .get(tree_key(Table::Txns, b"big2"))
            .unwrap()
            .is_some());
        drop(open);
        backend.flush().unwrap();
        copy_open_ledger(&dir, &cut);
        drop(backend);

        let backend = Embedded::open(&cut, &cfg).unwrap();
        assert_eq!(backend.get(Table::Txns, b"big").unwrap(), Some(big.clone()));
        assert_eq!(
            backend.get(Table::Txns, b"big2").unwrap(),
            Some(big.clone())
        );
        assert_eq!(backend.get(Table::HoldsDue, b"due").unwrap(), Some(vec![]));
        assert_eq!(backend.get(Table::HoldsDue, b"due2").unwrap(), Some(big));
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&cut);
    }

    #[test]
    fn a_blob_sled_removed_after_the_listing_does_not_fail_the_flush_but_other_errors_do() {
        let dir = std::env::temp_dir().join(format!("clubswitch-blob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let blob = dir.join("7");
        std::fs::write(&blob, b"a large value").unwrap();
        assert!(sync_blob(&blob).is_ok());
        std::fs::remove_file(&blob).unwrap();
        assert!(sync_blob(&blob).is_ok(), "gone: nothing to sync");
        std::fs::write(&blob, b"a file, not a directory").unwrap();
        let err = sync_blob(&blob.join("8")).unwrap_err();
        assert_ne!(err.kind(), std::io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
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

    /// A fresh directory for one test.
    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Records like a terminal's: similar keys, similar values.
    fn fill(backend: &Embedded, n: u32) {
        for i in 0..n {
            let value = format!(
                "txn {i:08} terminal T0000001 merchant M00000000000001 amount 1250000 code 00 held"
            );
            backend
                .put(Table::Txns, &i.to_be_bytes(), value.as_bytes())
                .unwrap();
        }
        backend.flush().unwrap();
    }

    #[test]
    fn a_ledger_keeps_the_compression_it_was_created_with() {
        for created in [true, false] {
            let dir = fresh_dir(&format!("compress-{created}"));
            let make = |compress| EmbeddedConfig {
                compress,
                ..EmbeddedConfig::default()
            };
            fill(&Embedded::open(&dir, &make(created)).unwrap(), 100);
            assert_eq!(created_compressed(&dir).unwrap(), Some(created));
            // Opened with the other setting (which sled alone would refuse),
            // it reads what it holds, takes writes, and stays as created.
            let backend = Embedded::open(&dir, &make(!created)).unwrap();
            assert_eq!(backend.len(Table::Txns), 100);
            backend.put(Table::Txns, b"more", b"written").unwrap();
            backend.flush().unwrap();
            drop(backend);
            assert_eq!(created_compressed(&dir).unwrap(), Some(created));
            let backend = Embedded::open(&dir, &make(created)).unwrap();
            assert_eq!(
                backend.get(Table::Txns, b"more").unwrap().unwrap(),
                b"written"
            );
            drop(backend);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_compressed_ledger_takes_less_disk_for_the_same_records() {
        let size = |compress| {
            let dir = fresh_dir(&format!("compress-size-{compress}"));
            // No background flush: the sizes depend on the writes alone.
            let cfg = EmbeddedConfig {
                compress,
                flush_every_ms: None,
                ..EmbeddedConfig::default()
            };
            let backend = Embedded::open(&dir, &cfg).unwrap();
            fill(&backend, 20_000);
            let size = backend.size_on_disk().unwrap();
            drop(backend);
            let _ = std::fs::remove_dir_all(&dir);
            size
        };
        let (plain, compressed) = (size(false), size(true));
        assert!(
            compressed * 3 < plain * 2,
            "compressed {compressed} bytes, plain {plain} bytes"
        );
    }

    #[test]
    fn a_directory_without_a_ledger_has_no_compression_yet() {
        let dir = fresh_dir("compress-none");
        assert_eq!(created_compressed(&dir).unwrap(), None);
    }
}
