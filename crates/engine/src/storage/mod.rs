//! The storage boundary. Everything the engine persists goes through a
//! [`Store`]: reads, scans, ids and durability outside transactions, and
//! [`Tx`] (reads and writes inside one atomic transaction), over the
//! ledger's [`Table`]s of byte keys and byte values. Records are encoded
//! by [`crate::codec`] here and nowhere else.
//!
//! A [`Backend`] provides the tables: the embedded one ([`embedded`], the
//! default: one process, a data directory), [`postgres`] (several nodes
//! on one database), and [`memory`] (tests). A backend must give:
//! - transactions that are atomic and serializable over every table, whose
//!   body it may run more than once (on a conflict) before one commits;
//! - reads and ordered range scans outside transactions;
//! - ids that are unique and never reused, even across a crash or a
//!   transaction that rolled back (they may skip numbers);
//! - a flush that makes everything committed before it began durable
//!   (through a power cut), and that fails if anything committed may have
//!   been lost since the last one.
//!
//! The engine builds its guarantees on these alone, so a networked SQL
//! database shared by several switch nodes is a backend like the others.
//!
//! Layout:
//! - `mod.rs`: [`Table`], the [`Backend`] contract, and the typed [`Store`]
//!   and [`Tx`] the engine uses.
//! - `durability.rs`: group commit: many operations share one flush.
//! - `embedded.rs`: the embedded backend in a data directory.
//! - `postgres.rs`: a PostgreSQL database several switch nodes share.
//! - `memory.rs`: a backend in memory, for fast tests.

pub mod durability;
pub mod embedded;
pub mod memory;
pub mod postgres;
mod redo;

use std::cell::RefCell;
use std::sync::Arc;

use crate::codec::{self, Record};
use crate::error::{EngineError, Result, StorageError};
use durability::{FlushMark, FlushStats, FlushTicket, GroupCommit};

pub use durability::{Durable, FlushError};
pub use embedded::EmbeddedConfig;

/// The `meta` key under which the releases whose embedded ledger kept the
/// hold expiry index ([`Table::HoldsDue`]) in its ledger tree marked that
/// index complete (every pending hold in it). Such a release reads the
/// index there and trusts it once it finds this mark; the embedded backend
/// now keeps the index in a tree of its own, and removes this mark
/// whenever it opens a ledger, so that an earlier release started on a
/// ledger this one left rebuilds the index where it reads it (from the
/// held transactions, at its first sweep) rather than trust one it cannot
/// see. Since record format 10 the sweep finds holds among the
/// transactions, and the mark says only that an upgraded ledger's first
/// sweep may start past the transactions it had (see `expiry`; a
/// PostgreSQL ledger, whose index never moved, keeps the mark).
pub(crate) const EARLIER_HOLD_INDEX_MARK: &[u8] = b"holds_due_indexed";

/// The `meta` key under which the first upgrade of the record format by a
/// release of format 10 or later recorded `(format, id)`: the format the
/// ledger had, and an id above every id issued under it. What a module
/// that finds records differently from some format on needs to tell what
/// earlier formats wrote (see `expiry`).
pub(crate) const UPGRADED_FROM: &[u8] = b"upgraded_from";

