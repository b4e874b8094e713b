//! The reminders the daily pass writes: come back (a merchant's programme
//! sets after how many days), the anniversary of joining, and a tier about
//! to be lost at the next review. All are marketing: none goes to a member
//! who opted out or is not active.
//!
//! Each is written for the days in `(since, today]` it falls on, so a pass
//! that missed days (the switch was down) catches up; a pass run again
//! before one finishes (a later step failed, or a crash), that day or
//! later, writes none twice ([`super::daily`]'s marks of what it wrote).

use clubswitch_wire::fields::{civil_from_days, days_from_civil};
use clubswitch_wire::MerchantId;

use super::daily::enqueue_once;
use super::{month_of_day, Loyalty, Program, Standing};
use crate::error::Result;
use crate::model::{Member, MemberId, Status, Tier, UnixTime};
use crate::notice::NoticeKind;
use crate::storage::Table;

/// What the reminders of one pass wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Written {
    pub repurchase: usize,
    pub anniversaries: usize,
    pub tiers_at_risk: usize,
}

impl Loyalty<'_> {
    pub(super) fn reminders(&self, now: UnixTime, since: i64, today: i64) -> Result<Written> {
        let mut w = Written {
            repurchase: self.repurchase_reminders(now, since, today)?,
            ..Written::default()
        };
        if self.core.cfg.loyalty.anniversaries {
            w.anniversaries = self.anniversaries(now, since, today)?;
        }
        // The shortfall is told in rials: with tiers by points earned there
        // is no purchase amount to tell.
        let cfg = &self.core.cfg.loyalty;
        if cfg.tier_warn_days > 0 && cfg.tier_basis == crate::config::TierBasis::Spend {
            w.tiers_at_risk = self.tiers_at_risk(now, since, today)?;
        }
        Ok(w)
    }

    /// Queues `kind` to member `id` if they take marketing and no pass
    /// from day `first` on has (see [`enqueue_once`]); whether it was.
    fn remind(&self, now: UnixTime, first: i64, id: MemberId, kind: &NoticeKind) -> Result<bool> {
        self.core.store.transaction(|tx| {
            let Some(m) = tx.get::<Member>(Table::Members, &id.0.to_be_bytes())? else {
                return Ok(false);
            };
            if m.status != Status::Active || m.opted_out.is_some() {
                return Ok(false);
            }
            enqueue_once(tx, now, first, &m, kind.clone())
        })
    }

    /// Members whose last purchase at a merchant with a repurchase reminder
    /// was that many days before a day in `(since, today]`.
    fn repurchase_reminders(&self, now: UnixTime, since: i64, today: i64) -> Result<usize> {
        let mut written = 0;
        for item in self.core.store.scan::<Program>(Table::Programs, b"") {
            let (key, p) = item?;
            let (Some(days), Ok(merchant)) = (p.repurchase_days, MerchantId::from_bytes(&key))
            else {
                continue;
            };
            if days == 0 || !p.active {
                continue;
            }
            let lapse = i64::from(days);
            for (member, v) in crate::rollup::visits(&self.core.store, &merchant)? {
                if (since + 1..=today).contains(&(v.last_day + lapse)) {
                    let kind = NoticeKind::Repurchase { merchant, days };
                    written += usize::from(self.remind(now, since + 1, member, &kind)?);
                }
            }
        }
        Ok(written)
    }

    /// Members who joined on the month and day of a day in `(since,
    /// today]` in an earlier year.
    fn anniversaries(&self, now: UnixTime, since: i64, today: i64) -> Result<usize> {
        let offset = self.core.cfg.utc_offset_secs;
        let mut written = 0;
        for item in self.core.store.scan::<Member>(Table::Members, b"") {
            let (_, m) = item?;
            let Some(joined) = m.joined else { continue };
            let joined = joined.local_day(offset);
            for day in since + 1..=today {
                if let Some(years) = years_on(joined, day) {
                    let kind = NoticeKind::Anniversary { years };
                    written += usize::from(self.remind(now, since + 1, m.id, &kind)?);
                }
            }
        }
        Ok(written)
    }

    /// `tier_warn_days` before the month ends (the review at the start of
    /// the next decides tiers on the window ending with this month):
    /// members whose window so far does not keep their tier, with what
    /// they are short of it.
    fn tiers_at_risk(&self, now: UnixTime, since: i64, today: i64) -> Result<usize> {
        let cfg = &self.core.cfg.loyalty;
        let (y, m, _) = civil_from_days(today);
        let next_month_first = if m == 12 {
            days_from_civil(y + 1, 1, 1)
        } else {
            days_from_civil(y, m + 1, 1)
        };
        let last_day = next_month_first - 1;
        let warn_day = last_day - i64::from(cfg.tier_warn_days);
        if !(since + 1..=today).contains(&warn_day) {
            return Ok(0);
        }
        let month = month_of_day(today);
        let mut written = 0;
        for item in self.core.store.scan::<Standing>(Table::Standing, b"") {
            let (key, s) = item?;
            let Ok(id) = <[u8; 8]>::try_from(key.as_slice()) else {
                continue;
            };
            let Some(member) = self.core.store.get::<Member>(Table::Members, &key)? else {
                continue;
            };
            let needed = match member.tier {
                Tier::Bronze => continue,
                Tier::Silver => cfg.tier_thresholds[0],
                Tier::Gold => cfg.tier_thresholds[1],
                Tier::Platinum => cfg.tier_thresholds[2],
            };
            let figure = s.rolling(cfg, month);
            if figure >= needed {
                continue;
            }
            let kind = NoticeKind::TierAtRisk {
                tier: member.tier,
                short: needed - figure,
                by: last_day,
            };
            written += usize::from(self.remind(
                now,
                since + 1,
                MemberId(u64::from_be_bytes(id)),
                &kind,
            )?);
        }
        Ok(written)
    }
}

/// The years since `joined` if local day `day` is its anniversary (one who
/// joined on 29 February has it on 28 February in other years).
fn years_on(joined: i64, day: i64) -> Option<u32> {
    let (jy, jm, jd) = civil_from_days(joined);
    let (y, m, d) = civil_from_days(day);
    let leap = days_from_civil(y, 3, 1) - days_from_civil(y, 2, 28) == 2;
    let falls = (jm, jd) == (m, d) || (!leap && (jm, jd, m, d) == (2, 29, 2, 28));
    (y > jy && falls).then(|| u32::try_from(y - jy).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anniversary_falls_on_the_day_and_a_leap_day_on_the_28th_otherwise() {
        let joined = days_from_civil(2024, 12, 7);
        assert_eq!(years_on(joined, days_from_civil(2026, 12, 7)), Some(2));
        assert_eq!(years_on(joined, days_from_civil(2026, 12, 8)), None);
        assert_eq!(years_on(joined, joined), None, "not the day one joins");
        let leap = days_from_civil(2024, 2, 29);
        assert_eq!(years_on(leap, days_from_civil(2025, 2, 28)), Some(1));
        assert_eq!(years_on(leap, days_from_civil(2028, 2, 28)), None);
        assert_eq!(years_on(leap, days_from_civil(2028, 2, 29)), Some(4));
    }
}
