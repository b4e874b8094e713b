//! Admin API for online backups: a copy of the ledger and its archive
//! files, consistent at one instant, taken while the switch runs.

use std::path::PathBuf;

use axum::extract::State;
use axum::Json;
use clubswitch_engine::UnixTime;
use serde::Deserialize;

use super::{bad, ApiResult, Shared};
use crate::backup::Manifest;

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct BackupIn {
    /// A new directory on the switch's machine, as an absolute path.
    dir: String,
}

/// A backup taken: its manifest, and where it is.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct BackupView {
    #[serde(flatten)]
    manifest: Manifest,
    /// The directory it is in, as asked.
    dir: String,
}

/// An online backup into a new directory; answers with its manifest once
/// it is on disk.
pub(super) async fn backup(
    State(h): Shared,
    Json(b): Json<BackupIn>,
) -> ApiResult<Json<BackupView>> {
    let dir = PathBuf::from(&b.dir);
    if !dir.is_absolute() {
        return Err(bad("dir must be an absolute path on the switch's machine"));
    }
    let paths = crate::backup::prepare(&dir, &h.switch.cfg).map_err(|e| bad(e.to_string()))?;
    let started = UnixTime::now();
    let engine = h.switch.engine.clone();
    let report = crate::background::run("backup", move || engine.backup(&paths)).await??;
    let manifest = crate::backup::write_manifest(&dir, &report, started)?;
    tracing::info!(dir = %dir.display(), records = report.records, took_ms = report.took_ms, "backup taken");
    Ok(Json(BackupView {
        manifest,
        dir: b.dir,
    }))
}
