//! Request records: what the ledger remembers of each terminal request
//! (its fingerprint and answer), so that a retransmission is answered as
//! the original was and a reversal can name its original by DE 11 and
//! DE 7; and forgetting them once no terminal can send either any more.
//!
//! **Key layout.** A record's key leads with the Unix time its DE 7 names,
//! big-endian, then DE 41 ‖ DE 11 ‖ DE 7 ([`RequestKey::to_key`]). Records
//! sort by when their requests were sent, so those old enough to forget lie
//! together at the start of the table, and the purge reads them and hardly
//! any others (those whose DE 7 ran behind their answer). DE 7 has no year: the key's is the one that puts DE 7 nearest
//! the switch's clock. A retransmission, or a reversal naming its original,
//! comes within the record's keep (a day and some minutes in production),
//! far less than the half year after which the clock would name another
//! year, so it meets the same key.
//!
//! **The first layout** (record formats 1 to 7) was DE 41 ‖ DE 11 ‖ DE 7:
//! a terminal's records together, the old ones among the new, so the purge
//! read every live record to find them (up to a million a round, about as
//! much of the switch's CPU as the terminals' own requests in the soak).
//! Its records are not moved: while any is left, a lookup that misses tries
//! its first-layout key too, and the purge goes on reading them from where
//! it stopped, as it did, until none is left. The layouts never meet: a
//! time-led key starts with 0, a first-layout one with DE 41's first
//! character, printable ASCII.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Result;
use crate::model::{sent_key, RequestKey, RequestRecord, UnixTime};
use crate::storage::{Range, Store, Table, Tx, TxResult};

/// Where first-layout keys start and end in the table (see the module
/// comment): after every time-led key, before any key a printable DE 41
/// can start.
const FIRST_LAYOUT: (&[u8], &[u8]) = (&[1], &[0xff]);
/// `meta` key: where the purge of first-layout records goes on from.
const PURGE_CURSOR: &[u8] = b"purge_cursor";
/// `meta` key: where the purge of time-led records goes on from.
const SENT_CURSOR: &[u8] = b"purge_sent_cursor";
/// Records removed per transaction.
const CHUNK: usize = 256;

/// Whether the ledger may still hold records of the first layout. Read when
/// the engine opens; cleared by a purge that finds none left. A node that
/// does not run the purge (on a shared ledger, another node does) keeps
/// trying first-layout keys on a miss until it restarts: one more read per
/// new request, never a retransmission missed.
pub(crate) struct FirstLayout(AtomicBool);

impl FirstLayout {
    /// Looks at `store`.
    pub(crate) fn of(store: &Store) -> FirstLayout {
        FirstLayout(AtomicBool::new(any_left(store)))
    }

