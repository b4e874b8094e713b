//! Loyalty: points, cashback, tiers, VIP by commitment and referrals.
//!
//! **What moves.** Points are value like any other, in their own unit: a
//! member's points at a merchant are the customer account
//! [`AccountKey::Points`], balanced by [`AccountKey::PointsIssued`] of the
//! merchant, and every conversion and take-back is one balanced journal
//! entry; what a purchase earns is posted in the purchase's own entry.
//! Cashback and converted points become store credit at the merchant
//! ([`AccountKey::Store`] against [`AccountKey::StoreIssued`]), so
//! they are spent with a store purchase and carried by the merchant like
//! any other credit it granted.
//!
//! [`AccountKey::Points`]: crate::model::AccountKey::Points
//! [`AccountKey::PointsIssued`]: crate::model::AccountKey::PointsIssued
//! [`AccountKey::Store`]: crate::model::AccountKey::Store
//! [`AccountKey::StoreIssued`]: crate::model::AccountKey::StoreIssued
//!
//! **When.** Earnings are made final at confirm, in the confirm's own
//! transaction (never at authorize, which stays as fast as without a
//! programme); a reversal takes them back in full and a refund in
//! proportion, the last refund taking whatever is left. Points already
//! converted are taken back from the store credit they became, at the
//! programme's rate when they were earned (kept with the purchase: a
//! member's conversions pool points of many purchases and are not traced
//! to them, so a rate changed between earning and converting takes back
//! more or less credit than the conversion gave); what the member has
//! already spent is written off
//! to the merchant and shown on what the purchase [`Earned`] (kept on the
//! transaction itself, so a confirm that earns writes no more records than
//! one that does not, but for the points and credit balances).
//!
//! **Tiers.** A member's tier follows their rolling spend (or points
//! earned) over the last months, across the network. A purchase that
//! crosses a threshold upgrades at once; downgrades wait for the period
//! review at the start of each month. Reversing the purchase that caused an
//! upgrade undoes that upgrade (a member cannot buy a tier and hand the
//! goods back).
//!
//! **Rounding.** Points and cashback are rounded down, like discounts.

mod coalition;
mod daily;
mod draw;
mod earn;
mod reminders;
mod report;
mod review;

pub(crate) use coalition::{counter as store_counter, store_account};
pub use coalition::{Coalition, Owed};
pub use daily::{Birthday, DailyRun, Expiring};
pub use draw::{Draw, DrawSpec};
pub(crate) use earn::{balance_block, earning, on_refund_reversed, program, take_back, Share};
pub use report::{CampaignFigures, Held, LoyaltyReport, MerchantLoyalty, Segment};
pub use review::{ReferralCode, Review};

use serde::{Deserialize, Serialize};

use crate::config::{LoyaltyConfig, TierBasis};
use crate::core::Core;
use crate::idempotency::{Caller, Idempotency};
use crate::model::{MemberId, Tier, UnixTime};

/// Loyalty programmes, members' standing and points, the daily pass, draws,
/// coalitions and reports.
pub struct Loyalty<'a> {
    core: &'a Core,
    /// On whose behalf and under which key its money moves run.
    caller: Caller,
}

impl<'a> Loyalty<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Loyalty {
            core,
            caller: Caller::default(),
        }
    }

    /// These calls under the caller's idempotency key: a call that moves
    /// points or credit ([`Loyalty::grant_points`],
    /// [`Loyalty::convert_points`]) does so at most once per key and
    /// answers a repeat as the first (see [`crate::idempotency`]).
    pub fn keyed(mut self, idem: Option<Idempotency>) -> Self {
        self.caller.idem = idem;
        self
    }

    /// These calls on behalf of `actor` (a user, a cashier, a payment
    /// gateway): the journal entries of the money they move name it.
    pub fn by(mut self, actor: Option<String>) -> Self {
        self.caller.actor = actor;
        self
    }
}

/// Basis points of one: a multiplier of 10,000 leaves a figure unchanged.
pub const ONE: u32 = 10_000;

/// The most points one grant, take-back or draw prize moves: twelve digits,
/// as the largest amount on the wire. Far above any real grant, and far
/// enough below `i64::MAX` that balances and issued totals never overflow
/// by adding it.
pub const MAX_POINTS_MOVED: u64 = 999_999_999_999;

