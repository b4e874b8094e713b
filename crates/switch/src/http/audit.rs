//! Admin API for the audit: the ledger's invariants, and the archive files
//! against it, checked on the running switch.

use axum::extract::State;
use axum::Json;
use clubswitch_engine::AuditReport;

use super::{blocking, ApiResult, Shared};
use crate::layout::archive_dir;

pub(super) async fn audit(State(h): Shared) -> ApiResult<Json<AuditReport>> {
    let dir = archive_dir(&h.switch.cfg.data_dir);
    let report = blocking(&h, move |e| e.audit().everything(&dir)).await?;
    Ok(Json(report))
}
