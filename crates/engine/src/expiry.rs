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
//! shortened) would stop the scan until then: the sweep puts it in the
//! index instead, which expires it in its time, and the cursor passes it.
//! A confirm never takes a hold past its time (it expires the hold
//! instead, see `flows::confirm`): a late expiry only releases what the
//! hold kept later.
//!
//! **Where the first sweep starts.** A ledger upgraded from a format that
//! indexed every hold (its index marked complete, [`COMPLETE`]) starts
//! just past every transaction it had ([`UPGRADED_FROM`]); any other
//! ledger without a cursor (a new one, an older one whose index was never
//! completed or was left behind) at its first transaction, reading
//! [`SCAN_PER_SWEEP`] transactions a sweep until it reaches the end.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::error::Result;
use crate::flows::{end_hold, index_hold};
use clubswitch_wire::Rrn;

use crate::model::{keys, Txn, TxnState, UnixTime};
use crate::requests::{self, Purge};
use crate::storage::{Range, Store, Table, Tx, TxResult, EARLIER_HOLD_INDEX_MARK, UPGRADED_FROM};

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
const CURSOR: &[u8] = b"expiry_cursor";

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

/// Where the next sweep reads the transactions from, and whether a sweep
/// has stored it.
pub(crate) fn cursor(store: &Store) -> Result<(Vec<u8>, bool)> {
    match store.get(Table::Meta, CURSOR)? {
        Some(cursor) => Ok((cursor, true)),
        None => Ok((first_cursor(store)?, false)),
    }
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

/// What the sweep made of a transaction it looked at.
#[derive(PartialEq)]
enum Looked {
    Expired,
    /// Not a hold due now (or not there).
    Not,
    /// It does not decode: left as it is, and looked at again by every
    /// sweep (from the index) until it is repaired.
    Damaged,
}

/// Expires the transaction `rrn` if it is a hold due at `now`.
fn expire(tx: &Tx<'_>, rrn: &Rrn, now: UnixTime, utc_offset: i64) -> TxResult<Looked> {
    match tx.get_each::<Txn>(Table::Txns, rrn.as_bytes())? {
        Some(Ok(mut t)) if t.state == TxnState::Held && t.expires <= now => {
            end_hold(tx, &mut t, TxnState::Expired, utc_offset)?;
            tx.put(Table::Txns, rrn.as_bytes(), &t)?;
            Ok(Looked::Expired)
        }
        Some(Err(e)) => {
            tracing::error!(%rrn, "hold expiry passes over a transaction it cannot read: {e}");
            Ok(Looked::Damaged)
        }
        _ => Ok(Looked::Not),
    }
}

/// What a sweep's scan from the cursor found.
struct Scanned {
    /// The holds due within the budget, in RRN order.
    due: Vec<Rrn>,
    /// Holds due later than any made now, for the index (see the module
    /// comment).
    far: Vec<Rrn>,
    /// Holds due past the budget that the index does not hold.
    left: usize,
    /// Transactions that do not decode, for the index.
    damaged: Vec<Rrn>,
    /// Where the next sweep reads from: the first hold it could neither
    /// end nor index (not due yet, or over the budget), else just past the
    /// last transaction read (or where the scan began, if it read none).
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
        // Due past the budget: the RRNs the next sweep's index pass finds.
        let over = indexed.split_off(max.min(indexed.len()));
        let index_left = over.len();
        let in_index: HashSet<Rrn> = over.iter().filter_map(|k| keys::hold_due_rrn(k)).collect();
        let mut expired = 0usize;
        for key in &indexed {
            let rrn = keys::hold_due_rrn(key);
            let looked = store.transaction(|tx| {
                let looked = match &rrn {
                    Some(rrn) => expire(tx, rrn, now, offset)?,
                    None => Looked::Not,
                };
                // Due: its hold ends now or has ended (or been archived);
                // a damaged one keeps its entry, so it expires once
                // repaired.
                if looked != Looked::Damaged {
                    tx.remove(Table::HoldsDue, key)?;
                }
                Ok(looked)
            })?;
            expired += usize::from(looked == Looked::Expired);
        }

        let (from, stored) = cursor(store)?;
        let scanned = self.scan(&from, now, max - indexed.len(), &in_index)?;
        for rrn in &scanned.due {
            let looked = store.transaction(|tx| expire(tx, rrn, now, offset))?;
            expired += usize::from(looked == Looked::Expired);
        }
        // The damaged ones the scan passes go in the index, due now: the
        // next sweeps look at them there until they are repaired.
        if !scanned.damaged.is_empty() {
            store.transaction(|tx| {
                scanned
                    .damaged
                    .iter()
                    .try_for_each(|rrn| tx.mark(Table::HoldsDue, &keys::hold_due(now, rrn)))
            })?;
        }
        for rrn in &scanned.far {
            store.transaction(|tx| match tx.get::<Txn>(Table::Txns, rrn.as_bytes())? {
                Some(t) if t.state == TxnState::Held => index_hold(tx, &t),
                // Ended since the scan read it.
                _ => Ok(()),
            })?;
        }
        // Every hold before `resume` has ended or is in the index now. Not
        // in a hold's transaction: a cursor left behind by a crash only
        // makes the next sweep read more.
        if !stored || scanned.resume != from {
            store.put(Table::Meta, CURSOR, &scanned.resume)?;
        }
        self.core
            .pending
            .store(index_left + scanned.left, Ordering::Relaxed);
        Ok(expired)
    }

    /// Reads the transactions from `from` (see the module comment) for up
    /// to `budget` holds due at `now`, and counts those due past it that
    /// are not `in_index`.
    fn scan(
        &self,
        from: &[u8],
        now: UnixTime,
        budget: usize,
        in_index: &HashSet<Rrn>,
    ) -> Result<Scanned> {
        // No hold made by now is due later than this.
        let latest = now.plus(self.core.cfg.hold_ttl_secs);
        let mut due = Vec::new();
        let mut far = Vec::new();
        let mut left = 0;
        let mut damaged = Vec::new();
        // The first hold due past the budget: the cursor stays before it.
        let mut kept = None;
        let mut last = None;
        let txns = (self.core.store).scan_each::<Txn>(Table::Txns, Range::From(from));
        for item in txns.take(SCAN_PER_SWEEP) {
            let (key, t) = item?;
            // A record that does not decode is passed over: stopping at it
            // would stop every sweep there, and no hold after it would
            // ever expire. It goes in the index, so it expires once an
            // operator repairs it (`audit` fails on it until then).
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(rrn = %String::from_utf8_lossy(&key), "hold expiry passes over a transaction it cannot read: {e}");
                    if let Ok(rrn) = Rrn::from_bytes(&key) {
                        damaged.push(rrn);
                    }
                    last = Some(key);
                    continue;
                }
            };
            if t.state == TxnState::Held {
                if t.expires > latest {
                    far.push(t.rrn);
                } else if t.expires > now {
                    let resume = kept.unwrap_or(key);
                    return Ok(Scanned {
                        due,
                        far,
                        left,
                        damaged,
                        resume,
                    });
                } else if due.len() < budget {
                    due.push(t.rrn);
                } else {
                    kept.get_or_insert_with(|| key.clone());
                    left += usize::from(!in_index.contains(&t.rrn));
                }
            }
            last = Some(key);
        }
        let resume = match (kept, last) {
            (Some(key), _) => key,
            (None, Some(key)) => successor(&key),
            (None, None) => from.to_vec(),
        };
        Ok(Scanned {
            due,
            far,
            left,
            damaged,
            resume,
        })
    }

    /// Holds past their expiry that the last sweep left for the next:
    /// index entries due past its budget (an entry format 9 left may be of
    /// a hold that has ended since) and holds it read past its budget (it
    /// reads at most [`SCAN_PER_SWEEP`] transactions).
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
