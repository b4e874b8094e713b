//! Daily rollups: each terminal's day in figures, kept up as it happens,
//! so reports over any period (a day, a month, years) read a few records
//! per terminal and day instead of scanning history, and keep answering
//! after history has been archived out of the live ledger.
//!
//! **What is kept.** One [`Figures`] record per merchant, local day and
//! terminal (key `merchant ‖ day ‖ terminal`, so one merchant's period is
//! one range), written in the same transaction as the confirm, refund or
//! reversal that changes it: a confirmed purchase adds to its confirm
//! day, a refund to its own day, and a reversal takes the purchase (or
//! refund) back off the day it was counted on. So a day's figures always
//! equal what the transactions themselves now say, whether they are live
//! or archived (the test recomputes a year from the archive files). The
//! record is the terminal's own: terminals do not contend on it.
//!
//! **Members.** One [`Visits`] record per merchant and member says when
//! the member first and last bought there and what they spent by month (the
//! last 13 months), which gives each day its new and returning members and
//! each merchant a year of recency, frequency and money without history.

use clubswitch_wire::{MerchantId, ProcessingCode, TerminalId};
use serde::{Deserialize, Serialize};

use crate::cx::Cx;
use crate::model::{MemberId, Txn};
use crate::storage::{Table, Tx, TxResult};

/// A count and its amount, in rials.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Count {
    pub count: i64,
    pub amount: i64,
}

impl Count {
    fn add(&mut self, sign: i64, amount: u64) {
        self.count += sign;
        self.amount += sign * i64::try_from(amount).unwrap_or(i64::MAX);
    }

    fn merge(&mut self, o: &Count) {
        self.count += o.count;
        self.amount += o.amount;
    }
}

/// One terminal's day (or, summed, any period's).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Confirmed purchases by processing code: bank-card lookups (the
    /// amount before discount), club, store credit, points at the till.
    pub bank: Count,
    pub club: Count,
    pub store: Count,
    pub points: Count,
    /// Refunds, all kinds.
    pub refunds: Count,
    /// Discounts given on bank-card lookups.
    pub discounts: i64,
    /// Fees on purchases, less fees returned with refunds.
    pub fees: i64,
    /// Points earned by the purchases, points paid at the till, and points
    /// a refund of a till purchase gave back.
    pub points_issued: i64,
    pub points_redeemed: i64,
    pub points_refunded: i64,
    /// Members buying at the merchant for the first time, and members
    /// coming back (each counted once a day).
    pub new_members: i64,
    pub returning_members: i64,
    /// Points and store credit past their validity, taken back by the
    /// daily pass (counted merchant-wide, on the terminal id
    /// [`MERCHANT_WIDE`]).
    pub points_expired: i64,
    pub credit_expired: i64,
}

/// The terminal id a merchant's figures that belong to no terminal (what
/// the daily pass expires) are kept under.
pub const MERCHANT_WIDE: &str = "--------";

impl crate::codec::Record for Figures {}

impl Figures {
    pub fn merge(&mut self, o: &Figures) {
        for (a, b) in [
            (&mut self.bank, &o.bank),
            (&mut self.club, &o.club),
            (&mut self.store, &o.store),
            (&mut self.points, &o.points),
            (&mut self.refunds, &o.refunds),
        ] {
            a.merge(b);
        }
        self.discounts += o.discounts;
        self.fees += o.fees;
        self.points_issued += o.points_issued;
        self.points_redeemed += o.points_redeemed;
        self.points_refunded += o.points_refunded;
        self.new_members += o.new_members;
        self.returning_members += o.returning_members;
        self.points_expired += o.points_expired;
        self.credit_expired += o.credit_expired;
    }

    /// Confirmed purchases, all kinds.
    pub fn purchases(&self) -> Count {
        let mut c = Count::default();
        for k in [&self.bank, &self.club, &self.store, &self.points] {
            c.merge(k);
        }
        c
    }