    pub(crate) fn left(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether `store` holds any first-layout record; a ledger that cannot be
/// read is taken to hold some.
fn any_left(store: &Store) -> bool {
    store
        .keys_in(Table::Requests, FIRST_LAYOUT.0, FIRST_LAYOUT.1)
        .next()
        .is_some()
}

/// The record of the request `key`, stored under `stored` (its
/// [`RequestKey::to_key`]), if the ledger still has it; under its
/// first-layout key too while `first_layout` says any may be left.
pub(crate) fn find(
    tx: &Tx<'_>,
    key: &RequestKey,
    stored: &[u8; 32],
    first_layout: bool,
) -> TxResult<Option<RequestRecord>> {
    if let Some(rec) = tx.get(Table::Requests, stored)? {
        return Ok(Some(rec));
    }
    if first_layout {
        return tx.get(Table::Requests, &key.first_layout_key());
    }
    Ok(None)
}

/// What one [`purge`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purge {
    /// Records read.
    pub scanned: usize,
    pub removed: usize,
    /// Nothing more to forget until time passes: the call read every record
    /// sent before the horizon (and, while first-layout records are left,
    /// reached the end of theirs, so the next call starts from their first).
    pub done: bool,
}

/// Forgets the records of requests answered before `before`, reading at most
/// `max` records: those sent before `before`, oldest first, from where the
/// previous call stopped. A record whose DE 7 names a time before its
/// answer (a terminal clock behind) is passed over until a later call finds
/// its answer that old; one whose DE 7 names a later time (a clock ahead,
/// within the replay window) waits for the purge to reach that time: every
/// record is kept at least until its answer is older than `before`, and
/// each call goes on from the last, however many are passed over.
pub(crate) fn purge(
    store: &Store,
    first_layout: &FirstLayout,
    before: UnixTime,
    max: usize,
) -> Result<Purge> {
    let sent = Span {
        cursor: SENT_CURSOR,
        from: &[],
        to: &sent_key(before.0),
    };
    let mut purge = purge_span(store, &sent, before, max)?;
    if first_layout.left() {
        let first = Span {
            cursor: PURGE_CURSOR,
            from: FIRST_LAYOUT.0,
            to: FIRST_LAYOUT.1,
        };
        let more = purge_span(store, &first, before, max - purge.scanned)?;
        if more.done && !any_left(store) {
            first_layout.0.store(false, Ordering::Relaxed);
        }
        purge.scanned += more.scanned;
        purge.removed += more.removed;
        purge.done &= more.done;
    }
    Ok(purge)
}

/// Keys `[from, to)` of the table, read a part at a time from the key
/// stored under `cursor` in `meta`.
struct Span<'a> {
    cursor: &'a [u8],
    from: &'a [u8],
    to: &'a [u8],
}

/// Reads up to `max` records of `span` from where the previous call
/// stopped and forgets those answered before `before`. Done when it read
/// to the span's end: the next call starts again from its first key.
fn purge_span(store: &Store, span: &Span<'_>, before: UnixTime, max: usize) -> Result<Purge> {
    let cursor: Vec<u8> = store.get(Table::Meta, span.cursor)?.unwrap_or_default();
    let from = cursor.as_slice().max(span.from);
    let mut scanned = 0;
    let mut old = Vec::new();
    let mut next = Vec::new();
    let records = store.scan_each::<RequestRecord>(Table::Requests, Range::Between(from, span.to));
    for item in records {
        let (k, rec) = item?;
        if scanned == max {
            next = k;
            break;
        }
        scanned += 1;
        match rec {
            Ok(rec) if rec.at < before => old.push(k),
            Ok(_) => {}
            // Passed over, not removed: stopping at it would stop every
            // purge there, and the table would grow for ever.
            Err(e) => {
                tracing::error!("the purge of request records passes over one it cannot read: {e}")
            }
        }
    }
    let removed = remove_older(store, &old, before)?;
    if next != cursor {
        store.put(Table::Meta, span.cursor, &next)?;
    }
    Ok(Purge {
        scanned,
        removed,
        done: next.is_empty(),
    })
}

