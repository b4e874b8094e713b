//! Loyalty: earning at confirm, taking back at reversal and refund,
//! conversion, cashback, tiers, VIP, referrals and notices. Every test ends
//! with the audit.

mod common;

use clubswitch_engine::loyalty::{Campaign, ONE};
use clubswitch_engine::*;
use clubswitch_wire::{AccountType, AmountType, ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

/// One point per 1,000 rials; silver earns 1.5×.
fn program() -> Program {
    Program {
        points: 1,
        per_amount: 1_000,
        tier_bps: [ONE, 15_000, 20_000, 30_000],
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

fn points_in(o: &Outcome, t: AmountType) -> Option<u64> {
    o.amounts
        .iter()
        .find(|b| b.account == AccountType::Unspecified && b.amount_type == t)
        .map(|b| b.amount.value())
}

fn points(w: &World) -> i64 {
    w.engine
        .loyalty()
        .points(w.member.id, &w.merchant)
        .unwrap()
        .balance
}

/// Authorizes and confirms a purchase in full; returns the confirm.
fn buy(w: &World, code: Pc, card: &str, amount: u64, at: UnixTime) -> Outcome {
    let (auth, out) = w.authorize(code, card, amount, at);
    assert_eq!(out.code, Rc::Approved, "{out:?}");
    let c = w.confirm(&auth, &out, amount, at.plus(5));
    assert_eq!(c.code, Rc::Approved, "{c:?}");
    c
}

fn notices(w: &World) -> Vec<NoticeKind> {
    w.engine
        .outbox()
        .due(UnixTime(i64::MAX), 1_000, 1_000)
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect()
}

#[test]
fn a_confirmed_club_purchase_earns_points_by_tier_and_answers_them_in_de54() {
    let w = with_program(program());
    let (auth, out) = w.authorize(Pc::ClubPurchase, CLUB_PAN, 100_400, T0);
    assert_eq!(points(&w), 0, "authorizing earns nothing");
    assert_eq!(points_in(&out, AmountType::PointsEarned), None);
    let c = w.confirm(&auth, &out, 100_400, T0.plus(5));
    // 100 whole units × 1.5 (silver), rounded down.
    assert_eq!(points_in(&c, AmountType::PointsEarned), Some(150));
    assert_eq!(points_in(&c, AmountType::PointsBalance), Some(150));
    assert_eq!(points(&w), 150);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(10));
    assert_eq!(points(&w), 165);
    w.assert_audit();
}

#[test]
fn a_merchant_without_a_programme_answers_as_before() {
    let w = World::new();
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!(points_in(&c, AmountType::PointsEarned), None);
    assert_eq!(points(&w), 0);
    // The standing still counts the spend toward the tier.
    let s = w.engine.loyalty().standing(w.member.id).unwrap().unwrap();
    assert_eq!((s.purchases, s.months[0].spend), (1, 100_000));
    // Refunds in thirds take the spend back exactly; undoing one gives its
    // part back.
    let rrn = c.rrn.unwrap();
    let spend = |w: &World| {
        w.engine
            .loyalty()
            .standing(w.member.id)
            .unwrap()
            .unwrap()
            .months[0]
            .spend
    };
    w.refund(Pc::ClubRefund, rrn, 33_333, T0.plus(60));
    let r2 = w.refund(Pc::ClubRefund, rrn, 33_333, T0.plus(61));
    assert_eq!(spend(&w), 100_000 - 66_666);
    w.undo_rrn(r2.rrn.unwrap(), T0.plus(62));
    assert_eq!(spend(&w), 100_000 - 33_333);
    w.refund(Pc::ClubRefund, rrn, 66_667, T0.plus(63));
    assert_eq!(spend(&w), 0);
    w.assert_audit();
}

#[test]
fn a_bank_card_purchase_earns_on_what_was_charged_after_the_discount() {
    let w = with_program(program());
    w.engine
        .admin()
        .add_rule(
            &w.merchant,
            DiscountRule {
                name: "10%".into(),
                percent_bps: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let c = buy(&w, Pc::BankDiscount, BANK_PAN, 200_000, T0);
    // 180,000 charged → 180 × 1.5.
    assert_eq!(points_in(&c, AmountType::PointsEarned), Some(270));
    assert_eq!(points(&w), 270);
    w.assert_audit();
}

#[test]
fn store_credit_purchases_earn_only_when_the_programme_says_so() {
    let w = with_program(program());
    w.engine
        .admin()
        .grant_store_credit(w.member.id, &w.merchant, amount(100_000), T0)
        .unwrap()
        .wait()
        .unwrap();
    buy(&w, Pc::StorePurchase, CLUB_PAN, 50_000, T0);
    assert_eq!(points(&w), 0);
    w.engine
        .loyalty()
        .put_program(
            &w.merchant,
            &Program {
                earn_on_store: true,
                ..program()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    buy(&w, Pc::StorePurchase, CLUB_PAN, 50_000, T0.plus(60));
    assert_eq!(points(&w), 75);
    w.assert_audit();
}

#[test]
fn a_campaign_window_multiplies_points_only_inside_it() {
    let w = with_program(Program {
        campaigns: vec![Campaign {
            name: "Yalda".into(),
            from: T0.plus(100),
            to: T0.plus(200),
            multiplier_bps: 30_000,
        }],
        ..program()
    });
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    assert_eq!(points(&w), 15);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(150));
    assert_eq!(points(&w), 15 + 45);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(200));
    assert_eq!(points(&w), 15 + 45 + 15);
    w.assert_audit();
}

#[test]
fn cashback_becomes_store_credit_the_member_can_spend_at_that_merchant() {
    let w = with_program(Program {
        cashback_bps: 500,
        ..program()
    });
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 200_000, T0);
    assert_eq!(w.store_account().balance, 10_000);
    let c = buy(&w, Pc::StorePurchase, CLUB_PAN, 10_000, T0.plus(60));
    assert_eq!(c.code, Rc::Approved);
    assert_eq!(w.store_account().balance, 0);
    w.assert_audit();
}

#[test]
fn points_convert_automatically_in_whole_steps_once_they_reach_the_threshold() {
    let w = with_program(Program {
        credit_per_point: 100,
        auto_convert_at: Some(100),
        ..program()
    });
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 60_000, T0); // 90 points
    assert_eq!((points(&w), w.store_account().balance), (90, 0));
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0.plus(60)); // +150 = 240
    assert_eq!((points(&w), w.store_account().balance), (40, 20_000));
    assert_eq!(points_in(&c, AmountType::PointsEarned), Some(150));
    assert_eq!(points_in(&c, AmountType::PointsBalance), Some(40));
    assert!(notices(&w).iter().any(|n| matches!(
        n,
        NoticeKind::PointsConverted {
            points: 200,
            credit: 20_000,
            ..
        }
    )));
    w.assert_audit();
}

#[test]
fn conversion_on_request_moves_points_into_store_credit_at_the_rate() {
    let w = with_program(Program {
        credit_per_point: 50,
        ..program()
    });
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0); // 150 points
    let e = &w.engine;
    assert!(e
        .loyalty()
        .convert_points(w.member.id, &w.merchant, Some(151), T0)
        .is_err());
    assert_eq!(
        e.loyalty()
            .convert_points(w.member.id, &w.merchant, Some(100), T0)
            .unwrap()
            .wait()
            .unwrap(),
        (100, 5_000)
    );
    assert_eq!((points(&w), w.store_account().balance), (50, 5_000));
    assert_eq!(
        e.loyalty()
            .convert_points(w.member.id, &w.merchant, None, T0)
            .unwrap()
            .wait()
            .unwrap(),
        (50, 2_500)
    );
    assert!(e
        .loyalty()
        .convert_points(w.member.id, &w.merchant, None, T0)
        .is_err());
    w.assert_audit();
}

