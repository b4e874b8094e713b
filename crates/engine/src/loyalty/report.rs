//! Knowing the members: the loyalty report (points issued, redeemed,
//! taken back and expired; outstanding points and store-credit liability
//! by merchant; each discount campaign's discounts against the sales it
//! brought; the repeat-purchase rate) and RFM segments.
//!
//! **RFM.** Recency (days since the last purchase), frequency (purchases)
//! and monetary value (rials spent) of each member, scored 1 to 5 by
//! quintile among the members scored (5: most recent, most frequent,
//! highest spend; equal figures share the lower score). Across the network
//! the figures come from each member's standing over the tier window; at
//! one merchant, from the live transactions there (the archive horizon,
//! 30 days by default).

use std::collections::BTreeMap;

use clubswitch_wire::{MerchantId, ProcessingCode};
use serde::Serialize;

use super::Loyalty;
use super::{month_of_day, Standing};
use crate::admin::Admin;
use crate::archive::Archive;
use crate::error::Result;
use crate::model::{
    Account, AccountKey, JournalEntry, JournalKind, Member, MemberId, Tier, Txn, TxnState, UnixTime,
};
use crate::storage::Table;

/// One merchant's loyalty figures.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MerchantLoyalty {
    pub merchant: String,
    /// In the period: points earned (purchases, referrals, draws),
    /// converted into credit, and taken back by reversals and refunds.
    pub points_issued: u64,
    pub points_redeemed: u64,
    pub points_returned: u64,
    /// In the period: points past their validity.
    pub points_expired: u64,
    /// In the period: points members paid with at the till (profile 1.1),
    /// less those given back by reversals and refunds.
    pub points_at_till: i64,
    /// In the period: store credit from points and from cashback, credit
    /// taken back, and credit past its validity.
    pub credit_from_points: u64,
    pub cashback: u64,
    pub credit_returned: u64,
    pub credit_expired: u64,
    /// Now: points members hold, and store credit the merchant owes
    /// (granted, cashback, converted, not yet spent).
    pub points_outstanding: i64,
    pub store_credit_liability: i64,
}

/// A discount rule's effect in the period.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CampaignFigures {
    pub merchant: String,
    pub rule: u64,
    pub name: String,
    pub purchases: u64,
    pub sales: u64,
    pub discount: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoyaltyReport {
    pub from: i64,
    pub to: i64,
    pub merchants: Vec<MerchantLoyalty>,
    pub campaigns: Vec<CampaignFigures>,
    /// Members who ever bought, those who bought more than once, and the
    /// share, in basis points.
    pub buyers: u64,
    pub repeat_buyers: u64,
    pub repeat_rate_bps: u32,
}

/// One member's RFM figures and scores.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Segment {
    pub member: u64,
    pub name: String,
    pub phone: String,
    pub tier: Tier,
    pub groups: Vec<String>,
    pub recency_days: i64,
    pub frequency: u64,
    pub monetary: u64,
    pub r: u8,
    pub f: u8,
    pub m: u8,
    /// champions, loyal, new, at_risk, lost or regular.
    pub segment: &'static str,
}

/// Scores `values` 1..=5 by quintile, higher values higher.
fn quintiles(values: &[u64]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    values
        .iter()
        .map(|v| {
            let rank = sorted.partition_point(|x| x < v);
            (1 + rank * 5 / n.max(1)) as u8
        })
        .collect()
}

fn label(r: u8, f: u8) -> &'static str {
    match (r, f) {
        (4.., 4..) => "champions",
        (_, 4..) => "loyal",
        (4.., ..=1) => "new",
        (..=2, 3..) => "at_risk",
        (..=2, ..=2) => "lost",
        _ => "regular",
    }
}

fn add(slot: &mut u64, v: i64) {
    *slot = slot.saturating_add(v.unsigned_abs());
}

/// What members hold at one merchant now.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Held {
    /// Points not yet spent, converted or expired.
    pub points: i64,
    /// Store credit not yet spent or expired: the merchant's liability.
    pub store_credit: i64,
}

