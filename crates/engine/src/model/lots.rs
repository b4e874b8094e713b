//! Lots: when a member's points and store credit were granted, so that
//! they expire oldest first.
//!
//! Every credit to a member's points or store credit at a merchant is a
//! lot, dated by when it was granted (grants in the same quarter hour share
//! one). Spending takes from the oldest lots first. Rather than follow
//! every debit, the lots a balance still holds are found from the balance
//! itself: they are the newest lots that add up to it. The lots live in the
//! balance's own account record ([`crate::model::Account::grants`]), so a
//! grant writes nothing more than its posting does, and every posting cuts
//! them down to what the balance holds. Value without a lot (granted before
//! lots were kept) never expires.
//!
//! Format version 1 kept a member's lots at a merchant (both units) in one
//! record of the daily table; `legacy_key` finds it, and the daily pass
//! moves it into the accounts.
//!
//! A lot granted on local day `D` is valid through day `D + valid_days`
//! (the programme's `points_valid_days` or `credit_valid_days`), and the
//! daily pass of any later day takes back what the balance still holds of
//! it. Value held for a pending purchase is never taken.

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use super::{MemberId, UnixTime};
use crate::codec::Record;

/// Grants this close together (in seconds, aligned) share a lot.
const BUCKET_SECS: i64 = 900;

/// At most this many lots per unit: past it the two oldest merge, the
/// older value taking the newer date (so a merge only ever lengthens
/// validity).
const MAX_LOTS: usize = 400;

/// Which balance a lot belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    Points,
    Credit,
}

/// One grant (or several in the same quarter hour).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Lot {
    pub at: UnixTime,
    pub amount: u64,
}

/// The lots of one balance (a member's points or store credit at one
/// merchant), oldest first, kept in its account.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Grants {
    pub lots: Vec<Lot>,
    /// The last local day whose expiring value the member has been warned
    /// of.
    pub warned_through: i64,
}

/// A member's lots at one merchant, oldest first: what
/// [`crate::loyalty::Loyalty::lots`] shows, and how format version 1 kept them (one
/// record per member and merchant in the daily table).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Lots {
    pub points: Vec<Lot>,
    pub credit: Vec<Lot>,
    /// The last local day whose expiring value the member has been warned
    /// of.
    pub warned_through: i64,
}

impl Record for Lots {}

impl Lots {
    pub fn unit(&self, unit: Unit) -> &[Lot] {
        match unit {
            Unit::Points => &self.points,
            Unit::Credit => &self.credit,
        }
    }

    pub(crate) fn unit_mut(&mut self, unit: Unit) -> &mut Vec<Lot> {
        match unit {
            Unit::Points => &mut self.points,
            Unit::Credit => &mut self.credit,
        }
    }
}

/// Where format version 1 kept a member's lots at a merchant.
pub(crate) fn legacy_key(member: MemberId, merchant: &MerchantId) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + merchant.as_bytes().len());
    k.push(b'L');
    k.extend_from_slice(&member.0.to_be_bytes());
    k.extend_from_slice(merchant.as_bytes());
    k
}

impl Grants {
    /// A posting of `delta` left the balance at `balance`: a credit is a
    /// lot granted at `at`; whatever it was, the lots are cut to what the
    /// balance holds.
    pub(crate) fn posted(&mut self, at: UnixTime, delta: i64, balance: i64) {
        let balance = balance.max(0).unsigned_abs();
        if delta > 0 {
            add(&mut self.lots, at, delta.unsigned_abs(), balance);
        } else {
            cut(&mut self.lots, balance);
        }
    }

    /// A debit that undoes a credit (points or cashback taken back with a
    /// refund or reversal, a grant taken back by hand) left the balance at
    /// `balance`: it leaves the newest lots first, where what it undoes
    /// went, so the older lots keep their validity. (Cut from the oldest as
    /// a spend is, a purchase and its refund would renew old points.)
    pub(crate) fn taken_back(&mut self, amount: u64, balance: i64) {
        let mut left = amount;
        while left > 0 {
            let Some(newest) = self.lots.last_mut() else {
                break;
            };
            if newest.amount > left {
                newest.amount -= left;
                left = 0;
            } else {
                left -= newest.amount;
                self.lots.pop();
            }
        }
        cut(&mut self.lots, balance.max(0).unsigned_abs());
    }

    /// Puts the lots of `unit` that format version 1 kept apart (in
    /// `older`) in front of these.
    pub(crate) fn take_older(&mut self, older: &mut Lots, unit: Unit) {
        let before = older.unit_mut(unit);
        if !before.is_empty() {
            before.append(&mut self.lots);
            self.lots = std::mem::take(before);
        }
        self.warned_through = self.warned_through.max(older.warned_through);
    }
}

