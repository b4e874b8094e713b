//! Settlement files: each settlement run's batches written as CSV and JSON
//! for the merchants' bank, by the daily job and by the admin API alike.

use std::path::PathBuf;

use clubswitch_engine::durable_file::{self, Access};
use clubswitch_engine::{Engine, SettlementBatch, UnixTime};

use crate::config::Config;
use crate::error::SwitchError;
use crate::layout::settlement_dir;

/// Writes the files of every batch not filed yet (the run just made, and
/// any an earlier run could not file: a full disk, a stop between the
/// commit and the write), then records them filed. Blocks: call it off the
/// async workers. The files are durable before they are recorded, so a
/// crash in between writes them again under a new name rather than never.
pub fn file_unfiled(
    cfg: &Config,
    engine: &Engine,
    now: UnixTime,
) -> Result<Vec<PathBuf>, SwitchError> {
    let batches = engine.settlement().unfiled()?;
    let files = write_files(cfg, &batches, now)?;
    let ids: Vec<u64> = batches.iter().map(|b| b.id).collect();
    if !ids.is_empty() {
        engine.settlement().mark_filed(&ids)?.wait()?;
    }
    Ok(files)
}

/// Writes settlement batches as CSV and JSON under the settlement directory.
fn write_files(
    cfg: &Config,
    batches: &[SettlementBatch],
    now: UnixTime,
) -> Result<Vec<PathBuf>, SwitchError> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let dir = settlement_dir(cfg);
    durable_file::create_dir_all(&dir).map_err(|source| SwitchError::Create {
        path: dir.clone(),
        source,
    })?;
    let first = batches.first().map_or(0, |b| b.id);
    let stem = dir.join(format!("settlement-{}-{first}", now.0));
    let csv = stem.with_extension("csv");
    let json = stem.with_extension("json");
    for (path, text) in [
        (&csv, clubswitch_engine::settlement::to_csv(batches)),
        (&json, clubswitch_engine::settlement::to_json(batches)),
    ] {
        durable_file::replace(path, text.as_bytes(), Access::Default).map_err(|source| {
            SwitchError::Write {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(vec![csv, json])
}
