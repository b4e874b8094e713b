//! The archive: what leaves the live ledger, what stays, and that the audit
//! and the files still account for every rial.

mod common;

use clubswitch_engine::archive::file::{self, Kind};
use clubswitch_engine::*;
use clubswitch_wire::{Amount, ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

fn balances(w: &World) -> Vec<i64> {
    [
        AccountKey::Payable(w.merchant),
        AccountKey::FeeIncome,
        AccountKey::Clearing,
        AccountKey::ClubFunding,
        AccountKey::StoreIssued(w.merchant),
    ]
    .iter()
    .map(|k| w.engine.admin().account(k).unwrap().balance)
    .collect()
}

fn assert_verified(w: &World, dir: &TempDir) -> ArchiveCheck {
    let check = w.engine.archive().verify(&dir.0).unwrap();
    assert!(check.violations.is_empty(), "{:#?}", check.violations);
    check
}

/// A day of every kind of transaction, all finished by `T0 + 1000`.
fn finished_day(w: &World) -> usize {
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, Amount::new(50_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    w.confirm(&a, &o, 80_000, T0.plus(10));
    let (a, o) = w.authorize(Pc::BankDiscount, BANK_PAN, 300_000, T0.plus(20));
    w.confirm(&a, &o, 300_000, T0.plus(30));
    let (a, o) = w.authorize(Pc::StorePurchase, CLUB_PAN, 20_000, T0.plus(40));
    w.confirm(&a, &o, 20_000, T0.plus(50));
    let (_, voided) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 5_000, T0.plus(60));
    assert_eq!(
        w.undo_rrn(voided.rrn.unwrap(), T0.plus(70)).code,
        Rc::Approved
    );
    let (_, expired) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 7_000, T0.plus(80));
    assert_eq!(expired.code, Rc::Approved);
    w.engine.sweeper().expire_holds(T0.plus(1000), 100).unwrap();
    assert_eq!(w.settle(T0.plus(900), T0.plus(900)).len(), 1);
    5
}

#[test]
fn finished_history_leaves_the_ledger_and_every_balance_and_the_audit_stay() {
    let w = World::new();
    let dir = TempDir::new("archive");
    let n = finished_day(&w);
    // A hold made later stays: it is newer than the horizon.
    let (_, later) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 1_000, T0.plus(5000));
    let club = w.club_account();
    let others = balances(&w);
    let journal = w.engine.audit().records().journal_entries;

    let run = w.engine.archive().run(T0.plus(2000), &dir.0).unwrap();
    assert_eq!(run.transactions, n);
    assert_eq!(run.journal_entries, journal);
    assert_eq!(run.waiting_on, None);
    assert_eq!(run.files.len(), 2);
    assert!(run.complete);

    assert_eq!(
        w.engine.audit().records().transactions,
        1,
        "only the new hold"
    );
    assert!(w.engine.admin().txn(&later.rrn.unwrap()).unwrap().is_some());
    assert_eq!(w.engine.audit().records().journal_entries, 0);
    assert_eq!(w.club_account(), club);
    assert_eq!(balances(&w), others);
    let r = w.engine.audit().ledger().unwrap();
    assert!(r.ok(), "{:#?}", r.violations);
    assert_eq!(
        (r.archived_transactions, r.archived_journal_entries),
        (n as u64, journal as u64)
    );
    let check = assert_verified(&w, &dir);
    assert_eq!(check.transactions, n as u64);
    assert_eq!(check.journal_entries, journal as u64);

    // A second run finds nothing more; the ledger goes on working.
    let again = w.engine.archive().run(T0.plus(2000), &dir.0).unwrap();
    assert_eq!((again.transactions, again.journal_entries), (0, 0));
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 3_000, T0.plus(6000));
    assert_eq!(w.confirm(&a, &o, 3_000, T0.plus(6010)).code, Rc::Approved);
    w.assert_audit();
}

