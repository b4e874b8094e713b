//! The audit finds what a damaged ledger gets wrong: records are changed
//! behind the engine's back, straight through sled, and the audit must name
//! each change.

mod common;

use clubswitch_engine::codec;
use clubswitch_engine::loyalty::ONE;
use clubswitch_engine::storage::embedded;
use clubswitch_engine::Lot;
use clubswitch_engine::*;
use clubswitch_wire::{ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

#[test]
fn the_audit_names_a_balance_the_journal_does_not_explain_and_lots_above_their_balance() {
    let dir = TempDir::new("audit");
    let store = Store::open(&dir.0, &EmbeddedConfig::default()).unwrap();
    let w = World::open_or_seed(store.clone());
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
    drop(w);
    store.close().unwrap();
    drop(store);

    let db = open_sled(&dir.0);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let (code, _) = embedded::tables().find(|(_, n)| *n == "accounts").unwrap();
    let rewrite = |key: &AccountKey, change: &dyn Fn(&mut Account)| {
        let key = [&[code][..], &key.to_key()].concat();
        let mut acc: Account = codec::from_slice(&ledger.get(&key).unwrap().unwrap()).unwrap();
        change(&mut acc);
        ledger.insert(key, codec::to_vec(&acc).unwrap()).unwrap();
    };
    rewrite(&points, &|a| a.grants.lots.push(Lot { at: T0, amount: 1 }));
    rewrite(&club, &|a| a.balance += 1);
    db.flush().unwrap();
    drop(ledger);
    drop(db);

    let w = World::open_or_seed(Store::open(&dir.0, &EmbeddedConfig::default()).unwrap());
    let report = w.engine.audit().ledger().unwrap();
    let v = &report.violations;
    let names =
        |account: &str, what: &str| v.iter().any(|v| v.contains(account) && v.contains(what));
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(
        names("Points", "lots of 101 but a balance of 100"),
        "{v:#?}"
    );
    assert!(names("Club", "journal says"), "{v:#?}");
}

#[test]
fn the_audit_names_a_settlement_batch_that_lists_fewer_items_than_name_it() {
    let dir = TempDir::new("audit-batch");
    let store = Store::open(&dir.0, &EmbeddedConfig::default()).unwrap();
    let w = World::open_or_seed(store.clone());
    w.confirmed_purchases(5);
    let settled = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(settled.len(), 1);
    let id = settled[0].id;
    w.assert_audit();
    drop(w);
    store.close().unwrap();
    drop(store);

    // The batch loses its last item and keeps its totals: the sums still
    // agree, so only the count of the transactions that name it shows it.
    let db = open_sled(&dir.0);
    let ledger = db.open_tree(embedded::LEDGER).unwrap();
    let (code, _) = embedded::tables()
        .find(|(_, n)| *n == "settlements")
        .unwrap();
    let key = [&[code][..], &id.to_be_bytes()].concat();
    let mut batch: SettlementBatch =
        codec::from_slice(&ledger.get(&key).unwrap().unwrap()).unwrap();
    assert!(batch.items.pop().is_some());
    ledger.insert(key, codec::to_vec(&batch).unwrap()).unwrap();
    db.flush().unwrap();
    drop(ledger);
    drop(db);

    let w = World::open_or_seed(Store::open(&dir.0, &EmbeddedConfig::default()).unwrap());
    let v = w.engine.audit().ledger().unwrap().violations;
    assert_eq!(
        v,
        [format!(
            "batch {id}: lists 4 items but 5 transactions name it"
        )]
    );
}
