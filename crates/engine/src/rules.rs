//! Merchants' discount rules and fees.
//!
//! **Choosing among rules.** Every active rule of the merchant whose
//! conditions hold (validity window, day of week, hours, minimum purchase, BIN
//! range, member group, tier) and whose per-card allowance and campaign budget
//! still have room is a candidate. The candidate giving the largest discount
//! wins; on a tie, the rule with the lowest id (the oldest) wins. Rules do not
//! stack.
//!
//! **Rounding.** Percentages are in basis points and rounded down to the rial;
//! a fixed amount is added; the sum is limited by the rule's cap and by the
//! purchase amount. The fee is the merchant's basis points of the gross or
//! discounted amount, rounded down. Rounding is always down, in the member's
//! and merchant's favour, and nothing else is ever rounded.

use serde::{Deserialize, Serialize};

use crate::model::{FeeBase, Merchant, Tier, UnixTime};

/// A range of card-number prefixes: cards whose first `digits` digits, read
/// as a number, lie in `from..=to`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BinRange {
    pub digits: u8,
    pub from: u64,
    pub to: u64,
}

impl BinRange {
    pub fn contains(&self, pan: &[u8]) -> bool {
        let n = usize::from(self.digits).min(pan.len());
        let prefix = pan[..n].iter().fold(0u64, |acc, d| {
            acc * 10 + u64::from(d.wrapping_sub(b'0') % 10)
        });
        (self.from..=self.to).contains(&prefix)
    }
}

/// A discount rule of one merchant. An answer carries every field (those
/// not set as `null`), which is what its schema's `required` says.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiscountRule {
    pub id: u64,
    pub name: String,
    pub active: bool,
    /// Percentage in basis points (1000 = 10%).
    pub percent_bps: u32,
    /// Fixed amount added to the percentage.
    pub fixed: u64,
    /// Largest discount of one purchase.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cap: Option<u64>,
    pub min_purchase: u64,
    /// Card prefixes the rule applies to; empty means all.
    pub bins: Vec<BinRange>,
    /// Member groups the rule applies to; empty means everyone.
    pub groups: Vec<String>,
    /// Tiers the rule applies to; empty means every tier.
    pub tiers: Vec<Tier>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub valid_from: Option<UnixTime>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub valid_to: Option<UnixTime>,
    /// Days of the week, bit 0 Monday .. bit 6 Sunday; 0 means every day.
    pub days: u8,
    /// Local hours `[from, to)`; `null` (`None`) means all day.
    #[cfg_attr(feature = "openapi", schema(required = true, value_type = Option<Vec<u8>>, min_items = 2, max_items = 2))]
    pub hours: Option<(u8, u8)>,
    /// Per card and local day: most discounted purchases.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub daily_count: Option<u32>,
    /// Per card and local day: most discount in rials.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub daily_amount: Option<u64>,
    /// Campaign budget: total discount the rule may give.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub budget: Option<u64>,
}

impl Default for DiscountRule {
    fn default() -> Self {
        DiscountRule {
            id: 0,
            name: String::new(),
            active: true,
            percent_bps: 0,
            fixed: 0,
            cap: None,
            min_purchase: 0,
            bins: Vec::new(),
            groups: Vec::new(),
            tiers: Vec::new(),
            valid_from: None,
            valid_to: None,
            days: 0,
            hours: None,
            daily_count: None,
            daily_amount: None,
            budget: None,
        }
    }
}

/// A rule as stored: the rule and, for a rule with a budget, its campaign's
/// use so far (rules without a budget keep no counts).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuleRecord {
    pub rule: DiscountRule,
    /// Discount given by confirmed purchases.
    pub spent: u64,
    /// Discount held by pending lookups.
    pub held: u64,
}

impl RuleRecord {
    pub fn budget_left(&self) -> Option<u64> {
        self.rule
            .budget
            .map(|b| b.saturating_sub(self.spent.saturating_add(self.held)))
    }
}

/// Per card, rule and local day: what the card has used of a rule's
/// allowance (pending holds included).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct AllowanceUse {
    pub count: u32,
    pub amount: u64,
}

/// What the rules look at.
pub struct Context<'a> {
    pub amount: u64,
    pub pan: &'a [u8],
    pub tier: Option<Tier>,
    pub groups: &'a [String],
    pub now: UnixTime,
    /// Seconds east of UTC for days and hours.
    pub utc_offset: i64,
}

impl DiscountRule {
    /// The discount this rule gives on `amount`, ignoring its conditions.
    pub fn discount_on(&self, amount: u64) -> u64 {
        let pct = u128::from(amount) * u128::from(self.percent_bps) / 10_000;
        let d = pct.saturating_add(u128::from(self.fixed));
        let d = self.cap.map_or(d, |c| d.min(u128::from(c)));
        d.min(u128::from(amount)) as u64
    }

