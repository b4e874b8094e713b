//! Lucky draws among the members who bought at a merchant in a period.
//!
//! **Reproducible.** The eligible members are listed in member-id order and
//! shuffled by Fisher–Yates driven by SplitMix64 from the recorded seed
//! (for `i` from the last index down to 1: `j = next() % (i + 1)`, swap);
//! the first `winners` of the shuffled list win. Anyone holding the
//! recorded draw can repeat it, and [`super::Loyalty::verify_draw`] does.
//!
//! **Odds.** Every eligible member has the same chance, `winners /
//! eligible`, published with the draw: at least the configured minimum
//! (25% by default), because the number of winners is the larger of the
//! prizes offered and that share of the eligible, and never more than the
//! eligible (with fewer members than prizes, everyone wins and the rest of
//! the prizes are not given).

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use super::earn;
use super::Loyalty;
use crate::admin::Admin;
use crate::error::{EngineError, Result};
use crate::model::{Card, JournalKind, Member, MemberId, Status, Txn, TxnState, UnixTime};
use crate::notice::{self, NoticeKind};
use crate::storage::Durable;
use crate::storage::{abort, Table};

/// What a draw is for.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DrawSpec {
    /// The merchant whose buyers take part and who gives the prizes.
    pub merchant: MerchantId,
    /// Confirmed purchases in `[from, to)` make a member eligible.
    pub from: UnixTime,
    pub to: UnixTime,
    /// Prizes offered, each `prize_points` points at the merchant.
    pub prizes: u32,
    pub prize_points: u64,
    /// Smallest chance of winning, in basis points.
    pub min_chance_bps: u32,
    pub seed: u64,
}

/// A draw as run and recorded.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Draw {
    pub id: u64,
    pub at: UnixTime,
    pub spec: DrawSpec,
    /// In member-id order, as shuffled from.
    pub eligible: Vec<MemberId>,
    pub winners: Vec<MemberId>,
    /// The published chance of each eligible member, in basis points.
    pub odds_bps: u32,
}

/// SplitMix64 (Steele, Lea and Flood), the draw's documented generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How many of `eligible` win `prizes` with at least `min_chance_bps`.
pub fn winner_count(eligible: usize, prizes: u32, min_chance_bps: u32) -> usize {
    let by_chance = (eligible as u128 * u128::from(min_chance_bps)).div_ceil(10_000) as usize;
    (prizes as usize).max(by_chance).min(eligible)
}

