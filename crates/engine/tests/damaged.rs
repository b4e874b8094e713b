//! A transaction record that does not decode (a damaged disk, a bug) must
//! not stop the work that reads the transactions from a cursor: every
//! sweep and every settlement run would fail at it for ever, and no hold
//! after it would expire, no purchase after it settle, no request record
//! after it be forgotten. Each passes over it and does the rest;
//! settlement comes back to it once it is repaired.

mod common;

use std::path::Path;

use clubswitch_engine::storage::embedded;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc, Rrn};
use common::*;

/// Writes `value` as the record of transaction `rrn` in the (closed)
/// ledger in `dir`, straight through sled. Returns what was there.
fn overwrite_txn(dir: &Path, rrn: &Rrn, value: &[u8]) -> Vec<u8> {
    let db = open_sled(dir);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let table = embedded::tables().find(|(_, n)| *n == "txns").unwrap().0;
    let key = [&[table][..], rrn.as_bytes()].concat();
    let old = ledger.insert(key, value).unwrap().unwrap().to_vec();
    db.flush().unwrap();
    old
}

const DAMAGED: &[u8] = &[0xff, 0x00, 0x13];

#[test]
fn hold_expiry_passes_over_a_transaction_it_cannot_read() {
    let dir = TempDir::new("damaged-hold");
    let w = open_world(&dir);
    let rrns: Vec<Rrn> = (0..3)
        .map(|_| {
            let (_, out) = w.0.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
            assert_eq!(out.code, Rc::Approved);
            out.rrn.unwrap()
        })
        .collect();
    close_world(w);
    let kept = overwrite_txn(&dir.0, &rrns[1], DAMAGED);

    let w = open_world(&dir);
    let later = T0.plus(1_000_000);
    assert_eq!(w.0.engine.sweeper().expire_holds(later, 100).unwrap(), 2);
    // The damaged hold stays held: nothing released that was not read.
    assert_eq!(w.0.club_account().held, 10_000);
    // The next sweep looks at it again, and fails no more.
    assert_eq!(w.0.engine.sweeper().expire_holds(later, 100).unwrap(), 0);
    close_world(w);

    // Repaired, it expires with the next sweep.
    overwrite_txn(&dir.0, &rrns[1], &kept);
    let w = open_world(&dir);
    assert_eq!(w.0.engine.sweeper().expire_holds(later, 100).unwrap(), 1);
    assert_eq!(w.0.club_account().held, 0);
    w.0.assert_audit();
    close_world(w);
}

#[test]
fn settlement_passes_over_a_transaction_it_cannot_read_and_settles_it_once_repaired() {
    let dir = TempDir::new("damaged-item");
    let w = open_world(&dir);
    let rrns = w.0.confirmed_purchases(3);
    close_world(w);
    let kept = overwrite_txn(&dir.0, &rrns[1], DAMAGED);

    let w = open_world(&dir);
    let first = w.0.settle(T0.plus(60), T0.plus(120));
    let settled: Vec<Rrn> = first.iter().flat_map(|b| b.items.clone()).collect();
    assert_eq!(settled, [rrns[0], rrns[2]]);
    close_world(w);
    overwrite_txn(&dir.0, &rrns[1], &kept);

    let w = open_world(&dir);
    let second = w.0.settle(T0.plus(60), T0.plus(180));
    let settled: Vec<Rrn> = second.iter().flat_map(|b| b.items.clone()).collect();
    assert_eq!(settled, [rrns[1]]);
    w.0.assert_audit();
    close_world(w);
}

#[test]
fn the_purge_of_request_records_passes_over_one_it_cannot_read() {
    let dir = TempDir::new("damaged-request");
    let w = open_world(&dir);
    w.0.confirmed_purchases(2);
    close_world(w);
    {
        let db = open_sled(&dir.0);
        let ledger = db.open_tree(embedded::LEDGER).unwrap();
        let table = embedded::tables()
            .find(|(_, n)| *n == "requests")
            .unwrap()
            .0;
        let (first, _) = ledger.scan_prefix([table]).next().unwrap().unwrap();
        ledger.insert(first, DAMAGED).unwrap();
        db.flush().unwrap();
    }

    let w = open_world(&dir);
    let purge =
        w.0.engine
            .sweeper()
            .purge_requests(T0.plus(1_000), 100)
            .unwrap();
    // Four records (two requests a purchase): the three readable go.
    assert_eq!((purge.scanned, purge.removed, purge.done), (4, 3, true));
    close_world(w);
}