#[test]
fn a_run_told_to_stop_ends_between_two_files_and_the_next_run_goes_on() {
    let w = World::new();
    let dir = TempDir::new("archive-stop");
    let n = finished_day(&w);
    let journal = w.engine.audit().records().journal_entries;
    // Files of two records; the stop comes once the first file is out.
    let asked = std::cell::Cell::new(0);
    let stop = || {
        asked.set(asked.get() + 1);
        asked.get() > 1
    };
    let first = w
        .engine
        .archive()
        .run_in_files(T0.plus(2000), &dir.0, 2, &stop)
        .unwrap();
    assert_eq!((first.transactions, first.journal_entries), (2, 0));
    assert_eq!(first.files.len(), 1);
    assert!(!first.complete, "a stopped run says it was cut short");
    assert_eq!(w.engine.audit().records().transactions, n - 2);
    w.assert_audit();
    assert_verified(&w, &dir);

    let rest = w
        .engine
        .archive()
        .run_in_files(T0.plus(2000), &dir.0, 2, &|| false)
        .unwrap();
    assert_eq!(rest.transactions, n - 2);
    assert_eq!(rest.journal_entries, journal);
    assert!(rest.complete);
    let check = assert_verified(&w, &dir);
    assert_eq!(check.transactions, n as u64, "each archived once");
    assert_eq!(check.journal_entries, journal as u64);
    w.assert_audit();
}

#[test]
fn an_unsettled_purchase_holds_the_archive_back_until_it_settles() {
    let w = World::new();
    let dir = TempDir::new("archive");
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    let (_, v) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 2_000, T0.plus(10));
    w.undo_rrn(v.rrn.unwrap(), T0.plus(11));

    let run = w.engine.archive().run(T0.plus(100), &dir.0).unwrap();
    assert_eq!(run.transactions, 0, "transactions go in RRN order");
    assert_eq!(run.waiting_on, o.rrn);
    assert!(run.journal_entries > 0, "the journal is not held back");
    w.assert_audit();

    w.settle(T0.plus(50), T0.plus(60));
    let run = w.engine.archive().run(T0.plus(100), &dir.0).unwrap();
    assert_eq!((run.transactions, run.waiting_on), (2, None));
    w.assert_audit();
    assert_verified(&w, &dir);
}

/// The live ledger's settlement batches, oldest first.
fn batches(w: &World) -> Vec<SettlementBatch> {
    w.engine.settlement().batches().unwrap()
}

/// 1 where the archive takes batches' lists, 0 on a ledger several nodes
/// share: its ids come in blocks per node, so no cursor could take
/// batches in order there.
fn lists_leave(w: &World) -> usize {
    usize::from(!w.engine.shared())
}

#[test]
fn a_batch_list_leaves_once_the_archive_holds_its_transactions_and_the_batch_keeps_its_count() {
    let w = World::new();
    let dir = TempDir::new("archive-lists");
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    let (a, o) = w.authorize(Pc::BankDiscount, BANK_PAN, 300_000, T0.plus(10));
    w.confirm(&a, &o, 300_000, T0.plus(15));
    let first = w.settle(T0.plus(100), T0.plus(100));
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 20_000, T0.plus(200));
    w.confirm(&a, &o, 20_000, T0.plus(205));
    let second = w.settle(T0.plus(300), T0.plus(300));
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_eq!(batches(&w), [first[0].clone(), second[0].clone()]);

    let lists = lists_leave(&w);

    // The first batch's transactions are archived; the second's are not.
    let run = w.engine.archive().run(T0.plus(150), &dir.0).unwrap();
    assert_eq!((run.transactions, run.batch_lists), (2, lists));
    let now = batches(&w);
    assert_eq!(now[0].item_count(), 2);
    assert_eq!(now[0].items.len(), 2 - 2 * lists);
    assert_eq!(now[0].net, first[0].net, "only the list left");
    assert_eq!(now[1], second[0], "its transaction is live");
    let view = now[0].view();
    assert_eq!((view.item_count, view.items.len()), (2, 2 - 2 * lists));
    w.assert_audit();
    assert_verified(&w, &dir);

    let run = w.engine.archive().run(T0.plus(1000), &dir.0).unwrap();
    assert_eq!((run.transactions, run.batch_lists), (1, lists));
    let now = batches(&w);
    assert_eq!(
        now.iter()
            .map(|b| (b.item_count(), b.items.len()))
            .collect::<Vec<_>>(),
        [(2, 2 - 2 * lists), (1, 1 - lists)]
    );
    let again = w.engine.archive().run(T0.plus(2000), &dir.0).unwrap();
    assert_eq!(again.batch_lists, 0, "each list leaves once");
    w.assert_audit();
    assert_verified(&w, &dir);
}

