//! Sales reports: what the terminals took in a period of local days, by
//! merchant or by terminal.
//!
//! [`Reports::sales`] reads the transactions still in the live ledger (the
//! archive's horizon, 30 days by default); [`Reports::history`] reads the
//! daily rollups, which cover all history, archived or not.

use std::collections::BTreeMap;

use clubswitch_wire::MerchantId;
use serde::Serialize;

use crate::admin::Admin;
use crate::core::Core;
use crate::error::Result;
use crate::model::TxnState;

/// How a sales report groups its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesBy {
    Merchant,
    Terminal,
}

/// One line of a sales report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SalesLine {
    /// Confirmed purchases.
    pub purchases: u64,
    /// What they were confirmed for.
    pub sales: u64,
    pub discounts: u64,
    pub fees: u64,
    /// Refunds confirmed in the period.
    pub refunds: u64,
}

/// Reports over the ledger.
pub struct Reports<'a> {
    core: &'a Core,
}

impl<'a> Reports<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Reports { core }
    }

    /// Sales, discounts, fees and refunds confirmed on the local days
    /// `from..=to` (days since 1970-01-01 in the switch's time zone), by
    /// merchant or terminal id.
    pub fn sales(&self, from: i64, to: i64, by: SalesBy) -> Result<BTreeMap<String, SalesLine>> {
        let offset = self.core.cfg.utc_offset_secs;
        let txns = Admin::new(self.core).transactions(|t| {
            t.confirmed
                .is_some_and(|c| (from..=to).contains(&c.local_day(offset)))
        })?;
        let mut lines: BTreeMap<String, SalesLine> = BTreeMap::new();
        for t in &txns {
            let key = match by {
                SalesBy::Terminal => t.request.terminal.as_str(),
                SalesBy::Merchant => t.merchant.as_str(),
            };
            let l = lines.entry(key.to_owned()).or_default();
            // A reversed purchase or refund counts for nothing: it keeps
            // its confirm time, but its value went back.
            if t.state != TxnState::Confirmed {
                continue;
            }
            match t.code {
                c if c.is_refund() => l.refunds += t.final_amount,
                _ => {
                    l.purchases += 1;
                    l.sales += t.final_amount;
                    l.discounts += t.discount;
                    l.fees += t.fee;
                }
            }
        }
        Ok(lines)
    }
}

/// How a history report groups days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
    Year,
    /// Months and years of the Jalali (Solar Hijri) calendar.
    JalaliMonth,
    JalaliYear,
}

impl Period {
    /// The label of the period `day` falls in: "2026-11-23", "2026-11",
    /// "2026", "1405-09", "1405".
    pub fn label(self, day: i64) -> String {
        let (y, m, d) = clubswitch_wire::fields::civil_from_days(day);
        let jalali = || crate::calendar::jalali_of_day(day).unwrap_or((0, 0, 0));
        match self {
            Period::Day => format!("{y:04}-{m:02}-{d:02}"),
            Period::Month => format!("{y:04}-{m:02}"),
            Period::Year => format!("{y:04}"),
            Period::JalaliMonth => {
                let (y, m, _) = jalali();
                format!("{y:04}-{m:02}")
            }
            Period::JalaliYear => format!("{:04}", jalali().0),
        }
    }
}

/// One line of a history report: a period, a merchant or terminal, and
/// what it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryLine {
    pub period: String,
    /// The merchant or terminal id.
    pub key: String,
    pub figures: crate::rollup::Figures,
}

/// The same local days a calendar year earlier (29 February: the 28th).
pub fn year_before(day: i64) -> i64 {
    let (y, m, d) = clubswitch_wire::fields::civil_from_days(day);
    let d = if m == 2 && d == 29 { 28 } else { d };
    clubswitch_wire::fields::days_from_civil(y - 1, m, d)
}

impl Reports<'_> {
    /// What the terminals took on the local days `from..=to`, from the
    /// daily rollups (so archived history counts, and nothing is
    /// scanned but the period's rollup records): by `period`, and by
    /// merchant or terminal; `merchant` keeps one merchant.
    pub fn history(
        &self,
        from: i64,
        to: i64,
        merchant: Option<&MerchantId>,
        by: SalesBy,
        period: Period,
    ) -> Result<Vec<HistoryLine>> {
        let merchants: Vec<MerchantId> = match merchant {
            Some(m) => vec![*m],
            None => Admin::new(self.core)
                .merchants()?
                .into_iter()
                .map(|m| m.id)
                .collect(),
        };
        let mut lines: BTreeMap<(String, String), crate::rollup::Figures> = BTreeMap::new();
        for m in &merchants {
            for (day, terminal, f) in crate::rollup::days(&self.core.store, m, from, to)? {
                let key = match by {
                    SalesBy::Merchant => m.as_str().trim().to_owned(),
                    SalesBy::Terminal => terminal.as_str().to_owned(),
                };
                lines.entry((period.label(day), key)).or_default().merge(&f);
            }
        }
        Ok(lines
            .into_iter()
            .map(|((period, key), figures)| HistoryLine {
                period,
                key,
                figures,
            })
            .collect())
    }
}
