//! The storage boundary. Everything the engine persists goes through
//! [`Store`] (reads, scans, ids, flush) and [`Tx`] (reads and writes inside
//! one atomic transaction), keyed by [`Table`]. Nothing else in the engine
//! touches sled, so another backend (a networked database shared by several
//! switch nodes) replaces this module alone.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;

use crate::codec;
use crate::durability::{FlushStats, FlushTicket, GroupCommit};
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
}

impl Table {
    pub const ALL: [Table; 14] = [
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
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_bytes: 256 * 1024 * 1024,
            flush_every_ms: Some(200),
        }
    }
}

/// The engine's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    trees: Arc<[sled::Tree]>,
    flusher: Arc<GroupCommit>,
}

impl Store {
    /// Opens (creating if needed) the data directory `path`.
    pub fn open(path: &Path, cfg: &StoreConfig) -> Result<Store> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cfg.cache_bytes)
            .flush_every_ms(cfg.flush_every_ms)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        Self::from_db(db)
    }

    /// A throwaway store in a temporary directory (tests, benchmarks).
    pub fn temporary() -> Result<Store> {
        let db = sled::Config::new().temporary(true).open()?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Store> {
        let trees = Table::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let store = Store {
            flusher: Arc::new(GroupCommit::start(db.clone())),
            db,
            trees: trees.into(),
        };
        store.check_format()?;
        Ok(store)
    }

    fn check_format(&self) -> Result<()> {
        let meta = &self.trees[Table::Meta.index()];
        match meta.get(b"format_version")? {
            Some(v) if v.as_ref() == [codec::FORMAT_VERSION] => Ok(()),
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

    /// Runs `f` as one atomic, serializable transaction over every table.
    /// `f` may run more than once (on conflict) and must have no effect
    /// outside the transaction.
    pub fn transaction<T>(&self, f: impl Fn(&Tx<'_>) -> TxResult<T>) -> Result<T> {
        let result = self.trees[..].transaction(|trees: &Vec<TransactionalTree>| {
            let tx = Tx { trees };
            f(&tx)
        });
        match result {
            Ok(v) => Ok(v),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(EngineError::Storage(e)),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        match self.trees[table.index()].get(key)? {
            Some(raw) => codec::from_slice(&raw).map(Some),
            None => Ok(None),
        }
    }

    /// Records whose key starts with `prefix`, in key order.
    pub fn scan<T: DeserializeOwned>(
        &self,
        table: Table,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        self.trees[table.index()].scan_prefix(prefix).map(|item| {
            let (k, v) = item?;
            Ok((k.to_vec(), codec::from_slice(&v)?))
        })
    }

    /// Records from `from` on, in key order.
    pub fn scan_from<T: DeserializeOwned>(
        &self,
        table: Table,
        from: &[u8],
    ) -> impl Iterator<Item = Result<(Vec<u8>, T)>> + '_ {
        self.trees[table.index()]
            .range(from.to_vec()..)
            .map(|item| {
                let (k, v) = item?;
                Ok((k.to_vec(), codec::from_slice(&v)?))
            })
    }

    /// Stores a record outside any transaction (bookkeeping such as cursors).
    pub fn put<T: Serialize>(&self, table: Table, key: &[u8], value: &T) -> Result<()> {
        self.trees[table.index()].insert(key, codec::to_vec(value)?)?;
        Ok(())
    }

    /// Keys in `[from, to)`, in order.
    pub fn keys_in(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
    ) -> impl Iterator<Item = Result<Vec<u8>>> + '_ {
        self.trees[table.index()]
            .range(from.to_vec()..to.to_vec())
            .map(|item| Ok(item?.0.to_vec()))
    }

    pub fn contains(&self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.trees[table.index()].contains_key(key)?)
    }

    pub fn len(&self, table: Table) -> usize {
        self.trees[table.index()].len()
    }

    /// A unique, monotonic id that survives restarts.
    pub fn next_id(&self) -> Result<u64> {
        Ok(self.db.generate_id()?)
    }

    /// A ticket resolved once everything committed so far is on disk.
    pub fn durable(&self) -> FlushTicket {
        self.flusher.ticket()
    }

    pub fn flush_stats(&self) -> FlushStats {
        self.flusher.stats()
    }

    /// Flushes everything now and stops the flusher once its tickets are
    /// served.
    pub fn close(&self) -> Result<()> {
        self.db.flush()?;
        self.flusher.shutdown();
        Ok(())
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
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

    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> TxResult<Option<T>> {
        match self.tree(table).get(key)? {
            Some(raw) => codec::from_slice(&raw).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    pub fn contains(&self, table: Table, key: &[u8]) -> TxResult<bool> {
        Ok(self.tree(table).get(key)?.is_some())
    }

    pub fn put<T: Serialize>(&self, table: Table, key: &[u8], value: &T) -> TxResult<()> {
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
