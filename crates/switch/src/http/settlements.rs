//! Admin API for settlement: running one (and writing its files) and
//! listing the batches, as JSON or CSV.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use clubswitch_engine::settlement::{to_csv, BatchView};
use clubswitch_engine::UnixTime;
use serde::{Deserialize, Serialize};

use super::access::Actor;
use super::{blocking, ApiResult, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SettleIn {
    /// Unix time; default now.
    cutoff: Option<i64>,
}

/// A settlement run: the batches it made and the files it wrote.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SettlementRun {
    /// One per merchant with anything to settle; none when nothing was.
    batches: Vec<BatchView>,
    /// The files written, as paths on the switch's machine.
    files: Vec<String>,
}

/// Runs a settlement and writes its CSV and JSON files.
pub(super) async fn run_settlement(
    State(h): Shared,
    body: Option<Json<SettleIn>>,
) -> ApiResult<Json<SettlementRun>> {
    let now = UnixTime::now();
    let cutoff = body.and_then(|b| b.0.cutoff).map(UnixTime).unwrap_or(now);
    let batches = blocking(&h, move |e| e.settlement().run(cutoff, now))
        .await?
        .await?;
    h.switch.metrics.settled(now);
    let files = crate::settlement::write_files(&h.switch.cfg, &batches, now)?;
    Ok(Json(SettlementRun {
        batches: batches.iter().map(|b| b.view()).collect(),
        files: files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect(),
    }))
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
    let views: Vec<BatchView> = batches.iter().map(|b| b.view()).collect();
    Json(views).into_response()
}