/// Removes the records under `keys` still answered before `before` (each
/// read again in the transaction that removes it), a chunk per
/// transaction. Returns how many.
fn remove_older(store: &Store, keys: &[Vec<u8>], before: UnixTime) -> Result<usize> {
    let mut removed = 0;
    for chunk in keys.chunks(CHUNK) {
        removed += store.transaction(|tx| {
            let mut n = 0;
            for k in chunk {
                let rec: Option<RequestRecord> = tx.get(Table::Requests, k)?;
                if rec.is_some_and(|r| r.at < before) {
                    tx.remove(Table::Requests, k)?;
                    n += 1;
                }
            }
            Ok(n)
        })?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use clubswitch_wire::{ResponseCode, Stan, TerminalId, TransmissionTime};

    use super::*;
    use crate::model::Outcome;

    fn key(terminal: &[u8], sent: i64) -> RequestKey {
        RequestKey {
            terminal: TerminalId::from_bytes(terminal).unwrap(),
            stan: Stan::new(7).unwrap(),
            transmitted: TransmissionTime::from_unix(sent),
        }
    }

    fn record(at: i64) -> RequestRecord {
        RequestRecord {
            fingerprint: [1; 32],
            at: UnixTime(at),
            outcome: Outcome::decline(ResponseCode::Approved),
            rrn: None,
            durable: false,
        }
    }

    /// 2026-12-31T23:59:50Z.
    const NEW_YEARS_EVE: i64 = 1_798_761_590;

    #[test]
    fn keys_sort_by_the_time_de7_names_whatever_the_terminal_and_before_every_first_layout_key() {
        let now = UnixTime(NEW_YEARS_EVE);
        let early = key(b"ZZZZZZZZ", NEW_YEARS_EVE - 60).to_key(now);
        let late = key(b"        ", NEW_YEARS_EVE - 59).to_key(now);
        assert!(early < late);
        // After midnight DE 7 says 0101, still later than 1231.
        let next_year = key(b"        ", NEW_YEARS_EVE + 20).to_key(now);
        assert!(late < next_year);
        let lowest_first_layout = key(b"        ", NEW_YEARS_EVE).first_layout_key();
        assert!(next_year.as_slice() < FIRST_LAYOUT.0);
        assert!(FIRST_LAYOUT.0 <= lowest_first_layout.as_slice());
        assert!(lowest_first_layout.as_slice() < FIRST_LAYOUT.1);
    }

    #[test]
    fn a_retransmission_across_new_year_meets_the_same_key() {
        let sent = key(b"T0000001", NEW_YEARS_EVE);
        let first = sent.to_key(UnixTime(NEW_YEARS_EVE + 2));
        // Answered again a minute and a day later, in the new year.
        assert_eq!(sent.to_key(UnixTime(NEW_YEARS_EVE + 70)), first);
        assert_eq!(sent.to_key(UnixTime(NEW_YEARS_EVE + 86_400)), first);
    }

    #[test]
    fn lookups_try_first_layout_keys_until_a_purge_finds_none_left() {
        let store = Store::memory().unwrap();
        let old = key(b"T0000001", 1_000);
        store
            .transaction(|tx| tx.put(Table::Requests, &old.first_layout_key(), &record(1_000)))
            .unwrap();
        let first_layout = FirstLayout::of(&store);
        assert!(first_layout.left());
        let found = |left: bool| {
            store
                .transaction(|tx| find(tx, &old, &old.to_key(UnixTime(1_010)), left))
                .unwrap()
        };
        assert_eq!(found(true), Some(record(1_000)));
        assert_eq!(found(false), None);
        // Not yet old enough: kept, and so is the flag.
        let p = purge(&store, &first_layout, UnixTime(1_000), 10).unwrap();
        assert_eq!((p.scanned, p.removed, p.done), (1, 0, true));
        assert!(first_layout.left());
        let p = purge(&store, &first_layout, UnixTime(1_001), 10).unwrap();
        assert_eq!((p.scanned, p.removed, p.done), (1, 1, true));
        assert!(!first_layout.left());
        assert!(!FirstLayout::of(&store).left());
    }

    #[test]
    fn the_first_layouts_purge_goes_on_where_it_stopped() {
        let store = Store::memory().unwrap();
        store
            .transaction(|tx| {
                for t in [b"T0000001", b"T0000002", b"T0000003"] {
                    tx.put(
                        Table::Requests,
                        &key(t, 1_000).first_layout_key(),
                        &record(1_000),
                    )?;
                }
                tx.put(
                    Table::Requests,
                    &key(b"T0000004", 5_000).to_key(UnixTime(5_000)),
                    &record(5_000),
                )
            })
            .unwrap();
        let first_layout = FirstLayout::of(&store);
        let p = purge(&store, &first_layout, UnixTime(2_000), 2).unwrap();
        assert_eq!((p.scanned, p.removed, p.done), (2, 2, false));
        assert!(first_layout.left());
        let p = purge(&store, &first_layout, UnixTime(2_000), 2).unwrap();
        assert_eq!((p.scanned, p.removed, p.done), (1, 1, true));
        assert!(!first_layout.left());
    }
}
