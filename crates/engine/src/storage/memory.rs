//! A backend in memory: the same contract as the others, nothing durable.
//! Fast tests run the engine on it; a flush succeeds at once because there
//! is nothing to lose that the process does not lose with it.
//!
//! Writes run one at a time under a lock (so transactions are serializable
//! and never conflict); a body's writes go to an overlay that is applied
//! when it returns `Ok` and dropped when it aborts.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use super::{Backend, Body, Entries, Range, RawTx, Snapshot, Table, TxResult};
use crate::error::StorageError;

type Tables = Vec<BTreeMap<Vec<u8>, Vec<u8>>>;

pub(crate) struct Memory {
    tables: RwLock<Tables>,
    /// One transaction at a time.
    writer: Mutex<()>,
    next_id: AtomicU64,
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            tables: RwLock::new(vec![BTreeMap::new(); Table::ALL.len()]),
            writer: Mutex::new(()),
            next_id: AtomicU64::new(0),
        }
    }
}

impl Memory {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A key's new value in a transaction (`None`: removed).
type Overlay = HashMap<(Table, Vec<u8>), Option<Vec<u8>>>;

struct MemoryTx<'a> {
    base: &'a Tables,
    overlay: std::cell::RefCell<Overlay>,
    next_id: &'a AtomicU64,
}

impl RawTx for MemoryTx<'_> {
    fn read(&self, table: Table, key: &[u8], with: &mut dyn FnMut(&[u8])) -> TxResult<bool> {
        let overlay = self.overlay.borrow();
        let value = match overlay.get(&(table, key.to_vec())) {
            Some(v) => v.as_deref(),
            None => self.base[table.index()].get(key).map(Vec::as_slice),
        };
        match value {
            Some(v) => {
                with(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn write(&self, table: Table, key: &[u8], value: Vec<u8>) -> TxResult<()> {
        self.overlay
            .borrow_mut()
            .insert((table, key.to_vec()), Some(value));
        Ok(())
    }

    fn remove(&self, table: Table, key: &[u8]) -> TxResult<()> {
        self.overlay
            .borrow_mut()
            .insert((table, key.to_vec()), None);
        Ok(())
    }

    fn next_id(&self) -> TxResult<u64> {
        Ok(self.next_id.fetch_add(1, Ordering::SeqCst))
    }
}

impl Backend for Memory {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read()[table.index()].get(key).cloned())
    }

    fn scan(&self, table: Table, range: Range<'_>) -> Entries<'_> {
        // A copy of the range: a scan outside a transaction need not be a
        // snapshot, and this one does not hold the lock while it is read.
        let entries: Vec<_> = self.read()[table.index()]
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(entries.into_iter())
    }

    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let _one = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.write()[table.index()].insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn transact(&self, body: Body<'_>) -> TxResult<()> {
        let _one = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let overlay = {
            let base = self.read();
            let tx = MemoryTx {
                base: &base,
                overlay: Default::default(),
                next_id: &self.next_id,
            };
            body(&tx)?;
            tx.overlay.into_inner()
        };
        let mut tables = self.write();
        for ((table, key), value) in overlay {
            match value {
                Some(v) => tables[table.index()].insert(key, v),
                None => tables[table.index()].remove(&key),
            };
        }
        Ok(())
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        Ok(self.next_id.fetch_add(1, Ordering::SeqCst))
    }

    fn raise_id_base(&self, base: u64) -> Result<(), StorageError> {
        self.next_id.fetch_max(base, Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn len(&self, table: Table) -> usize {
        self.read()[table.index()].len()
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StorageError> {
        let _between_writes = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Box::new(MemorySnapshot {
            tables: self.read().clone(),
            next_id: self.next_id.load(Ordering::SeqCst),
        }))
    }

    fn import(&self, table: Table, records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        let _one = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut tables = self.write();
        for (k, v) in records {
            tables[table.index()].insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn healthy(&self) -> bool {
        true
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(0)
    }
}

/// A copy of every table.
struct MemorySnapshot {
    tables: Tables,
    next_id: u64,
}

impl Snapshot for MemorySnapshot {
    fn records(&self, table: Table) -> Entries<'_> {
        Box::new(
            self.tables[table.index()]
                .iter()
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        )
    }

    fn next_id(&self) -> u64 {
        self.next_id
    }
}