#[test]
fn a_reversal_takes_back_points_and_cashback_in_full() {
    let w = with_program(Program {
        cashback_bps: 1000,
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    assert_eq!((points(&w), w.store_account().balance), (150, 10_000));
    assert_eq!(w.undo_rrn(c.rrn.unwrap(), T0.plus(30)).code, Rc::Approved);
    assert_eq!((points(&w), w.store_account().balance), (0, 0));
    let s = w.engine.loyalty().standing(w.member.id).unwrap().unwrap();
    assert_eq!(s.months[0].spend, 0);
    w.assert_audit();
}

#[test]
fn partial_refunds_take_back_in_proportion_and_the_last_one_takes_the_rest() {
    let w = with_program(Program {
        cashback_bps: 333,
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let rrn = c.rrn.unwrap();
    // 150 points, 3,330 cashback.
    assert_eq!((points(&w), w.store_account().balance), (150, 3_330));
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 33_333, T0.plus(60)).code,
        Rc::Approved
    );
    // The member keeps what 66,667 earns, rounded down: 150 × 2/3 → 100
    // kept, 50 back; 3,330 × 2/3 → 2,220 kept, 1,110 back.
    assert_eq!((points(&w), w.store_account().balance), (100, 2_220));
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 66_667, T0.plus(120)).code,
        Rc::Approved
    );
    assert_eq!((points(&w), w.store_account().balance), (0, 0));
    w.assert_audit();
}

#[test]
fn a_purchase_refunded_in_slices_keeps_no_points_for_what_was_paid_back() {
    let w = with_program(program());
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0);
    let rrn = c.rrn.unwrap();
    assert_eq!(points(&w), 15);
    // All but one rial back, in one refund and then in many: what is left
    // (one rial) earns nothing, so nothing is kept.
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 9_999, T0.plus(60)).code,
        Rc::Approved
    );
    assert_eq!(points(&w), 0);

    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(100));
    let rrn = c.rrn.unwrap();
    assert_eq!(points(&w), 15);
    for i in 0..9 {
        let r = w.refund(Pc::ClubRefund, rrn, 1_111, T0.plus(200 + i));
        assert_eq!(r.code, Rc::Approved);
    }
    // 9,999 refunded: what one rial earns is kept, no more.
    assert_eq!(points(&w), 0);
    w.assert_audit();
}

