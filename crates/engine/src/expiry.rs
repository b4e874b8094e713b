//! Expiring holds that were never confirmed.
//!
//! **Finding the holds due.** A sweep reads the transactions in RRN order
//! (the order they were created) from a cursor kept in `meta`, expires
//! each hold it finds due, and leaves the cursor at the first hold not due
//! yet: every hold lives as long (`hold_ttl_secs`), so the holds after it
//! are due later. On a ledger one process owns, transactions run one at a
//! time and take their ids as they run, so once a scan sees a transaction
//! every transaction with a lower id has committed (or never will):
//! nothing the cursor passed is held, and no transaction becomes held
//! again, so no hold is ever left behind it.
//!
//! So an authorization writes nothing for expiry there. Up to record
//! format 9 it put its hold in an index by expiry time (`HoldsDue`:
//! expires ‖ RRN), in a tree of its own, and its confirm took it out again
//! milliseconds later: an insert and a remove for every flow.
//!
//! On a ledger several nodes share, each node takes its ids in blocks, so
//! a hold one node makes now can have a lower RRN than the cursor: there an
//! authorization still indexes its hold and the hold's end takes it out
//! (`flows::hold_started`, `flows::hold_ended`). Every sweep, on any
//! ledger, also reads the index up to now: it finds the holds a shared
//! ledger or format 9 indexed (a shared ledger restored into an embedded
//! one, an upgraded ledger), and removes each entry once it is due,
//! whether its hold expires then or ended before.
//!
//! A hold after the cursor can be due before the one the cursor stops at
//! when its request came in a moment earlier but took its RRN later: it
//! expires that moment late, with the hold before it. A hold due later
//! than any hold made now could be (more than `hold_ttl_secs` ahead: the
//! clock stepped back since it was made, or the time to live was
//! shortened) keeps the cursor but does not stop the scan, which goes on
//! to the first hold not due that is not so far ahead. A confirm never
//! takes a hold past its time (it expires the hold instead, see
//! `flows::confirm`): a late expiry only releases what the hold kept
//! later.
//!
//! **Where the first sweep starts.** A ledger upgraded from a format that
//! indexed every hold (its index marked complete, [`COMPLETE`]) starts
//! just past every transaction it had ([`UPGRADED_FROM`]); any other
//! ledger without a cursor (a new one, an older one whose index was never
//! completed or was left behind) at its first transaction, reading
//! [`SCAN_PER_SWEEP`] transactions a sweep until it reaches the end.

use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::error::Result;
use crate::flows::end_hold;
use clubswitch_wire::Rrn;

use crate::model::{keys, Txn, TxnState, UnixTime};
use crate::requests::{self, Purge};
use crate::storage::{Store, Table, Tx, TxResult, EARLIER_HOLD_INDEX_MARK, UPGRADED_FROM};

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

/// `meta` key: the transaction key the next sweep reads from (see the
/// module comment). Absent: from the first transaction.
pub(crate) const CURSOR: &[u8] = b"expiry_cursor";

/// Transactions a sweep reads from the cursor at most (about a second's
/// reading): a ledger read from its first transaction (see the module
/// comment) is read this many at a time.
const SCAN_PER_SWEEP: usize = 200_000;

/// The first record format whose authorizations index no hold on a ledger
/// one process owns.
const FIRST_UNINDEXED: u64 = 10;

/// The mark formats before 10 gave their index once every pending hold
/// was in it (their first sweep put the holds of a ledger from before the
/// index there). An entry of the index itself: its first eight bytes, an
/// entry's expiry, are all `ff`, after every entry's, so no sweep reads
/// it as due; and it goes wherever the index goes (a copy that leaves the
/// index behind leaves the mark too).
const COMPLETE: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xffcomplete";

/// Whether formats before 10 had every pending hold in the index: it says
/// so ([`COMPLETE`]), or `meta` holds the mark of the releases before it
/// ([`EARLIER_HOLD_INDEX_MARK`]: a PostgreSQL ledger of those releases;
/// the embedded backend removes it as it opens a ledger).
fn index_complete(store: &Store) -> Result<bool> {
    Ok(store.contains(Table::HoldsDue, COMPLETE)?
        || store.contains(Table::Meta, EARLIER_HOLD_INDEX_MARK)?)
}

/// Where a sweep reads from on a ledger with no cursor yet (see the module
/// comment).
fn first_cursor(store: &Store) -> Result<Vec<u8>> {
    match store.get::<(u64, u64)>(Table::Meta, UPGRADED_FROM)? {
        Some((from, above)) if from < FIRST_UNINDEXED && index_complete(store)? => {
            // RRNs are ids plus one: this is the RRN of the id `above`,
            // which no transaction took.
            Ok(Rrn::from_sequence(above.saturating_add(1))
                .as_bytes()
                .to_vec())
        }
        _ => Ok(Vec::new()),
    }
}

