//! Every flow and response code of the engine.

mod common;

use clubswitch_engine::*;
use clubswitch_wire::{
    AccountType, Amount, AmountType, CardData, Currency, Expiry, MerchantId, Mti, OriginalData,
    ProcessingCode as Pc, ResponseCode as Rc, Rrn, TerminalId,
};
use common::*;

fn block(o: &Outcome, acct: AccountType, t: AmountType) -> u64 {
    o.amounts
        .iter()
        .find(|b| b.account == acct && b.amount_type == t)
        .map(|b| b.amount.value())
        .unwrap_or_else(|| panic!("no {acct:?}/{t:?} block in {o:?}"))
}

#[test]
fn club_purchase_holds_then_partial_confirm_releases_the_rest() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 120_000, T0);
    assert_eq!(out.code, Rc::Approved);
    assert!(out.rrn.is_some() && out.auth_id.is_some());
    assert_eq!(
        block(&out, AccountType::Club, AmountType::LedgerBalance),
        500_000
    );
    assert_eq!(
        block(&out, AccountType::Club, AmountType::AvailableBalance),
        380_000
    );
    assert_eq!(
        w.club_account(),
        Account {
            balance: 500_000,
            held: 120_000,
            ..Account::default()
        }
    );

    let c = w.confirm(&auth, &out, 100_000, T0.plus(10));
    assert_eq!(c.code, Rc::Approved);
    assert_eq!(
        block(&c, AccountType::Club, AmountType::AvailableBalance),
        400_000
    );
    assert_eq!(
        w.club_account(),
        Account {
            balance: 400_000,
            held: 0,
            ..Account::default()
        }
    );
    // Merchant owed 100 000 less 1% fee.
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        99_000
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::FeeIncome)
            .unwrap()
            .balance,
        1_000
    );
    w.assert_audit();
}

#[test]
fn insufficient_funds_is_51_and_holds_count_against_available() {
    let w = World::new();
    let (_, a) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 300_000, T0);
    assert_eq!(a.code, Rc::Approved);
    let (_, b) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 200_001, T0);
    assert_eq!(b.code, Rc::InsufficientFunds);
    let (_, c) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 200_000, T0);
    assert_eq!(c.code, Rc::Approved);
    w.assert_audit();
}

