//! The daily pass: points and store credit expire by lots, oldest first,
//! with a warning before; birthdays; cards about to expire. Every test ends
//! with the audit.

mod common;

use clubswitch_engine::loyalty::ONE;
use clubswitch_engine::*;
use clubswitch_wire::fields::days_from_civil;
use clubswitch_wire::{Amount, Expiry, ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

const DAY: i64 = 86_400;

/// One point per 1,000 rials at every tier; a point is 10 rials of credit.
fn program() -> Program {
    Program {
        points: 1,
        per_amount: 1_000,
        tier_bps: [ONE; 4],
        credit_per_point: 10,
        points_valid_days: Some(30),
        expiry_warn_days: 7,
        ..Program::default()
    }
}

fn with_program(p: Program) -> World {
    let w = World::new();
    w.engine
        .loyalty()
        .put_program(&w.merchant, &p)
        .unwrap()
        .wait()
        .unwrap();
    w
}

fn buy(w: &World, code: Pc, amount: u64, at: UnixTime) -> Outcome {
    let (auth, out) = w.authorize(code, CLUB_PAN, amount, at);
    assert_eq!(out.code, Rc::Approved, "{out:?}");
    let c = w.confirm(&auth, &out, amount, at.plus(5));
    assert_eq!(c.code, Rc::Approved, "{c:?}");
    c
}

fn points(w: &World) -> i64 {
    w.engine
        .loyalty()
        .points(w.member.id, &w.merchant)
        .unwrap()
        .balance
}

/// The notices waiting, and clears them.
fn take_notices(w: &World) -> Vec<NoticeKind> {
    let all = w
        .engine
        .outbox()
        .due(UnixTime(i64::MAX), 1_000, 1_000)
        .unwrap();
    let ids: Vec<u64> = all.iter().map(|n| n.id).collect();
    w.engine.outbox().delivered(&ids).unwrap();
    all.into_iter().map(|n| n.kind).collect()
}

fn local_day(t: UnixTime) -> i64 {
    t.local_day(EngineConfig::default().utc_offset_secs)
}

#[test]
fn points_expire_oldest_first_after_their_validity_with_one_warning_before() {
    let w = with_program(program());
    let d0 = local_day(T0);
    buy(&w, Pc::ClubPurchase, 100_000, T0);
    buy(&w, Pc::ClubPurchase, 50_000, T0.plus(10 * DAY));
    assert_eq!(points(&w), 150);
    // Converting 60 spends the oldest lot first: 40 of the first lot left.
    w.engine
        .loyalty()
        .convert_points(w.member.id, &w.merchant, Some(60), T0.plus(12 * DAY))
        .unwrap()
        .wait()
        .unwrap();
    take_notices(&w);
    let schedule = w
        .engine
        .loyalty()
        .expiring(w.member.id, &w.merchant)
        .unwrap();
    let parts: Vec<_> = schedule
        .iter()
        .map(|e| (e.valid_through, e.amount))
        .collect();
    assert_eq!(parts, [(d0 + 30, 40), (d0 + 40, 50)]);

    // The first lot is valid through day d0 + 30: a week before, one
    // warning for what is left of it.
    assert!(w
        .engine
        .loyalty()
        .daily_pass(T0.plus(22 * DAY))
        .unwrap()
        .is_some());
    assert_eq!(take_notices(&w), vec![]);
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(23 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(run.expiry_warnings, 1);
    assert_eq!(
        take_notices(&w),
        vec![NoticeKind::ExpiryWarning {
            merchant: w.merchant,
            points: 40,
            credit: 0,
            by: d0 + 30,
        }]
    );
    assert!(
        w.engine
            .loyalty()
            .daily_pass(T0.plus(23 * DAY))
            .unwrap()
            .is_none(),
        "once a day"
    );
    w.engine
        .loyalty()
        .daily_pass(T0.plus(24 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(take_notices(&w), vec![], "warned once");

    // Still valid on its last day; gone the day after, the newer lot kept.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(30 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.points_expired, points(&w)), (0, 90));
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(31 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.points_expired, points(&w)), (40, 50));
    let notices = take_notices(&w);
    assert!(notices.contains(&NoticeKind::Expired {
        merchant: w.merchant,
        points: 40,
        credit: 0,
    }));
    let lots = w.engine.loyalty().lots(w.member.id, &w.merchant).unwrap();
    assert_eq!(
        lots.points.iter().map(|l| l.amount).collect::<Vec<_>>(),
        [50]
    );

    let report = w
        .engine
        .loyalty()
        .loyalty_report(T0, T0.plus(40 * DAY))
        .unwrap()
        .merchants;
    let m = report.iter().find(|m| m.merchant == w.merchant.as_str());
    assert_eq!(
        m.map(|m| (m.points_expired, m.points_outstanding)),
        Some((40, 50))
    );
    // Expired points leave the member's account too.
    let held = w.engine.loyalty().held(Some(&w.merchant)).unwrap();
    assert_eq!(held[&w.merchant].points, 50);
    // The daily rollups count the expiry on its day, merchant-wide.
    let day = local_day(T0.plus(31 * DAY));
    let lines = w
        .engine
        .reports()
        .history(day, day, Some(&w.merchant), SalesBy::Terminal, Period::Day)
        .unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].key, rollup::MERCHANT_WIDE);
    assert_eq!(lines[0].figures.points_expired, 40);
    w.assert_audit();
}

#[test]
fn a_purchase_and_its_refund_do_not_renew_older_points() {
    let w = with_program(program());
    buy(&w, Pc::ClubPurchase, 100_000, T0);
    let later = buy(&w, Pc::ClubPurchase, 100_000, T0.plus(29 * DAY));
    assert_eq!(points(&w), 200);
    let r = w.refund(
        Pc::ClubRefund,
        later.rrn.unwrap(),
        100_000,
        T0.plus(29 * DAY + 60),
    );
    assert_eq!(r.code, Rc::Approved);
    assert_eq!(points(&w), 100);
    // The 100 points left are the first purchase's: they expire on its
    // day, not on the refunded one's.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(32 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.points_expired, points(&w)), (100, 0));
    w.assert_audit();
}

#[test]
fn store_credit_held_for_a_pending_purchase_does_not_expire_under_it() {
    let w = with_program(Program {
        credit_valid_days: Some(10),
        ..program()
    });
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, Amount::new(100_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let at = T0.plus(11 * DAY);
    let (auth, out) = w.authorize(Pc::StorePurchase, CLUB_PAN, 80_000, at);
    assert_eq!(out.code, Rc::Approved);
    let run = w.engine.loyalty().daily_pass(at.plus(60)).unwrap().unwrap();
    assert_eq!(run.credit_expired, 20_000, "only what is not held");
    assert_eq!(w.store_account().balance, 80_000);
    let c = w.confirm(&auth, &out, 80_000, at.plus(120));
    assert_eq!(c.code, Rc::Approved);
    assert_eq!(w.store_account().balance, 0);
    w.assert_audit();
}

#[test]
fn a_refund_after_the_points_expired_writes_them_off_and_keeps_the_ledger_whole() {
    // Points that expire within the refund window (30 days).
    let w = with_program(Program {
        points_valid_days: Some(10),
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, 100_000, T0);
    w.engine
        .loyalty()
        .daily_pass(T0.plus(11 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(points(&w), 0);
    let r = w.refund(Pc::ClubRefund, c.rrn.unwrap(), 100_000, T0.plus(12 * DAY));
    assert_eq!(r.code, Rc::Approved, "{r:?}");
    assert_eq!(points(&w), 0);
    assert_eq!(w.club_account().balance, 500_000);
    w.assert_audit();
}

/// A refund gives the credit back as a lot of its own; undoing the refund
/// takes that lot away again, not the oldest: the credit left keeps the
/// date it had, and expires when it would have.
#[test]
fn undoing_a_refund_takes_back_the_credit_it_gave_not_the_oldest() {
    let w = with_program(Program {
        points_valid_days: None,
        credit_valid_days: Some(10),
        ..program()
    });
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, Amount::new(200_000).unwrap(), T0)
        .unwrap()
        .wait()
        .unwrap();
    let at = T0.plus(9 * DAY);
    let c = buy(&w, Pc::StorePurchase, 100_000, at);
    let rrn = c.rrn.unwrap();
    let r = w.refund(Pc::StoreRefund, rrn, 100_000, at.plus(60));
    assert_eq!(r.code, Rc::Approved, "{r:?}");
    assert_eq!(w.undo_rrn(r.rrn.unwrap(), at.plus(120)).code, Rc::Approved);
    assert_eq!(w.store_account().balance, 100_000);
    // What is left is the first grant's: due on day 11.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(11 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(
        (run.credit_expired, w.store_account().balance),
        (100_000, 0)
    );
    w.assert_audit();
}

#[test]
fn credit_granted_again_later_starts_a_new_lot_and_outlives_the_old_one() {
    let w = with_program(Program {
        points_valid_days: None,
        credit_valid_days: Some(10),
        ..program()
    });
    let grant = |amount: u64, at: UnixTime| {
        w.engine
            .admin()
            .grant_store_credit(w.member.id, &w.merchant, Amount::new(amount).unwrap(), at)
            .unwrap()
            .wait()
            .unwrap();
    };
    grant(30_000, T0);
    grant(20_000, T0.plus(5 * DAY));
    buy(&w, Pc::StorePurchase, 35_000, T0.plus(6 * DAY));
    // 15,000 left, all of it from the second grant.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(11 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.credit_expired, w.store_account().balance), (0, 15_000));
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(16 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.credit_expired, w.store_account().balance), (15_000, 0));
    let lots = w.engine.loyalty().lots(w.member.id, &w.merchant).unwrap();
    assert!(
        lots.points.is_empty() && lots.credit.is_empty(),
        "nothing left, no lot left: {lots:?}"
    );
    w.assert_audit();
}

#[test]
fn birthdays_and_cards_about_to_expire_are_told_once_and_on_the_day() {
    let today = local_day(T0);
    // The card is valid through 31 January 2027; warn on the pass of T0.
    let through = days_from_civil(2027, 1, 31);
    let w = World::with_config(EngineConfig {
        loyalty: LoyaltyConfig {
            card_expiry_warn_days: u32::try_from(through - today).unwrap(),
            ..LoyaltyConfig::default()
        },
        ..EngineConfig::default()
    });
    w.engine
        .admin()
        .update_card(&w.club.hash, |c| {
            c.expiry = Some(Expiry { year: 27, month: 1 })
        })
        .unwrap()
        .wait()
        .unwrap();
    let (_, m, d) = clubswitch_wire::fields::civil_from_days(today + 1);
    let birthday: Birthday = format!("1990-{m:02}-{d:02}").parse().unwrap();
    w.engine
        .loyalty()
        .set_birthday(w.member.id, Some(birthday))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        w.engine.loyalty().birthday(w.member.id).unwrap(),
        Some(birthday)
    );

    // Before the daily hour nothing runs.
    let morning = UnixTime((today * DAY) - EngineConfig::default().utc_offset_secs + 3_600);
    assert!(w.engine.loyalty().daily_pass(morning).unwrap().is_none());

    let run = w.engine.loyalty().daily_pass(T0).unwrap().unwrap();
    assert_eq!((run.cards_expiring, run.birthdays), (1, 0));
    let last4 = String::from_utf8_lossy(&w.club.last4).into_owned();
    assert_eq!(
        take_notices(&w),
        vec![NoticeKind::CardExpiring { last4, through }]
    );
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(DAY))
        .unwrap()
        .unwrap();
    assert_eq!((run.cards_expiring, run.birthdays), (0, 1));
    assert_eq!(take_notices(&w), vec![NoticeKind::Birthday]);

    // A forgotten birthday is not greeted next year.
    w.engine
        .loyalty()
        .set_birthday(w.member.id, None)
        .unwrap()
        .wait()
        .unwrap();
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(366 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(run.birthdays, 0);
    w.assert_audit();
}

#[test]
fn a_pass_run_again_the_same_day_writes_no_notice_twice() {
    let dir = TempDir::new("daily-again");
    let (w, store) = open_world(&dir);
    let (_, m, d) = clubswitch_wire::fields::civil_from_days(local_day(T0));
    let birthday: Birthday = format!("{m:02}-{d:02}").parse().unwrap();
    w.engine
        .loyalty()
        .set_birthday(w.member.id, Some(birthday))
        .unwrap()
        .wait()
        .unwrap();
    let run = w.engine.loyalty().daily_pass(T0).unwrap().unwrap();
    assert_eq!(run.birthdays, 1);
    assert_eq!(take_notices(&w), vec![NoticeKind::Birthday]);

    // The day was not recorded as done (a later step failed, or the
    // switch died first): the housekeeping job runs the pass again.
    let w = behind_the_engine(&dir, (w, store), |ledger, code| {
        let done = [&[code("meta")][..], b"daily_pass"].concat();
        assert!(ledger.remove(done).unwrap().is_some());
    });
    let run = w.engine.loyalty().daily_pass(T0.plus(10)).unwrap().unwrap();
    assert_eq!(run.birthdays, 0, "greeted once a day");
    assert_eq!(take_notices(&w), vec![]);

    // A year on, the greeting comes again.
    let run = w
        .engine
        .loyalty()
        .daily_pass(T0.plus(365 * DAY))
        .unwrap()
        .unwrap();
    assert_eq!(run.birthdays, 1);
    w.assert_audit();
}

#[test]
fn the_daily_settlement_day_is_kept_in_the_ledger_and_never_goes_back() {
    let w = World::new();
    let s = w.engine.settlement();
    assert_eq!(s.daily_done().unwrap(), None);
    s.mark_daily_done(20_790).unwrap().wait().unwrap();
    s.mark_daily_done(20_789).unwrap().wait().unwrap();
    assert_eq!(s.daily_done().unwrap(), Some(20_790));
}

/// The reminders among the notices waiting (and clears them all).
fn take_reminders(w: &World) -> Vec<NoticeKind> {
    take_notices(w)
        .into_iter()
        .filter(|k| {
            matches!(
                k,
                NoticeKind::Repurchase { .. }
                    | NoticeKind::Anniversary { .. }
                    | NoticeKind::TierAtRisk { .. }
            )
        })
        .collect()
}

#[test]
fn reminders_come_on_their_day_once_and_never_to_a_member_who_opted_out() {
    // T0 is 23 November 2026, seven days before the month's review.
    let w = with_program(Program {
        repurchase_days: Some(14),
        ..program()
    });
    let d0 = local_day(T0);
    assert_eq!(d0, days_from_civil(2026, 11, 23));
    buy(&w, Pc::ClubPurchase, 100_000, T0);
    // Sara joined two years before the day the repurchase reminder falls
    // on; another member joined that day too but opted out.
    let joined = UnixTime(days_from_civil(2024, 12, 7) * 86_400);
    w.engine
        .admin()
        .put_member(&Member {
            joined: Some(joined),
            ..w.member.clone()
        })
        .unwrap()
        .wait()
        .unwrap();
    let out = w
        .engine
        .admin()
        .add_member("Out", "09120000009", Tier::Gold, vec![])
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .admin()
        .put_member(&Member {
            joined: Some(joined),
            opted_out: Some(T0),
            ..out
        })
        .unwrap()
        .wait()
        .unwrap();
    take_notices(&w);

    let pass = |day: i64| {
        let now = UnixTime(day * 86_400 - EngineConfig::default().utc_offset_secs + 12 * 3_600);
        w.engine.loyalty().daily_pass_now(now).unwrap()
    };
    // Silver takes 100,000,000 rials in the window; Sara has 100,000.
    let run = pass(d0).unwrap();
    assert_eq!(run.tiers_at_risk, 1, "{run:?}");
    assert_eq!(
        take_reminders(&w),
        vec![NoticeKind::TierAtRisk {
            tier: Tier::Silver,
            short: 99_900_000,
            by: days_from_civil(2026, 11, 30),
        }]
    );
    // Nothing more until 7 December: fourteen days after the purchase and
    // the anniversary of joining.
    assert!(pass(d0 + 13).is_some());
    assert_eq!(take_reminders(&w), vec![]);
    let run = pass(d0 + 14).unwrap();
    assert_eq!(
        (run.repurchase_reminders, run.anniversaries),
        (1, 1),
        "{run:?}"
    );
    assert_eq!(
        take_reminders(&w),
        vec![
            NoticeKind::Repurchase {
                merchant: w.merchant,
                days: 14
            },
            NoticeKind::Anniversary { years: 2 },
        ]
    );
    // A day's pass runs once.
    assert!(pass(d0 + 14).is_none());
    assert!(pass(d0 + 15).is_some());
    assert_eq!(take_reminders(&w), vec![]);
    w.assert_audit();
}