/// The tables of the ledger. Their names ([`Table::name`]) are stored (in
/// backups, and as the tree names of the embedded ledger's first layout):
/// never rename one. So are their codes ([`Table::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
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
    /// Confirmed, not yet settled items: merchant ‖ RRN. Kept by confirms
    /// on a ledger several nodes share, and on any ledger up to record
    /// format 8; elsewhere settlement reads the transactions (see
    /// `settlement`). Entries go as their items settle.
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
    /// Holds by when they expire (`expires` ‖ RRN, no value): on a
    /// shared ledger every hold, found by time whatever order their RRNs
    /// committed in; on the embedded ledger only what record formats
    /// before 10 (or a shared ledger it was restored from) indexed. After
    /// every hold, the mark formats before 10 gave a complete index (see
    /// `expiry`).
    HoldsDue,
    /// Users of the admin API and console, by name.
    Users,
    /// API tokens by their SHA-256 (never in clear).
    Tokens,
    /// The hash-chained action log: entries (`E` ‖ sequence number) and
    /// its head (`H`), see `access`.
    ActionLog,
    /// Signed-in sessions by the SHA-256 of their id.
    Sessions,
    /// One-time login codes by the member's phone number.
    LoginCodes,
    /// Idempotency keys of money-moving admin calls and their answers, by
    /// caller and key (see `idempotency`).
    Idempotency,
    /// Payouts: each settlement batch's bank transfer (`I` ‖ batch id) and
    /// each payout file (`P` ‖ payout id), see `payout`.
    Payouts,
    /// Daily figures per merchant, day and terminal (see `rollup`).
    Rollups,
    /// What each member did at each merchant (see `rollup`).
    Visits,
    /// Campaign messages, by id (see `campaign`).
    Campaigns,
    /// The marketing lane: campaign messages awaiting delivery, by
    /// campaign ‖ member.
    Marketing,
    /// Notice templates by merchant (or the network), event and language
    /// (see `template`).
    Templates,
}

impl Table {
    pub const ALL: [Table; 35] = [
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
        Table::HoldsDue,
        Table::Users,
        Table::Tokens,
        Table::ActionLog,
        Table::Sessions,
        Table::LoginCodes,
        Table::Idempotency,
        Table::Payouts,
        Table::Rollups,
        Table::Visits,
        Table::Campaigns,
        Table::Marketing,
        Table::Templates,
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
            Table::HoldsDue => "holds_due",
            Table::Users => "users",
            Table::Tokens => "tokens",
            Table::ActionLog => "action_log",
            Table::Sessions => "sessions",
            Table::LoginCodes => "login_codes",
            Table::Idempotency => "idempotency",
            Table::Payouts => "payouts",
            Table::Rollups => "rollups",
            Table::Visits => "visits",
            Table::Campaigns => "campaigns",
            Table::Marketing => "marketing",
            Table::Templates => "templates",
        }
    }

    /// The table's code: its place in [`Table::ALL`]. Stored (the first
    /// byte of the embedded ledger's keys, PostgreSQL's `t` column): a new
    /// table goes at the end, and none is ever removed or moved.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A range of keys to scan.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Range<'a> {
    /// Keys that start with these bytes.
    Prefix(&'a [u8]),
    /// Keys from this one on.
    From(&'a [u8]),
    /// Keys in `[from, to)`.
    Between(&'a [u8], &'a [u8]),
}

impl Range<'_> {
    /// Whether `key` lies in the range.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        match *self {
            Range::Prefix(p) => key.starts_with(p),
            Range::From(from) => key >= from,
            Range::Between(from, to) => key >= from && key < to,
        }
    }
}

/// A raw record (key, stored value), or the storage error that ends a scan.
pub(crate) type Entry = std::result::Result<(Vec<u8>, Vec<u8>), StorageError>;

/// Raw entries of a scan, in key order; a storage error ends it.
pub(crate) type Entries<'a> = Box<dyn Iterator<Item = Entry> + 'a>;

/// Why a transaction's body stopped.
#[derive(Debug)]
pub enum TxError {
    /// The engine refused: the transaction is rolled back and this is its
    /// result.
    Abort(EngineError),
    /// Another transaction got in the way: the backend runs the body again.
    Conflict,
    /// The backend failed.
    Storage(StorageError),
}

impl From<StorageError> for TxError {
    fn from(e: StorageError) -> Self {
        TxError::Storage(e)
    }
}

pub(crate) type TxResult<T> = std::result::Result<T, TxError>;

/// Aborts the running transaction with `e`.
pub(crate) fn abort<T>(e: EngineError) -> TxResult<T> {
    Err(TxError::Abort(e))
}