#[test]
fn card_checks_give_14_57_62_54() {
    let w = World::new();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, UNKNOWN_PAN, 1000, T0).1.code,
        Rc::InvalidCardNumber
    );
    assert_eq!(
        w.authorize(Pc::ClubPurchase, "6280231400000012", 1000, T0)
            .1
            .code,
        Rc::InvalidCardNumber,
        "Luhn"
    );
    assert_eq!(
        w.authorize(Pc::ClubPurchase, BANK_PAN, 1000, T0).1.code,
        Rc::NotPermittedToCardholder
    );
    assert_eq!(
        w.authorize(Pc::BankDiscount, CLUB_PAN, 1000, T0).1.code,
        Rc::NotPermittedToCardholder
    );

    w.engine
        .admin()
        .update_card(&w.club.hash, |c| c.status = Status::Blocked)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::RestrictedCard
    );
    w.engine
        .admin()
        .update_card(&w.club.hash, |c| c.status = Status::Active)
        .unwrap()
        .wait()
        .unwrap();

    w.engine
        .admin()
        .update_card(&w.club.hash, |c| c.expiry = Expiry::from_yymm(b"2610"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::ExpiredCard
    );
    w.engine
        .admin()
        .update_card(&w.club.hash, |c| c.expiry = Expiry::from_yymm(b"2611"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::Approved,
        "valid through the month"
    );
}

#[test]
fn expiry_in_the_card_block_is_checked() {
    let w = World::new();
    let req = Authorize {
        key: w.next_key(T0),
        merchant: w.merchant,
        code: Pc::BankDiscount,
        amount: Some(Amount::new(1000).unwrap()),
        currency: Currency::IRR,
        card: CardData {
            pan: pan(UNKNOWN_PAN),
            expiry: Expiry::from_yymm(b"2501"),
        },
    };
    let out = w
        .engine
        .handle(&Request::Authorize(req), T0)
        .unwrap()
        .wait();
    assert_eq!(out.code, Rc::ExpiredCard);
}

#[test]
fn terminal_and_merchant_checks_give_58_and_03() {
    let w = World::new();
    let mut req = Authorize {
        key: w.next_key(T0),
        merchant: w.merchant,
        code: Pc::ClubPurchase,
        amount: Some(Amount::new(1000).unwrap()),
        currency: Currency::IRR,
        card: CardData {
            pan: pan(CLUB_PAN),
            expiry: None,
        },
    };
    req.key.terminal = "NOSUCH01".parse().unwrap();
    assert_eq!(
        w.engine
            .handle(&Request::Authorize(req.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::NotPermittedToTerminal
    );

    req.key = w.next_key(T0);
    req.merchant = "MERCHANT0000002".parse().unwrap();
    assert_eq!(
        w.engine
            .handle(&Request::Authorize(req.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::InvalidMerchant
    );

    req.key = w.next_key(T0);
    req.merchant = w.merchant;
    w.engine
        .admin()
        .update_terminal(&w.terminal, |t| t.status = Status::Blocked)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.engine
            .handle(&Request::Authorize(req.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::NotPermittedToTerminal
    );
    w.engine
        .admin()
        .update_terminal(&w.terminal, |t| t.status = Status::Active)
        .unwrap()
        .wait()
        .unwrap();

    let failure = Request::Terminal(TerminalUpdate {
        terminal: w.terminal,
        change: TerminalChange::SecurityFailure { lock_after: 2 },
    });
    let locked = |r: Reply| r.terminal.map(|t| t.locked);
    assert_eq!(locked(w.engine.handle(&failure, T0).unwrap()), Some(false));
    assert_eq!(locked(w.engine.handle(&failure, T0).unwrap()), Some(true));
    req.key = w.next_key(T0);
    assert_eq!(
        w.engine
            .handle(&Request::Authorize(req.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::NotPermittedToTerminal
    );
    w.engine
        .admin()
        .update_terminal(&w.terminal, |t| {
            t.locked = false;
            t.security_failures = 0;
        })
        .unwrap()
        .wait()
        .unwrap();

    let mut m = merchant_record(w.merchant);
    m.offers.club = false;
    w.engine.admin().put_merchant(&m).unwrap().wait().unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::NotPermittedToTerminal
    );
    m.status = Status::Blocked;
    w.engine.admin().put_merchant(&m).unwrap().wait().unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::InvalidMerchant
    );
}

#[test]
fn amount_and_currency_checks_give_13() {
    let w = World::new();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 0, T0).1.code,
        Rc::InvalidAmount
    );
    let req = Authorize {
        key: w.next_key(T0),
        merchant: w.merchant,
        code: Pc::ClubPurchase,
        amount: Some(Amount::new(1000).unwrap()),
        currency: Currency::new(840).unwrap(),
        card: CardData {
            pan: pan(CLUB_PAN),
            expiry: None,
        },
    };
    assert_eq!(
        w.engine
            .handle(&Request::Authorize(req), T0)
            .unwrap()
            .wait()
            .code,
        Rc::InvalidAmount
    );
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0);
    assert_eq!(
        w.confirm(&auth, &out, 1001, T0).code,
        Rc::InvalidAmount,
        "confirm above hold"
    );
    assert_eq!(w.confirm(&auth, &out, 0, T0).code, Rc::InvalidAmount);
}

#[test]
fn limits_give_61() {
    let w = World::new();
    let mut m = merchant_record(w.merchant);
    m.max_amount = Amount::new(100_000);
    w.engine.admin().put_merchant(&m).unwrap().wait().unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_001, T0).1.code,
        Rc::ExceedsAmountLimit
    );
    m.max_amount = None;
    w.engine.admin().put_merchant(&m).unwrap().wait().unwrap();

    w.engine
        .admin()
        .update_card(&w.club.hash, |c| c.daily_limit = Amount::new(150_000))
        .unwrap()
        .wait()
        .unwrap();
    let (a1, o1) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!(o1.code, Rc::Approved);
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 60_000, T0).1.code,
        Rc::ExceedsAmountLimit
    );
    // A partial confirm gives back the unused part of the day's limit.
    assert_eq!(w.confirm(&a1, &o1, 50_000, T0).code, Rc::Approved);
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0).1.code,
        Rc::Approved
    );
    // The next local day starts afresh.
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0.plus(86_400))
            .1
            .code,
        Rc::Approved
    );

    w.engine
        .admin()
        .update_card(&w.club.hash, |c| {
            c.daily_limit = None;
            c.max_amount = Amount::new(10);
        })
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 11, T0).1.code,
        Rc::ExceedsAmountLimit
    );
    w.assert_audit();
}

#[test]
fn suspended_member_gets_05() {
    let w = World::new();
    let mut m = w.member.clone();
    m.status = Status::Blocked;
    w.engine.admin().put_member(&m).unwrap().wait().unwrap();
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::DoNotHonour
    );
}

#[test]
fn repeated_request_returns_the_stored_answer_and_changes_nothing() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 120_000, T0);
    let again = w
        .engine
        .handle(&Request::Authorize(auth.clone()), T0.plus(5))
        .unwrap()
        .wait();
    assert_eq!(again, out);
    assert_eq!(w.club_account().held, 120_000, "held once");

    let mut different = auth.clone();
    different.amount = Amount::new(120_001);
    let dup = w
        .engine
        .handle(&Request::Authorize(different), T0)
        .unwrap()
        .wait();
    assert_eq!(dup.code, Rc::DuplicateTransmission);
    assert_eq!(w.club_account().held, 120_000);
    w.assert_audit();
}

#[test]
fn confirming_twice_answers_as_the_first_time() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let first = w.confirm(&auth, &out, 100_000, T0);
    let second = w.confirm(&auth, &out, 100_000, T0.plus(3));
    assert_eq!(first, second);
    assert_eq!(w.club_account().balance, 400_000);
    w.assert_audit();
}