fn add(lots: &mut Vec<Lot>, at: UnixTime, amount: u64, balance: u64) {
    match lots.last_mut() {
        Some(l) if l.at.0.div_euclid(BUCKET_SECS) == at.0.div_euclid(BUCKET_SECS) => {
            l.amount = l.amount.saturating_add(amount);
        }
        _ => lots.push(Lot { at, amount }),
    }
    cut(lots, balance);
    while lots.len() > MAX_LOTS {
        let oldest = lots.remove(0);
        lots[0].amount = lots[0].amount.saturating_add(oldest.amount);
    }
}

/// Keeps only the newest lots that add up to `balance`, the oldest of them
/// cut to fit.
pub(crate) fn cut(lots: &mut Vec<Lot>, balance: u64) {
    let mut need = balance;
    let mut from = lots.len();
    while from > 0 && need > 0 {
        from -= 1;
        let l = &mut lots[from];
        if l.amount >= need {
            l.amount = need;
            need = 0;
        } else {
            need -= l.amount;
        }
    }
    lots.drain(..from);
}

/// What `balance` holds of the lots whose last valid day (given by
/// `last_day`) falls in `after < day <= through`: the balance is spread
/// over the newest lots first.
pub(crate) fn held_of(
    lots: &[Lot],
    balance: u64,
    last_day: impl Fn(&Lot) -> i64,
    after: i64,
    through: i64,
) -> u64 {
    let mut left = balance;
    let mut sum = 0u64;
    for l in lots.iter().rev() {
        if left == 0 {
            break;
        }
        let take = l.amount.min(left);
        left -= take;
        let d = last_day(l);
        if after < d && d <= through {
            sum += take;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lot(at: i64, amount: u64) -> Lot {
        Lot {
            at: UnixTime(at),
            amount,
        }
    }

    #[test]
    fn a_take_back_leaves_the_newest_lots_and_a_spend_the_oldest() {
        let grants = |lots: Vec<Lot>| Grants {
            lots,
            ..Grants::default()
        };
        let mut back = grants(vec![lot(0, 100), lot(86_400 * 29, 100)]);
        back.taken_back(100, 100);
        assert_eq!(back.lots, vec![lot(0, 100)]);
        let mut spent = grants(vec![lot(0, 100), lot(86_400 * 29, 100)]);
        spent.posted(UnixTime(86_400 * 29), -100, 100);
        assert_eq!(spent.lots, vec![lot(86_400 * 29, 100)]);
        // More than the newest lot: on into the one before it.
        let mut deep = grants(vec![lot(0, 100), lot(900, 30)]);
        deep.taken_back(50, 80);
        assert_eq!(deep.lots, vec![lot(0, 80)]);
    }

    #[test]
    fn grants_in_one_quarter_hour_share_a_lot_and_the_balance_cuts_old_lots() {
        let mut lots = Vec::new();
        add(&mut lots, UnixTime(0), 100, 100);
        add(&mut lots, UnixTime(899), 50, 150);
        assert_eq!(lots, vec![lot(0, 150)]);
        add(&mut lots, UnixTime(900), 30, 180);
        assert_eq!(lots.len(), 2);
        // 120 spent since, from the oldest lot: the balance after the
        // next credit is 60 + 10.
        add(&mut lots, UnixTime(2_000), 10, 70);
        assert_eq!(lots, vec![lot(0, 30), lot(900, 30), lot(2_000, 10)]);
    }

    #[test]
    fn value_without_a_lot_stays_and_never_counts_as_expiring() {
        let mut lots = vec![lot(0, 10)];
        cut(&mut lots, 25);
        assert_eq!(lots, vec![lot(0, 10)]);
        let day = |l: &Lot| l.at.0;
        assert_eq!(held_of(&lots, 25, day, i64::MIN, 0), 10);
    }

    #[test]
    fn the_balance_is_spread_over_the_newest_lots_first() {
        let lots = vec![lot(1, 100), lot(2, 100), lot(3, 100)];
        let day = |l: &Lot| l.at.0;
        // 150 left: all of lot 3, half of lot 2, nothing of lot 1.
        assert_eq!(held_of(&lots, 150, day, i64::MIN, 1), 0);
        assert_eq!(held_of(&lots, 150, day, i64::MIN, 2), 50);
        assert_eq!(held_of(&lots, 150, day, 2, 3), 100);
    }

    #[test]
    fn past_the_cap_the_oldest_lots_merge_into_the_newer_date() {
        let mut lots = Vec::new();
        for i in 0..=MAX_LOTS as i64 {
            add(&mut lots, UnixTime(i * BUCKET_SECS), 1, i as u64 + 1);
        }
        assert_eq!(lots.len(), MAX_LOTS);
        assert_eq!(lots[0], lot(BUCKET_SECS, 2));
        assert_eq!(
            lots.iter().map(|l| l.amount).sum::<u64>(),
            MAX_LOTS as u64 + 1
        );
    }
}
