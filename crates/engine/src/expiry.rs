//! Expiring holds that were never confirmed.
//!
//! Every hold is in an index by expiry time (`HoldsDue`: expires ‖ RRN),
//! written in the authorize's transaction and removed in the one that ends
//! the hold. The sweep reads the index up to now: it finds every hold due,
//! whatever order RRNs committed in (several nodes, each with its own
//! block of ids, commit out of RRN order), and reads nothing else.

use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::error::Result;
use crate::flows::end_hold;
use clubswitch_wire::Rrn;

use crate::model::{keys, Txn, TxnState, UnixTime};
use crate::requests::{self, Purge};
use crate::storage::{Store, Table, EARLIER_HOLD_INDEX_MARK};

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

/// Set once every hold a ledger held before the index existed is in it.
/// Not the key the earlier releases used ([`EARLIER_HOLD_INDEX_MARK`]),
/// which the embedded backend removes whenever it opens a ledger (so that
/// an earlier release rebuilds the index it reads); either says the same.
const INDEXED: &[u8] = b"hold_index_complete";

/// Whether every pending hold is in the index (see [`INDEXED`]).
pub(crate) fn indexed(store: &Store) -> Result<bool> {
    Ok(store.contains(Table::Meta, INDEXED)?
        || store.contains(Table::Meta, EARLIER_HOLD_INDEX_MARK)?)
}

impl Sweeper<'_> {
    /// Expires up to `max` holds whose time has passed at `now`, releasing
    /// what they held. Returns how many it expired. Each hold ends in its own
    /// transaction, and only if it is still pending, so a hold confirmed or
    /// voided meanwhile is left alone.
    pub fn expire_holds(&self, now: UnixTime, max: usize) -> Result<usize> {
        self.index_older_holds()?;
        let store = &self.core.store;
        let offset = self.core.cfg.utc_offset_secs;
        let upto = now.0.saturating_add(1).to_be_bytes();
        let due: Vec<Vec<u8>> = store
            .keys_in(Table::HoldsDue, b"", &upto)
            .take(max.saturating_add(1))
            .collect::<Result<_>>()?;
        let mut expired = 0usize;
        for key in due.iter().take(max) {
            let Some(rrn) = key.get(8..).and_then(|r| Rrn::from_bytes(r).ok()) else {
                continue;
            };
            let ended = store.transaction(|tx| {
                let txn = tx.get::<Txn>(Table::Txns, rrn.as_bytes())?;
                match txn {
                    Some(mut t) if t.state == TxnState::Held && t.expires <= now => {
                        end_hold(tx, &mut t, TxnState::Expired, offset)?;
                        tx.put(Table::Txns, rrn.as_bytes(), &t)?;
                        Ok(true)
                    }
                    // Not held any more (or archived): the entry is stale.
                    _ => tx.remove(Table::HoldsDue, key).map(|()| false),
                }
            })?;
            expired += usize::from(ended);
        }
        self.core
            .pending
            .store(due.len().saturating_sub(max), Ordering::Relaxed);
        Ok(expired)
    }

    /// A ledger written before the index existed has holds that are not in
    /// it: the first sweep puts them there, once.
    fn index_older_holds(&self) -> Result<()> {
        let store = &self.core.store;
        if indexed(store)? {
            return Ok(());
        }
        let mut held = Vec::new();
        for item in store.scan::<Txn>(Table::Txns, b"") {
            let (_, t) = item?;
            if t.state == TxnState::Held {
                held.push(keys::hold_due(t.expires, &t.rrn));
            }
        }
        for chunk in held.chunks(256) {
            store.transaction(|tx| chunk.iter().try_for_each(|k| tx.mark(Table::HoldsDue, k)))?;
        }
        store.put(Table::Meta, INDEXED, &1u64)
    }

    /// Pending holds seen by the last sweep.
    pub fn pending_holds(&self) -> usize {
        self.core.pending.load(Ordering::Relaxed)
    }

    /// Forgets request records answered before `before` (retransmissions
    /// that old are refused by the DE 7 window anyway), reading at most
    /// `max` records, oldest first and only those sent before `before`
    /// (see `requests`).
    pub fn purge_requests(&self, before: UnixTime, max: usize) -> Result<Purge> {
        requests::purge(&self.core.store, &self.core.first_layout, before, max)
    }
}

/// The smallest key after `key`.
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut k = key.to_vec();
    k.push(0);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_complete_by_this_releases_mark_or_the_earlier_releases() {
        let unmarked = Store::memory().unwrap();
        assert!(!indexed(&unmarked).unwrap());
        let earlier = Store::memory().unwrap();
        earlier
            .put(Table::Meta, EARLIER_HOLD_INDEX_MARK, &1u64)
            .unwrap();
        assert!(indexed(&earlier).unwrap());
        let this = Store::memory().unwrap();
        this.put(Table::Meta, INDEXED, &1u64).unwrap();
        assert!(indexed(&this).unwrap());
    }
}
