//! Settlement files: each settlement run's batches written as CSV and JSON
//! for the merchants' bank, by the daily job and by the admin API alike.

use std::path::PathBuf;

use clubswitch_engine::durable_file::{self, Access};
use clubswitch_engine::{Engine, SettlementBatch};

use crate::config::Config;
use crate::error::SwitchError;
use crate::layout::settlement_dir;

/// Writes the files of every batch not filed yet (the run just made, and
/// any an earlier run could not file: a full disk, a stop between the
/// commit and the write), then records them filed. Blocks: call it off the
/// async workers. The files are durable before they are recorded, so a
/// crash in between writes them again, under the same name, rather than
/// never.
pub fn file_unfiled(cfg: &Config, engine: &Engine) -> Result<Vec<PathBuf>, SwitchError> {
    // One filing at a time in this process (the daily job and an
    // operator's run may end together): two would write files of the same
    // name, and the last rename would drop a batch only the other listed.
    let _one = FILING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let batches = engine.settlement().unfiled()?;
    let files = write_files(cfg, &batches)?;
    if !batches.is_empty() {
        engine.settlement().mark_filed(&batches)?.wait()?;
    }
    Ok(files)
}

/// Held while a filing runs (see [`file_unfiled`]).
static FILING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes settlement batches (in id order) as CSV and JSON under the
/// settlement directory, named by the first batch: its creation time and
/// id. Files that failed half-way (the CSV written, not the JSON) are
/// replaced by the next attempt, which starts from the same batch, rather
/// than left beside a second file that lists the same batches.
fn write_files(cfg: &Config, batches: &[SettlementBatch]) -> Result<Vec<PathBuf>, SwitchError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let dir = settlement_dir(cfg);
    durable_file::create_dir_all(&dir).map_err(|source| SwitchError::Create {
        path: dir.clone(),
        source,
    })?;
    let stem = dir.join(format!("settlement-{}-{}", first.created.0, first.id));
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