/// Expires the transaction `rrn` if it is a hold due at `now`. Returns
/// whether it did.
fn expire(tx: &Tx<'_>, rrn: &Rrn, now: UnixTime, utc_offset: i64) -> TxResult<bool> {
    match tx.get::<Txn>(Table::Txns, rrn.as_bytes())? {
        Some(mut t) if t.state == TxnState::Held && t.expires <= now => {
            end_hold(tx, &mut t, TxnState::Expired, utc_offset)?;
            tx.put(Table::Txns, rrn.as_bytes(), &t)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// What a sweep's scan from the cursor found.
struct Scanned {
    /// The holds due within the budget, in RRN order.
    due: Vec<Rrn>,
    /// Holds due past the budget that the index does not hold.
    left: usize,
    /// Where the next sweep reads from: the first hold it could not end
    /// (not due yet, or over the budget), else just past the last
    /// transaction read (or where the scan began, if it read none).
    resume: Vec<u8>,
}

impl Sweeper<'_> {
    /// Expires up to `max` holds whose time has passed at `now`, releasing
    /// what they held. Returns how many it expired. Each hold ends in its own
    /// transaction, and only if it is still pending, so a hold confirmed or
    /// voided meanwhile is left alone. What is over the budget is left for
    /// the next sweep, and counted ([`Sweeper::pending_holds`]).
    pub fn expire_holds(&self, now: UnixTime, max: usize) -> Result<usize> {
        let store = &self.core.store;
        let offset = self.core.cfg.utc_offset_secs;
        let upto = now.0.saturating_add(1).to_be_bytes();
        let mut indexed: Vec<Vec<u8>> = store
            .keys_in(Table::HoldsDue, b"", &upto)
            .take(max.saturating_add(SCAN_PER_SWEEP))
            .collect::<Result<_>>()?;
        let index_left = indexed.len().saturating_sub(max);
        indexed.truncate(max);
        let mut expired = 0usize;
        for key in &indexed {
            let rrn = key.get(8..).and_then(|r| Rrn::from_bytes(r).ok());
            let ended = store.transaction(|tx| {
                let ended = match &rrn {
                    Some(rrn) => expire(tx, rrn, now, offset)?,
                    None => false,
                };
                // Due: its hold ends now or has ended (or been archived).
                tx.remove(Table::HoldsDue, key)?;
                Ok(ended)
            })?;
            expired += usize::from(ended);
        }

        let stored: Option<Vec<u8>> = store.get(Table::Meta, CURSOR)?;
        let from = match &stored {
            Some(cursor) => cursor.clone(),
            None => first_cursor(store)?,
        };
        let scanned = self.scan(&from, now, max - indexed.len())?;
        for rrn in &scanned.due {
            let ended = store.transaction(|tx| expire(tx, rrn, now, offset))?;
            expired += usize::from(ended);
        }
        // Every hold before `resume` has ended now. Not in a hold's
        // transaction: a cursor left behind by a crash only makes the next
        // sweep read more.
        if stored.as_ref() != Some(&scanned.resume) {
            store.put(Table::Meta, CURSOR, &scanned.resume)?;
        }
        self.core
            .pending
            .store(index_left + scanned.left, Ordering::Relaxed);
        Ok(expired)
    }

    /// Reads the transactions from `from` (see the module comment) for up
    /// to `budget` holds due at `now`, and counts those due past it.
    fn scan(&self, from: &[u8], now: UnixTime, budget: usize) -> Result<Scanned> {
        let store = &self.core.store;
        // No hold made by now is due later than this.
        let latest = now.plus(self.core.cfg.hold_ttl_secs);
        let mut due = Vec::new();
        let mut left = 0;
        // The first hold read that the cursor may not pass.
        let mut kept = None;
        let mut last = None;
        for item in store
            .scan_from::<Txn>(Table::Txns, from)
            .take(SCAN_PER_SWEEP)
        {
            let (key, t) = item?;
            if t.state == TxnState::Held {
                if t.expires > latest {
                    kept.get_or_insert_with(|| key.clone());
                } else if t.expires > now {
                    let resume = kept.unwrap_or(key);
                    return Ok(Scanned { due, left, resume });
                } else if due.len() < budget {
                    due.push(t.rrn);
                } else {
                    kept.get_or_insert_with(|| key.clone());
                    // The index pass of the next sweep counts its own.
                    let indexed = keys::hold_due(t.expires, &t.rrn);
                    left += usize::from(!store.contains(Table::HoldsDue, &indexed)?);
                }
            }
            last = Some(key);
        }
        let resume = match (kept, last) {
            (Some(key), _) => key,
            (None, Some(key)) => successor(&key),
            (None, None) => from.to_vec(),
        };
        Ok(Scanned { due, left, resume })
    }

    /// Holds past their expiry that the last sweep left for the next (at
    /// least: it reads at most [`SCAN_PER_SWEEP`] transactions).
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