#[test]
fn the_archive_takes_no_batch_list_while_a_settlement_run_is_under_way() {
    let w = World::new();
    let dir = TempDir::new("archive-lists-settling");
    let lists = lists_leave(&w);
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    w.settle(T0.plus(100), T0.plus(100));
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 20_000, T0.plus(200));
    w.confirm(&a, &o, 20_000, T0.plus(205));

    // An archive run between two steps of a settlement run (where the
    // run asks whether to stop) takes the transaction, not the list.
    let during = std::cell::Cell::new(None);
    let stop = || {
        if during.get().is_none() {
            let run = w.engine.archive().run(T0.plus(150), &dir.0).unwrap();
            during.set(Some((run.transactions, run.batch_lists)));
        }
        false
    };
    let made = w
        .engine
        .settlement()
        .run_until(T0.plus(300), T0.plus(300), &stop)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(made.batches.len(), 1);
    assert_eq!(during.get(), Some((1, 0)));
    assert_eq!(batches(&w)[0].items.len(), 1);

    let run = w.engine.archive().run(T0.plus(150), &dir.0).unwrap();
    assert_eq!((run.transactions, run.batch_lists), (0, lists));
    w.assert_audit();
    assert_verified(&w, &dir);
}

#[test]
fn a_batch_keeps_its_list_while_the_archive_waits_before_one_of_its_transactions() {
    let w = World::new();
    let dir = TempDir::new("archive-lists-wait");
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    let (_, held) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 2_000, T0.plus(10));
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 3_000, T0.plus(20));
    w.confirm(&a, &o, 3_000, T0.plus(25));
    let made = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(made[0].items.len(), 2);

    let run = w.engine.archive().run(T0.plus(150), &dir.0).unwrap();
    assert_eq!(run.transactions, 1, "the hold stops the archive");
    assert_eq!(run.batch_lists, 0);
    assert_eq!(batches(&w), made, "one of its transactions is live");
    w.assert_audit();

    assert_eq!(
        w.undo_rrn(held.rrn.unwrap(), T0.plus(120)).code,
        Rc::Approved
    );
    let run = w.engine.archive().run(T0.plus(150), &dir.0).unwrap();
    let lists = lists_leave(&w);
    assert_eq!((run.transactions, run.batch_lists), (2, lists));
    assert_eq!(batches(&w)[0].item_count(), 2);
    assert_eq!(batches(&w)[0].items.len(), 2 - 2 * lists);
    w.assert_audit();
    assert_verified(&w, &dir);
}

#[test]
fn an_archived_purchase_can_no_longer_be_refunded_or_reversed() {
    let w = World::new();
    let dir = TempDir::new("archive");
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    w.settle(T0.plus(50), T0.plus(60));
    w.engine.archive().run(T0.plus(100), &dir.0).unwrap();
    let before = w.club_account();
    let rrn = o.rrn.unwrap();
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 1_000, T0.plus(200)).code,
        Rc::OriginalNotFound
    );
    assert_eq!(w.undo_rrn(rrn, T0.plus(210)).code, Rc::OriginalNotFound);
    assert_eq!(w.club_account(), before);
    w.assert_audit();
}

#[test]
fn a_refund_of_a_purchase_archived_meanwhile_still_settles_and_balances() {
    let w = World::new();
    let dir = TempDir::new("archive");
    let (a, o) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    w.settle(T0.plus(50), T0.plus(60));
    let r = w.refund(Pc::ClubRefund, o.rrn.unwrap(), 4_000, T0.plus(70));
    assert_eq!(r.code, Rc::Approved);
    // The purchase goes; the refund, not settled yet, stays and waits.
    let run = w.engine.archive().run(T0.plus(100), &dir.0).unwrap();
    assert_eq!((run.transactions, run.waiting_on), (1, r.rrn));
    w.assert_audit();
    let batches = w.settle(T0.plus(150), T0.plus(160));
    assert_eq!(batches[0].refunds, 4_000);
    w.engine.archive().run(T0.plus(200), &dir.0).unwrap();
    w.assert_audit();
    assert_eq!(assert_verified(&w, &dir).transactions, 2);
}

