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
use super::{blocking, blocking_api, ApiResult, Shared};

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
    /// The files written, as paths on the switch's machine: of these
    /// batches, and of any an earlier run could not file (a full disk).
    files: Vec<String>,
    /// Whether the run went through everything due. `false`: the switch
    /// began to stop during the run, which ended between two steps; the
    /// batches listed are settled and filed, and the next run settles the
    /// rest.
    complete: bool,
}

/// Runs a settlement and writes its CSV and JSON files. A stop of the
/// switch ends the run between two steps (so the stop waits for one step,
/// not the whole run, as for the daily settlement); the answer still
/// comes, before the last flush.
pub(super) async fn run_settlement(
    State(h): Shared,
    body: Option<Json<SettleIn>>,
) -> ApiResult<Json<SettlementRun>> {
    let now = UnixTime::now();
    let cutoff = body.and_then(|b| b.0.cutoff).map(UnixTime).unwrap_or(now);
    let stopping = h.stopping.clone();
    let run = blocking(&h, move |e| {
        e.settlement()
            .run_until(cutoff, now, &|| *stopping.borrow())
    })
    .await?
    .await?;
    if run.complete {
        h.switch.metrics.settled(now);
    }
    let cfg = h.switch.cfg.clone();
    let files = blocking_api(&h, move |e| Ok(crate::settlement::file_unfiled(&cfg, e)?)).await?;
    Ok(Json(SettlementRun {
        complete: run.complete,
        batches: run.batches.iter().map(|b| b.view()).collect(),
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