#[test]
fn a_refund_after_points_were_converted_takes_the_credit_they_became_and_writes_off_what_was_spent()
{
    let w = with_program(Program {
        credit_per_point: 100,
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0); // 150 points
    let e = &w.engine;
    e.loyalty()
        .convert_points(w.member.id, &w.merchant, Some(120), T0.plus(10))
        .unwrap()
        .wait()
        .unwrap(); // 30 points left, 12,000 credit
    buy(&w, Pc::StorePurchase, CLUB_PAN, 9_000, T0.plus(20)); // 3,000 credit left
    assert_eq!(
        w.refund(Pc::ClubRefund, c.rrn.unwrap(), 100_000, T0.plus(60))
            .code,
        Rc::Approved
    );
    // 30 points back from points, 30 more as 3,000 of credit, the other 90
    // were spent: written off to the merchant.
    assert_eq!((points(&w), w.store_account().balance), (0, 0));
    let earned = e.admin().txn(&c.rrn.unwrap()).unwrap().unwrap();
    assert_eq!(earned.refunded, 100_000);
    w.assert_audit();
}

#[test]
fn undoing_a_refund_gives_back_to_the_member_it_took_from_after_the_card_moved() {
    let w = with_program(program());
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let r = w.refund(Pc::ClubRefund, c.rrn.unwrap(), 50_000, T0.plus(60));
    assert_eq!(points(&w), 75);
    // The card is linked to another member before the refund is undone.
    let other = w
        .engine
        .admin()
        .add_member("Other", "09120000099", Tier::Bronze, Vec::new())
        .unwrap()
        .wait()
        .unwrap();
    w.engine
        .admin()
        .update_card(&w.club.hash, |card| card.member = Some(other.id))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(w.undo_rrn(r.rrn.unwrap(), T0.plus(70)).code, Rc::Approved);
    let other_points = w.engine.loyalty().points(other.id, &w.merchant).unwrap();
    assert_eq!((points(&w), other_points.balance), (150, 0));
    w.assert_audit();
}

#[test]
fn undoing_a_refund_gives_back_what_the_refund_took() {
    let w = with_program(Program {
        cashback_bps: 1000,
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let r = w.refund(Pc::ClubRefund, c.rrn.unwrap(), 50_000, T0.plus(60));
    assert_eq!((points(&w), w.store_account().balance), (75, 5_000));
    assert_eq!(w.undo_rrn(r.rrn.unwrap(), T0.plus(70)).code, Rc::Approved);
    assert_eq!((points(&w), w.store_account().balance), (150, 10_000));
    // The purchase can then be refunded in full, taking everything back.
    assert_eq!(
        w.refund(Pc::ClubRefund, c.rrn.unwrap(), 100_000, T0.plus(80))
            .code,
        Rc::Approved
    );
    assert_eq!((points(&w), w.store_account().balance), (0, 0));
    w.assert_audit();
}

fn tiered() -> EngineConfig {
    EngineConfig {
        loyalty: LoyaltyConfig {
            tier_thresholds: [100_000, 300_000, 1_000_000],
            window_months: 1,
            ..LoyaltyConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn tier(w: &World) -> Tier {
    w.engine.admin().member(w.member.id).unwrap().unwrap().tier
}

#[test]
fn a_purchase_crossing_a_threshold_upgrades_at_once_and_its_reversal_undoes_the_upgrade() {
    let w = World::with_config(tiered());
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 200_000, T0);
    assert_eq!(tier(&w), Tier::Silver);
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 150_000, T0.plus(60));
    assert_eq!(tier(&w), Tier::Gold, "350,000 reaches gold at once");
    assert!(notices(&w).contains(&NoticeKind::TierChange {
        from: Tier::Silver,
        to: Tier::Gold
    }));
    w.undo_rrn(c.rrn.unwrap(), T0.plus(90));
    assert_eq!(
        tier(&w),
        Tier::Silver,
        "the reversed purchase bought no tier"
    );
    w.assert_audit();
}

#[test]
fn a_refund_that_leaves_the_tier_reached_keeps_it_until_the_review() {
    let w = World::with_config(tiered());
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 150_000, T0);
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 200_000, T0.plus(60));
    assert_eq!(tier(&w), Tier::Gold);
    // 350,000 − 10,000 = 340,000: still gold.
    w.refund(Pc::ClubRefund, c.rrn.unwrap(), 10_000, T0.plus(120));
    assert_eq!(tier(&w), Tier::Gold);
    w.assert_audit();
}

/// A refund in the month after the purchase judges the tier as that
/// month's review does (the month before it counts): it does not undo in
/// mid-month an upgrade the review keeps.
#[test]
fn a_refund_the_month_after_keeps_the_tier_the_review_keeps() {
    let w = World::with_config(tiered());
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 350_000, T0);
    assert_eq!(tier(&w), Tier::Gold);
    // December: November still holds 340,000, gold by December's review.
    let dec = T0.plus(10 * 86_400);
    w.refund(Pc::ClubRefund, c.rrn.unwrap(), 10_000, dec);
    assert_eq!(tier(&w), Tier::Gold);
    w.assert_audit();
}

#[test]
fn downgrades_wait_for_the_monthly_review() {
    let w = World::with_config(tiered());
    let e = &w.engine;
    // The ledger's first period starts with the first review.
    let nov = T0.plus(-20 * 86_400);
    assert_eq!(e.loyalty().review_standing(nov).unwrap(), None);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 350_000, T0);
    assert_eq!(tier(&w), Tier::Gold);
    assert_eq!(
        e.loyalty().review_standing(T0).unwrap(),
        None,
        "once a month"
    );
    // In December the window (one month: November) still holds 350,000.
    let dec = T0.plus(10 * 86_400);
    let r = e.loyalty().review_standing(dec).unwrap().unwrap();
    assert_eq!((r.downgraded, tier(&w)), (0, Tier::Gold));
    // In January November is out of the window: down to bronze.
    let jan = T0.plus(41 * 86_400);
    let r = e.loyalty().review_standing(jan).unwrap().unwrap();
    assert_eq!((r.downgraded, tier(&w)), (1, Tier::Bronze));
    w.assert_audit();
}

