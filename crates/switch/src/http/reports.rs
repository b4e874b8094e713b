//! Admin API for the sales report: sales, discounts, fees and refunds by
//! merchant or terminal for a period of local dates (the engine adds them
//! up; this says which period and prints it).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use clubswitch_engine::SalesBy;
use serde_json::json;

use super::access::Actor;
use super::{blocking, local_days, ApiResult, Shared};
use crate::config::format_date;

/// Sales, discounts, fees and refunds by merchant or terminal, for a period
/// of local dates (`from`, `to` inclusive, YYYY-MM-DD; default today).
/// A merchant's user sees only its own merchant's lines (or terminals').
pub(super) async fn report(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (from, to) = local_days(&q, h.switch.cfg.utc_offset_secs)?;
    let (by, name) = match q.get("by").map(String::as_str) {
        Some("terminal") => (SalesBy::Terminal, "terminal"),
        _ => (SalesBy::Merchant, "merchant"),
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
    Ok(Json(
        json!({ "from": format_date(from), "to": format_date(to), "by": name, "lines": lines }),
    ))
}