/// The reads and writes of one transaction, raw.
pub(crate) trait RawTx {
    /// Calls `with` on the value of `key`, if it has one; returns whether
    /// it had.
    fn read(&self, table: Table, key: &[u8], with: &mut dyn FnMut(&[u8])) -> TxResult<bool>;
    fn write(&self, table: Table, key: &[u8], value: Vec<u8>) -> TxResult<()>;
    fn remove(&self, table: Table, key: &[u8]) -> TxResult<()>;
    /// A fresh id (see [`Backend::next_id`]).
    fn next_id(&self) -> TxResult<u64>;
}

/// A transaction's body, as a backend runs it (maybe more than once).
pub(crate) type Body<'a> = &'a dyn Fn(&dyn RawTx) -> TxResult<()>;

/// A place the ledger is kept. See the module comment for what each
/// method must guarantee.
pub(crate) trait Backend: Send + Sync + 'static {
    fn get(&self, table: Table, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, StorageError>;
    fn scan(&self, table: Table, range: Range<'_>) -> Entries<'_>;
    /// A write outside any transaction (bookkeeping such as cursors).
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> std::result::Result<(), StorageError>;
    /// Runs `body` as one atomic, serializable transaction, again on a
    /// conflict, until it commits or aborts.
    fn transact(&self, body: Body<'_>) -> TxResult<()>;
    /// A unique id that is never issued again.
    fn next_id(&self) -> std::result::Result<u64, StorageError>;
    /// Makes every id issued from now on `base` or above. Never lowers it.
    fn raise_id_base(&self, base: u64) -> std::result::Result<(), StorageError>;
    /// Makes everything committed before the call durable; fails if
    /// anything committed since the previous flush may have been lost.
    fn flush(&self) -> std::result::Result<(), StorageError>;
    /// Records in `table` (for metrics and tests: may cost a scan).
    fn len(&self, table: Table) -> usize;
    /// Every table as of one instant between two writes, read while writes
    /// go on.
    fn snapshot(&self) -> std::result::Result<Box<dyn Snapshot>, StorageError>;
    /// Writes raw records into a ledger no one else uses yet (a restore).
    fn import(
        &self,
        table: Table,
        records: &[(Vec<u8>, Vec<u8>)],
    ) -> std::result::Result<(), StorageError>;
    /// False while the backend cannot take writes (a failed disk being
    /// reopened, no primary database).
    fn healthy(&self) -> bool;
    /// Tries the storage once while it is unhealthy, so health comes back
    /// when the storage does even on a node with no traffic. Nothing to do
    /// where health returns by itself (the embedded ledger's reopening).
    fn probe(&self) {}
    fn size_on_disk(&self) -> std::result::Result<u64, StorageError>;
    /// Whether a transaction holds the ledger now, so that a thread which
    /// must not wait (a connection worker) can hand its work to one that
    /// may. A hint: it can change right after. False where transactions
    /// do not wait for each other.
    fn in_use(&self) -> bool {
        false
    }

    /// Whether this node holds the lease of the background job `name`,
    /// taking it if no node does. A holder keeps it until it stops (or its
    /// session with the database ends), so a job runs on one node at a
    /// time and moves when that node dies. A ledger one process owns
    /// always holds every lease.
    fn lease(&self, name: &str) -> std::result::Result<bool, StorageError> {
        let _ = name;
        Ok(true)
    }

    /// Runs `f` while no other node runs anything under `name`.
    fn exclusive(&self, name: &str, f: &mut dyn FnMut()) -> std::result::Result<(), StorageError> {
        let _ = name;
        f();
        Ok(())
    }

    /// Calls `on` with each key of `table` another node changes (an empty
    /// key: changes may have been missed, forget them all). Nothing for a
    /// ledger one process owns.
    fn watch(&self, table: Table, on: TerminalListener) {
        let _ = (table, on);
    }

    /// The largest replay lag of the database's standbys, in seconds.
    fn replication_lag(&self) -> Option<f64> {
        None
    }

    /// Whether several switch nodes may share this ledger.
    fn shared(&self) -> bool {
        false
    }
}

/// Every table as of one instant; see [`Backend::snapshot`].
pub(crate) trait Snapshot: Send {
    /// Each record of `table`, each key once, in no guaranteed order.
    fn records(&self, table: Table) -> Entries<'_>;
    /// An id above every id issued before the snapshot's instant.
    fn next_id(&self) -> u64;
}

/// What the flusher calls: the backend's flush.
struct FlushBackend(Arc<dyn Backend>);

impl durability::Flush for FlushBackend {
    fn flush(&self) -> std::result::Result<(), String> {
        self.0.flush().map_err(|e| e.to_string())
    }
}

/// Told the key of each terminal whose record changed.
pub(crate) type TerminalListener = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The engine's ledger: a backend, and the group-commit flusher that makes
/// its writes durable.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    flusher: Arc<GroupCommit>,
    /// Told of every terminal whose record a transaction here changed.
    listeners: Arc<std::sync::RwLock<Vec<TerminalListener>>>,
}

impl Store {
    fn new(backend: Arc<dyn Backend>) -> Result<Store> {
        let store = Store {
            flusher: Arc::new(GroupCommit::start(FlushBackend(Arc::clone(&backend)))),
            backend,
            listeners: Default::default(),
        };
        store.check_format()?;
        Ok(store)
    }

    /// Opens (creating if needed) the embedded ledger in the directory
    /// `path`.
    pub fn open(path: &std::path::Path, cfg: &EmbeddedConfig) -> Result<Store> {
        Store::new(embedded::Embedded::open(path, cfg)?)
    }

    /// Connects to the PostgreSQL ledger at `url` (a libpq-style URL; several
    /// hosts and `target_session_attrs=read-write` follow a failover) and
    /// brings its schema up to date.
    pub fn connect(url: &str) -> Result<Store> {
        Store::new(postgres::Postgres::connect(url)?)
    }

    /// A throwaway embedded ledger in a temporary directory.
    pub fn temporary() -> Result<Store> {
        Store::new(embedded::Embedded::temporary()?)
    }

    /// A ledger in memory (tests, benchmarks).
    pub fn memory() -> Result<Store> {
        Store::new(Arc::new(memory::Memory::default()))
    }

    /// Refuses a ledger written by a newer release; records the version of
    /// this one, whose records it reads whatever version they were written
    /// in (see `codec`).
    fn check_format(&self) -> Result<()> {
        const KEY: &[u8] = b"format_version";
        let found = self.backend.get(Table::Meta, KEY)?;
        match found.as_deref() {
            Some([v]) if *v == codec::FORMAT_VERSION => Ok(()),
            Some([v]) if (codec::OLDEST_VERSION..codec::FORMAT_VERSION).contains(v) => {
                tracing::info!(
                    from = v,
                    to = codec::FORMAT_VERSION,
                    "ledger written by an earlier release: records are read as they are and rewritten as they change"
                );
                // Before the new format is recorded: a crash between the
                // two writes repeats both at the next open. A ledger
                // upgraded before keeps the first upgrade's: the oldest
                // format is the one the first sweep must allow for, and
                // every id above that one was issued by a release of
                // format 10 or later.
                if self.backend.get(Table::Meta, UPGRADED_FROM)?.is_none() {
                    let above = self.backend.next_id()?;
                    self.backend.put(
                        Table::Meta,
                        UPGRADED_FROM,
                        &codec::to_vec(&(u64::from(*v), above))?,
                    )?;
                }
                Ok(self
                    .backend
                    .put(Table::Meta, KEY, &[codec::FORMAT_VERSION])?)
            }
            Some(v) => Err(EngineError::FormatVersion {
                found: v.first().copied().unwrap_or(0),
                supported: codec::FORMAT_VERSION,
            }),
            None => Ok(self
                .backend
                .put(Table::Meta, KEY, &[codec::FORMAT_VERSION])?),
        }
    }

    /// A secret the switch keeps in the ledger sealed under its master key
    /// (the card-hash key), by name; the engine never sees it in clear.
    pub fn sealed(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get(Table::Meta, name.as_bytes())
    }

    /// Keeps a sealed secret under `name`, replacing any before.
    pub fn keep_sealed(&self, name: &str, sealed: Vec<u8>) -> Result<Durable<()>> {
        self.transaction_durable(|tx| tx.put(Table::Meta, name.as_bytes(), &sealed))
    }

    /// Calls `on` with the key of every terminal whose record changes,
    /// here or (on a shared ledger) on another node; an empty key means
    /// changes may have been missed.
    pub(crate) fn watch_terminals(&self, on: TerminalListener) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&on));
        self.backend.watch(Table::Terminals, on);
    }

    fn changed_terminals(&self, keys: &[Vec<u8>]) {
        if keys.is_empty() {
            return;
        }
        for on in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for k in keys {
                on(k);
            }
        }
    }

    /// See [`Backend::lease`].
    pub(crate) fn lease(&self, name: &str) -> Result<bool> {
        Ok(self.backend.lease(name)?)
    }

    /// See [`Backend::exclusive`].
    pub(crate) fn exclusive(&self, name: &str, f: &mut dyn FnMut()) -> Result<()> {
        Ok(self.backend.exclusive(name, f)?)
    }

    /// See [`Backend::shared`].
    pub fn shared(&self) -> bool {
        self.backend.shared()
    }

    /// See [`Backend::replication_lag`].
    pub(crate) fn replication_lag(&self) -> Option<f64> {
        self.backend.replication_lag()
    }

    /// False while the backend cannot take writes.
    pub fn healthy(&self) -> bool {
        self.backend.healthy()
    }

    /// See [`Backend::in_use`].
    pub fn in_use(&self) -> bool {
        self.backend.in_use()
    }

    /// See [`Backend::probe`]: may block on a round trip.
    pub fn probe(&self) {
        if !self.backend.healthy() {
            self.backend.probe();
        }
    }

    /// Runs `f` as one atomic, serializable transaction over every table.
    /// `f` may run more than once (on conflict) and must have no effect
    /// outside the transaction.
    pub(crate) fn transaction<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        self.transaction_as(None, f)
    }

    /// [`Store::transaction`] on behalf of `actor` (an admin user, a
    /// cashier, a payment gateway), whom the journal entries it posts name.
    pub(crate) fn transaction_as<T>(
        &self,
        actor: Option<&str>,
        f: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<T> {
        let out = RefCell::new(None);
        let terminals = RefCell::new(Vec::new());
        let shared = self.backend.shared();
        let ran = self.backend.transact(&|raw| {
            terminals.borrow_mut().clear();
            let v = f(&Tx {
                raw,
                terminals: &terminals,
                actor,
                shared,
            })?;
            *out.borrow_mut() = Some(v);
            Ok(())
        });
        match ran {
            Ok(()) => {
                self.changed_terminals(&terminals.into_inner());
                out.into_inner()
                    .ok_or_else(|| EngineError::invalid("a transaction committed without a result"))
            }
            Err(TxError::Abort(e)) => Err(e),
            Err(TxError::Storage(e)) => Err(EngineError::Storage(e)),
            Err(TxError::Conflict) => Err(EngineError::Storage(StorageError::Conflict)),
        }
    }

    /// [`Store::transaction`], with what it returns made durable.
    pub(crate) fn transaction_durable<T>(
        &self,
        f: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<Durable<T>> {
        self.transaction_durable_as(None, f)
    }

    /// [`Store::transaction_as`], with what it returns made durable.
    pub(crate) fn transaction_durable_as<T>(
        &self,
        actor: Option<&str>,
        f: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<Durable<T>> {
        let mark = self.mark();
        let v = self.transaction_as(actor, f)?;
        Ok(Durable::new(v, self.durable_since(mark)))
    }

    pub(crate) fn get<T: Record>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        match self.backend.get(table, key)? {
            Some(raw) => codec::from_slice(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// The values of the records whose key starts with `prefix`, in key
    /// order.
    pub(crate) fn values<T: Record>(&self, table: Table, prefix: &[u8]) -> Result<Vec<T>> {
        self.scan(table, prefix)
            .map(|r| r.map(|(_, v)| v))
            .collect()
    }

    /// Records whose key starts with `prefix`, in key order.
    pub(crate) fn scan<T: Record>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        records(self.backend.scan(table, Range::Prefix(prefix)))
    }

    /// Records from `from` on, in key order.
    pub(crate) fn scan_from<T: Record>(
        &self,
        table: Table,
        from: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        records(self.backend.scan(table, Range::From(from)))
    }

    /// Records in `range`, in key order, each decoded on its own: one that
    /// does not decode comes with its key and why, and the scan goes on
    /// past it (a storage error ends it). For the scans behind a cursor,
    /// which must neither stop at a damaged record for ever nor lose its
    /// place.
    pub(crate) fn scan_each<T: Record>(
        &self,
        table: Table,
        range: Range<'_>,
    ) -> impl Iterator<Item = Result<(Vec<u8>, Result<T>)>> + '_ {
        self.backend
            .scan(table, range)
            .map(|item| Ok(item.map(|(k, v)| (k, codec::from_slice(&v)))?))
    }

    /// Keys that start with `prefix`, in order.
    pub(crate) fn scan_keys(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        keys(self.backend.scan(table, Range::Prefix(prefix)))
    }

    /// Keys in `[from, to)`, in order.
    pub(crate) fn keys_in(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        keys(self.backend.scan(table, Range::Between(from, to)))
    }

    /// Stores a record outside any transaction (bookkeeping such as cursors).
    pub(crate) fn put<T: Record>(&self, table: Table, key: &[u8], value: &T) -> Result<()> {
        Ok(self.backend.put(table, key, &codec::to_vec(value)?)?)
    }

    /// Whether `key` is in `table` (an index entry has no value to read).
    pub(crate) fn contains(&self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.backend.get(table, key)?.is_some())
    }

    pub(crate) fn len(&self, table: Table) -> usize {
        self.backend.len(table)
    }

    /// A unique id that is never issued again.
    pub(crate) fn next_id(&self) -> Result<u64> {
        Ok(self.backend.next_id()?)
    }

    /// Taken before a transaction whose result must be durable, for
    /// [`Store::durable_since`].
    pub(crate) fn mark(&self) -> FlushMark {
        self.flusher.mark()
    }

    /// A ticket resolved once everything committed so far is durable, and
    /// failed if any flush failed since `mark`: a transaction that
    /// committed to a database that then failed is not made durable by a
    /// later successful flush.
    pub(crate) fn durable_since(&self, mark: FlushMark) -> FlushTicket {
        self.flusher.ticket_since(mark)
    }

    pub fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }

    /// Flushes everything now and stops the flusher once its tickets are
    /// served.
    pub fn close(&self) -> Result<()> {
        let flushed = self.backend.flush();
        self.flusher.shutdown();
        flushed.map_err(|e| EngineError::NotDurable(e.to_string()))
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.backend.size_on_disk()?)
    }

    /// Copies every record of this ledger, as of one instant, into `to`,
    /// which must hold nothing yet (a migration from one backend to
    /// another); `to` then issues ids above every id this one issued.
    /// Returns the records copied.
    pub fn copy_into(&self, to: &Store) -> Result<u64> {
        if let Some(t) = Table::ALL
            .into_iter()
            .find(|t| *t != Table::Meta && to.len(*t) > 0)
        {
            return Err(EngineError::invalid(format!(
                "the target ledger is not empty: it has {} records",
                t.name()
            )));
        }
        let snapshot = self.snapshot()?;
        let mut copied = 0u64;
        let mut chunk = Vec::with_capacity(4096);
        for table in Table::ALL {
            for item in snapshot.records(table) {
                chunk.push(item?);
                if chunk.len() == chunk.capacity() {
                    to.import(table, &chunk)?;
                    copied += chunk.len() as u64;
                    chunk.clear();
                }
            }
            to.import(table, &chunk)?;
            copied += chunk.len() as u64;
            chunk.clear();
        }
        to.raise_id_base(snapshot.next_id())?;
        to.close()?;
        Ok(copied)
    }

    pub(crate) fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        Ok(self.backend.snapshot()?)
    }

    pub(crate) fn import(&self, table: Table, records: &[(Vec<u8>, Vec<u8>)]) -> Result<()> {
        Ok(self.backend.import(table, records)?)
    }

    pub(crate) fn raise_id_base(&self, base: u64) -> Result<()> {
        Ok(self.backend.raise_id_base(base)?)
    }
}

