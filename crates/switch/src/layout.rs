//! Where a data directory (or a backup directory) keeps things. Every path
//! the switch reads or writes under its data directory is named here, so
//! the daemon, the offline commands and backup and restore agree on them.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Where the ledger of a data directory (or a backup) is.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// Where the archive files of a data directory (or a backup) go.
pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("archive")
}

/// Where settlement files are written (`settlement.output_dir`, under the
/// data directory unless absolute).
pub fn settlement_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join(&cfg.settlement.output_dir)
}

/// The master key file: the configured one, else `master.key` in the data
/// directory.
pub fn master_key_file(cfg: &Config) -> PathBuf {
    cfg.master_key_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("master.key"))
}

/// The admin token file: the configured one, else `admin.token` in the
/// data directory.
pub fn admin_token_file(cfg: &Config) -> PathBuf {
    cfg.admin
        .token_file
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("admin.token"))
}

/// The demo data set's keys and cards, written by `run --demo`.
pub fn demo_file(data_dir: &Path) -> PathBuf {
    data_dir.join("demo.json")
}

/// The dump of the ledger in a backup directory.
pub fn backup_dump(backup_dir: &Path) -> PathBuf {
    backup_dir.join("ledger.dump")
}

/// The manifest of a backup directory, which says what it holds.
pub fn backup_manifest(backup_dir: &Path) -> PathBuf {
    backup_dir.join("backup.json")
}