#[test]
fn members_who_keep_the_monthly_commitment_become_vip_and_earn_the_vip_multiplier() {
    let mut cfg = tiered();
    cfg.loyalty.tier_thresholds = [u64::MAX; 3];
    cfg.loyalty.vip_min_monthly = 50_000;
    cfg.loyalty.vip_months = 2;
    cfg.loyalty.vip_lasts_months = 3;
    let w = World::with_config(cfg);
    w.engine
        .loyalty()
        .put_program(
            &w.merchant,
            &Program {
                vip_bps: 20_000,
                ..program()
            },
        )
        .unwrap()
        .wait()
        .unwrap();
    let oct = T0.plus(-35 * 86_400);
    assert_eq!(
        w.engine.loyalty().review_standing(oct).unwrap(),
        None,
        "first period"
    );
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 60_000, oct);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 40_000, T0);
    let dec = T0.plus(10 * 86_400);
    let r = w.engine.loyalty().review_standing(dec).unwrap().unwrap();
    assert_eq!(r.new_vip, 0, "November fell short");
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 50_000, dec);
    let jan = T0.plus(41 * 86_400);
    let r = w.engine.loyalty().review_standing(jan).unwrap().unwrap();
    assert_eq!(r.new_vip, 0, "November and December: November fell short");
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 60_000, jan);
    let feb = T0.plus(72 * 86_400);
    let r = w.engine.loyalty().review_standing(feb).unwrap().unwrap();
    assert_eq!(r.new_vip, 1, "December and January kept it");
    assert!(w
        .engine
        .loyalty()
        .standing(w.member.id)
        .unwrap()
        .unwrap()
        .vip(loyalty::month_of_day(
            feb.local_day(w.engine.config().utc_offset_secs)
        )));
    let p0 = points(&w);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, feb);
    // The review made the member bronze (thresholds out of reach):
    // 10 points × 1 (bronze) × 2 (VIP).
    assert_eq!(tier(&w), Tier::Bronze);
    assert_eq!(points(&w) - p0, 20);
    w.assert_audit();
}

fn amount(v: u64) -> clubswitch_wire::Amount {
    clubswitch_wire::Amount::new(v).unwrap()
}

#[test]
fn a_referral_pays_both_members_once_at_the_newcomers_first_purchase() {
    let w = with_program(Program {
        referral_points: 500,
        ..program()
    });
    let e = &w.engine;
    let newcomer = e
        .admin()
        .add_member("Reza", "09121111111", Tier::Bronze, vec![])
        .unwrap()
        .wait()
        .unwrap();
    let pan2 = luhn_fix("628023140000005");
    let card = e
        .admin()
        .issue_card(&NewCard {
            pan: pan(&pan2),
            kind: CardKind::Club,
            member: Some(newcomer.id),
            expiry: None,
            max_amount: None,
            daily_limit: None,
        })
        .unwrap()
        .wait()
        .unwrap();
    e.admin()
        .top_up(&card.hash, amount(500_000), T0)
        .unwrap()
        .wait()
        .unwrap();
    let code = ReferralCode(w.member.id);
    assert!(
        e.loyalty()
            .refer(newcomer.id, ReferralCode(newcomer.id))
            .is_err(),
        "not oneself"
    );
    e.loyalty()
        .refer(newcomer.id, code)
        .unwrap()
        .wait()
        .unwrap();
    assert!(e.loyalty().refer(newcomer.id, code).is_err(), "once");
    buy(&w, Pc::ClubPurchase, &pan2, 10_000, T0);
    let pts = |m: MemberId| e.loyalty().points(m, &w.merchant).unwrap().balance;
    assert_eq!(pts(newcomer.id), 500 + 10);
    assert_eq!(pts(w.member.id), 500);
    buy(&w, Pc::ClubPurchase, &pan2, 10_000, T0.plus(60));
    assert_eq!((pts(newcomer.id), pts(w.member.id)), (520, 500));
    assert!(
        e.loyalty().refer(newcomer.id, code).is_err(),
        "not after the first purchase"
    );
    w.assert_audit();
}