#[test]
fn confirm_that_does_not_name_the_approval_gets_25() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0);
    let mut c = w.confirm_req(&auth, &out, 1000, T0);
    c.auth_id = clubswitch_wire::AuthId::from_number(123_456);
    assert_eq!(
        w.engine
            .handle(&Request::Confirm(c.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::OriginalNotFound
    );
    let mut c = w.confirm_req(&auth, &out, 1000, T0);
    c.rrn = Rrn::from_sequence(77_777);
    assert_eq!(
        w.engine
            .handle(&Request::Confirm(c), T0)
            .unwrap()
            .wait()
            .code,
        Rc::OriginalNotFound
    );
    let mut c = w.confirm_req(&auth, &out, 1000, T0);
    c.original = OriginalData {
        mti: Mti::AUTH_REQUEST,
        stan: clubswitch_wire::Stan::new(999_999).unwrap(),
        transmitted: c.original.transmitted,
    };
    assert_eq!(
        w.engine
            .handle(&Request::Confirm(c), T0)
            .unwrap()
            .wait()
            .code,
        Rc::OriginalNotFound
    );
    let mut c = w.confirm_req(&auth, &out, 1000, T0);
    c.code = Pc::StorePurchase;
    assert_eq!(
        w.engine
            .handle(&Request::Confirm(c), T0)
            .unwrap()
            .wait()
            .code,
        Rc::InvalidTransaction
    );
}

#[test]
fn hold_expires_lazily_on_confirm_and_by_the_sweeper() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let late = T0.plus(15 * 60);
    assert_eq!(
        w.confirm(&auth, &out, 100_000, late).code,
        Rc::OriginalNotFound
    );
    assert_eq!(w.club_account().held, 0);
    assert_eq!(
        w.engine
            .admin()
            .txn(&out.rrn.unwrap())
            .unwrap()
            .unwrap()
            .state,
        TxnState::Expired
    );

    let (_, out2) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!(
        w.engine.sweeper().expire_holds(T0.plus(899), 100).unwrap(),
        0
    );
    assert_eq!(
        w.engine.sweeper().expire_holds(T0.plus(900), 100).unwrap(),
        1
    );
    assert_eq!(
        w.engine.sweeper().expire_holds(T0.plus(901), 100).unwrap(),
        0,
        "ends exactly once"
    );
    assert_eq!(
        w.engine
            .admin()
            .txn(&out2.rrn.unwrap())
            .unwrap()
            .unwrap()
            .state,
        TxnState::Expired
    );
    assert_eq!(
        w.club_account(),
        Account {
            balance: 500_000,
            held: 0,
            ..Account::default()
        }
    );
    w.assert_audit();
}

#[test]
fn the_sweep_passes_ended_holds_stops_at_the_first_not_due_and_leaves_what_is_over_its_budget() {
    let w = World::new();
    let (auth, first) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    assert_eq!(w.confirm(&auth, &first, 10_000, T0).code, Rc::Approved);
    let early: Vec<_> = (0..3)
        .map(|_| w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0).1)
        .collect();
    let (_, late) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(60));
    let sweeper = w.engine.sweeper();
    assert_eq!(sweeper.expire_holds(T0.plus(899), 100).unwrap(), 0);
    // Three due, two a sweep: one left, and counted.
    assert_eq!(sweeper.expire_holds(T0.plus(900), 2).unwrap(), 2);
    assert_eq!(sweeper.pending_holds(), 1);
    assert_eq!(sweeper.expire_holds(T0.plus(900), 2).unwrap(), 1);
    assert_eq!(sweeper.pending_holds(), 0);
    assert_eq!(sweeper.expire_holds(T0.plus(959), 2).unwrap(), 0);
    assert!(early.iter().all(|o| w.state(o) == TxnState::Expired));
    assert_eq!(w.state(&late), TxnState::Held);
    assert_eq!(w.club_account().held, 10_000);
    w.assert_audit();
    assert_eq!(sweeper.expire_holds(T0.plus(960), 2).unwrap(), 1);
    assert_eq!(w.state(&first), TxnState::Confirmed);
    assert_eq!(w.club_account().held, 0);
    w.assert_audit();
}

#[test]
fn a_hold_due_later_than_any_made_now_holds_back_none_made_after_it() {
    let w = World::new();
    // Made while the clock was ahead by 10,000 s, then one after it was
    // put right.
    let (_, ahead) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(10_000));
    let (_, after) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let sweeper = w.engine.sweeper();
    assert_eq!(sweeper.expire_holds(T0.plus(900), 100).unwrap(), 1);
    assert_eq!(w.state(&after), TxnState::Expired);
    assert_eq!(w.state(&ahead), TxnState::Held);
    w.assert_audit();
    // Made once the first is no longer far ahead, and due before it.
    let (_, later) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(9_500));
    assert_eq!(sweeper.expire_holds(T0.plus(10_399), 100).unwrap(), 0);
    assert_eq!(sweeper.expire_holds(T0.plus(10_400), 100).unwrap(), 1);
    assert_eq!(w.state(&later), TxnState::Expired);
    assert_eq!(w.state(&ahead), TxnState::Held);
    w.assert_audit();
    assert_eq!(sweeper.expire_holds(T0.plus(10_899), 100).unwrap(), 0);
    assert_eq!(sweeper.expire_holds(T0.plus(10_900), 100).unwrap(), 1);
    assert_eq!(w.state(&ahead), TxnState::Expired);
    assert_eq!(w.club_account().held, 0);
    assert_eq!(sweeper.pending_holds(), 0);
    w.assert_audit();
}

#[test]
fn undo_voids_a_hold_and_reverses_a_confirmed_purchase() {
    let w = World::new();
    let (_, held) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!(w.undo_rrn(held.rrn.unwrap(), T0).code, Rc::Approved);
    assert_eq!(
        w.club_account(),
        Account {
            balance: 500_000,
            held: 0,
            ..Account::default()
        }
    );
    assert_eq!(
        w.engine
            .admin()
            .txn(&held.rrn.unwrap())
            .unwrap()
            .unwrap()
            .state,
        TxnState::Voided
    );

    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    w.confirm(&auth, &out, 100_000, T0);
    let first = w.undo_rrn(out.rrn.unwrap(), T0);
    assert_eq!(first.code, Rc::Approved);
    assert_eq!(
        w.club_account(),
        Account {
            balance: 500_000,
            held: 0,
            ..Account::default()
        }
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        0
    );
    assert_eq!(
        w.undo_rrn(out.rrn.unwrap(), T0),
        first,
        "undo twice is harmless"
    );
    assert_eq!(w.club_account().balance, 500_000);
    assert_eq!(
        w.undo_rrn(Rrn::from_sequence(424_242), T0).code,
        Rc::OriginalNotFound
    );
    w.assert_audit();
}

