//! Admin API for settlement: running one (and writing its files) and
//! listing the batches, as JSON or CSV.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use clubswitch_engine::settlement::to_csv;
use clubswitch_engine::UnixTime;
use serde::Deserialize;
use serde_json::json;

use super::access::Actor;
use super::{blocking, ApiResult, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SettleIn {
    /// Unix time; default now.
    cutoff: Option<i64>,
}

/// Runs a settlement and writes its CSV and JSON files.
pub(super) async fn run_settlement(State(h): Shared, body: Option<Json<SettleIn>>) -> ApiResult {
    let now = UnixTime::now();
    let cutoff = body.and_then(|b| b.0.cutoff).map(UnixTime).unwrap_or(now);
    let batches = blocking(&h, move |e| e.settlement().run(cutoff, now))
        .await?
        .await?;
    h.switch.metrics.settled(now);
    let files = crate::settlement::write_files(&h.switch.cfg, &batches, now)?;
    let views: Vec<_> = batches.iter().map(|b| b.view()).collect();
    Ok(Json(json!({ "batches": views, "files": files })))
}

/// The batches (a merchant's user: its own statements).
pub(super) async fn list_settlements(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut batches = match blocking(&h, |e| e.settlement().batches()).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Some(own) = actor.merchant() {
        batches.retain(|b| b.merchant == *own);
    }
    if q.get("format").map(String::as_str) == Some("csv") {
        return ([(header::CONTENT_TYPE, "text/csv")], to_csv(&batches)).into_response();
    }
    let views: Vec<_> = batches.iter().map(|b| b.view()).collect();
    Json(serde_json::to_value(views).unwrap_or_default()).into_response()
}
