//! Online backup and restore, around the engine's: where a backup's parts
//! go, and the manifest that says what it holds.
//!
//! A backup directory holds `ledger.dump` (the ledger at one instant),
//! `archive/` (the archive files it refers to) and `backup.json`. It holds
//! no master key: the copy is sealed under the running switch's, which
//! must be kept apart.

use std::path::{Path, PathBuf};

use clubswitch_engine::durable_file::{self, Access};
use clubswitch_engine::{backup, BackupPaths, BackupReport, EngineError, UnixTime};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::SwitchError;
use crate::layout::{archive_dir, backup_dump, backup_manifest, ledger_dir};

/// What `backup.json` says.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    /// When the backup was taken (RFC 3339, UTC).
    pub created: String,
    /// The release that took it.
    pub switch_version: String,
    pub records: u64,
    /// The highest journal entry id in the copy (`null`: none).
    #[schema(required = true)]
    pub journal_through: Option<u64>,
    /// Every id issued before the backup's instant is below this one.
    pub next_id: u64,
    pub dump_bytes: u64,
    pub archive_files: u64,
    pub took_ms: u64,
}

/// Makes `dir` (new, or empty) ready for a backup of the switch
/// configured by `cfg`, and returns where its parts go.
pub fn prepare(dir: &Path, cfg: &Config) -> Result<BackupPaths, SwitchError> {
    let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
    if !empty {
        return Err(SwitchError::BackupDirNotEmpty(dir.to_owned()));
    }
    durable_file::create_dir_all(dir).map_err(|source| SwitchError::Io {
        path: dir.to_owned(),
        source,
    })?;
    Ok(BackupPaths {
        dump: backup_dump(dir),
        archive_from: archive_dir(&cfg.data_dir),
        archive_to: archive_dir(dir),
    })
}

/// Writes the manifest of a backup just made in `dir`.
pub fn write_manifest(
    dir: &Path,
    report: &BackupReport,
    now: UnixTime,
) -> Result<Manifest, SwitchError> {
    let manifest = Manifest {
        created: crate::config::format_timestamp(now),
        switch_version: env!("CARGO_PKG_VERSION").to_owned(),
        records: report.records,
        journal_through: report.journal_through,
        next_id: report.next_id,
        dump_bytes: report.dump_bytes,
        archive_files: report.archive_files,
        took_ms: report.took_ms,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(SwitchError::Manifest)?;
    let path = backup_manifest(dir);
    durable_file::create_new(&path, text.as_bytes(), Access::Default)
        .map_err(|source| SwitchError::Write { path, source })?;
    Ok(manifest)
}

/// `clubswitch restore`: puts the backup in `from` into the configured
/// data directory, whose ledger and archive must not exist.
pub fn restore(cfg: &Config, from: &Path) -> Result<(), SwitchError> {
    let manifest_path = backup_manifest(from);
    let text =
        std::fs::read_to_string(&manifest_path).map_err(|source| SwitchError::NotABackup {
            path: manifest_path.clone(),
            source,
        })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|source| SwitchError::Json {
        path: manifest_path,
        source,
    })?;
    let (ledger, archive) = (ledger_dir(&cfg.data_dir), archive_dir(&cfg.data_dir));
    if ledger.exists() {
        return Err(SwitchError::RestoreOver(ledger));
    }
    // An archive is refused unless a restore of this backup cut short
    // left it (the engine tells).
    let read = backup::restore(
        &backup_dump(from),
        &archive_dir(from),
        &ledger,
        &archive,
        &crate::boot::embedded_config(cfg),
    )
    .map_err(|e| match e {
        EngineError::Exists { .. } => SwitchError::RestoreOver(archive.clone()),
        e => e.into(),
    })?;
    println!(
        "restored the backup of {} ({} records, journal through {}, {} archive files) into {}",
        manifest.created,
        read.records,
        manifest
            .journal_through
            .map_or_else(|| "-".to_owned(), |j| j.to_string()),
        read.archive_files,
        cfg.data_dir.display()
    );
    println!("check it with `clubswitch audit` before starting the switch on it");
    Ok(())
}

/// The absolute form of `dir` (a backup directory named on the command
/// line, sent to a switch whose working directory may differ).
pub fn absolute(dir: &Path) -> Result<PathBuf, SwitchError> {
    std::path::absolute(dir).map_err(|source| SwitchError::Io {
        path: dir.to_owned(),
        source,
    })
}
