//! Settlement and hold expiry on a PostgreSQL ledger two nodes share
//! (`common::store` picks PostgreSQL by this target's name). Each node
//! takes its ids in blocks, so one node's new transaction can have a lower
//! RRN than another node's older one, which a settlement run or a sweep
//! has already passed: the indexes a shared ledger keeps (unsettled items,
//! holds by expiry) find it.

mod common;

use clubswitch_engine::*;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc, Rrn};
use common::*;

/// A club purchase of `amount` confirmed on `node` at `at`: its RRN.
fn purchase(node: &World, amount: u64, at: UnixTime) -> Rrn {
    let (auth, out) = node.authorize(Pc::ClubPurchase, CLUB_PAN, amount, at);
    assert_eq!(node.confirm(&auth, &out, amount, at).code, Rc::Approved);
    out.rrn.unwrap()
}

/// Two nodes on a new shared ledger, node A's block of ids before node
/// B's, and a purchase confirmed on each (A's first): their RRNs. Their
/// requests differ in DE 7, as two terminals' would in DE 41.
fn two_nodes_a_purchase_each() -> (World, World, Rrn, Rrn) {
    let url = pg::fresh_url();
    let a = World::with_store(Store::connect(&url).unwrap());
    let b = World::open_or_seed(Store::connect(&url).unwrap());
    let on_a = purchase(&a, 1_000, T0);
    let on_b = purchase(&b, 2_000, T0.plus(1));
    assert!(on_a.as_bytes() < on_b.as_bytes(), "{on_a} {on_b}");
    (a, b, on_a, on_b)
}

#[test]
fn an_item_a_node_confirms_below_the_settlement_cursor_is_still_settled() {
    let (a, b, on_a, on_b) = two_nodes_a_purchase_each();
    let first = b.settle(T0.plus(100), T0.plus(100));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].items, [on_a, on_b]);

    // Node A goes on in its block: below where that run stopped reading.
    let below = purchase(&a, 3_000, T0.plus(150));
    assert!(below.as_bytes() < on_b.as_bytes(), "{below} {on_b}");
    a.assert_audit();
    let second = b.settle(T0.plus(200), T0.plus(200));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].items, [below]);
    assert_eq!(second[0].gross, 3_000);
    b.assert_audit();
    assert!(a.settle(T0.plus(300), T0.plus(300)).is_empty());
}

#[test]
fn a_hold_behind_a_shared_ledgers_cursor_settles_once_restored_into_an_embedded_one() {
    let (a, b, _, on_b) = two_nodes_a_purchase_each();
    assert_eq!(b.settle(T0.plus(100), T0.plus(100)).len(), 1);
    // A hold on node A, below where that run left the cursor.
    let (auth, out) = a.authorize(Pc::ClubPurchase, CLUB_PAN, 3_000, T0.plus(150));
    let held = out.rrn.unwrap();
    assert!(held.as_bytes() < on_b.as_bytes(), "{held} {on_b}");

    let dir = TempDir::new("shared-restore");
    std::fs::create_dir_all(dir.0.join("backup")).unwrap();
    let dump = dir.0.join("backup/ledger.dump");
    a.engine
        .backup(&BackupPaths {
            dump: dump.clone(),
            archive_from: dir.0.join("archive"),
            archive_to: dir.0.join("backup/archive"),
        })
        .unwrap();
    let ledger = dir.0.join("restored/ledger");
    backup::restore(
        &dump,
        &dir.0.join("backup/archive"),
        &ledger,
        &dir.0.join("restored/archive"),
        &EmbeddedConfig::default(),
    )
    .unwrap();
    let restored = World::open_or_seed(Store::open(&ledger, &EmbeddedConfig::default()).unwrap());
    restored.assert_audit();
    // Confirmed on the embedded ledger, whose confirms index nothing.
    let confirmed = restored.confirm(&auth, &out, 3_000, T0.plus(160));
    assert_eq!(confirmed.code, Rc::Approved);
    let batches = restored.settle(T0.plus(200), T0.plus(200));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].items, [held]);
    restored.assert_audit();
}

#[test]
fn a_hold_a_node_makes_below_the_expiry_cursor_still_expires() {
    let (a, b, _, on_b) = two_nodes_a_purchase_each();
    // Nothing held: the sweep's cursor passes both.
    assert_eq!(b.engine.sweeper().expire_holds(T0.plus(2), 100).unwrap(), 0);

    // Node A goes on in its block: below where that sweep stopped reading.
    let (_, out) = a.authorize(Pc::ClubPurchase, CLUB_PAN, 3_000, T0.plus(10));
    let held = out.rrn.unwrap();
    assert!(held.as_bytes() < on_b.as_bytes(), "{held} {on_b}");
    a.assert_audit();
    assert_eq!(b.club_account().held, 3_000);
    assert_eq!(
        b.engine
            .sweeper()
            .expire_holds(T0.plus(3_600), 100)
            .unwrap(),
        1
    );
    assert_eq!(b.state(&out), TxnState::Expired);
    assert_eq!(b.club_account().held, 0);
    b.assert_audit();
}

#[test]
fn holds_an_embedded_ledger_made_expire_once_it_is_copied_onto_a_shared_one() {
    let dir = TempDir::new("embedded-to-shared");
    let embedded = Store::open(&dir.0, &EmbeddedConfig::default()).unwrap();
    let e = World::with_store(embedded.clone());
    // Indexed nowhere: the embedded ledger's sweep finds them by its
    // cursor, which the first is still before.
    let (_, first) = e.authorize(Pc::ClubPurchase, CLUB_PAN, 1_000, T0);
    assert_eq!(e.engine.sweeper().expire_holds(T0, 100).unwrap(), 0);
    let (_, second) = e.authorize(Pc::ClubPurchase, CLUB_PAN, 2_000, T0.plus(1));

    let url = pg::fresh_url();
    let shared = Store::connect(&url).unwrap();
    embedded.copy_into(&shared).unwrap();
    drop(e);
    embedded.close().unwrap();
    let node = World::open_or_seed(Store::connect(&url).unwrap());
    node.assert_audit();
    // One more, made on the shared ledger: in its index.
    let (_, third) = node.authorize(Pc::ClubPurchase, CLUB_PAN, 4_000, T0.plus(2));
    assert_eq!(node.club_account().held, 7_000);
    assert_eq!(
        node.engine
            .sweeper()
            .expire_holds(T0.plus(3_600), 100)
            .unwrap(),
        3
    );
    for out in [first, second, third] {
        assert_eq!(node.state(&out), TxnState::Expired);
    }
    assert_eq!(node.club_account().held, 0);
    node.assert_audit();
}