/// A merchant's loyalty programme (stored by merchant id). In JSON every
/// field may be left out for its default; an answer carries every field,
/// which is what its schema's `required` says.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Program {
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub active: bool,
    /// Points earned per `per_amount` rials of a confirmed purchase.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub points: u64,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub per_amount: u64,
    /// Multiplier per tier, bronze first, in basis points.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, min_items = 4, max_items = 4)
    )]
    pub tier_bps: [u32; 4],
    /// Extra multiplier while a member is VIP, in basis points.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub vip_bps: u32,
    /// Campaign windows with their own multiplier; the largest applies.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub campaigns: Vec<Campaign>,
    /// Whether purchases paid with store credit earn too (they do not by
    /// default: credit the merchant granted should not breed more).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub earn_on_store: bool,
    /// Store credit, in rials, one point turns into; 0: no conversion.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub credit_per_point: u64,
    /// Convert automatically, in whole multiples of this many points, once
    /// the balance reaches it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub auto_convert_at: Option<u64>,
    /// Cashback as store credit, basis points of the amount charged.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cashback_bps: u32,
    /// Points a referral earns the referrer and the newcomer each, paid at
    /// the newcomer's first confirmed purchase at this merchant.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub referral_points: u64,
    /// Local days points and store credit stay valid after the day they
    /// were granted (expiring oldest first); `null` (`None`): they do not
    /// expire.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub points_valid_days: Option<u32>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub credit_valid_days: Option<u32>,
    /// Warn a member this many days before points or credit expire.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expiry_warn_days: u32,
    /// Whether members may pay with their points at the till (009300,
    /// profile 1.1), and at what rate; `null` (`None`): they may not
    /// (answered 57).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub till: Option<Till>,
    /// Remind a member this many days after their last purchase here (a
    /// marketing message: not to members who opted out); `null`: never
    /// (format version 6).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub repurchase_days: Option<u32>,
}

/// Paying with points at the till.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Till {
    /// Rials one point pays for: a purchase of DE 4 rials needs DE 4 /
    /// this, rounded up, points.
    pub rials_per_point: u64,
    /// The fewest points one purchase may pay with (a smaller purchase is
    /// answered 13); 0 or 1: no minimum.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub min_points: u64,
}

impl Till {
    /// The points that pay for `rials`: rounded up, so a member never pays
    /// less than the programme's rate.
    pub fn points_for(&self, rials: u64) -> u64 {
        rials.div_ceil(self.rials_per_point.max(1))
    }
}

impl Default for Program {
    fn default() -> Self {
        Program {
            active: true,
            points: 1,
            per_amount: 10_000,
            tier_bps: [ONE, ONE, ONE, ONE],
            vip_bps: ONE,
            campaigns: Vec::new(),
            earn_on_store: false,
            credit_per_point: 0,
            auto_convert_at: None,
            cashback_bps: 0,
            referral_points: 0,
            points_valid_days: None,
            credit_valid_days: None,
            expiry_warn_days: 7,
            till: None,
            repurchase_days: None,
        }
    }
}

/// A window in which points earn a multiplier.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    pub name: String,
    pub from: UnixTime,
    pub to: UnixTime,
    pub multiplier_bps: u32,
}

impl Program {
    /// Checks what the engine relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.per_amount == 0 {
            return Err("per_amount must be positive".into());
        }
        if self.cashback_bps > ONE {
            return Err("cashback_bps is at most 10000 (100%)".into());
        }
        if self.auto_convert_at == Some(0) {
            return Err("auto_convert_at must be positive".into());
        }
        if self.auto_convert_at.is_some() && self.credit_per_point == 0 {
            return Err("auto_convert_at needs credit_per_point".into());
        }
        if self.points_valid_days == Some(0) || self.credit_valid_days == Some(0) {
            return Err("a validity must be at least one day".into());
        }
        if self.expiry_warn_days > 366 {
            return Err("expiry_warn_days is at most 366".into());
        }
        if self.till.is_some_and(|t| t.rials_per_point == 0) {
            return Err("till.rials_per_point must be positive".into());
        }
        if self.campaigns.iter().any(|c| c.to <= c.from) {
            return Err("a campaign must end after it starts".into());
        }
        Ok(())
    }

    /// The multiplier, in basis points, for a member of `tier` (VIP or not)
    /// purchasing at `at`.
    pub fn multiplier_bps(&self, tier: Tier, vip: bool, at: UnixTime) -> u64 {
        let campaign = self
            .campaigns
            .iter()
            .filter(|c| c.from <= at && at < c.to)
            .map(|c| c.multiplier_bps)
            .max()
            .unwrap_or(ONE);
        let mut m =
            u128::from(self.tier_bps[tier as usize]) * u128::from(campaign) / u128::from(ONE);
        if vip {
            m = m * u128::from(self.vip_bps) / u128::from(ONE);
        }
        u64::try_from(m).unwrap_or(u64::MAX)
    }

    /// Points earned on `amount` rials.
    pub fn points_on(&self, amount: u64, tier: Tier, vip: bool, at: UnixTime) -> u64 {
        let base =
            u128::from(amount) / u128::from(self.per_amount.max(1)) * u128::from(self.points);
        let p = base * u128::from(self.multiplier_bps(tier, vip, at)) / u128::from(ONE);
        u64::try_from(p).unwrap_or(u64::MAX)
    }

    /// Cashback on `amount` rials.
    pub fn cashback_on(&self, amount: u64) -> u64 {
        (u128::from(amount) * u128::from(self.cashback_bps) / u128::from(ONE)) as u64
    }
}