#[test]
fn a_store_balance_inquiry_at_a_merchant_with_a_programme_includes_the_points() {
    let w = with_program(program());
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0);
    let (_, out) = w.authorize(Pc::StoreBalance, CLUB_PAN, 0, T0.plus(60));
    assert_eq!(out.code, Rc::Approved);
    assert_eq!(points_in(&out, AmountType::PointsBalance), Some(150));
}

#[test]
fn receipts_and_low_balance_notices_are_queued_and_removed_once_delivered() {
    let mut cfg = EngineConfig::default();
    cfg.loyalty.receipts = true;
    cfg.loyalty.low_balance = Some(100_000);
    let w = World::with_config(cfg);
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 300_000, T0); // 200,000 left
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 150_000, T0.plus(60)); // 50,000 left
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(120)); // still low: no repeat
    let kinds = notices(&w);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, NoticeKind::Receipt { .. }))
            .count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, NoticeKind::LowBalance { .. }))
            .collect::<Vec<_>>(),
        vec![&NoticeKind::LowBalance { available: 50_000 }]
    );
    let e = &w.engine;
    let due = e.outbox().due(T0.plus(200), 10, 100).unwrap();
    e.outbox()
        .failed(due[0].id, T0.plus(200), "gateway down", 30)
        .unwrap();
    assert_eq!(e.outbox().due(T0.plus(200), 10, 100).unwrap().len(), 3);
    assert_eq!(e.outbox().due(T0.plus(230), 10, 100).unwrap().len(), 4);
    let ids: Vec<u64> = due.iter().map(|n| n.id).collect();
    e.outbox().delivered(&ids).unwrap();
    assert_eq!(e.outbox().len(), 0);
}

/// `n` more members, each with a club card that bought once at the
/// world's merchant at `at`.
fn buyers(w: &World, n: u64, at: UnixTime) -> Vec<MemberId> {
    let e = &w.engine;
    (0..n)
        .map(|i| {
            let m = e
                .admin()
                .add_member(&format!("buyer {i}"), "09129999999", Tier::Bronze, vec![])
                .unwrap()
                .wait()
                .unwrap();
            let number = luhn_fix(&format!("6280231499{i:05}"));
            let card = e
                .admin()
                .issue_card(&NewCard {
                    pan: pan(&number),
                    kind: CardKind::Club,
                    member: Some(m.id),
                    expiry: None,
                    max_amount: None,
                    daily_limit: None,
                })
                .unwrap()
                .wait()
                .unwrap();
            e.admin()
                .top_up(&card.hash, amount(100_000), at)
                .unwrap()
                .wait()
                .unwrap();
            buy(w, Pc::ClubPurchase, &number, 10_000, at);
            m.id
        })
        .collect()
}

fn draw_spec(w: &World, prizes: u32, seed: u64) -> loyalty::DrawSpec {
    loyalty::DrawSpec {
        merchant: w.merchant,
        from: T0,
        to: T0.plus(86_400),
        prizes,
        prize_points: 1_000,
        min_chance_bps: 2_500,
        seed,
    }
}

#[test]
fn a_draw_refuses_a_prize_past_twelve_digits() {
    let w = World::new();
    buyers(&w, 2, T0.plus(60));
    let spec = loyalty::DrawSpec {
        prize_points: loyalty::MAX_POINTS_MOVED + 1,
        ..draw_spec(&w, 1, 7)
    };
    assert!(matches!(
        w.engine.loyalty().run_draw(&spec, T0.plus(86_400)),
        Err(EngineError::Invalid(_))
    ));
    assert!(w.engine.loyalty().draws().unwrap().is_empty());
}

