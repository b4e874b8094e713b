//! Expiring holds that were never confirmed.
//!
//! Transactions are keyed by RRN, issued in time order, so the sweeper walks
//! them from a cursor (the oldest transaction that may still be held, kept in
//! the `meta` tree) instead of keeping an expiry index that every authorize
//! would have to write.

use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::error::Result;
use crate::flows::end_hold;
use crate::model::{RequestRecord, Txn, TxnState, UnixTime};
use crate::storage::Table;

/// What the sweep does between requests: expiring holds never confirmed,
/// forgetting request records too old to be retransmitted.
pub struct Sweeper<'a> {
    core: &'a Core,
}

impl<'a> Sweeper<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Sweeper { core }
    }
}

const CURSOR: &[u8] = b"sweep_cursor";
const PURGE_CURSOR: &[u8] = b"purge_cursor";

impl Sweeper<'_> {
    /// Expires up to `max` holds whose time has passed at `now`, releasing
    /// what they held. Returns how many it expired. Each hold ends in its own
    /// transaction, and only if it is still pending, so a hold confirmed or
    /// voided meanwhile is left alone.
    pub fn expire_holds(&self, now: UnixTime, max: usize) -> Result<usize> {
        let cursor: Vec<u8> = self
            .core
            .store
            .get(Table::Meta, CURSOR)?
            .unwrap_or_default();
        let offset = self.core.cfg.utc_offset_secs;
        let (mut expired, mut pending) = (0usize, 0usize);
        let mut next_cursor: Option<Vec<u8>> = None;
        let mut last_key: Option<Vec<u8>> = None;
        for item in self.core.store.scan_from::<Txn>(Table::Txns, &cursor) {
            let (key, t) = item?;
            if t.created > now {
                next_cursor.get_or_insert(key);
                break;
            }
            last_key = Some(key.clone());
            if t.state != TxnState::Held {
                continue;
            }
            if t.expires > now || expired >= max {
                pending += 1;
                next_cursor.get_or_insert(key);
                continue;
            }
            let rrn = t.rrn;
            let ended = self.core.store.transaction(|tx| {
                let Some(mut t) = tx.get::<Txn>(Table::Txns, rrn.as_bytes())? else {
                    return Ok(false);
                };
                if t.state != TxnState::Held || t.expires > now {
                    return Ok(false);
                }
                end_hold(tx, &mut t, TxnState::Expired, offset)?;
                tx.put(Table::Txns, rrn.as_bytes(), &t)?;
                Ok(true)
            })?;
            expired += usize::from(ended);
        }
        let next = next_cursor.or_else(|| last_key.map(|k| successor(&k)));
        if let Some(next) = next.filter(|n| *n != cursor) {
            self.core.store.put(Table::Meta, CURSOR, &next)?;
        }
        self.core.pending.store(pending, Ordering::Relaxed);
        Ok(expired)
    }

    /// Pending holds seen by the last sweep.
    pub fn pending_holds(&self) -> usize {
        self.core.pending.load(Ordering::Relaxed)
    }

    /// Forgets request records older than `before` (retransmissions that old
    /// are refused by the DE 7 window anyway). Looks at up to `max` records
    /// from where the previous call stopped, wrapping to the start, so one
    /// call costs the same however many records there are.
    pub fn purge_requests(&self, before: UnixTime, max: usize) -> Result<Purge> {
        let cursor: Vec<u8> = self
            .core
            .store
            .get(Table::Meta, PURGE_CURSOR)?
            .unwrap_or_default();
        let mut purge = Purge::default();
        let mut old = Vec::new();
        let mut next = Vec::new();
        for item in self
            .core
            .store
            .scan_from::<RequestRecord>(Table::Requests, &cursor)
        {
            let (k, rec) = item?;
            if purge.scanned == max {
                next = k;
                break;
            }
            purge.scanned += 1;
            if rec.at < before {
                old.push(k);
            }
        }
        purge.wrapped = next.is_empty();
        for chunk in old.chunks(256) {
            purge.removed += self.core.store.transaction(|tx| {
                let mut n = 0;
                for k in chunk {
                    // Re-read: only a record still that old goes.
                    let rec: Option<RequestRecord> = tx.get(Table::Requests, k)?;
                    if rec.is_some_and(|r| r.at < before) {
                        tx.remove(Table::Requests, k)?;
                        n += 1;
                    }
                }
                Ok(n)
            })?;
        }
        self.core.store.put(Table::Meta, PURGE_CURSOR, &next)?;
        Ok(purge)
    }
}

/// What one [`Sweeper::purge_requests`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    pub scanned: usize,
    pub removed: usize,
    /// It reached the last record: the next call starts from the first.
    pub wrapped: bool,
}

/// The smallest key after `key`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}