    /// Whether the rule's own conditions hold (not its allowance or budget).
    pub fn applies(&self, cx: &Context<'_>) -> bool {
        if !self.active || cx.amount < self.min_purchase || cx.amount == 0 {
            return false;
        }
        if self.valid_from.is_some_and(|f| cx.now < f) || self.valid_to.is_some_and(|t| cx.now >= t)
        {
            return false;
        }
        let local = cx.now.0 + cx.utc_offset;
        if self.days != 0 {
            // 1970-01-01 was a Thursday (Monday = 0).
            let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7);
            if self.days & (1 << weekday) == 0 {
                return false;
            }
        }
        if let Some((from, to)) = self.hours {
            let hour = local.rem_euclid(86_400) / 3600;
            let (from, to) = (i64::from(from), i64::from(to));
            let inside = if from <= to {
                hour >= from && hour < to
            } else {
                hour >= from || hour < to
            };
            if !inside {
                return false;
            }
        }
        if !self.bins.is_empty() && !self.bins.iter().any(|b| b.contains(cx.pan)) {
            return false;
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|g| cx.groups.contains(g)) {
            return false;
        }
        if !self.tiers.is_empty() && !cx.tier.is_some_and(|t| self.tiers.contains(&t)) {
            return false;
        }
        true
    }

    /// Whether the card's allowance for today has room for `discount`.
    pub fn allowance_ok(&self, used: AllowanceUse, discount: u64) -> bool {
        self.daily_count.is_none_or(|c| used.count < c)
            && self
                .daily_amount
                .is_none_or(|a| used.amount.saturating_add(discount) <= a)
    }
}

/// Picks the winning rule: largest discount, then lowest id. `allowance`
/// gives the card's use of a rule today.
pub fn choose<'a>(
    rules: &'a [RuleRecord],
    cx: &Context<'_>,
    mut allowance: impl FnMut(&DiscountRule) -> AllowanceUse,
) -> Option<(&'a RuleRecord, u64)> {
    let mut best: Option<(&RuleRecord, u64)> = None;
    for r in rules {
        if !r.rule.applies(cx) {
            continue;
        }
        let d = r.rule.discount_on(cx.amount);
        if d == 0 || r.budget_left().is_some_and(|left| left < d) {
            continue;
        }
        if !r.rule.allowance_ok(allowance(&r.rule), d) {
            continue;
        }
        let better = match best {
            None => true,
            Some((b, bd)) => d > bd || (d == bd && r.rule.id < b.rule.id),
        };
        if better {
            best = Some((r, d));
        }
    }
    best
}

/// The merchant's fee on a purchase of `amount` with `discount`.
pub fn fee(merchant: &Merchant, amount: u64, discount: u64) -> u64 {
    let base = match merchant.fee_base {
        FeeBase::Gross => amount,
        FeeBase::Discounted => amount.saturating_sub(discount),
    };
    (u128::from(base) * u128::from(merchant.fee_bps) / 10_000) as u64
}

