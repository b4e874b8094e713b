//! The engine's settings, taken from the switch's configuration at start.

use clubswitch_wire::Currency;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::model::Tier;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a hold lives unconfirmed.
    pub hold_ttl_secs: i64,
    /// Currencies accepted in DE 49.
    pub currencies: Vec<Currency>,
    /// The switch's time zone, seconds east of UTC (days, hours, daily
    /// limits, settlement dates). Default: Iran, +03:30.
    pub utc_offset_secs: i64,
    /// Working days for settlement.
    pub calendar: Calendar,
    /// Tiers, VIP and member notices.
    pub loyalty: LoyaltyConfig,
    /// A purchase confirmed longer ago than this is not refunded (25, as
    /// one archived): the same window on every ledger, whether or not its
    /// history was archived yet.
    pub refund_window_secs: i64,
    /// Keep the daily rollups (see `rollup`) in each confirm's, refund's
    /// and reversal's own transaction. Off only to measure what they cost.
    pub rollups: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            hold_ttl_secs: 15 * 60,
            currencies: vec![Currency::IRR],
            utc_offset_secs: 3 * 3600 + 1800,
            calendar: Calendar::default(),
            loyalty: LoyaltyConfig::default(),
            refund_window_secs: 30 * 86_400,
            rollups: true,
        }
    }
}

/// What decides a member's tier.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TierBasis {
    /// Rials spent in the window.
    #[default]
    Spend,
    /// Points earned in the window.
    Points,
}

/// Network-wide loyalty settings (the `[loyalty]` table of the switch's
/// configuration).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoyaltyConfig {
    /// Display names of the four tiers, lowest first.
    pub tier_names: [String; 4],
    /// What silver, gold and platinum take, in the basis's unit.
    pub tier_thresholds: [u64; 3],
    /// `spend` (rials) or `points` (earned).
    pub tier_basis: TierBasis,
    /// Months the rolling window covers (the current one included).
    pub window_months: u32,
    /// VIP by commitment: at least `min_monthly` rials spent in each of
    /// `months` consecutive complete months makes a member VIP for
    /// `lasts_months` months. `min_monthly` 0 turns it off.
    pub vip_min_monthly: u64,
    pub vip_months: u32,
    pub vip_lasts_months: u32,
    /// Notify a member whose club balance falls below this after a
    /// purchase.
    pub low_balance: Option<u64>,
    /// Send a receipt notice for every confirmed purchase of a member.
    pub receipts: bool,
    /// The local hour from which the daily pass runs (expiry of points and
    /// credit, their warnings, birthdays, cards expiring): notices written
    /// then go out at a civil hour.
    pub daily_hour: u8,
    /// Greet members with a birthday on record.
    pub birthdays: bool,
    /// Warn a member this many days before their card's last valid day; 0:
    /// never.
    pub card_expiry_warn_days: u32,
    /// Greet members on the anniversary of joining.
    pub anniversaries: bool,
    /// Warn a member whose tier the next review would lower this many days
    /// before the month ends (tiers by spend only); 0: never.
    pub tier_warn_days: u32,
}

impl Default for LoyaltyConfig {
    fn default() -> Self {
        LoyaltyConfig {
            tier_names: ["bronze", "silver", "gold", "platinum"].map(String::from),
            tier_thresholds: [100_000_000, 500_000_000, 2_000_000_000],
            tier_basis: TierBasis::Spend,
            window_months: 12,
            vip_min_monthly: 0,
            vip_months: 6,
            vip_lasts_months: 6,
            low_balance: None,
            receipts: false,
            daily_hour: 9,
            birthdays: true,
            card_expiry_warn_days: 30,
            anniversaries: true,
            tier_warn_days: 7,
        }
    }
}

impl LoyaltyConfig {
    /// The tier a rolling figure reaches.
    pub fn tier_for(&self, figure: u64) -> Tier {
        let t = &self.tier_thresholds;
        if figure >= t[2] {
            Tier::Platinum
        } else if figure >= t[1] {
            Tier::Gold
        } else if figure >= t[0] {
            Tier::Silver
        } else {
            Tier::Bronze
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let t = &self.tier_thresholds;
        if !(t[0] <= t[1] && t[1] <= t[2]) {
            return Err("tier thresholds must not decrease".into());
        }
        if self.window_months == 0 {
            return Err("window_months must be positive".into());
        }
        if self.tier_warn_days > 27 {
            return Err("tier_warn_days is 0 to 27 (within the month)".into());
        }
        if self.daily_hour > 23 {
            return Err("daily_hour is 0 to 23".into());
        }
        if self.card_expiry_warn_days > 366 {
            return Err("card_expiry_warn_days is at most 366".into());
        }
        if self.vip_min_monthly > 0 && (self.vip_months == 0 || self.vip_lasts_months == 0) {
            return Err("vip months and lasts_months must be positive".into());
        }
        Ok(())
    }
}
