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

/// The index's mark that it is complete (every pending hold in it), set
/// by the first sweep once the holds a ledger had before the index existed
/// are in it. An entry of the index itself: its first eight bytes, an
/// entry's expiry, are all `ff`, after every entry's, and the sweep reads
/// only entries due by now. So it goes wherever the index goes and nowhere
/// the index does not: a copy of the ledger that leaves this index behind
/// (an earlier release reads the embedded ledger's index in another tree,
/// and backs up or migrates that one) leaves the mark behind too, and the
/// next sweep here rebuilds the index.
const COMPLETE: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffcomplete";

/// Whether every pending hold is in the index: it says so ([`COMPLETE`]),
/// or `meta` holds the earlier releases' mark ([`EARLIER_HOLD_INDEX_MARK`]:
/// a PostgreSQL ledger of an earlier release; the embedded backend removes
/// it as it opens a ledger).
pub(crate) fn indexed(store: &Store) -> Result<bool> {
    Ok(store.contains(Table::HoldsDue, COMPLETE)?
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
        store.transaction(|tx| tx.mark(Table::HoldsDue, COMPLETE))
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
    fn the_index_is_complete_by_its_own_mark_or_the_earlier_releases() {
        let unmarked = Store::memory().unwrap();
        assert!(!indexed(&unmarked).unwrap());
        let earlier = Store::memory().unwrap();
        earlier
            .put(Table::Meta, EARLIER_HOLD_INDEX_MARK, &1u64)
            .unwrap();
        assert!(indexed(&earlier).unwrap());
        let this = Store::memory().unwrap();
        this.transaction(|tx| tx.mark(Table::HoldsDue, COMPLETE))
            .unwrap();
        assert!(indexed(&this).unwrap());
        // After every entry, whenever it expires.
        let last = keys::hold_due(
            UnixTime(i64::MAX),
            &Rrn::from_bytes(b"zzzzzzzzzzzz").unwrap(),
        );
        assert!(COMPLETE > &last[..]);
    }
}