impl crate::codec::Record for RuleRecord {}
impl crate::codec::Record for AllowanceUse {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Offers, Status};

    fn cx(amount: u64) -> Context<'static> {
        Context {
            amount,
            pan: b"6037991234567890",
            tier: Some(Tier::Silver),
            groups: &[],
            // 2026-11-23 10:00 UTC, a Monday.
            now: UnixTime(1_795_428_000),
            utc_offset: 0,
        }
    }

    fn rec(rule: DiscountRule) -> RuleRecord {
        RuleRecord {
            rule,
            spent: 0,
            held: 0,
        }
    }

    #[test]
    fn percentage_fixed_and_cap_round_down() {
        let r = DiscountRule {
            percent_bps: 1250,
            fixed: 1000,
            cap: Some(50_000),
            ..Default::default()
        };
        assert_eq!(r.discount_on(99_999), 12_499 + 1000);
        assert_eq!(r.discount_on(1_000_000), 50_000);
        let all = DiscountRule {
            fixed: 5000,
            ..Default::default()
        };
        assert_eq!(all.discount_on(3000), 3000, "never more than the amount");
    }

    #[test]
    fn minimum_purchase_and_validity_window() {
        let r = DiscountRule {
            percent_bps: 1000,
            min_purchase: 100_000,
            ..Default::default()
        };
        assert!(!r.applies(&cx(99_999)));
        assert!(r.applies(&cx(100_000)));
        let r = DiscountRule {
            percent_bps: 1000,
            valid_to: Some(UnixTime(1_795_428_000)),
            ..Default::default()
        };
        assert!(!r.applies(&cx(1000)), "valid_to is exclusive");
        let r = DiscountRule {
            percent_bps: 1000,
            valid_from: Some(UnixTime(1_795_428_001)),
            ..Default::default()
        };
        assert!(!r.applies(&cx(1000)));
    }

    #[test]
    fn days_and_hours() {
        let monday = DiscountRule {
            percent_bps: 1,
            days: 0b000_0001,
            ..Default::default()
        };
        assert!(monday.applies(&cx(1000)));
        let friday = DiscountRule {
            percent_bps: 1,
            days: 0b001_0000,
            ..Default::default()
        };
        assert!(!friday.applies(&cx(1000)));
        let morning = DiscountRule {
            percent_bps: 1,
            hours: Some((8, 12)),
            ..Default::default()
        };
        assert!(morning.applies(&cx(1000)));
        let night = DiscountRule {
            percent_bps: 1,
            hours: Some((22, 6)),
            ..Default::default()
        };
        assert!(!night.applies(&cx(1000)));
        let mut c = cx(1000);
        c.utc_offset = 14 * 3600; // 24:00 local
        assert!(night.applies(&c), "wraps past midnight");
    }

    #[test]
    fn bin_group_and_tier() {
        let bin = DiscountRule {
            percent_bps: 1,
            bins: vec![BinRange {
                digits: 6,
                from: 603_799,
                to: 603_799,
            }],
            ..Default::default()
        };
        assert!(bin.applies(&cx(1000)));
        let other = DiscountRule {
            bins: vec![BinRange {
                digits: 6,
                from: 610_433,
                to: 610_433,
            }],
            ..bin.clone()
        };
        assert!(!other.applies(&cx(1000)));
        let gold = DiscountRule {
            percent_bps: 1,
            tiers: vec![Tier::Gold, Tier::Platinum],
            ..Default::default()
        };
        assert!(!gold.applies(&cx(1000)));
        let staff = DiscountRule {
            percent_bps: 1,
            groups: vec!["staff".into()],
            ..Default::default()
        };
        assert!(!staff.applies(&cx(1000)));
        let groups = vec!["staff".to_string()];
        let c = Context {
            groups: &groups,
            ..cx(1000)
        };
        assert!(staff.applies(&c));
    }

    #[test]
    fn largest_discount_wins_and_ties_go_to_the_oldest_rule() {
        let rules = vec![
            rec(DiscountRule {
                id: 3,
                percent_bps: 1000,
                ..Default::default()
            }),
            rec(DiscountRule {
                id: 1,
                fixed: 10_000,
                ..Default::default()
            }),
            rec(DiscountRule {
                id: 2,
                percent_bps: 500,
                ..Default::default()
            }),
        ];
        let (r, d) = choose(&rules, &cx(100_000), |_| AllowanceUse::default()).unwrap();
        assert_eq!((r.rule.id, d), (1, 10_000));
        let (r, d) = choose(&rules, &cx(200_000), |_| AllowanceUse::default()).unwrap();
        assert_eq!((r.rule.id, d), (3, 20_000));
    }

    #[test]
    fn exhausted_budget_or_allowance_skips_the_rule() {
        let mut big = rec(DiscountRule {
            id: 1,
            percent_bps: 2000,
            budget: Some(100_000),
            ..Default::default()
        });
        big.spent = 90_000;
        let small = rec(DiscountRule {
            id: 2,
            percent_bps: 500,
            daily_count: Some(1),
            ..Default::default()
        });
        let rules = vec![big, small];
        let (r, _) = choose(&rules, &cx(100_000), |_| AllowanceUse::default()).unwrap();
        assert_eq!(r.rule.id, 2, "20 000 does not fit the 10 000 left");
        let used = AllowanceUse {
            count: 1,
            amount: 0,
        };
        assert!(choose(&rules, &cx(100_000), |_| used).is_none());
    }

    #[test]
    fn fee_on_gross_or_discounted() {
        let mut m = Merchant {
            id: "MERCHANT0000001".parse().unwrap(),
            name: String::new(),
            status: Status::Active,
            fee_bps: 100,
            fee_base: FeeBase::Gross,
            settlement_account: String::new(),
            offers: Offers::default(),
            max_amount: None,
        };
        assert_eq!(fee(&m, 500_000, 50_000), 5000);
        m.fee_base = FeeBase::Discounted;
        assert_eq!(fee(&m, 500_000, 50_000), 4500);
        assert_eq!(fee(&m, 99, 0), 0, "rounded down");
    }
}
