//! The archive file format.
//!
//! ```text
//! magic    8 bytes  "CLUBARC1"
//! kind     1 byte   1 = journal entries, 2 = transactions
//! records  each: length (u32, big-endian) ‖ record (the ledger's codec:
//!          format-version byte ‖ bincode)
//! end      length 0xFFFFFFFF ‖ SHA-256 of every byte before it
//! ```
//!
//! A file is written under a temporary name, synced, renamed to its final
//! name and its directory synced, so a file with a final name is complete;
//! the trailing hash catches later damage. Names carry the first and last
//! key (`journal-<first id>-<last id>.arc`, `txns-<first RRN>-<last
//! RRN>.arc`, zero-padded so names sort in key order).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::codec::{self, Record};
use crate::durable_file;
use crate::error::{EngineError, Result};

const MAGIC: &[u8; 8] = b"CLUBARC1";
const END: u32 = u32::MAX;

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
    EngineError::Archive {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::Archive {
        path: path.to_path_buf(),
        reason: reason.into(),
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
    let tmp = dir.join(format!(".{}.tmp", name(kind, first, last)));
    let file = File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
    let mut out = HashingWriter {
        inner: BufWriter::new(file),
        hash: Sha256::new(),
    };
    let mut put = |bytes: &[u8]| out.write_all(bytes).map_err(|e| io_error(&tmp, e));
    put(MAGIC)?;
    put(&[kind.tag()])?;
    for r in records {
        let raw = codec::to_vec(r)?;
        let len = u32::try_from(raw.len())
            .ok()
            .filter(|l| *l != END)
            .ok_or_else(|| corrupt(&tmp, "record too large"))?;
        put(&len.to_be_bytes())?;
        put(&raw)?;
    }
    put(&END.to_be_bytes())?;
    let digest = out.hash.clone().finalize();
    out.inner
        .write_all(&digest)
        .and_then(|()| out.inner.flush())
        .map_err(|e| io_error(&tmp, e))?;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| io_error(&tmp, e.into_error()))?;
    file.sync_all().map_err(|e| io_error(&tmp, e))?;
    drop(file);
    durable_file::commit(&tmp, &path).map_err(|e| io_error(&path, e))?;
    Ok(path)
}

/// Reads every record of the file at `path`, checking its magic, kind and
/// hash.
pub fn read<T: Record>(path: &Path, kind: Kind) -> Result<Vec<T>> {
    let raw = fs::read(path).map_err(|e| io_error(path, e))?;
    let body_len = raw
        .len()
        .checked_sub(32)
        .filter(|n| *n >= MAGIC.len() + 1 + 4)
        .ok_or_else(|| corrupt(path, "truncated"))?;
    let (body, digest) = raw.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return Err(corrupt(path, "hash does not match: the file was damaged"));
    }
    if &body[..MAGIC.len()] != MAGIC {
        return Err(corrupt(path, "not an archive file"));
    }
    if body[MAGIC.len()] != kind.tag() {
        return Err(corrupt(path, "holds another kind of record"));
    }
    let mut rest = &body[MAGIC.len() + 1..];
    let mut out = Vec::new();
    loop {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(corrupt(path, "truncated record"));
        };
        let len = u32::from_be_bytes(*len);
        if len == END {
            if !tail.is_empty() {
                return Err(corrupt(path, "bytes after the end mark"));
            }
            return Ok(out);
        }
        let len = len as usize;
        if tail.len() < len {
            return Err(corrupt(path, "truncated record"));
        }
        let (record, tail) = tail.split_at(len);
        out.push(codec::from_slice(record)?);
        rest = tail;
    }
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
        if name.starts_with('.') && name.ends_with(".arc.tmp") {
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

/// Hashes everything written through it.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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