#[test]
fn undo_by_original_data_elements() {
    let w = World::new();
    let (auth, _) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let req = Undo {
        key: w.next_key(T0),
        merchant: w.merchant,
        advice: false,
        amount: None,
        code: Some(Pc::ClubPurchase),
        rrn: None,
        original: Some(OriginalData {
            mti: Mti::AUTH_REQUEST,
            stan: auth.key.stan,
            transmitted: auth.key.transmitted,
        }),
    };
    assert_eq!(
        w.engine
            .handle(&Request::Undo(req.clone()), T0)
            .unwrap()
            .wait()
            .code,
        Rc::Approved
    );
    assert_eq!(w.club_account().held, 0);
    let wrong_code = Undo {
        key: w.next_key(T0),
        code: Some(Pc::StorePurchase),
        ..req
    };
    assert_eq!(
        w.engine
            .handle(&Request::Undo(wrong_code), T0)
            .unwrap()
            .wait()
            .code,
        Rc::InvalidTransaction
    );
}

/// Section 8: the MTI and DE 4 are part of an undo's content. The same key
/// sent again as the other MTI, or with another DE 4, is another message
/// under a used key (94); the same message again gets the first answer.
#[test]
fn an_undo_repeated_as_the_other_mti_or_with_another_amount_is_refused_94() {
    let w = World::new();
    let (_, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let reversal = Undo {
        key: w.next_key(T0),
        merchant: w.merchant,
        advice: false,
        amount: Some(Amount::new(100_000).unwrap()),
        code: Some(Pc::ClubPurchase),
        rrn: out.rrn,
        original: None,
    };
    let send = |undo: &Undo| {
        w.engine
            .handle(&Request::Undo(undo.clone()), T0)
            .unwrap()
            .wait()
    };
    let first = send(&reversal);
    assert_eq!(first.code, Rc::Approved);
    assert_eq!(w.club_account().held, 0);
    let as_advice = Undo {
        advice: true,
        ..reversal.clone()
    };
    assert_eq!(send(&as_advice).code, Rc::DuplicateTransmission);
    let other_amount = Undo {
        amount: Some(Amount::new(40_000).unwrap()),
        ..reversal.clone()
    };
    assert_eq!(send(&other_amount).code, Rc::DuplicateTransmission);
    let no_amount = Undo {
        amount: None,
        ..reversal.clone()
    };
    assert_eq!(send(&no_amount).code, Rc::DuplicateTransmission);
    assert_eq!(send(&reversal), first);
    w.assert_audit();
}

#[test]
fn settled_purchase_can_be_refunded_but_not_reversed() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 200_000, T0);
    w.confirm(&auth, &out, 200_000, T0);
    let batches = w.settle(T0.plus(60), T0.plus(120));
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(
        (b.gross, b.fees, b.net, b.items.len()),
        (200_000, 2_000, 198_000, 1)
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        0
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Clearing)
            .unwrap()
            .balance,
        198_000
    );

    assert_eq!(
        w.undo_rrn(out.rrn.unwrap(), T0.plus(200)).code,
        Rc::InvalidTransaction
    );
    let r = w.refund(Pc::ClubRefund, out.rrn.unwrap(), 50_000, T0.plus(300));
    assert_eq!(r.code, Rc::Approved);
    assert_eq!(w.club_account().balance, 350_000);
    let next = w.settle(T0.plus(400), T0.plus(400));
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].refunds, next[0].fees, next[0].net),
        (50_000, -500, -49_500)
    );
    assert!(
        w.settle(T0.plus(500), T0.plus(500)).is_empty(),
        "nothing left"
    );
    w.assert_audit();
}

#[test]
fn a_busy_merchant_is_settled_in_steps_into_batches_that_close_at_their_size() {
    let w = World::new();
    let rrns = w.confirmed_purchases(20);
    // Three items a step, batches closing once they reach seven.
    let batches = w
        .engine
        .settlement()
        .run_in_steps(T0.plus(100), T0.plus(100), 3, 7, &|| false)
        .unwrap()
        .wait()
        .unwrap();
    assert!(batches.complete);
    let batches = batches.batches;
    let sizes: Vec<usize> = batches.iter().map(|b| b.items.len()).collect();
    assert_eq!(sizes, [9, 9, 2]);
    let items: Vec<_> = batches.iter().flat_map(|b| b.items.clone()).collect();
    assert_eq!(items, rrns, "every item once, in order");
    let gross: u64 = batches.iter().map(|b| b.gross).sum();
    assert_eq!(gross, (0..20).map(|i| 1_000 + i).sum::<u64>());
    let net: i64 = batches.iter().map(|b| b.net).sum();
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Clearing)
            .unwrap()
            .balance,
        net
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        0
    );
    assert_eq!(w.engine.settlement().batches().unwrap(), batches);
    w.assert_audit();
}

