//! Online backup: a consistent copy of the whole ledger, taken while the
//! switch goes on serving terminals, and putting one back.
//!
//! The copy is the ledger as it was at one instant between two writes (a
//! [`Snapshot`](crate::storage::Snapshot)): every journal entry with an id
//! below [`BackupReport::next_id`] and none above, and every balance as
//! those entries left it. The terminals' transactions are held up only
//! for the instant the snapshot begins; while it is read, each write pays
//! one extra read. No archive run moves history out of the ledger while a
//! backup runs, so the archive files copied with it are exactly those the
//! copied ledger refers to.
//!
//! The ledger goes into one [`crate::framed`] file (magic `CLUBBAK1` and
//! kind byte 1) written by the backup's own thread as a stream, so a
//! backup shares nothing of the storage engine's write path with the
//! terminals. Its frames:
//!
//! ```text
//! 'T' ‖ table name            the records that follow are of this table
//! 'R' ‖ key length (u16, BE) ‖ key ‖ stored value
//! 'I' ‖ next id (u64, BE)     ids the restored ledger issues start here
//! ```
//!
//! Restoring reads it into a new ledger, which then passes the audit on its
//! own. The master key is not in a backup (keep it apart).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::archive::file;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::storage::{EmbeddedConfig, Store, Table};
use crate::{durable_file, framed};

const MAGIC: &[u8; 8] = b"CLUBBAK1";
const LEDGER: u8 = 1;
/// Records written to the restored ledger per batch.
const CHUNK: usize = 4096;

/// Where a backup reads from and writes to.
#[derive(Debug, Clone)]
pub struct BackupPaths {
    /// The ledger's dump; must not exist.
    pub dump: PathBuf,
    /// The running switch's archive directory.
    pub archive_from: PathBuf,
    /// Where the archive files are copied; must not exist.
    pub archive_to: PathBuf,
}

/// What a backup copied.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// Records copied, over every table.
    pub records: u64,
    /// The highest journal entry id in the copy's live ledger (entries
    /// archived before are in its archive files).
    pub journal_through: Option<u64>,
    /// Every id issued before the backup's instant is below this one; the
    /// copy, once restored, issues ids from here on.
    pub next_id: u64,
    pub dump_bytes: u64,
    pub archive_files: u64,
    pub archive_bytes: u64,
    /// From the snapshot's instant to the copy being durable.
    pub took_ms: u64,
}

/// What a restore read.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// Records read from the dump. An embedded ledger may keep one fewer:
    /// the hold index mark an earlier release's backup may hold is read but
    /// not restored (the sweep finds its holds among the transactions).
    pub records: u64,
    pub next_id: u64,
    pub archive_files: u64,
}

fn file_error(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn must_not_exist(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(EngineError::Exists {
            what: "file",
            key: path.display().to_string(),
        });
    }
    Ok(())
}

/// Copies the ledger as it is now, and the archive files it refers to,
/// while the switch runs. Returns once the copy is on disk.
pub(crate) fn take(core: &Core, to: &BackupPaths) -> Result<BackupReport> {
    must_not_exist(&to.dump)?;
    must_not_exist(&to.archive_to)?;
    // No archive run moves history between the ledger and the files
    // while they are copied.
    let _archive = core.archiving.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let snapshot = core.store.snapshot()?;
    let mut report = BackupReport {
        records: 0,
        journal_through: None,
        next_id: snapshot.next_id(),
        dump_bytes: 0,
        archive_files: 0,
        archive_bytes: 0,
        took_ms: 0,
    };
    let mut out = framed::Writer::create(&to.dump, MAGIC, LEDGER)?;
    let mut frame = Vec::new();
    for table in Table::ALL {
        frame.clear();
        frame.push(b'T');
        frame.extend_from_slice(table.name().as_bytes());
        out.push(&frame)?;
        for item in snapshot.records(table) {
            let (k, v) = item?;
            if table == Table::Journal {
                if let Ok(id) = <[u8; 8]>::try_from(k.as_slice()) {
                    let id = u64::from_be_bytes(id);
                    report.journal_through = report.journal_through.max(Some(id));
                }
            }
            let key_len = u16::try_from(k.len()).map_err(|_| {
                file_error(&to.dump, format!("a key of {} bytes in {table:?}", k.len()))
            })?;
            frame.clear();
            frame.push(b'R');
            frame.extend_from_slice(&key_len.to_be_bytes());
            frame.extend_from_slice(&k);
            frame.extend_from_slice(&v);
            out.push(&frame)?;
            report.records += 1;
        }
    }
    frame.clear();
    frame.push(b'I');
    frame.extend_from_slice(&snapshot.next_id().to_be_bytes());
    out.push(&frame)?;
    drop(snapshot);
    report.dump_bytes = out.finish(&to.dump)?;

    let (listed, _) = file::list(&to.archive_from)?;
    durable_file::create_dir_all(&to.archive_to).map_err(|e| file_error(&to.archive_to, e))?;
    for f in listed {
        let Some(name) = f.path.file_name() else {
            continue;
        };
        let dest = to.archive_to.join(name);
        report.archive_bytes +=
            durable_file::copy_new(&f.path, &dest).map_err(|e| file_error(&dest, e))?;
        report.archive_files += 1;
    }
    report.took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Puts a backup (its `dump` and the archive files in `from_archive`) into
/// a new `ledger` and `archive` directory, which must not exist: the
/// switch must be stopped and what it had moved aside. A backup that is
/// damaged is refused and leaves nothing behind. The new ledger is created
/// with `cfg`'s settings (compression among them).
///
/// Cut short (a kill, a power cut, a full disk), it leaves no `ledger`:
/// both are made under hidden names beside their places and synced, then
/// the archive is renamed into place and the ledger last, so a ledger
/// that exists is whole. A run again clears what the cut-short one left:
/// its hidden directories, and an `archive` that holds nothing but files
/// of this backup's archive (it was moved in, its ledger was not).
pub fn restore(
    dump: &Path,
    from_archive: &Path,
    ledger: &Path,
    archive: &Path,
    cfg: &EmbeddedConfig,
) -> Result<RestoreReport> {
    must_not_exist(ledger)?;
    if archive.exists() {
        // Not what a cut-short restore of this backup left: refused.
        if !part_of(archive, from_archive)? {
            must_not_exist(archive)?;
        }
        remove_synced(archive)?;
    }
    let (staged_ledger, staged_archive) = (staged(ledger), staged(archive));
    for leftover in [&staged_ledger, &staged_archive] {
        if leftover.exists() {
            remove_synced(leftover)?;
        }
    }
    let report = match read_dump(dump, &staged_ledger, cfg) {
        Ok(r) => r,
        Err(e) => {
            let _ = remove_synced(&staged_ledger);
            return Err(e);
        }
    };
    let archive_files = match from_archive.exists() {
        true => {
            let copied = durable_file::copy_tree(from_archive, &staged_archive)
                .map_err(|e| file_error(&staged_archive, e))?
                .0;
            durable_file::commit(&staged_archive, archive).map_err(|e| file_error(archive, e))?;
            copied
        }
        false => 0,
    };
    // The ledger's name is the restore's commit.
    durable_file::commit(&staged_ledger, ledger).map_err(|e| file_error(ledger, e))?;
    Ok(RestoreReport {
        archive_files,
        ..report
    })
}

/// Where `path` is made before it is renamed into place.
fn staged(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".restoring");
    path.with_file_name(name)
}

