//! Money-moving admin calls under idempotency keys: a key moves value at
//! most once, answers a repeat as the first, and refuses another request.

mod common;

use std::sync::Arc;

use clubswitch_engine::*;
use clubswitch_wire::Amount;
use common::*;

fn key(k: &str, body: &str) -> Option<Idempotency> {
    use sha2::{Digest, Sha256};
    Some(Idempotency::new("gateway", k, Sha256::digest(body).into()))
}

#[test]
fn a_top_up_repeated_under_its_key_credits_once_and_answers_as_the_first() {
    let w = World::new();
    let before = w.club_account().balance;
    let top_up = |k: &str, body: &str, amount: u64| {
        w.engine
            .admin()
            .keyed(key(k, body))
            .top_up(&w.club.hash, Amount::new(amount).unwrap(), T0)
            .and_then(|d| d.wait().map_err(|e| EngineError::NotDurable(e.to_string())))
    };
    let first = top_up("order-1", "50000", 50_000).unwrap();
    assert_eq!(first.balance, before + 50_000);
    // Another top-up without a key moves the balance on...
    w.engine
        .admin()
        .top_up(&w.club.hash, Amount::new(1_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    // ...but the repeat answers exactly as the first did, and moves nothing.
    assert_eq!(top_up("order-1", "50000", 50_000).unwrap(), first);
    assert_eq!(w.club_account().balance, before + 51_000);
    // The same key for another request is refused, and moves nothing.
    assert!(matches!(
        top_up("order-1", "60000", 60_000),
        Err(EngineError::KeyReused)
    ));
    assert_eq!(w.club_account().balance, before + 51_000);
    // A new key is a new top-up.
    top_up("order-2", "50000", 50_000).unwrap();
    assert_eq!(w.club_account().balance, before + 101_000);
    w.assert_audit();
}

#[test]
fn one_key_sent_from_many_threads_at_once_credits_once() {
    let w = Arc::new(World::new());
    let before = w.club_account().balance;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                w.engine
                    .admin()
                    .keyed(key("callback-7", "25000"))
                    .top_up(&w.club.hash, Amount::new(25_000).unwrap(), T0)
                    .unwrap()
                    .wait()
                    .unwrap()
            })
        })
        .collect();
    let answers: Vec<Account> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(w.club_account().balance, before + 25_000);
    w.assert_audit();
}