fn records<'a, T: Record>(entries: Entries<'a>) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + 'a {
    entries.map(|item| {
        let (k, v) = item?;
        Ok((k, codec::from_slice(&v)?))
    })
}

fn keys(entries: Entries<'_>) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
    entries.map(|item| Ok(item?.0))
}

/// A view of every table inside one transaction, typed.
pub(crate) struct Tx<'a> {
    raw: &'a dyn RawTx,
    /// Terminals this run wrote, told to listeners once it commits.
    terminals: &'a RefCell<Vec<Vec<u8>>>,
    /// On whose behalf it runs (`None`: a terminal's request, or the
    /// switch's own background work).
    actor: Option<&'a str>,
    /// Whether it runs on a ledger several nodes share (see
    /// [`Tx::shared`]).
    shared: bool,
}

impl Tx<'_> {
    /// On whose behalf this transaction runs.
    pub(crate) fn actor(&self) -> Option<&str> {
        self.actor
    }

    /// Whether this transaction runs on a ledger several nodes share
    /// ([`Backend::shared`]). There RRN order is not commit order (each
    /// node takes its ids in blocks), so what a scan from a cursor could
    /// pass is indexed instead: holds by expiry (`expiry`), confirmed
    /// items as unsettled (`settlement`).
    pub(crate) fn shared(&self) -> bool {
        self.shared
    }

    pub(crate) fn get<T: Record>(&self, table: Table, key: &[u8]) -> TxResult<Option<T>> {
        self.get_each(table, key)?.transpose().or_else(abort)
    }

    /// As [`Tx::get`], but a record that does not decode comes back as
    /// its error instead of ending the transaction: for work that must get
    /// past a damaged record (see [`Store::scan_each`]).
    pub(crate) fn get_each<T: Record>(
        &self,
        table: Table,
        key: &[u8],
    ) -> TxResult<Option<Result<T>>> {
        let mut out = None;
        self.raw
            .read(table, key, &mut |raw| out = Some(codec::from_slice(raw)))?;
        Ok(out)
    }

    pub(crate) fn contains(&self, table: Table, key: &[u8]) -> TxResult<bool> {
        self.raw.read(table, key, &mut |_| {})
    }

    pub(crate) fn put<T: Record>(&self, table: Table, key: &[u8], value: &T) -> TxResult<()> {
        let raw = codec::to_vec(value).or_else(abort)?;
        if table == Table::Terminals {
            self.terminals.borrow_mut().push(key.to_vec());
        }
        self.raw.write(table, key, raw)
    }

    /// Stores a key with no value (index entries).
    pub(crate) fn mark(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.raw.write(table, key, Vec::new())
    }

    pub(crate) fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.raw.remove(table, key)
    }

    /// A unique id (may skip numbers when the transaction retries).
    pub(crate) fn next_id(&self) -> TxResult<u64> {
        self.raw.next_id()
    }
}