#[test]
fn a_draw_gives_everyone_at_least_the_minimum_chance_and_repeats_from_its_seed() {
    let w = World::new();
    let ids = buyers(&w, 12, T0.plus(60));
    // The world's own member bought before the window: not eligible.
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 10_000, T0.plus(-60));
    let d = w
        .engine
        .loyalty()
        .run_draw(&draw_spec(&w, 1, 7), T0.plus(90_000))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(d.eligible, ids);
    // One prize, but 25% of 12 must win.
    assert_eq!((d.winners.len(), d.odds_bps), (3, 2_500));
    for m in &d.winners {
        assert_eq!(
            w.engine.loyalty().points(*m, &w.merchant).unwrap().balance,
            1_000
        );
    }
    assert!(w.engine.loyalty().verify_draw(d.id).unwrap());
    let again = w
        .engine
        .loyalty()
        .run_draw(&draw_spec(&w, 1, 7), T0.plus(90_001))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(again.winners, d.winners, "the same seed, the same winners");
    assert!(notices(&w)
        .iter()
        .any(|n| matches!(n, NoticeKind::DrawWon { points: 1_000, .. })));
    w.assert_audit();
}

#[test]
fn a_draw_with_fewer_members_than_prizes_gives_each_member_one_prize() {
    let w = World::new();
    let ids = buyers(&w, 2, T0.plus(60));
    let d = w
        .engine
        .loyalty()
        .run_draw(&draw_spec(&w, 5, 1), T0.plus(90_000))
        .unwrap()
        .wait()
        .unwrap();
    let mut winners = d.winners.clone();
    winners.sort();
    assert_eq!(winners, ids);
    assert_eq!(d.odds_bps, 10_000);
    let empty = World::new();
    let none = empty
        .engine
        .loyalty()
        .run_draw(&draw_spec(&empty, 5, 1), T0.plus(90_000))
        .unwrap()
        .wait()
        .unwrap();
    assert!(none.winners.is_empty() && none.eligible.is_empty());
    w.assert_audit();
}

#[test]
fn the_loyalty_report_adds_up_points_credit_liability_and_repeat_buyers() {
    let w = with_program(Program {
        cashback_bps: 1000,
        credit_per_point: 10,
        ..program()
    });
    let c = buy(&w, Pc::ClubPurchase, CLUB_PAN, 100_000, T0); // 150 pts, 10,000 cashback
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 20_000, T0.plus(60)); // 30 pts, 2,000
    w.engine
        .loyalty()
        .convert_points(w.member.id, &w.merchant, Some(100), T0.plus(120))
        .unwrap()
        .wait()
        .unwrap(); // 1,000 credit
    w.refund(Pc::ClubRefund, c.rrn.unwrap(), 50_000, T0.plus(180)); // 75 pts, 5,000 back
    buyers(&w, 1, T0.plus(200));
    let r = w
        .engine
        .loyalty()
        .loyalty_report(T0, T0.plus(86_400))
        .unwrap();
    let m = &r.merchants[0];
    assert_eq!(m.merchant, w.merchant.as_str());
    assert_eq!(
        (m.points_issued, m.points_redeemed, m.points_returned),
        (150 + 30 + 10, 100, 75)
    );
    assert_eq!(
        (m.cashback, m.credit_from_points, m.credit_returned),
        (12_000 + 1_000, 1_000, 5_000)
    );
    assert_eq!(m.points_outstanding, 190 - 100 - 75);
    assert_eq!(m.store_credit_liability, 13_000 + 1_000 - 5_000);
    // What members hold, read from their accounts, says the same.
    let held = w.engine.loyalty().held(Some(&w.merchant)).unwrap()[&w.merchant];
    assert_eq!(
        (held.points, held.store_credit),
        (m.points_outstanding, m.store_credit_liability)
    );
    assert_eq!(
        (r.buyers, r.repeat_buyers, r.repeat_rate_bps),
        (2, 1, 5_000)
    );
    // Nothing of it before the period.
    let before = w
        .engine
        .loyalty()
        .loyalty_report(T0.plus(-86_400), T0)
        .unwrap();
    assert_eq!(before.merchants[0].points_issued, 0);
}

#[test]
fn segments_score_members_by_quintile_and_filter_by_group() {
    let w = World::new();
    let e = &w.engine;
    // The world's member buys often and recently; the others once, earlier.
    let others = buyers(&w, 4, T0);
    for i in 0..5 {
        buy(&w, Pc::ClubPurchase, CLUB_PAN, 50_000, T0.plus(3_600 + i));
    }
    let now = T0.plus(86_400 * 3);
    let all = e.loyalty().segments(None, None, now).unwrap();
    assert_eq!(all.len(), 5);
    let top = all.iter().find(|s| s.member == w.member.id.0).unwrap();
    assert_eq!((top.r, top.f, top.m, top.segment), (5, 5, 5, "champions"));
    assert_eq!(
        (top.frequency, top.monetary, top.recency_days),
        (5, 250_000, 2)
    );
    for s in all.iter().filter(|s| s.member != w.member.id.0) {
        assert_eq!((s.f, s.frequency), (1, 1));
    }
    // At the merchant, from its transactions: the same buyers.
    assert_eq!(
        e.loyalty()
            .segments(Some(&w.merchant), None, now)
            .unwrap()
            .len(),
        5
    );
    // Tag a member and ask for the group alone.
    let mut tagged = e.admin().member(others[0]).unwrap().unwrap();
    tagged.groups.push("vip-list".into());
    e.admin().put_member(&tagged).unwrap().wait().unwrap();
    let group = e.loyalty().segments(None, Some("vip-list"), now).unwrap();
    assert_eq!(
        group.iter().map(|s| s.member).collect::<Vec<_>>(),
        vec![others[0].0]
    );
}

