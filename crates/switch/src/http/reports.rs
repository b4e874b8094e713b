//! Admin API for the sales report: sales, discounts, fees and refunds by
//! merchant or terminal for a period of local dates (the engine adds them
//! up; this says which period and prints it).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Query, State};
use axum::{Extension, Json};
use clubswitch_engine::reports::year_before;
use clubswitch_engine::{HistoryLine, Period, SalesBy, SalesLine};
use serde::Serialize;

use super::access::Actor;
use super::{bad, blocking, local_days, merchant_id, ApiResult, Shared};
use crate::config::format_date;

/// A sales report for a period of local dates.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ReportView {
    /// YYYY-MM-DD, inclusive.
    from: String,
    to: String,
    /// What `lines` is keyed by: `merchant` or `terminal`.
    by: &'static str,
    /// By merchant or terminal id.
    lines: BTreeMap<String, SalesLine>,
}

/// Sales, discounts, fees and refunds by merchant or terminal, for a period
/// of local dates (`from`, `to` inclusive, YYYY-MM-DD; default today).
/// A merchant's user sees only its own merchant's lines (or terminals').
pub(super) async fn report(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<ReportView>> {
    let (from, to) = local_days(&q, h.switch.cfg.utc_offset_secs)?;
    let by = sales_by(&q)?;
    let name = match by {
        SalesBy::Terminal => "terminal",
        SalesBy::Merchant => "merchant",
    };
    let own = actor.merchant().copied();
    let lines = blocking(&h, move |e| {
        let mut lines = e.reports().sales(from, to, by)?;
        if let Some(own) = own {
            let mine: std::collections::HashSet<String> = match by {
                SalesBy::Merchant => [own.as_str().to_owned()].into(),
                SalesBy::Terminal => e
                    .admin()
                    .terminals()?
                    .into_iter()
                    .filter(|t| t.merchant == own)
                    .map(|t| t.id.as_str().to_owned())
                    .collect(),
            };
            lines.retain(|k, _| mine.contains(k));
        }
        Ok(lines)
    })
    .await?;
    Ok(Json(ReportView {
        from: format_date(from),
        to: format_date(to),
        by: name,
        lines,
    }))
}

/// A history report: what the terminals took in a period, line by line.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct HistoryView {
    /// YYYY-MM-DD, inclusive.
    from: String,
    to: String,
    lines: Vec<HistoryLine>,
    /// With `?compare=last-year`: the same days a year earlier.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    last_year: Option<LastYear>,
}

/// The same days a year earlier, for comparison.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct LastYear {
    /// YYYY-MM-DD, inclusive.
    from: String,
    to: String,
    lines: Vec<HistoryLine>,
}

/// What the terminals took over any period, from the daily rollups (so
/// archived history counts): `from`, `to` (YYYY-MM-DD, inclusive; default
/// the last 365 days), `period` (day, month, year, jalali-month,
/// jalali-year; default month), `by` (merchant or terminal), `merchant`,
/// and `compare=last-year` for the same days a year earlier. A merchant's
/// user sees only its own merchant.
pub(super) async fn history(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<HistoryView>> {
    let offset = h.switch.cfg.utc_offset_secs;
    let today = clubswitch_engine::UnixTime::now().local_day(offset);
    let mut days = q.clone();
    if !q.contains_key("from") {
        days.insert("from".into(), format_date(today - 364));
    }
    let (from, to) = local_days(&days, offset)?;
    if from > to || to - from > 3_660 {
        return Err(bad("from must not be after to, nor ten years before it"));
    }
    let period = match q.get("period").map(String::as_str) {
        Some("day") => Period::Day,
        None | Some("month") => Period::Month,
        Some("year") => Period::Year,
        Some("jalali-month") => Period::JalaliMonth,
        Some("jalali-year") => Period::JalaliYear,
        Some(p) => {
            return Err(bad(format!(
                "period {p:?}: day, month, year, jalali-month or jalali-year"
            )))
        }
    };
    let by = sales_by(&q)?;
    let merchant = match (actor.merchant(), q.get("merchant")) {
        (Some(own), _) => Some(*own),
        (None, Some(m)) => Some(merchant_id(m)?),
        (None, None) => None,
    };
    let compare = match q.get("compare").map(String::as_str) {
        None => false,
        Some("last-year") => true,
        Some(c) => return Err(bad(format!("compare {c:?}: last-year"))),
    };
    let (lines, previous) = blocking(&h, move |e| {
        let r = e.reports();
        let lines = r.history(from, to, merchant.as_ref(), by, period)?;
        let previous = if compare {
            Some(r.history(
                year_before(from),
                year_before(to),
                merchant.as_ref(),
                by,
                period,
            )?)
        } else {
            None
        };
        Ok((lines, previous))
    })
    .await?;
    Ok(Json(HistoryView {
        from: format_date(from),
        to: format_date(to),
        lines,
        last_year: previous.map(|lines| LastYear {
            from: format_date(year_before(from)),
            to: format_date(year_before(to)),
            lines,
        }),
    }))
}

/// What `?by=` groups a report by: `merchant` (the default) or `terminal`.
fn sales_by(q: &HashMap<String, String>) -> ApiResult<SalesBy> {
    match q.get("by").map(String::as_str) {
        None | Some("merchant") => Ok(SalesBy::Merchant),
        Some("terminal") => Ok(SalesBy::Terminal),
        Some(other) => Err(bad(format!("by {other:?}: merchant or terminal"))),
    }
}