#[test]
fn points_grants_and_conversions_are_kept_by_their_keys_too() {
    let w = World::new();
    w.engine
        .loyalty()
        .put_program(
            &w.merchant,
            &Program {
                credit_per_point: 100,
                ..Program::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let grant = |k: &str, points: i64| {
        w.engine
            .loyalty()
            .keyed(key(k, &points.to_string()))
            .grant_points(w.member.id, &w.merchant, points, T0)
            .unwrap()
            .wait()
            .unwrap()
    };
    assert_eq!(grant("g1", 500).balance, 500);
    assert_eq!(grant("g1", 500).balance, 500, "repeat moves nothing");
    assert_eq!(
        grant("g2", -100).balance,
        400,
        "a negative grant takes back"
    );
    assert!(w
        .engine
        .loyalty()
        .grant_points(w.member.id, &w.merchant, -401, T0)
        .is_err());
    // Beyond twelve digits either way is refused before anything moves,
    // i64::MIN (whose negation overflows) included.
    for points in [1_000_000_000_000, -1_000_000_000_000, i64::MAX, i64::MIN] {
        assert!(matches!(
            w.engine
                .loyalty()
                .grant_points(w.member.id, &w.merchant, points, T0),
            Err(EngineError::Invalid(_))
        ));
    }
    let convert = || {
        w.engine
            .loyalty()
            .keyed(key("c1", "300"))
            .convert_points(w.member.id, &w.merchant, Some(300), T0)
            .unwrap()
            .wait()
            .unwrap()
    };
    assert_eq!(convert(), (300, 30_000));
    assert_eq!(convert(), (300, 30_000));
    let points = w.engine.loyalty().points(w.member.id, &w.merchant).unwrap();
    assert_eq!(points.balance, 100);
    assert_eq!(w.store_account().balance, 30_000);
    w.assert_audit();
}

#[test]
fn keys_are_forgotten_only_after_the_keeping_time() {
    let w = World::new();
    let top_up = |at: UnixTime| {
        w.engine
            .admin()
            .keyed(key("k", "1"))
            .top_up(&w.club.hash, Amount::new(1_000).unwrap(), at)
            .unwrap()
            .wait()
            .unwrap()
    };
    let before = w.club_account().balance;
    top_up(T0);
    let keep = idempotency::KEEP_SECS;
    assert_eq!(
        w.engine.access().forget_expired(T0.plus(keep - 1)).unwrap(),
        0
    );
    top_up(T0.plus(keep - 1));
    assert_eq!(w.club_account().balance, before + 1_000);
    assert_eq!(
        w.engine.access().forget_expired(T0.plus(keep + 1)).unwrap(),
        1
    );
    top_up(T0.plus(keep + 2));
    assert_eq!(w.club_account().balance, before + 2_000);
}

/// Settles one club purchase of `amount` (one batch); returns its id.
fn settle(w: &World, amount: u64, at: UnixTime) -> u64 {
    let (a, o) = w.authorize(
        clubswitch_wire::ProcessingCode::ClubPurchase,
        CLUB_PAN,
        amount,
        at,
    );
    w.confirm(&a, &o, amount, at);
    let batches = w.settle(at.plus(1), at.plus(2));
    assert_eq!(batches.len(), 1);
    batches[0].id
}

fn clearing_and_paid(w: &World) -> (i64, i64) {
    let admin = w.engine.admin();
    (
        admin.account(&AccountKey::Clearing).unwrap().balance,
        admin.account(&AccountKey::PaidOut).unwrap().balance,
    )
}

#[test]
fn a_payout_pays_each_open_batch_once_and_a_returned_one_goes_again_with_its_reason() {
    use payout::{BankOutcome, BankResult, ItemState};
    let w = World::new();
    let first = settle(&w, 100_000, T0);
    let payouts = w.engine.payouts();
    let p1 = payouts
        .create(T0.plus(10))
        .unwrap()
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(p1.batches, vec![first]);
    // Nothing new to pay: no second file for the same batch.
    assert_eq!(payouts.create(T0.plus(11)).unwrap().wait().unwrap(), None);

    let (_, items) = payouts.get(p1.id).unwrap().unwrap();
    let net = items[0].amount;
    assert_eq!(net, 99_000, "the purchase less the 1% fee");
    let e2e = items[0].end_to_end.clone();
    let returned = BankResult {
        end_to_end: e2e.clone(),
        outcome: BankOutcome::Returned {
            reason: "AC04 closed account".into(),
        },
    };
    let r = payouts
        .reconcile(std::slice::from_ref(&returned), T0.plus(20))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!((r.paid, r.returned), (0, 1));
    // Read twice, the statement changes nothing more.
    let r = payouts
        .reconcile(&[returned], T0.plus(21))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!((r.returned, r.unchanged), (0, 1));
    let out = payouts.outstanding(None).unwrap();
    assert_eq!((out[0].returned, out[0].outstanding), (net, net));

    // The operator corrects the closed account the bank returned.
    let admin = w.engine.admin();
    let mut merchant = admin.merchant(&w.merchant).unwrap().unwrap();
    let old_iban = merchant.settlement_account.clone();
    merchant.settlement_account = "IR820540102680020817909002".into();
    admin.put_merchant(&merchant).unwrap().wait().unwrap();

    // The next payout takes the returned batch again, to the corrected
    // account, and a new one.
    let second = settle(&w, 50_000, T0.plus(100));
    let p2 = payouts
        .create(T0.plus(200))
        .unwrap()
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(p2.batches, vec![first, second]);
    let (_, items) = payouts.get(p2.id).unwrap().unwrap();
    assert_eq!(items[0].returns[0].reason, "AC04 closed account");
    assert_ne!(items[0].end_to_end, e2e, "sent again under a new id");
    assert_ne!(old_iban, merchant.settlement_account);
    assert!(
        items.iter().all(|i| i.iban == merchant.settlement_account),
        "{items:?}"
    );
    let results: Vec<BankResult> = items
        .iter()
        .map(|i| BankResult {
            end_to_end: i.end_to_end.clone(),
            outcome: BankOutcome::Paid,
        })
        .chain([BankResult {
            end_to_end: "NOT-OURS-1".into(),
            outcome: BankOutcome::Paid,
        }])
        .collect();
    let r = payouts
        .reconcile(&results, T0.plus(300))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!((r.paid, r.unmatched.len()), (2, 1));
    assert_eq!(clearing_and_paid(&w), (0, net + 49_500));
    let out = payouts.outstanding(None).unwrap();
    assert_eq!((out[0].paid, out[0].outstanding), (net + 49_500, 0));
    assert!(items.iter().all(|i| i.state == ItemState::Sent));
    w.assert_audit();

    // A transfer the bank returns after booking it paid is booked back.
    let late = BankResult {
        end_to_end: payouts.get(p2.id).unwrap().unwrap().1[1].end_to_end.clone(),
        outcome: BankOutcome::Returned {
            reason: "AC01".into(),
        },
    };
    payouts
        .reconcile(&[late], T0.plus(400))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(clearing_and_paid(&w), (49_500, net));
    w.assert_audit();

    // With no account to send to, a batch waits for one.
    merchant.settlement_account = String::new();
    admin.put_merchant(&merchant).unwrap().wait().unwrap();
    settle(&w, 10_000, T0.plus(500));
    assert_eq!(payouts.create(T0.plus(600)).unwrap().wait().unwrap(), None);
    let out = payouts.outstanding(None).unwrap();
    assert_eq!((out[0].returned, out[0].not_sent), (49_500, 9_900));
}

#[test]
fn a_money_move_names_its_actor_in_the_journal_and_a_terminal_s_does_not() {
    let w = World::new();
    w.engine
        .admin()
        .by(Some("desk-1".into()))
        .top_up(&w.club.hash, Amount::new(7_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let (a, o) = w.authorize(
        clubswitch_wire::ProcessingCode::ClubPurchase,
        CLUB_PAN,
        1_000,
        T0,
    );
    w.confirm(&a, &o, 1_000, T0);
    let journal = w.engine.audit().journal(0, 1_000).unwrap();
    let top_up = journal
        .iter()
        .rev()
        .find(|e| e.kind == JournalKind::TopUp)
        .unwrap();
    assert_eq!(top_up.actor.as_deref(), Some("desk-1"));
    let purchase = journal
        .iter()
        .find(|e| e.kind == JournalKind::Purchase)
        .unwrap();
    assert_eq!(
        purchase.actor, None,
        "a terminal's: its terminal is the transaction's"
    );
}