#[test]
fn a_run_interrupted_between_its_file_and_the_ledger_is_repaired_by_the_next() {
    let w = World::new();
    let dir = TempDir::new("archive");
    finished_day(&w);
    let (a, o) = w.authorize(Pc::StorePurchase, CLUB_PAN, 1_000, T0.plus(3000));
    w.confirm(&a, &o, 1_000, T0.plus(3010));
    w.engine.archive().run(T0.plus(2000), &dir.0).unwrap();

    // What a run killed after writing its files leaves: files reaching past
    // what the ledger archived, and a half-written temporary file.
    let live = w.engine.admin().txn(&o.rrn.unwrap()).unwrap().unwrap();
    let rrn = live.rrn;
    let records = [live];
    let straddling = file::write(
        &dir.0,
        Kind::Transactions,
        "000000000000",
        rrn.as_str(),
        &records,
    )
    .unwrap();
    let beyond = file::write(
        &dir.0,
        Kind::Transactions,
        rrn.as_str(),
        rrn.as_str(),
        &records,
    )
    .unwrap();
    std::fs::write(dir.0.join(".txns-x-y.arc.tmp"), b"half").unwrap();
    // The verifier ignores what the ledger did not archive.
    assert_verified(&w, &dir);

    let run = w.engine.archive().run(T0.plus(4000), &dir.0).unwrap();
    assert_eq!(run.transactions, 1);
    assert!(!beyond.exists() || run.files.contains(&beyond));
    assert!(!straddling.exists());
    let (files, temporary) = file::list(&dir.0).unwrap();
    assert!(temporary.is_empty());
    assert!(files.iter().all(|f| f.path != straddling));
    let check = assert_verified(&w, &dir);
    assert_eq!(check.transactions, 6);
    w.assert_audit();
}

#[test]
fn a_damaged_or_missing_archive_file_fails_verification() {
    let w = World::new();
    let dir = TempDir::new("archive");
    finished_day(&w);
    let run = w.engine.archive().run(T0.plus(2000), &dir.0).unwrap();
    let journal = run
        .files
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("journal")
        })
        .unwrap();
    let mut raw = std::fs::read(journal).unwrap();
    raw[20] ^= 0x40;
    std::fs::write(journal, &raw).unwrap();
    let check = w.engine.archive().verify(&dir.0).unwrap();
    assert!(
        check.violations.iter().any(|v| v.contains("damaged")),
        "{:#?}",
        check.violations
    );
    std::fs::remove_file(journal).unwrap();
    let check = w.engine.archive().verify(&dir.0).unwrap();
    assert!(
        check
            .violations
            .iter()
            .any(|v| v.contains("journal entries")),
        "{:#?}",
        check.violations
    );
}