/// A settlement run with cut-off `T0 + 100`, three items a step, told to
/// stop once the first batch holds `items` (the run asks between steps,
/// and during the rest between them, as often as it likes).
fn settle_stopped_at(w: &World, items: usize) -> Settled {
    let stop = || {
        let batches = w.engine.settlement().batches().unwrap();
        batches.first().is_some_and(|b| b.items.len() >= items)
    };
    w.engine
        .settlement()
        .run_in_steps(T0.plus(100), T0.plus(100), 3, 100, &stop)
        .unwrap()
        .wait()
        .unwrap()
}

#[test]
fn a_settlement_told_to_stop_ends_between_steps_and_the_next_run_takes_the_rest() {
    let w = World::new();
    let rrns = w.confirmed_purchases(10);
    // The stop comes once the second step has committed.
    let first = settle_stopped_at(&w, 6);
    assert!(!first.complete, "cut short");
    let first = first.batches;
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].items,
        rrns[..6],
        "two steps of three, and none after the stop"
    );
    assert_eq!(w.engine.settlement().batches().unwrap(), first);
    w.assert_audit();
    let rest = w.settle(T0.plus(100), T0.plus(200));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].items, rrns[6..], "the rest, each item once");
    let net: i64 = first.iter().chain(&rest).map(|b| b.net).sum();
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Clearing)
            .unwrap()
            .balance,
        net
    );
    w.assert_audit();
}

#[test]
fn a_settlement_stopped_in_one_merchant_leaves_a_later_merchants_earlier_items_for_the_next_run() {
    let w = World::new();
    let (m2, t2): (MerchantId, TerminalId) = (
        "MERCHANT0000002".parse().unwrap(),
        "TERM0002".parse().unwrap(),
    );
    w.engine
        .admin()
        .put_merchant(&merchant_record(m2))
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .admin()
        .add_terminal(&terminal_record(t2, m2))
        .unwrap()
        .wait()
        .unwrap();
    // The second merchant's purchases come first, so its items have the
    // lower RRNs, but the run takes the merchants in order.
    let at_m2: Vec<Rrn> = (0..3)
        .map(|i| {
            let at = T0.plus(i);
            let (auth, out) = w.authorize_at(t2, m2, Pc::ClubPurchase, CLUB_PAN, 500, at);
            assert_eq!(w.confirm(&auth, &out, 500, at).code, Rc::Approved);
            out.rrn.unwrap()
        })
        .collect();
    let at_m1 = w.confirmed_purchases(6);
    assert!(at_m2[2].as_bytes() < at_m1[0].as_bytes());

    let first = settle_stopped_at(&w, 3);
    assert!(!first.complete, "cut short");
    assert_eq!(first.batches.len(), 1);
    assert_eq!(first.batches[0].merchant, w.merchant);
    assert_eq!(first.batches[0].items, at_m1[..3]);
    w.assert_audit();

    let rest = w.settle(T0.plus(100), T0.plus(200));
    let items = |m: MerchantId| -> Vec<Rrn> {
        rest.iter()
            .filter(|b| b.merchant == m)
            .flat_map(|b| b.items.clone())
            .collect()
    };
    assert_eq!(items(w.merchant), at_m1[3..]);
    assert_eq!(items(m2), at_m2, "the items the stopped run never reached");
    w.assert_audit();
}

#[test]
fn a_hold_a_settlement_run_passed_over_is_settled_by_a_later_run_once_confirmed() {
    let w = World::new();
    // Still held when the first run reads it, before two confirmed ones.
    let (held, held_out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let later = w.confirmed_purchases(2);
    let first = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].items, later);
    w.assert_audit();
    let confirmed = w.confirm(&held, &held_out, 10_000, T0.plus(200));
    assert_eq!(confirmed.code, Rc::Approved);
    // Confirmed after the next run's cut-off: it waits for the one after.
    assert!(w.settle(T0.plus(150), T0.plus(250)).is_empty());
    w.assert_audit();
    let second = w.settle(T0.plus(300), T0.plus(300));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].items, [held_out.rrn.unwrap()]);
    w.assert_audit();
}

#[test]
fn a_purchase_reversed_before_settlement_is_left_out_of_its_batch() {
    let w = World::new();
    let rrns = w.confirmed_purchases(3);
    assert_eq!(w.undo_rrn(rrns[1], T0.plus(10)).code, Rc::Approved);
    let batches = w.settle(T0.plus(100), T0.plus(100));
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].items, [rrns[0], rrns[2]]);
    w.assert_audit();
}

#[test]
fn settlement_respects_the_cutoff_and_the_calendar() {
    let w = World::new();
    let (a1, o1) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    w.confirm(&a1, &o1, 10_000, T0);
    let (a2, o2) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 20_000, T0.plus(100));
    w.confirm(&a2, &o2, 20_000, T0.plus(100));
    // Thursday 2026-11-26, local: due Saturday (Friday is the weekend).
    let thursday =
        UnixTime(clubswitch_wire::fields::days_from_civil(2026, 11, 26) * 86_400 + 6 * 3600);
    let batches = w.settle(T0.plus(50), thursday);
    assert_eq!(
        batches[0].gross, 10_000,
        "only what was confirmed by the cut-off"
    );
    assert_eq!(
        batches[0].due_day,
        clubswitch_wire::fields::days_from_civil(2026, 11, 28)
    );
    let csv = settlement::to_csv(&batches);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .contains(",2026-11-28,1,10000,0,100,0,9900"),
        "{csv}"
    );
    assert!(settlement::to_json(&batches).contains("\"gross\": 10000"));
}