/// The winners among `eligible` (in member-id order) for `seed`.
pub fn pick(eligible: &[MemberId], count: usize, seed: u64) -> Vec<MemberId> {
    let mut order = eligible.to_vec();
    let mut rng = SplitMix64(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order.truncate(count);
    order
}

impl Loyalty<'_> {
    /// Members with a confirmed, not reversed purchase at `merchant` in
    /// `[from, to)`, in member-id order (live transactions only: history
    /// past the archive horizon does not count).
    pub fn buyers(
        &self,
        merchant: &MerchantId,
        from: UnixTime,
        to: UnixTime,
    ) -> Result<Vec<MemberId>> {
        let mut members = std::collections::BTreeSet::new();
        for item in self.core.store.scan::<Txn>(Table::Txns, b"") {
            let (_, t) = item?;
            if t.merchant != *merchant
                || t.state != TxnState::Confirmed
                || t.refund_of.is_some()
                || !(from <= t.created && t.created < to)
            {
                continue;
            }
            let Some(hash) = t.card else { continue };
            if let Some(m) = self
                .core
                .store
                .get::<Card>(Table::Cards, &hash.0)?
                .and_then(|c| c.member)
            {
                members.insert(m);
            }
        }
        Ok(members.into_iter().collect())
    }

    /// Runs a draw, credits the winners' prizes and records it. Blocked
    /// members are not eligible.
    pub fn run_draw(&self, spec: &DrawSpec, now: UnixTime) -> Result<Durable<Draw>> {
        if spec.to <= spec.from || spec.min_chance_bps > 10_000 {
            return Err(EngineError::invalid(
                "a draw needs from < to and a minimum chance of at most 10000 bps",
            ));
        }
        if spec.prize_points > super::MAX_POINTS_MOVED {
            return Err(EngineError::invalid(format!(
                "a prize is at most {} points",
                super::MAX_POINTS_MOVED
            )));
        }
        let mut eligible = Vec::new();
        for m in self.buyers(&spec.merchant, spec.from, spec.to)? {
            if Admin::new(self.core)
                .member(m)?
                .is_some_and(|m| m.status == Status::Active)
            {
                eligible.push(m);
            }
        }
        let count = winner_count(eligible.len(), spec.prizes, spec.min_chance_bps);
        let winners = pick(&eligible, count, spec.seed);
        let odds_bps = if eligible.is_empty() {
            0
        } else {
            (count * 10_000 / eligible.len()) as u32
        };
        let id = self.core.store.next_id()? + 1;
        let draw = Draw {
            id,
            at: now,
            spec: spec.clone(),
            eligible,
            winners,
            odds_bps,
        };
        // Under the caller's idempotency key, if any: a retry answers the
        // draw the first call ran, and credits no prize twice.
        self.caller.moves(&self.core.store, now, |tx| {
            if !tx.contains(Table::Merchants, spec.merchant.as_bytes())? {
                return abort(crate::admin::not_found("merchant", spec.merchant));
            }
            for w in &draw.winners {
                let Some(member) = tx.get::<Member>(Table::Members, &w.0.to_be_bytes())? else {
                    continue;
                };
                earn::grant(
                    tx,
                    now,
                    JournalKind::DrawPrize,
                    None,
                    (member.id, spec.merchant),
                    spec.prize_points,
                    0,
                )?;
                notice::enqueue(
                    tx,
                    now,
                    &member,
                    NoticeKind::DrawWon {
                        draw: id,
                        merchant: spec.merchant,
                        points: spec.prize_points,
                    },
                )?;
            }
            tx.put(Table::Draws, &id.to_be_bytes(), &draw)?;
            Ok(draw.clone())
        })
    }

    /// Every recorded draw, oldest first.
    pub fn draws(&self) -> Result<Vec<Draw>> {
        self.core.store.values::<Draw>(Table::Draws, b"")
    }

    /// Whether a recorded draw's winners follow from its seed and eligible
    /// list (the published algorithm, run again).
    pub fn verify_draw(&self, id: u64) -> Result<bool> {
        let Some(d) = self
            .core
            .store
            .get::<Draw>(Table::Draws, &id.to_be_bytes())?
        else {
            return Err(crate::admin::not_found("draw", id));
        };
        let count = winner_count(d.eligible.len(), d.spec.prizes, d.spec.min_chance_bps);
        Ok(pick(&d.eligible, count, d.spec.seed) == d.winners)
    }
}

impl crate::codec::Record for Draw {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_chance_raises_the_winners_and_the_eligible_cap_them() {
        assert_eq!(winner_count(100, 3, 2_500), 25);
        assert_eq!(winner_count(101, 3, 2_500), 26);
        assert_eq!(winner_count(4, 10, 2_500), 4);
        assert_eq!(winner_count(0, 10, 2_500), 0);
        assert_eq!(winner_count(10, 7, 0), 7);
    }

    #[test]
    fn the_same_seed_picks_the_same_winners_and_another_seed_may_not() {
        let eligible: Vec<MemberId> = (1..=50).map(MemberId).collect();
        let a = pick(&eligible, 10, 42);
        assert_eq!(a, pick(&eligible, 10, 42));
        assert_ne!(a, pick(&eligible, 10, 43));
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10, "no member wins twice");
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // First outputs for seed 0 of the reference implementation.
        let mut r = SplitMix64(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }
}
