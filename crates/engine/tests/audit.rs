//! The audit finds what a damaged ledger gets wrong: records are changed
//! behind the engine's back, straight through sled, and the audit must name
//! each change.

mod common;

use clubswitch_engine::codec;
use clubswitch_engine::loyalty::ONE;
use clubswitch_engine::Lot;
use clubswitch_engine::*;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc, Rrn};
use common::*;

/// Reopens the world with its `meta` cursor `name` put just past `rrn`.
fn cursor_past(dir: &TempDir, world: (World, Store), name: &'static [u8], rrn: Rrn) -> World {
    behind_the_engine(dir, world, |ledger, code| {
        let past = [rrn.as_bytes(), &[0u8][..]].concat();
        let key = [&[code("meta")][..], name].concat();
        ledger.insert(key, codec::to_vec(&past).unwrap()).unwrap();
    })
}

/// Reopens the world with its settlement batch `id` as `change` leaves it.
fn batch_changed(
    dir: &TempDir,
    world: (World, Store),
    id: u64,
    change: impl FnOnce(&mut SettlementBatch),
) -> World {
    behind_the_engine(dir, world, |ledger, code| {
        let key = [&[code("settlements")][..], &id.to_be_bytes()].concat();
        let mut batch: SettlementBatch =
            codec::from_slice(&ledger.get(&key).unwrap().unwrap()).unwrap();
        change(&mut batch);
        ledger.insert(key, codec::to_vec(&batch).unwrap()).unwrap();
    })
}

/// What the audit names, when it names one thing.
fn the_one_violation(w: &World) -> String {
    let v = w.engine.audit().ledger().unwrap().violations;
    assert_eq!(v.len(), 1, "{v:#?}");
    v[0].clone()
}

#[test]
fn the_audit_names_a_balance_the_journal_does_not_explain_and_lots_above_their_balance() {
    let dir = TempDir::new("audit");
    let (w, store) = open_world(&dir);
    w.engine
        .loyalty()
        .put_program(
            &w.merchant,
            &Program {
                points: 1,
                per_amount: 1_000,
                tier_bps: [ONE; 4],
                points_valid_days: Some(30),
                ..Program::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!(w.confirm(&auth, &out, 100_000, T0).code, Rc::Approved);
    w.assert_audit();
    let points = AccountKey::Points {
        member: w.member.id,
        merchant: w.merchant,
    };
    let club = AccountKey::Club(w.club.account.unwrap());
    let w = behind_the_engine(&dir, (w, store), |ledger, code| {
        let rewrite = |key: &AccountKey, change: &dyn Fn(&mut Account)| {
            let key = [&[code("accounts")][..], &key.to_key()].concat();
            let mut acc: Account = codec::from_slice(&ledger.get(&key).unwrap().unwrap()).unwrap();
            change(&mut acc);
            ledger.insert(key, codec::to_vec(&acc).unwrap()).unwrap();
        };
        rewrite(&points, &|a| {
            a.grants.lots.push(Lot { at: T0, amount: 1 });
            // A points account is a customer's, which points purchases
            // hold: it too must keep its holds covered.
            a.held = a.balance + 1;
        });
        rewrite(&club, &|a| a.balance += 1);
    });
    let report = w.engine.audit().ledger().unwrap();
    let v = &report.violations;
    let names =
        |account: &str, what: &str| v.iter().any(|v| v.contains(account) && v.contains(what));
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(
        names("Points", "lots of 101 but a balance of 100"),
        "{v:#?}"
    );
    assert!(names("Points", "holds 101"), "{v:#?}");
    assert!(names("Points", "available balance -1 below zero"), "{v:#?}");
    assert!(names("Club", "journal says"), "{v:#?}");
}

#[test]
fn the_audit_names_a_settlement_batch_that_lists_fewer_items_than_name_it() {
    let dir = TempDir::new("audit-batch");
    let (w, store) = open_world(&dir);
    w.confirmed_purchases(5);
    let settled = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(settled.len(), 1);
    let id = settled[0].id;
    w.assert_audit();

    // The batch loses its last item and keeps its totals: the sums still
    // agree, so only the count of the transactions that name it shows it.
    let w = batch_changed(&dir, (w, store), id, |batch| {
        assert!(batch.items.pop().is_some());
    });
    let v = w.engine.audit().ledger().unwrap().violations;
    assert_eq!(
        v,
        [format!(
            "batch {id}: lists 4 items but 5 transactions name it"
        )]
    );
}

#[test]
fn the_audit_names_a_transaction_the_settlement_cursor_passed_unfinished() {
    let dir = TempDir::new("audit-cursor");
    let (w, store) = open_world(&dir);
    let rrns = w.confirmed_purchases(2);
    let (_, held) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(5));
    assert_eq!(w.settle(T0.plus(100), T0.plus(100)).len(), 1);
    w.assert_audit();

    // A cursor past the hold: no run would settle it once confirmed.
    let held = held.rrn.unwrap();
    let w = cursor_past(&dir, (w, store), b"settlement_cursor", held);
    let v = the_one_violation(&w);
    assert!(
        v.contains(held.as_str()) && v.contains("settlement cursor"),
        "{v}"
    );
    assert!(rrns.iter().all(|r| !v.contains(r.as_str())));
}

#[test]
fn the_audit_names_a_hold_the_expiry_cursor_passed_that_the_index_does_not_hold() {
    let dir = TempDir::new("audit-expiry-cursor");
    let (w, store) = open_world(&dir);
    let (_, held) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let (_, later) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    assert_eq!(w.engine.sweeper().expire_holds(T0, 100).unwrap(), 0);
    w.assert_audit();

    // A cursor past the first hold: no sweep would expire it.
    let held = held.rrn.unwrap();
    let w = cursor_past(&dir, (w, store), b"expiry_cursor", held);
    let v = the_one_violation(&w);
    assert!(
        v.contains(held.as_str()) && v.contains("expiry cursor"),
        "{v}"
    );
    assert!(!v.contains(later.rrn.unwrap().as_str()));
}

#[test]
fn the_audit_names_a_batch_that_counts_other_items_than_the_archive_holds_for_it() {
    let dir = TempDir::new("audit-batch-list");
    let archive = TempDir::new("audit-batch-list-archive");
    let (w, store) = open_world(&dir);
    w.confirmed_purchases(5);
    let id = w.settle(T0.plus(100), T0.plus(100))[0].id;
    let run = w.engine.archive().run(T0.plus(200), &archive.0).unwrap();
    assert_eq!((run.transactions, run.batch_lists), (5, 1));
    let r = w.engine.audit().everything(&archive.0).unwrap();
    assert!(r.ok(), "{:#?}", r.violations);

    // Its list gone, the batch counts one item fewer than the archive
    // files hold for it.
    let w = batch_changed(&dir, (w, store), id, |batch| {
        assert_eq!((batch.items.len(), batch.items_archived), (0, 5));
        batch.items_archived = 4;
    });
    let v = w.engine.audit().everything(&archive.0).unwrap().violations;
    assert_eq!(
        v,
        [format!(
            "archive: batch {id}: 4 items left its list for the archive but the files hold 5"
        )]
    );
}