#[test]
fn coalition_credit_is_honoured_at_a_partner_and_the_clearing_says_who_owes_whom() {
    let w = World::new();
    let e = &w.engine;
    let other: clubswitch_wire::MerchantId = "MERCHANT0000009".parse().unwrap();
    e.admin()
        .put_merchant(&merchant_record(other))
        .unwrap()
        .wait()
        .unwrap();
    e.admin()
        .grant_store_credit(w.member.id, &other, amount(80_000), T0)
        .unwrap()
        .wait()
        .unwrap();
    // Not in a coalition yet: the credit at the other merchant is no use here.
    let (_, out) = w.authorize(Pc::StorePurchase, CLUB_PAN, 50_000, T0);
    assert_eq!(out.code, Rc::InsufficientFunds);
    e.loyalty()
        .put_coalition(&loyalty::Coalition {
            name: "Tehran north".into(),
            merchants: vec![w.merchant, other],
        })
        .unwrap()
        .wait()
        .unwrap();
    let c = buy(&w, Pc::StorePurchase, CLUB_PAN, 50_000, T0.plus(60));
    let credit_there = |e: &Engine| {
        e.admin()
            .account(&AccountKey::Store {
                member: w.member.id,
                merchant: other,
            })
            .unwrap()
            .balance
    };
    assert_eq!(credit_there(e), 30_000);
    let owed = e.loyalty().clearing().unwrap();
    assert_eq!(
        owed,
        vec![loyalty::Owed {
            debtor: other.as_str().into(),
            creditor: w.merchant.as_str().into(),
            amount: 50_000
        }]
    );
    // A partial refund gives the credit back where it came from.
    w.refund(Pc::StoreRefund, c.rrn.unwrap(), 20_000, T0.plus(120));
    assert_eq!(credit_there(e), 50_000);
    assert_eq!(e.loyalty().clearing().unwrap()[0].amount, 30_000);
    // A merchant is in one coalition at most.
    let third: clubswitch_wire::MerchantId = "MERCHANT0000008".parse().unwrap();
    e.admin()
        .put_merchant(&merchant_record(third))
        .unwrap()
        .wait()
        .unwrap();
    assert!(e
        .loyalty()
        .put_coalition(&loyalty::Coalition {
            name: "other".into(),
            merchants: vec![third, other],
        })
        .is_err());
    w.assert_audit();
}

/// Points at the till (profile 1.1): 100 rials a point, at least 10 points;
/// the member holds 150 points from a club purchase of 150,000 rials.
fn with_points_at_the_till() -> World {
    let w = with_program(Program {
        till: Some(Till {
            rials_per_point: 100,
            min_points: 10,
        }),
        tier_bps: [ONE; 4],
        ..program()
    });
    buy(&w, Pc::ClubPurchase, CLUB_PAN, 150_000, T0);
    assert_eq!(points(&w), 150);
    w
}

fn points_held(w: &World) -> i64 {
    w.engine
        .loyalty()
        .points(w.member.id, &w.merchant)
        .unwrap()
        .held
}

#[test]
fn a_points_purchase_holds_the_points_rounded_up_then_pays_for_what_was_confirmed() {
    let w = with_points_at_the_till();
    let (auth, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 10_050, T0.plus(60));
    assert_eq!(out.code, Rc::Approved, "{out:?}");
    // 10,050 rials at 100 a point: 101 points, rounded up.
    assert_eq!(points_in(&out, AmountType::PointsRedeemed), Some(101));
    assert_eq!(points_in(&out, AmountType::PointsBalance), Some(49));
    assert_eq!(points_held(&w), 101);
    w.assert_audit();

    // The confirm may be for less: 9,000 rials pay 90 points, the rest is
    // released, and a purchase paid with points earns none.
    let c = w.confirm(&auth, &out, 9_000, T0.plus(70));
    assert_eq!(c.code, Rc::Approved, "{c:?}");
    assert_eq!(points_in(&c, AmountType::PointsRedeemed), Some(90));
    assert_eq!(points_in(&c, AmountType::PointsBalance), Some(60));
    assert_eq!(points_in(&c, AmountType::PointsEarned), None);
    assert_eq!((points(&w), points_held(&w)), (60, 0));
    w.assert_audit();

    // The merchant carries them: nothing to settle, and the report shows
    // them paid at the till.
    let report = w
        .engine
        .loyalty()
        .loyalty_report(T0, T0.plus(3_600))
        .unwrap();
    let mine = report
        .merchants
        .iter()
        .find(|m| m.merchant == w.merchant.as_str())
        .unwrap();
    assert_eq!(mine.points_at_till, 90);
    assert_eq!(mine.points_outstanding, 60);
    let held = w.engine.loyalty().held(None).unwrap()[&w.merchant];
    assert_eq!(held.points, 60);
}

