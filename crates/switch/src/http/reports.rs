//! Admin API for the sales report: sales, discounts, fees and refunds by
//! merchant or terminal for a period of local dates.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use clubswitch_engine::TxnState;
use clubswitch_wire::ProcessingCode;
use serde::Serialize;
use serde_json::json;

use super::{local_days, ApiResult, Http, Shared};
use crate::config::format_date;

pub fn routes() -> Router<Arc<Http>> {
    Router::new().route("/v1/reports", get(report))
}

#[derive(Default, Serialize)]
struct Line {
    purchases: u64,
    sales: u64,
    discounts: u64,
    fees: u64,
    refunds: u64,
}

/// Sales, discounts, fees and refunds by merchant or terminal, for a period
/// of local dates (`from`, `to` inclusive, YYYY-MM-DD; default today).
async fn report(State(h): Shared, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let offset = h.switch.cfg.utc_offset_secs;
    let (from, to) = local_days(&q, offset)?;
    let by_terminal = q.get("by").map(String::as_str) == Some("terminal");
    let txns = h.switch.engine.transactions(|t| {
        t.confirmed
            .is_some_and(|c| (from..=to).contains(&c.local_day(offset)))
    })?;
    let mut lines: BTreeMap<String, Line> = Default::default();
    for t in &txns {
        let key = if by_terminal {
            t.request.terminal.as_str().to_owned()
        } else {
            t.merchant.as_str().to_owned()
        };
        let l = lines.entry(key).or_default();
        match t.code {
            ProcessingCode::ClubRefund | ProcessingCode::StoreRefund => l.refunds += t.final_amount,
            _ if t.state == TxnState::Confirmed => {
                l.purchases += 1;
                l.sales += t.final_amount;
                l.discounts += t.discount;
                l.fees += t.fee;
            }
            _ => {}
        }
    }
    let fmt = format_date;
    Ok(Json(
        json!({ "from": fmt(from), "to": fmt(to), "by": if by_terminal { "terminal" } else { "merchant" }, "lines": lines }),
    ))
}
