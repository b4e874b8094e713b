//! Archive files: [`crate::framed`] files of magic `CLUBARC1` whose kind
//! byte is 1 for journal entries and 2 for transactions, one record (the
//! ledger's codec: format-version byte ‖ bincode) per frame. Names carry
//! the first and last key (`journal-<first id>-<last id>.arc`,
//! `txns-<first RRN>-<last RRN>.arc`, zero-padded so names sort in key
//! order).

use std::fs;
use std::path::{Path, PathBuf};

use crate::codec::{self, Record};
use crate::error::{EngineError, Result};
use crate::{durable_file, framed};

const MAGIC: &[u8; 8] = b"CLUBARC1";

/// What an archive file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Journal,
    Transactions,
}

impl Kind {
    fn tag(self) -> u8 {
        match self {
            Kind::Journal => 1,
            Kind::Transactions => 2,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Journal => "journal",
            Kind::Transactions => "txns",
        }
    }
}

/// An archive file found in the directory, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: PathBuf,
    pub kind: Kind,
    /// First and last key as written in the name (ids zero-padded to 20
    /// digits, RRNs as they are).
    pub first: String,
    pub last: String,
}

fn io_error(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// The final name of a file of `kind` from `first` to `last`.
pub fn name(kind: Kind, first: &str, last: &str) -> String {
    format!("{}-{first}-{last}.arc", kind.prefix())
}

/// Writes `records` as one complete archive file in `dir` and returns its
/// path. Returns only once the file and its name are on disk.
pub fn write<T: Record>(
    dir: &Path,
    kind: Kind,
    first: &str,
    last: &str,
    records: &[T],
) -> Result<PathBuf> {
    let path = dir.join(name(kind, first, last));
    let mut out = framed::Writer::create(&path, MAGIC, kind.tag())?;
    for r in records {
        out.push(&codec::to_vec(r)?)?;
    }
    out.finish(&path)?;
    Ok(path)
}

/// Reads every record of the file at `path`, checking its magic, kind and
/// hash.
pub fn read<T: Record>(path: &Path, kind: Kind) -> Result<Vec<T>> {
    // Every frame is read, and so the hash checked, before any is decoded:
    // a damaged file is reported as damaged, not as the first record the
    // damage made unreadable.
    let frames = framed::Reader::open(path, MAGIC, kind.tag())?.collect::<Result<Vec<_>>>()?;
    frames.into_iter().map(|f| codec::from_slice(&f)).collect()
}

/// The archive files in `dir` (none if it does not exist), in name order,
/// and the leftovers of interrupted writes (temporary files).
pub fn list(dir: &Path) -> Result<(Vec<Listed>, Vec<PathBuf>)> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], vec![])),
        Err(e) => return Err(io_error(dir, e)),
    };
    let (mut files, mut temporary) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') && name.contains(".arc.tmp") {
            temporary.push(path);
            continue;
        }
        let Some(stem) = name.strip_suffix(".arc") else {
            continue;
        };
        let mut parts = stem.splitn(3, '-');
        let (Some(prefix), Some(first), Some(last)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let kind = match prefix {
            "journal" => Kind::Journal,
            "txns" => Kind::Transactions,
            _ => continue,
        };
        files.push(Listed {
            kind,
            first: first.to_string(),
            last: last.to_string(),
            path,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, temporary))
}

/// Removes `path` and syncs its directory.
pub fn remove(path: &Path) -> Result<()> {
    fs::remove_file(path).map_err(|e| io_error(path, e))?;
    match path.parent() {
        Some(dir) => durable_file::sync_dir(dir).map_err(|e| io_error(dir, e)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "clubswitch-arc-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_written_file_reads_back_and_lists_with_its_range() {
        let d = dir();
        let records = vec!["a".to_string(), "b".to_string()];
        let path = write(&d, Kind::Journal, "01", "07", &records).unwrap();
        let back: Vec<String> = read(&path, Kind::Journal).unwrap();
        assert_eq!(back, records);
        let (files, tmp) = list(&d).unwrap();
        assert!(tmp.is_empty());
        assert_eq!(files.len(), 1);
        assert_eq!(
            (files[0].first.as_str(), files[0].last.as_str()),
            ("01", "07")
        );
        assert_eq!(files[0].kind, Kind::Journal);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_or_truncated_file_or_the_wrong_kind_is_refused() {
        let d = dir();
        let path = write(&d, Kind::Transactions, "1", "2", &[5u64, 6]).unwrap();
        assert!(read::<u64>(&path, Kind::Journal).is_err());
        let mut raw = fs::read(&path).unwrap();
        raw[12] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(read::<u64>(&path, Kind::Transactions).is_err());
        raw[12] ^= 1;
        raw.truncate(raw.len() - 1);
        fs::write(&path, &raw).unwrap();
        assert!(read::<u64>(&path, Kind::Transactions).is_err());
        fs::write(&path, b"").unwrap();
        assert!(read::<u64>(&path, Kind::Transactions).is_err());
        fs::remove_dir_all(&d).unwrap();
    }
}
