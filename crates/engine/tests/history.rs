//! Reports over all history: a year of purchases, refunds and reversals,
//! settled and archived, reported from the daily rollups, equals the same
//! year recomputed from the archive files and what is still live.

mod common;

use std::collections::BTreeMap;

use clubswitch_engine::archive::file::{self, Kind};
use clubswitch_engine::rollup::Figures;
use clubswitch_engine::*;
use clubswitch_wire::{Amount, ProcessingCode as Pc, ResponseCode as Rc};
use common::*;

const DAY: i64 = 86_400;

/// Drives a year of days before `T0`: club and bank-card purchases every
/// day, some confirmed for less, some refunded, some reversed.
fn a_year(w: &World) {
    w.engine
        .loyalty()
        .put_program(&w.merchant, &Program::default())
        .unwrap()
        .wait()
        .unwrap();
    let mut rng = 7u64;
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    for d in (1..=365).rev() {
        let day = T0.plus(-d * DAY);
        w.engine
            .admin()
            .top_up(&w.club.hash, Amount::new(500_000).unwrap(), day)
            .unwrap()
            .wait()
            .unwrap();
        for i in 0..3 {
            let at = day.plus(3_600 * (i + 1));
            let (code, card) = if i == 2 {
                (Pc::BankDiscount, BANK_PAN)
            } else {
                (Pc::ClubPurchase, CLUB_PAN)
            };
            let amount = 10_000 + next(90_000);
            let (auth, out) = w.authorize(code, card, amount, at);
            assert_eq!(out.code, Rc::Approved, "{out:?}");
            let confirmed = amount - next(2) * 1_000;
            let c = w.confirm(&auth, &out, confirmed, at.plus(10));
            assert_eq!(c.code, Rc::Approved, "{c:?}");
            let rrn = out.rrn.unwrap();
            match (code, next(10)) {
                (Pc::ClubPurchase, 0) => {
                    assert_eq!(w.undo_rrn(rrn, at.plus(20)).code, Rc::Approved);
                }
                (Pc::ClubPurchase, 1) => {
                    let r = w.refund(Pc::ClubRefund, rrn, confirmed / 2, at.plus(30));
                    assert_eq!(r.code, Rc::Approved, "{r:?}");
                    if next(2) == 0 {
                        assert_eq!(w.undo_rrn(r.rrn.unwrap(), at.plus(40)).code, Rc::Approved);
                    }
                }
                _ => {}
            }
        }
        if d % 7 == 0 {
            w.settle(day.plus(DAY - 1), day.plus(DAY - 1));
        }
    }
    w.settle(T0, T0);
}

/// The year by local year, recomputed from transactions as they now are.
fn recomputed(txns: &[Txn], offset: i64) -> BTreeMap<String, Figures> {
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for t in txns {
        if t.state != TxnState::Confirmed {
            continue;
        }
        let Some(at) = t.confirmed else { continue };
        let year = Period::Year.label(at.local_day(offset));
        out.entry(year).or_default().count(t, 1);
    }
    out
}

#[test]
fn a_years_report_from_the_rollups_equals_the_archived_and_live_transactions() {
    let w = World::new();
    a_year(&w);
    let dir = TempDir::new("history-archive");
    let run = w.engine.archive().run(T0.plus(-30 * DAY), &dir.0).unwrap();
    assert!(
        run.transactions > 0,
        "a year of history left the live ledger: {run:?}"
    );
    w.assert_audit();

    let mut txns: Vec<Txn> = Vec::new();
    let (files, _) = file::list(&dir.0).unwrap();
    for f in files.iter().filter(|f| f.kind == Kind::Transactions) {
        txns.extend(file::read::<Txn>(&f.path, Kind::Transactions).unwrap());
    }
    let archived = txns.len();
    txns.extend(w.engine.admin().transactions(|_| true).unwrap());
    assert!(archived > 500, "{archived} archived");
    let offset = w.engine.config().utc_offset_secs;
    let expected = recomputed(&txns, offset);

    let from = T0.plus(-400 * DAY).local_day(offset);
    let to = T0.local_day(offset);
    let started = std::time::Instant::now();
    let report = w
        .engine
        .reports()
        .history(from, to, None, SalesBy::Merchant, Period::Year)
        .unwrap();
    eprintln!("a year's report from the rollups: {:?}", started.elapsed());
    let mut got: BTreeMap<String, Figures> = BTreeMap::new();
    for line in report {
        got.entry(line.period).or_default().merge(&line.figures);
    }
    // Visits are counted per day as they happen, not from transactions.
    for f in got.values_mut() {
        assert!(f.new_members + f.returning_members > 0);
        f.new_members = 0;
        f.returning_members = 0;
    }
    assert_eq!(got, expected);
    let total: i64 = got.values().map(|f| f.purchases().count).sum();
    assert!(total > 900, "{total} purchases");
    assert!(got
        .values()
        .any(|f| f.refunds.count > 0 && f.points_issued > 0));

    // By month and by Jalali year, the same totals.
    for period in [Period::Month, Period::JalaliYear, Period::Day] {
        let lines = w
            .engine
            .reports()
            .history(from, to, Some(&w.merchant), SalesBy::Terminal, period)
            .unwrap();
        let sales: i64 = lines.iter().map(|l| l.figures.club.amount).sum();
        assert_eq!(sales, expected.values().map(|f| f.club.amount).sum::<i64>());
    }
}

#[test]
fn the_same_days_a_year_earlier_keep_the_date_and_leap_days_fall_back() {
    let d = |y, m, dd| clubswitch_wire::fields::days_from_civil(y, m, dd);
    assert_eq!(reports::year_before(d(2026, 11, 23)), d(2025, 11, 23));
    assert_eq!(reports::year_before(d(2028, 2, 29)), d(2027, 2, 28));
    assert_eq!(reports::year_before(d(2025, 3, 1)), d(2024, 3, 1));
}

#[test]
fn twelve_month_rfm_at_a_merchant_counts_archived_purchases() {
    let w = World::new();
    a_year(&w);
    let dir = TempDir::new("history-rfm");
    w.engine.archive().run(T0.plus(-30 * DAY), &dir.0).unwrap();
    let segments = w
        .engine
        .loyalty()
        .segments(Some(&w.merchant), None, T0)
        .unwrap();
    let mine = segments.iter().find(|s| s.member == w.member.id.0).unwrap();
    // Two club purchases a day for a year (less reversals) are far more
    // than the 30 live days hold.
    assert!(mine.frequency > 300, "{mine:?}");
}