#[test]
fn refunds_partial_full_and_over() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    w.confirm(&auth, &out, 100_000, T0);
    let rrn = out.rrn.unwrap();
    assert_eq!(w.refund(Pc::ClubRefund, rrn, 30_000, T0).code, Rc::Approved);
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 70_001, T0).code,
        Rc::InvalidAmount
    );
    assert_eq!(
        w.refund(Pc::StoreRefund, rrn, 1_000, T0).code,
        Rc::InvalidTransaction
    );
    assert_eq!(w.refund(Pc::ClubRefund, rrn, 70_000, T0).code, Rc::Approved);
    assert_eq!(w.refund(Pc::ClubRefund, rrn, 1, T0).code, Rc::InvalidAmount);
    assert_eq!(w.club_account().balance, 500_000);
    // The whole fee went back: nothing owed either way.
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::FeeIncome)
            .unwrap()
            .balance,
        0
    );
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        0
    );
    assert_eq!(
        w.refund(Pc::ClubRefund, Rrn::from_sequence(31_337), 1, T0)
            .code,
        Rc::OriginalNotFound
    );
    assert_eq!(
        w.undo_rrn(rrn, T0).code,
        Rc::InvalidTransaction,
        "refunded purchase is not reversed"
    );
    w.assert_audit();
}

#[test]
fn a_purchase_past_the_refund_window_is_not_refunded() {
    let w = World::new();
    let window = w.engine.config().refund_window_secs;
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let confirmed = w.confirm(&auth, &out, 100_000, T0);
    assert_eq!(confirmed.code, Rc::Approved);
    let rrn = out.rrn.unwrap();
    let late = UnixTime(T0.0 + window + 1);
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 1_000, late).code,
        Rc::OriginalNotFound
    );
    let last_day = UnixTime(T0.0 + window);
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 1_000, last_day).code,
        Rc::Approved
    );
    w.assert_audit();
}

#[test]
fn refunds_in_parts_return_the_whole_fee_and_the_last_rial_too() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 400_000, T0);
    assert_eq!(w.confirm(&auth, &out, 400_000, T0).code, Rc::Approved);
    let rrn = out.rrn.unwrap();
    let fee = w.engine.admin().txn(&rrn).unwrap().unwrap().fee;
    assert_eq!(fee, 4_000, "1% of 400,000");
    // Rounding each part on its own left the last rial's refund to carry
    // the others' rounding: more fee back than rials refunded.
    for part in [199_999, 199_999, 1, 1] {
        assert_eq!(w.refund(Pc::ClubRefund, rrn, part, T0).code, Rc::Approved);
    }
    let purchase = w.engine.admin().txn(&rrn).unwrap().unwrap();
    assert_eq!((purchase.refunded, purchase.fee_refunded), (400_000, fee));
    assert_eq!(w.club_account().balance, 500_000);
    w.assert_audit();
}

#[test]
fn a_refund_can_be_reversed() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    w.confirm(&auth, &out, 100_000, T0);
    let r = w.refund(Pc::ClubRefund, out.rrn.unwrap(), 40_000, T0);
    assert_eq!(w.club_account().balance, 440_000);
    assert_eq!(w.undo_rrn(r.rrn.unwrap(), T0).code, Rc::Approved);
    assert_eq!(w.club_account().balance, 400_000);
    assert_eq!(
        w.engine
            .admin()
            .txn(&out.rrn.unwrap())
            .unwrap()
            .unwrap()
            .refunded,
        0
    );
    // The sales report counts no refund that was reversed.
    let refunds = || {
        let day = T0.local_day(w.engine.config().utc_offset_secs);
        let lines = w.engine.reports().sales(day, day, SalesBy::Merchant);
        lines.unwrap()[w.merchant.as_str()].refunds
    };
    assert_eq!(refunds(), 0);
    assert_eq!(
        w.refund(Pc::ClubRefund, out.rrn.unwrap(), 100_000, T0).code,
        Rc::Approved
    );
    assert_eq!(refunds(), 100_000);
    w.assert_audit();
}

#[test]
fn bank_card_lookup_cannot_be_refunded() {
    let w = World::new();
    let (auth, out) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    w.confirm(&auth, &out, 100_000, T0);
    assert_eq!(
        w.refund(Pc::ClubRefund, out.rrn.unwrap(), 1000, T0).code,
        Rc::InvalidTransaction
    );
}