#[test]
fn daily_counters_of_days_long_past_are_dropped() {
    let w = World::new();
    let dir = TempDir::new("archive");
    let limited = w
        .engine
        .admin()
        .issue_card(&NewCard {
            pan: pan(&luhn_fix("628023140000010")),
            kind: CardKind::Club,
            member: Some(w.member.id),
            expiry: None,
            max_amount: None,
            daily_limit: Amount::new(100_000),
        })
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .admin()
        .top_up(&limited.hash, Amount::new(50_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let (a, o) = w.authorize(Pc::ClubPurchase, &luhn_fix("628023140000010"), 10_000, T0);
    w.confirm(&a, &o, 10_000, T0.plus(5));
    assert_eq!(
        w.engine.admin().daily_spend(&limited.hash, T0).unwrap(),
        10_000
    );
    assert_eq!(
        w.engine
            .archive()
            .run(T0.plus(100), &dir.0)
            .unwrap()
            .counters,
        0
    );
    let run = w.engine.archive().run(T0.plus(3 * 86_400), &dir.0).unwrap();
    assert_eq!(run.counters, 1);
    assert_eq!(w.engine.admin().daily_spend(&limited.hash, T0).unwrap(), 0);
}

#[test]
fn request_records_are_purged_oldest_first_in_bounded_steps_without_reading_younger_ones() {
    let w = World::new();
    for i in 0..10 {
        w.authorize(Pc::ClubBalance, CLUB_PAN, 1, T0.plus(i));
    }
    for i in 0..5 {
        w.authorize(Pc::ClubBalance, CLUB_PAN, 1, T0.plus(1000 + i));
    }
    assert_eq!(w.engine.audit().records().request_records, 15);
    let mut removed = 0;
    let mut steps = 0;
    loop {
        let p = w.engine.sweeper().purge_requests(T0.plus(500), 4).unwrap();
        assert!(p.scanned <= 4);
        removed += p.removed;
        steps += 1;
        if p.done {
            break;
        }
    }
    assert_eq!((removed, steps), (10, 3));
    assert_eq!(w.engine.audit().records().request_records, 5);
    // The five younger records are not read at all.
    let p = w
        .engine
        .sweeper()
        .purge_requests(T0.plus(500), 100)
        .unwrap();
    assert_eq!((p.scanned, p.removed, p.done), (0, 0, true));
}

#[test]
fn the_purge_gets_past_more_records_not_yet_forgettable_than_it_reads_a_call() {
    let w = World::new();
    // Two requests from a terminal whose clock runs 50 s behind, answered
    // at T0, before one answered at T0 - 40 with a true clock.
    let answer = |sent: UnixTime, at: UnixTime| {
        let req = Authorize {
            key: w.next_key(sent),
            ..w.authorize(Pc::ClubBalance, CLUB_PAN, 1, T0.plus(-1_000)).0
        };
        let out = w
            .engine
            .handle(&Request::Authorize(req), at)
            .unwrap()
            .wait();
        assert_eq!(out.code, Rc::Approved);
    };
    answer(T0.plus(-50), T0);
    answer(T0.plus(-49), T0);
    answer(T0.plus(-40), T0.plus(-40));
    // One record a call: the two behind are passed over, not read for ever.
    let mut calls = Vec::new();
    loop {
        let p = w.engine.sweeper().purge_requests(T0, 1).unwrap();
        calls.push((p.scanned, p.removed));
        if p.done {
            break;
        }
        assert!(calls.len() < 10, "no progress: {calls:?}");
    }
    // The helper's own three (answered at T0 - 1000) go first.
    assert_eq!(calls.iter().map(|c| c.1).sum::<usize>(), 3 + 1);
    assert_eq!(w.engine.audit().records().request_records, 2);
    // Once their answers are that old, they go too.
    let p = w.engine.sweeper().purge_requests(T0.plus(1), 100).unwrap();
    assert_eq!((p.removed, p.done), (2, true));
}

#[test]
fn a_request_record_is_kept_until_its_answer_is_old_whatever_its_de7_says() {
    let w = World::new();
    // A terminal clock 50 s behind, and one 50 s ahead.
    let behind = Authorize {
        key: w.next_key(T0.plus(-50)),
        ..w.authorize(Pc::ClubBalance, CLUB_PAN, 1, T0).0
    };
    let ahead = Authorize {
        key: w.next_key(T0.plus(50)),
        ..behind.clone()
    };
    for req in [&behind, &ahead] {
        let out = w
            .engine
            .handle(&Request::Authorize(req.clone()), T0)
            .unwrap()
            .wait();
        assert_eq!(out.code, Rc::Approved);
    }
    assert_eq!(w.engine.audit().records().request_records, 3);
    let purge = |before: UnixTime| w.engine.sweeper().purge_requests(before, 100).unwrap();
    // Answered at T0: none is older than T0, though DE 7 puts one before.
    assert_eq!(purge(T0).removed, 0);
    assert_eq!(purge(T0.plus(1)).removed, 2);
    // The one sent "later" waits for the purge to reach its DE 7.
    assert_eq!(purge(T0.plus(50)).removed, 0);
    assert_eq!(purge(T0.plus(51)).removed, 1);
    assert_eq!(w.engine.audit().records().request_records, 0);
}