/// A member's activity in one local calendar month.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct MonthActivity {
    /// Months since year 0 (year × 12 + month − 1).
    pub month: i64,
    pub spend: u64,
    pub points: u64,
    pub purchases: u32,
}

/// A member's loyalty standing across the network.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Standing {
    /// The months of the rolling window (and the VIP look-back), oldest
    /// first; months with no purchase are absent.
    pub months: Vec<MonthActivity>,
    /// VIP through the month before this one (a month index).
    pub vip_until: Option<i64>,
    /// Who referred this member.
    pub referred_by: Option<MemberId>,
    /// Whether the referral bonus has been paid.
    pub referral_paid: bool,
    /// Confirmed purchases, ever, and when the last one was.
    pub purchases: u64,
    pub last_purchase: Option<UnixTime>,
}

impl Standing {
    /// The rolling figure the tier is decided on, for the window ending
    /// with `month`.
    pub fn rolling(&self, cfg: &LoyaltyConfig, month: i64) -> u64 {
        let from = month - i64::from(cfg.window_months) + 1;
        self.months
            .iter()
            .filter(|m| (from..=month).contains(&m.month))
            .map(|m| match cfg.tier_basis {
                TierBasis::Spend => m.spend,
                TierBasis::Points => m.points,
            })
            .fold(0u64, u64::saturating_add)
    }

    pub fn vip(&self, month: i64) -> bool {
        self.vip_until.is_some_and(|u| month < u)
    }

    /// The activity record of `month`, created in order if absent.
    pub(crate) fn month_mut(&mut self, month: i64) -> &mut MonthActivity {
        let i = match self.months.binary_search_by_key(&month, |m| m.month) {
            Ok(i) => i,
            Err(i) => {
                self.months.insert(
                    i,
                    MonthActivity {
                        month,
                        ..MonthActivity::default()
                    },
                );
                i
            }
        };
        &mut self.months[i]
    }

    /// Forgets months no window or look-back before `month` needs: the
    /// review of `month` reads the window and the look-back that end with
    /// the month before it, and a purchase in `month` may trim before the
    /// review reaches its member, so one more month is kept.
    pub(crate) fn trim(&mut self, cfg: &LoyaltyConfig, month: i64) {
        let keep = i64::from(cfg.window_months.max(cfg.vip_months));
        self.months.retain(|m| m.month >= month - keep);
    }
}

/// Local month index (year × 12 + month − 1) of local day `day`.
pub fn month_of_day(day: i64) -> i64 {
    let (y, m, _) = clubswitch_wire::fields::civil_from_days(day);
    y * 12 + i64::from(m) - 1
}

impl crate::codec::Record for Program {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1 | 2 => crate::codec::with_tail(body, &(None::<Till>, None::<u32>)),
            3..=5 => crate::codec::with_tail(body, &None::<u32>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}
impl crate::codec::Record for Standing {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_down_per_whole_unit_and_multiply_by_tier_campaign_and_vip() {
        let p = Program {
            points: 2,
            per_amount: 10_000,
            tier_bps: [ONE, 12_500, 15_000, 20_000],
            vip_bps: 15_000,
            campaigns: vec![Campaign {
                name: "double".into(),
                from: UnixTime(100),
                to: UnixTime(200),
                multiplier_bps: 20_000,
            }],
            ..Program::default()
        };
        assert_eq!(p.points_on(19_999, Tier::Bronze, false, UnixTime(0)), 2);
        assert_eq!(p.points_on(100_000, Tier::Silver, false, UnixTime(0)), 25);
        assert_eq!(p.points_on(100_000, Tier::Silver, false, UnixTime(150)), 50);
        assert_eq!(p.points_on(100_000, Tier::Gold, true, UnixTime(200)), 45);
    }

    #[test]
    fn tiers_follow_thresholds_and_the_rolling_window_drops_old_months() {
        let cfg = LoyaltyConfig {
            tier_thresholds: [100, 200, 300],
            window_months: 3,
            vip_months: 3,
            ..LoyaltyConfig::default()
        };
        assert_eq!(cfg.tier_for(99), Tier::Bronze);
        assert_eq!(cfg.tier_for(200), Tier::Gold);
        let mut s = Standing::default();
        s.month_mut(10).spend = 150;
        s.month_mut(8).spend = 100;
        s.month_mut(7).spend = 1_000;
        assert_eq!(s.rolling(&cfg, 10), 250);
        assert_eq!(s.months.first().map(|m| m.month), Some(7));
        // A purchase in month 10 trims before the review of month 10,
        // which reads months 7 to 9: they stay.
        s.trim(&cfg, 10);
        assert_eq!(s.rolling(&cfg, 9), 1_100);
        s.trim(&cfg, 11);
        assert_eq!(s.months.len(), 2);
    }
}