#[test]
fn store_credit_purchase_is_local_to_the_merchant_and_not_settled() {
    let w = World::new();
    assert_eq!(
        w.authorize(Pc::StorePurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::InsufficientFunds
    );
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, Amount::new(50_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let (auth, out) = w.authorize(Pc::StorePurchase, CLUB_PAN, 30_000, T0);
    assert_eq!(out.code, Rc::Approved);
    assert_eq!(
        block(&out, AccountType::StoreCredit, AmountType::AvailableBalance),
        20_000
    );
    assert_eq!(w.confirm(&auth, &out, 30_000, T0).code, Rc::Approved);
    assert_eq!(w.store_account().balance, 20_000);
    assert!(w.settle(T0.plus(10), T0.plus(10)).is_empty());
    let r = w.refund(Pc::StoreRefund, out.rrn.unwrap(), 10_000, T0);
    assert_eq!(r.code, Rc::Approved);
    assert_eq!(w.store_account().balance, 30_000);
    assert_eq!(w.club_account().balance, 500_000, "club balance untouched");
    w.assert_audit();
}

#[test]
fn balance_inquiries() {
    let w = World::new();
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, Amount::new(7_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let (_, club) = w.authorize(Pc::ClubBalance, CLUB_PAN, 0, T0);
    assert_eq!(club.code, Rc::Approved);
    assert_eq!(
        block(&club, AccountType::Club, AmountType::LedgerBalance),
        500_000
    );
    assert_eq!(
        block(&club, AccountType::Club, AmountType::AvailableBalance),
        400_000
    );
    let (_, store) = w.authorize(Pc::StoreBalance, CLUB_PAN, 0, T0);
    assert_eq!(
        block(
            &store,
            AccountType::StoreCredit,
            AmountType::AvailableBalance
        ),
        7_000
    );
    assert_eq!(
        w.authorize(Pc::ClubBalance, BANK_PAN, 0, T0).1.code,
        Rc::NotPermittedToCardholder
    );
}

#[test]
fn discount_lookup_applies_the_best_rule_and_fee() {
    let w = World::new();
    w.engine
        .admin()
        .add_rule(
            &w.merchant,
            DiscountRule {
                name: "10%".into(),
                percent_bps: 1000,
                cap: Some(40_000),
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .admin()
        .add_rule(
            &w.merchant,
            DiscountRule {
                name: "silver".into(),
                fixed: 35_000,
                tiers: vec![Tier::Silver],
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let (auth, out) = w.authorize(Pc::BankDiscount, BANK_PAN, 500_000, T0);
    assert_eq!(out.code, Rc::Approved);
    assert_eq!(
        block(&out, AccountType::Unspecified, AmountType::Discount),
        40_000
    );
    assert_eq!(
        block(&out, AccountType::Unspecified, AmountType::Fee),
        5_000
    );
    assert_eq!(
        block(&out, AccountType::Unspecified, AmountType::NetAmount),
        460_000
    );
    let c = w.confirm(&auth, &out, 500_000, T0);
    assert_eq!(c.code, Rc::Approved);
    assert_eq!(
        w.engine
            .admin()
            .account(&AccountKey::Payable(w.merchant))
            .unwrap()
            .balance,
        -5_000
    );
    // An unenrolled card is not silver: only the 10% rule.
    let (_, other) = w.authorize(Pc::BankDiscount, &luhn_fix("603799000000001"), 300_000, T0);
    assert_eq!(
        block(&other, AccountType::Unspecified, AmountType::Discount),
        30_000
    );
    // No rule applies: approved with discount 0.
    let (_, tiny) = w.authorize(Pc::BankDiscount, BANK_PAN, 0, T0);
    assert_eq!(tiny.code, Rc::InvalidAmount);
    w.assert_audit();
}

#[test]
fn no_applicable_rule_is_approved_with_zero_discount() {
    let w = World::new();
    let (_, out) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(out.code, Rc::Approved);
    assert_eq!(
        block(&out, AccountType::Unspecified, AmountType::Discount),
        0
    );
    assert_eq!(
        block(&out, AccountType::Unspecified, AmountType::NetAmount),
        100_000
    );
}

#[test]
fn campaign_budget_is_held_at_request_and_consumed_only_at_confirm() {
    let w = World::new();
    let id = w
        .engine
        .admin()
        .add_rule(
            &w.merchant,
            DiscountRule {
                percent_bps: 1000,
                budget: Some(25_000),
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let rule = |w: &World| {
        w.engine
            .admin()
            .rules(&w.merchant)
            .unwrap()
            .into_iter()
            .find(|r| r.rule.id == id)
            .unwrap()
    };
    let (a1, o1) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o1, AccountType::Unspecified, AmountType::Discount),
        10_000
    );
    assert_eq!((rule(&w).held, rule(&w).spent), (10_000, 0));
    let (_, o2) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o2, AccountType::Unspecified, AmountType::Discount),
        10_000
    );
    let (_, o3) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o3, AccountType::Unspecified, AmountType::Discount),
        0,
        "budget has 5 000 left"
    );
    // A partial confirm recomputes the discount; the rest of the hold goes back.
    w.confirm(&a1, &o1, 80_000, T0);
    assert_eq!((rule(&w).held, rule(&w).spent), (10_000, 8_000));
    w.undo_rrn(o2.rrn.unwrap(), T0);
    assert_eq!((rule(&w).held, rule(&w).spent), (0, 8_000));
    w.assert_audit();
}

#[test]
fn per_card_daily_allowance() {
    let w = World::new();
    w.engine
        .admin()
        .add_rule(
            &w.merchant,
            DiscountRule {
                percent_bps: 1000,
                daily_count: Some(1),
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let (_, o1) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o1, AccountType::Unspecified, AmountType::Discount),
        10_000
    );
    let (_, o2) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o2, AccountType::Unspecified, AmountType::Discount),
        0
    );
    w.undo_rrn(o1.rrn.unwrap(), T0);
    let (_, o3) = w.authorize(Pc::BankDiscount, BANK_PAN, 100_000, T0);
    assert_eq!(
        block(&o3, AccountType::Unspecified, AmountType::Discount),
        10_000,
        "a voided lookup gives its allowance back"
    );
}

#[test]
fn renewal_carries_the_balance_to_the_new_card() {
    let w = World::new();
    let new_pan = luhn_fix("628023140000010");
    let renewed = w
        .engine
        .admin()
        .renew_card(&w.club.hash, &pan(&new_pan), Expiry::from_yymm(b"3012"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(renewed.account, w.club.account);
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::RestrictedCard
    );
    let (_, out) = w.authorize(Pc::ClubPurchase, &new_pan, 1000, T0);
    assert_eq!(
        block(&out, AccountType::Club, AmountType::LedgerBalance),
        500_000
    );

    // The old card stays blocked: unblocked, the lost card would spend
    // the account beside the new one.
    let unblock = w
        .engine
        .admin()
        .update_card(&w.club.hash, |c| c.status = Status::Active);
    assert!(matches!(unblock, Err(EngineError::Invalid(_))));
    assert_eq!(
        w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0).1.code,
        Rc::RestrictedCard
    );
    // A top-up paid for the old card (begun before it was renewed) goes to
    // the account, now the new card's.
    let topped = w
        .engine
        .admin()
        .top_up(&w.club.hash, Amount::new(7_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(topped.balance, 507_000);
    // A card blocked for itself takes none.
    w.engine
        .admin()
        .update_card(&renewed.hash, |c| c.status = Status::Blocked)
        .unwrap()
        .wait()
        .unwrap();
    for card in [&w.club.hash, &renewed.hash] {
        let refused = w
            .engine
            .admin()
            .top_up(card, Amount::new(7_000).unwrap(), T0);
        assert!(matches!(refused, Err(EngineError::Invalid(_))));
    }
    w.assert_audit();
}

#[test]
fn card_numbers_are_stored_only_as_hash_and_last_four() {
    let w = World::new();
    let card = w.engine.admin().card(&w.club.hash).unwrap().unwrap();
    assert_eq!(&card.last4, b"0013");
    let raw = format!("{card:?}");
    assert!(!raw.contains(CLUB_PAN));
    assert_eq!(
        w.engine.admin().card_history(&w.club.hash).unwrap().len(),
        0
    );
    w.authorize(Pc::ClubPurchase, CLUB_PAN, 1000, T0);
    assert_eq!(
        w.engine.admin().card_history(&w.club.hash).unwrap().len(),
        1
    );
    assert_eq!(
        w.engine
            .admin()
            .terminal_history(&w.terminal)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn top_up_and_grant_reject_bad_input_without_change() {
    let w = World::new();
    assert!(w
        .engine
        .admin()
        .top_up(&w.bank.hash, Amount::new(1).unwrap(), T0)
        .is_err());
    assert!(w
        .engine
        .admin()
        .top_up(&w.club.hash, Amount::ZERO, T0)
        .is_err());
    assert!(w
        .engine
        .admin()
        .grant_store_credit(MemberId(999_999), &w.merchant, Amount::new(1).unwrap(), T0)
        .is_err());
    assert_eq!(w.club_account().balance, 500_000);
    w.assert_audit();
}

#[test]
fn a_card_batch_is_issued_whole_or_not_at_all() {
    let w = World::new();
    let fresh = pan(&luhn_fix("628023140000090"));
    let batch = vec![
        ("Nima".to_string(), fresh.clone(), None),
        ("Duplicate".to_string(), pan(CLUB_PAN), None),
    ];
    assert!(w.engine.admin().issue_batch(&batch).is_err());
    assert!(
        w.engine
            .admin()
            .card(&w.engine.card_hash(&fresh))
            .unwrap()
            .is_none(),
        "nothing half-applied"
    );
    let issued = w
        .engine
        .admin()
        .issue_batch(&batch[..1])
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].1.member, Some(issued[0].0.id));
}

#[test]
fn a_card_batch_printed_without_names_issues_to_unnamed_members() {
    let w = World::new();
    let (a, b) = (
        pan(&luhn_fix("628023140000190")),
        pan(&luhn_fix("628023140000290")),
    );
    let issued = w
        .engine
        .admin()
        .issue_batch(&[(String::new(), a, None), ("  ".to_string(), b, None)])
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().all(|(m, _)| m.name.is_empty()));
    // A name given is still checked: a line break would split an SMS.
    let c = pan(&luhn_fix("628023140000390"));
    assert!(w
        .engine
        .admin()
        .issue_batch(&[("Nima\nRezaei".to_string(), c, None)])
        .is_err());
}

#[test]
fn a_batch_is_handled_in_order_as_if_one_by_one() {
    let w = World::new();
    let auth = |amount: u64| Authorize {
        key: w.next_key(T0),
        merchant: w.merchant,
        code: Pc::ClubPurchase,
        amount: Some(Amount::new(amount).unwrap()),
        currency: Currency::IRR,
        card: CardData {
            pan: pan(CLUB_PAN),
            expiry: None,
        },
    };
    let (a, b, c) = (auth(300_000), auth(250_000), auth(200_000));
    let mut changed = a.clone();
    changed.amount = Some(Amount::new(1).unwrap());
    let batch = [a.clone(), b, c, a.clone(), changed].map(Request::Authorize);
    let replies = w.engine.handle_batch(&batch, T0).unwrap();
    let codes: Vec<Rc> = replies.into_iter().map(|r| r.wait().code).collect();
    // The second sees the first's hold; the repeat gets the stored answer;
    // the same key with other content is a duplicate transmission.
    assert_eq!(
        codes,
        [
            Rc::Approved,
            Rc::InsufficientFunds,
            Rc::Approved,
            Rc::Approved,
            Rc::DuplicateTransmission
        ]
    );
    assert_eq!(
        w.club_account(),
        Account {
            balance: 500_000,
            held: 500_000,
            ..Account::default()
        }
    );
    w.assert_audit();
}