#[test]
fn a_points_purchase_is_declined_51_without_the_points_57_without_the_till_and_13_under_the_minimum(
) {
    let w = with_points_at_the_till();
    let (_, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 15_001, T0.plus(60));
    assert_eq!(out.code, Rc::InsufficientFunds, "151 points of 150");
    let (_, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 900, T0.plus(61));
    assert_eq!(
        out.code,
        Rc::InvalidAmount,
        "9 points, under the minimum of 10"
    );
    assert_eq!((points(&w), points_held(&w)), (150, 0));

    // The programme does not allow it: 57.
    w.engine
        .loyalty()
        .put_program(&w.merchant, &program())
        .unwrap()
        .wait()
        .unwrap();
    let (_, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 1_000, T0.plus(62));
    assert_eq!(out.code, Rc::NotPermittedToCardholder);
    // No programme at all: 57 too.
    let bare = World::new();
    let (_, out) = bare.authorize(Pc::PointsPurchase, CLUB_PAN, 1_000, T0);
    assert_eq!(out.code, Rc::NotPermittedToCardholder);
    w.assert_audit();
    bare.assert_audit();
}

#[test]
fn voiding_or_expiring_a_points_hold_releases_it_and_a_reversal_gives_the_points_back() {
    let w = with_points_at_the_till();
    let (_, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 5_000, T0.plus(60));
    assert_eq!(points_held(&w), 50);
    assert_eq!(w.undo_rrn(out.rrn.unwrap(), T0.plus(61)).code, Rc::Approved);
    assert_eq!((points(&w), points_held(&w)), (150, 0));

    w.authorize(Pc::PointsPurchase, CLUB_PAN, 5_000, T0.plus(62));
    assert_eq!(points_held(&w), 50);
    w.engine
        .sweeper()
        .expire_holds(T0.plus(62 + 3_600), 100)
        .unwrap();
    assert_eq!((points(&w), points_held(&w)), (150, 0));

    let spend = || -> u64 {
        let standing = w.engine.loyalty().standing(w.member.id).unwrap();
        standing.unwrap().months.iter().map(|m| m.spend).sum()
    };
    assert_eq!(spend(), 150_000, "the club purchase");
    let (auth, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 5_000, T0.plus(4_000));
    w.confirm(&auth, &out, 5_000, T0.plus(4_001));
    assert_eq!(points(&w), 100);
    assert_eq!(spend(), 150_000, "paid with points: no spend");
    assert_eq!(
        w.undo_rrn(out.rrn.unwrap(), T0.plus(4_002)).code,
        Rc::Approved
    );
    assert_eq!((points(&w), points_held(&w)), (150, 0));
    assert_eq!(spend(), 150_000, "its reversal takes none back");
    w.assert_audit();
}

#[test]
fn a_points_refund_gives_the_points_back_in_proportion_and_the_last_gives_back_the_rest() {
    let w = with_points_at_the_till();
    let (auth, out) = w.authorize(Pc::PointsPurchase, CLUB_PAN, 10_000, T0.plus(60));
    w.confirm(&auth, &out, 10_000, T0.plus(61));
    assert_eq!(points(&w), 50);
    let rrn = out.rrn.unwrap();

    // A refund of a points purchase must say so: 209300, not 209100.
    assert_eq!(
        w.refund(Pc::ClubRefund, rrn, 1_000, T0.plus(62)).code,
        Rc::InvalidTransaction
    );
    // 3,333 of 10,000 rials: 33 of the 100 points, rounded down.
    let r1 = w.refund(Pc::PointsRefund, rrn, 3_333, T0.plus(63));
    assert_eq!(r1.code, Rc::Approved, "{r1:?}");
    assert_eq!(points_in(&r1, AmountType::PointsRedeemed), Some(33));
    assert_eq!(points_in(&r1, AmountType::PointsBalance), Some(83));
    // Undoing that refund takes the 33 points again.
    assert_eq!(w.undo_rrn(r1.rrn.unwrap(), T0.plus(64)).code, Rc::Approved);
    assert_eq!(points(&w), 50);
    let r2 = w.refund(Pc::PointsRefund, rrn, 3_333, T0.plus(65));
    assert_eq!(points_in(&r2, AmountType::PointsRedeemed), Some(33));
    // The rest, 6,667 rials, gives back the other 67.
    let r3 = w.refund(Pc::PointsRefund, rrn, 6_667, T0.plus(66));
    assert_eq!(points_in(&r3, AmountType::PointsRedeemed), Some(67));
    assert_eq!(points(&w), 150);
    assert_eq!(
        w.refund(Pc::PointsRefund, rrn, 1, T0.plus(67)).code,
        Rc::InvalidAmount,
        "nothing left to refund"
    );
    w.assert_audit();
}