    /// Adds (`sign` 1) or takes back (−1) what `txn` counts for.
    pub fn count(&mut self, txn: &Txn, sign: i64) {
        let s = |v: u64| sign * i64::try_from(v).unwrap_or(i64::MAX);
        let amount = txn.final_amount;
        match txn.code {
            ProcessingCode::BankDiscount => self.bank.add(sign, amount),
            ProcessingCode::ClubPurchase => self.club.add(sign, amount),
            ProcessingCode::StorePurchase => self.store.add(sign, amount),
            ProcessingCode::PointsPurchase => self.points.add(sign, amount),
            c if c.is_refund() => {
                self.refunds.add(sign, amount);
                self.fees -= s(txn.fee);
                self.points_refunded += s(txn.points.map_or(0, |p| p.returned));
                return;
            }
            _ => return,
        }
        self.discounts += s(txn.discount);
        self.fees += s(txn.fee);
        self.points_issued += s(txn.earned.as_ref().map_or(0, |e| e.points));
        self.points_redeemed += s(txn.points.map_or(0, |p| p.paid));
    }
}

/// The storage key of a merchant's day at a terminal.
fn key(merchant: &MerchantId, day: i64, terminal: &TerminalId) -> Vec<u8> {
    let mut k = Vec::with_capacity(15 + 4 + 8);
    k.extend_from_slice(merchant.as_bytes());
    k.extend_from_slice(&day_bytes(day));
    k.extend_from_slice(terminal.as_bytes());
    k
}

fn day_bytes(day: i64) -> [u8; 4] {
    // Days since 1970 (local) are positive for any date the switch sees;
    // clamped, the key order is the day order.
    u32::try_from(day.max(0)).unwrap_or(u32::MAX).to_be_bytes()
}

/// The day and terminal a rollup key names.
pub(crate) fn parse_key(k: &[u8]) -> Option<(MerchantId, i64, TerminalId)> {
    let merchant = MerchantId::from_bytes(k.get(..15)?).ok()?;
    let day = u32::from_be_bytes(k.get(15..19)?.try_into().ok()?);
    let terminal = TerminalId::from_bytes(k.get(19..27)?).ok()?;
    Some((merchant, i64::from(day), terminal))
}

/// The key range of a merchant's days `[from, to]`.
pub(crate) fn range(merchant: &MerchantId, from: i64, to: i64) -> (Vec<u8>, Vec<u8>) {
    let mut lo = merchant.as_bytes().to_vec();
    lo.extend_from_slice(&day_bytes(from));
    let mut hi = merchant.as_bytes().to_vec();
    hi.extend_from_slice(&day_bytes(to.saturating_add(1)));
    (lo, hi)
}

/// What a member did at a merchant.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Visits {
    /// Local days of the first and the last confirmed purchase.
    pub first_day: i64,
    pub last_day: i64,
    /// Purchases and rials per month (`year * 12 + month - 1`), the last
    /// 13 months, oldest first.
    pub months: Vec<(i64, u32, u64)>,
}

impl crate::codec::Record for Visits {}

fn visits_key(merchant: &MerchantId, member: MemberId) -> Vec<u8> {
    let mut k = Vec::with_capacity(15 + 8);
    k.extend_from_slice(merchant.as_bytes());
    k.extend_from_slice(&member.0.to_be_bytes());
    k
}

/// The month index of a local day.
pub fn month_of(day: i64) -> i64 {
    let (y, m, _) = clubswitch_wire::fields::civil_from_days(day);
    y * 12 + i64::from(m) - 1
}

/// A confirmed purchase by `member` (if the card is a member's): counted
/// on its day, and the member's visit.
pub(crate) fn confirmed(cx: &Cx<'_>, txn: &Txn, member: Option<MemberId>) -> TxResult<()> {
    let day = cx.day(cx.now);
    update(cx, txn, day, |tx, f| {
        f.count(txn, 1);
        match member {
            Some(m) => visit(tx, f, &txn.merchant, m, day, txn.final_amount),
            None => Ok(()),
        }
    })
}

/// A refund: counted on its own day.
pub(crate) fn refunded(cx: &Cx<'_>, refund: &Txn) -> TxResult<()> {
    update(cx, refund, cx.day(cx.now), |_, f| {
        f.count(refund, 1);
        Ok(())
    })
}

/// A confirmed purchase or refund reversed: taken back off the day it was
/// counted on (its visit stays: the member came).
pub(crate) fn reversed(cx: &Cx<'_>, txn: &Txn) -> TxResult<()> {
    let Some(at) = txn.confirmed else {
        return Ok(());
    };
    update(cx, txn, cx.day(at), |_, f| {
        f.count(txn, -1);
        Ok(())
    })
}