/// Whether every file in `dir` is a file of the same name and length in
/// `of` (subdirectories compared alike): what a restore of `of` copied.
fn part_of(dir: &Path, of: &Path) -> Result<bool> {
    let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| file_error(dir, e))?;
        let (mine, theirs) = (entry.path(), of.join(entry.file_name()));
        let same = match (std::fs::metadata(&mine), std::fs::metadata(&theirs)) {
            (Ok(a), Ok(b)) if a.is_dir() && b.is_dir() => part_of(&mine, &theirs)?,
            (Ok(a), Ok(b)) => a.is_file() && b.is_file() && a.len() == b.len(),
            _ => false,
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

fn remove_synced(path: &Path) -> Result<()> {
    std::fs::remove_dir_all(path).map_err(|e| file_error(path, e))?;
    durable_file::sync_parent(path).map_err(|e| file_error(path, e))
}

fn read_dump(dump: &Path, ledger: &Path, cfg: &EmbeddedConfig) -> Result<RestoreReport> {
    let store = Store::open(ledger, cfg)?;
    let mut report = RestoreReport {
        records: 0,
        next_id: 0,
        archive_files: 0,
    };
    let mut table = None;
    let mut batch = Vec::with_capacity(CHUNK);
    for frame in framed::Reader::open(dump, MAGIC, LEDGER)? {
        let frame = frame?;
        match frame.split_first() {
            Some((b'T', name)) => {
                if let Some(t) = table {
                    store.import(t, &batch)?;
                    batch.clear();
                }
                let name = std::str::from_utf8(name).unwrap_or("?");
                table = Some(
                    Table::ALL
                        .into_iter()
                        .find(|t| t.name() == name)
                        .ok_or_else(|| file_error(dump, format!("unknown table {name:?}")))?,
                );
            }
            Some((b'R', rest)) => {
                let Some(((len, rest), true)) = rest
                    .split_first_chunk::<2>()
                    .map(|(l, r)| ((u16::from_be_bytes(*l) as usize, r), table.is_some()))
                else {
                    return Err(file_error(dump, "a record outside a table"));
                };
                if rest.len() < len {
                    return Err(file_error(dump, "a record shorter than its key"));
                }
                let (k, v) = rest.split_at(len);
                batch.push((k.to_vec(), v.to_vec()));
                report.records += 1;
                if batch.len() == CHUNK {
                    if let Some(t) = table {
                        store.import(t, &batch)?;
                    }
                    batch.clear();
                }
            }
            Some((b'I', id)) => {
                let id = <[u8; 8]>::try_from(id).map_err(|_| file_error(dump, "a short id"))?;
                report.next_id = u64::from_be_bytes(id);
            }
            _ => return Err(file_error(dump, "an unknown frame")),
        }
    }
    if let Some(t) = table {
        store.import(t, &batch)?;
    }
    // The settlement cursor of a ledger several nodes shared may lie past
    // holds and items their confirms index; the embedded ledger's confirms
    // do not (see `settlement`). Without it, the first run reads every live
    // transaction once. The expiry cursor stays: a hold it passed on any
    // ledger is in the hold index, which the dump carries and the sweep
    // reads wherever the cursor is (see `expiry`).
    store.transaction(|tx| tx.remove(Table::Meta, crate::settlement::CURSOR))?;
    store.raise_id_base(report.next_id)?;
    store.close()?;
    Ok(report)
}