impl Loyalty<'_> {
    /// What members hold now at each merchant (or at `merchant` only):
    /// the sum of the members' points and store-credit balances. The same
    /// figures as the loyalty report's outstanding ones, read from the
    /// member accounts instead of the whole journal, so a dashboard costs
    /// what the members hold, not what history holds.
    pub fn held(&self, merchant: Option<&MerchantId>) -> Result<BTreeMap<MerchantId, Held>> {
        let mut by: BTreeMap<MerchantId, Held> = BTreeMap::new();
        for tag in [b"Q", b"S"] {
            for item in self.core.store.scan::<Account>(Table::Accounts, tag) {
                let (key, account) = item?;
                let (m, points) = match AccountKey::from_key(&key) {
                    Some(AccountKey::Points { merchant: m, .. }) => (m, true),
                    Some(AccountKey::Store { merchant: m, .. }) => (m, false),
                    _ => continue,
                };
                if merchant.is_some_and(|only| *only != m) {
                    continue;
                }
                let slot = by.entry(m).or_default();
                if points {
                    slot.points += account.balance;
                } else {
                    slot.store_credit += account.balance;
                }
            }
        }
        Ok(by)
    }

    /// The loyalty report for `[from, to)` (live journal: what is archived
    /// counts in the outstanding figures only).
    pub fn loyalty_report(&self, from: UnixTime, to: UnixTime) -> Result<LoyaltyReport> {
        let mut by: BTreeMap<MerchantId, MerchantLoyalty> = BTreeMap::new();
        for m in Admin::new(self.core).merchants()? {
            by.entry(m.id).or_default();
        }
        // Outstanding: every posting ever, archived ones by their sums.
        let outstanding = |r: &mut MerchantLoyalty, points: bool, v: i64| {
            if points {
                r.points_outstanding -= v;
            } else {
                r.store_credit_liability -= v;
            }
        };
        for (_, (key, v)) in Archive::new(self.core).archived_sums()? {
            match key {
                AccountKey::PointsIssued(m) => outstanding(by.entry(m).or_default(), true, v),
                AccountKey::StoreIssued(m) => outstanding(by.entry(m).or_default(), false, v),
                _ => {}
            }
        }
        for item in self.core.store.scan::<JournalEntry>(Table::Journal, b"") {
            let (_, e) = item?;
            let in_period = from <= e.at && e.at < to;
            for (key, v) in &e.postings {
                let (m, points) = match key {
                    AccountKey::PointsIssued(m) => (m, true),
                    AccountKey::StoreIssued(m) => (m, false),
                    _ => continue,
                };
                let r = by.entry(*m).or_default();
                outstanding(r, points, *v);
                if !in_period {
                    continue;
                }
                // A purchase's entry carries what it earned: points, and
                // cashback as the merchant's credit issued (negative; credit
                // spent in a store purchase comes back positive).
                match (e.kind, points) {
                    // Paid at the till: the points come back to the
                    // merchant (positive); a reversal or refund gives them
                    // back to the member (negative).
                    (JournalKind::Purchase, true) if *v > 0 => r.points_at_till += *v,
                    (
                        JournalKind::Reversal | JournalKind::Refund | JournalKind::RefundReversal,
                        true,
                    ) => r.points_at_till += *v,
                    (
                        JournalKind::Purchase
                        | JournalKind::Loyalty
                        | JournalKind::ReferralBonus
                        | JournalKind::DrawPrize,
                        true,
                    ) => add(&mut r.points_issued, *v),
                    // Granted by hand (negative: issued) or taken back.
                    (JournalKind::PointsGrant, true) if *v < 0 => add(&mut r.points_issued, *v),
                    (JournalKind::PointsGrant, true) => add(&mut r.points_returned, *v),
                    (JournalKind::Purchase | JournalKind::Loyalty, false) if *v < 0 => {
                        add(&mut r.cashback, *v)
                    }
                    (JournalKind::PointsConversion, true) => add(&mut r.points_redeemed, *v),
                    (JournalKind::PointsConversion, false) => add(&mut r.credit_from_points, *v),
                    (JournalKind::LoyaltyReturn, true) => add(&mut r.points_returned, *v),
                    (JournalKind::LoyaltyReturn, false) => add(&mut r.credit_returned, *v),
                    (JournalKind::Expiry, true) => add(&mut r.points_expired, *v),
                    (JournalKind::Expiry, false) => add(&mut r.credit_expired, *v),
                    _ => {}
                }
            }
        }
        for (m, r) in by.iter_mut() {
            r.merchant = m.as_str().to_owned();
        }

        let mut campaigns: BTreeMap<(MerchantId, u64), CampaignFigures> = BTreeMap::new();
        for item in self.core.store.scan::<Txn>(Table::Txns, b"") {
            let (_, t) = item?;
            let Some(rule) = t.rule else { continue };
            if t.code != ProcessingCode::BankDiscount
                || t.state != TxnState::Confirmed
                || !(from <= t.created && t.created < to)
            {
                continue;
            }
            let c = campaigns.entry((t.merchant, rule)).or_default();
            c.purchases += 1;
            c.sales += t.final_amount;
            c.discount += t.discount;
        }
        for ((m, rule), c) in campaigns.iter_mut() {
            c.merchant = m.as_str().to_owned();
            c.rule = *rule;
            c.name = Admin::new(self.core)
                .rules(m)?
                .into_iter()
                .find(|r| r.rule.id == *rule)
                .map(|r| r.rule.name)
                .unwrap_or_default();
        }

        let (mut buyers, mut repeat) = (0u64, 0u64);
        for item in self.core.store.scan::<Standing>(Table::Standing, b"") {
            let (_, s) = item?;
            buyers += u64::from(s.purchases > 0);
            repeat += u64::from(s.purchases > 1);
        }
        Ok(LoyaltyReport {
            from: from.0,
            to: to.0,
            merchants: by.into_values().collect(),
            campaigns: campaigns.into_values().collect(),
            buyers,
            repeat_buyers: repeat,
            repeat_rate_bps: (repeat * 10_000).checked_div(buyers).unwrap_or(0) as u32,
        })
    }

    /// RFM segments at `now`, across the network or at one merchant,
    /// optionally only of members in `group`. Members in member-id order.
    pub fn segments(
        &self,
        merchant: Option<&MerchantId>,
        group: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<Segment>> {
        // member → (last purchase, purchases, spend)
        let mut figures: BTreeMap<MemberId, (UnixTime, u64, u64)> = BTreeMap::new();
        match merchant {
            None => {
                let cfg = &self.core.cfg.loyalty;
                let month = month_of_day(now.local_day(self.core.cfg.utc_offset_secs));
                let from = month - i64::from(cfg.window_months) + 1;
                for item in self.core.store.scan::<Standing>(Table::Standing, b"") {
                    let (key, s) = item?;
                    let Some(last) = s.last_purchase else {
                        continue;
                    };
                    let Ok(id) = <[u8; 8]>::try_from(key.as_slice()) else {
                        continue;
                    };
                    let in_window = s
                        .months
                        .iter()
                        .filter(|m| (from..=month).contains(&m.month));
                    let (f, m) = in_window.fold((0u64, 0u64), |(f, m), x| {
                        (f + u64::from(x.purchases), m.saturating_add(x.spend))
                    });
                    figures.insert(MemberId(u64::from_be_bytes(id)), (last, f, m));
                }
            }
            Some(merchant) => {
                // A year of what each member did here, from the rollups'
                // visits: no history is scanned, and archived purchases
                // still count.
                let offset = self.core.cfg.utc_offset_secs;
                let month = crate::rollup::month_of(now.local_day(offset));
                for (member, v) in crate::rollup::visits(&self.core.store, merchant)? {
                    let (f, m) = v
                        .months
                        .iter()
                        .filter(|x| x.0 > month - 12 && x.0 <= month)
                        .fold((0u64, 0u64), |(f, m), x| {
                            (f + u64::from(x.1), m.saturating_add(x.2))
                        });
                    if f == 0 {
                        continue;
                    }
                    let last = UnixTime(v.last_day * 86_400 - offset);
                    figures.insert(member, (last, f, m));
                }
            }
        }
        let mut members: Vec<(Member, (UnixTime, u64, u64))> = Vec::new();
        for (id, f) in figures {
            let Some(m) = self
                .core
                .store
                .get::<Member>(Table::Members, &id.0.to_be_bytes())?
            else {
                continue;
            };
            if group.is_some_and(|g| !m.groups.iter().any(|x| x == g)) {
                continue;
            }
            members.push((m, f));
        }
        // Recency scores on "how recent": the later the last purchase, the
        // higher.
        let r = quintiles(
            &members
                .iter()
                .map(|(_, f)| f.0 .0.max(0) as u64)
                .collect::<Vec<_>>(),
        );
        let f = quintiles(&members.iter().map(|(_, f)| f.1).collect::<Vec<_>>());
        let m = quintiles(&members.iter().map(|(_, f)| f.2).collect::<Vec<_>>());
        Ok(members
            .into_iter()
            .enumerate()
            .map(|(i, (member, (last, freq, spend)))| Segment {
                member: member.id.0,
                name: member.name,
                phone: member.phone,
                tier: member.tier,
                groups: member.groups,
                recency_days: (now.0 - last.0).max(0) / 86_400,
                frequency: freq,
                monetary: spend,
                r: r[i],
                f: f[i],
                m: m[i],
                segment: label(r[i], f[i]),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_score_one_to_five_and_ties_share_the_lower_score() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(quintiles(&v), vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        assert_eq!(quintiles(&[7, 7, 7]), vec![1, 1, 1]);
        assert_eq!(quintiles(&[]), Vec::<u8>::new());
    }

    #[test]
    fn labels_follow_recency_and_frequency() {
        assert_eq!(label(5, 5), "champions");
        assert_eq!(label(2, 5), "loyal");
        assert_eq!(label(5, 1), "new");
        assert_eq!(label(1, 3), "at_risk");
        assert_eq!(label(1, 1), "lost");
        assert_eq!(label(3, 3), "regular");
    }
}
