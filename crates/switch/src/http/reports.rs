//! Admin API for the sales report: sales, discounts, fees and refunds by
//! merchant or terminal for a period of local dates (the engine adds them
//! up; this says which period and prints it).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use clubswitch_engine::SalesBy;
use serde_json::json;

use super::{blocking, local_days, ApiResult, Http, Shared};
use crate::config::format_date;

pub fn routes() -> Router<Arc<Http>> {
    Router::new().route("/v1/reports", get(report))
}

/// Sales, discounts, fees and refunds by merchant or terminal, for a period
/// of local dates (`from`, `to` inclusive, YYYY-MM-DD; default today).
async fn report(State(h): Shared, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let (from, to) = local_days(&q, h.switch.cfg.utc_offset_secs)?;
    let (by, name) = match q.get("by").map(String::as_str) {
        Some("terminal") => (SalesBy::Terminal, "terminal"),
        _ => (SalesBy::Merchant, "merchant"),
    };
    let lines = blocking(&h, move |e| e.reports().sales(from, to, by)).await?;
    Ok(Json(
        json!({ "from": format_date(from), "to": format_date(to), "by": name, "lines": lines }),
    ))
}