/// Changes the figures of `txn`'s merchant and terminal on `day` by `f`.
fn update(
    cx: &Cx<'_>,
    txn: &Txn,
    day: i64,
    f: impl FnOnce(&Tx<'_>, &mut Figures) -> TxResult<()>,
) -> TxResult<()> {
    if !cx.cfg.rollups {
        return Ok(());
    }
    put(cx.tx, &key(&txn.merchant, day, &txn.request.terminal), f)
}

/// Reads the figures at `k`, changes them by `f`, and writes them back.
fn put(
    tx: &Tx<'_>,
    k: &[u8],
    f: impl FnOnce(&Tx<'_>, &mut Figures) -> TxResult<()>,
) -> TxResult<()> {
    let mut figures: Figures = tx.get(Table::Rollups, k)?.unwrap_or_default();
    f(tx, &mut figures)?;
    tx.put(Table::Rollups, k, &figures)
}

/// Points and credit the daily pass expired at `merchant` on `day`.
pub(crate) fn expired(
    tx: &Tx<'_>,
    cfg: &crate::config::EngineConfig,
    merchant: &MerchantId,
    day: i64,
    points: u64,
    credit: u64,
) -> TxResult<()> {
    if !cfg.rollups || (points == 0 && credit == 0) {
        return Ok(());
    }
    let Ok(wide) = MERCHANT_WIDE.parse::<TerminalId>() else {
        return Ok(());
    };
    put(tx, &key(merchant, day, &wide), |_, f| {
        f.points_expired += i64::try_from(points).unwrap_or(i64::MAX);
        f.credit_expired += i64::try_from(credit).unwrap_or(i64::MAX);
        Ok(())
    })
}

fn visit(
    tx: &Tx<'_>,
    f: &mut Figures,
    merchant: &MerchantId,
    member: MemberId,
    day: i64,
    amount: u64,
) -> TxResult<()> {
    let k = visits_key(merchant, member);
    let mut v = match tx.get::<Visits>(Table::Visits, &k)? {
        None => {
            f.new_members += 1;
            Visits {
                first_day: day,
                last_day: day,
                months: Vec::new(),
            }
        }
        Some(v) => {
            if v.last_day != day {
                f.returning_members += 1;
            }
            v
        }
    };
    v.last_day = v.last_day.max(day);
    let month = month_of(day);
    match v.months.iter_mut().find(|(m, _, _)| *m == month) {
        Some(m) => {
            m.1 = m.1.saturating_add(1);
            m.2 = m.2.saturating_add(amount);
        }
        None => {
            v.months.push((month, 1, amount));
            v.months.sort_by_key(|m| m.0);
        }
    }
    let keep_from = month - 12;
    v.months.retain(|m| m.0 >= keep_from);
    tx.put(Table::Visits, &k, &v)
}

/// Days from `from` to `to` (inclusive) of one merchant, per terminal.
pub(crate) fn days(
    store: &crate::storage::Store,
    merchant: &MerchantId,
    from: i64,
    to: i64,
) -> crate::error::Result<Vec<(i64, TerminalId, Figures)>> {
    let (lo, hi) = range(merchant, from, to);
    let mut out = Vec::new();
    for r in store.scan_from::<Figures>(Table::Rollups, &lo) {
        let (k, f) = r?;
        if k >= hi {
            break;
        }
        if let Some((_, day, terminal)) = parse_key(&k) {
            out.push((day, terminal, f));
        }
    }
    Ok(out)
}

/// Every member's visits at a merchant.
pub(crate) fn visits(
    store: &crate::storage::Store,
    merchant: &MerchantId,
) -> crate::error::Result<Vec<(MemberId, Visits)>> {
    store
        .scan::<Visits>(Table::Visits, merchant.as_bytes())
        .map(|r| {
            r.map(|(k, v)| {
                let id = k
                    .get(15..23)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u64::from_be_bytes);
                (MemberId(id), v)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_key_reads_back_and_sorts_by_merchant_then_day() {
        let m: MerchantId = "MERCHANT0000001".parse().unwrap();
        let t: TerminalId = "TERM0001".parse().unwrap();
        let k = key(&m, 20_000, &t);
        assert_eq!(parse_key(&k), Some((m, 20_000, t)));
        assert!(key(&m, 19_999, &t) < k);
        let (lo, hi) = range(&m, 20_000, 20_000);
        assert!(lo <= k && k < hi);
        let wide: TerminalId = MERCHANT_WIDE.parse().unwrap();
        assert_eq!(parse_key(&key(&m, 1, &wide)), Some((m, 1, wide)));
    }
}
