//! Files of framed records with a hash at the end: the format of archive
//! files and of backups.
//!
//! ```text
//! magic    8 bytes  names the kind of file ("CLUBARC1", "CLUBBAK1")
//! kind     1 byte   what the records are, within that kind of file
//! frames   each: length (u32, big-endian) ‖ that many bytes
//! end      length 0xFFFFFFFF ‖ SHA-256 of every byte before it
//! ```
//!
//! A file is written under a temporary name, synced, renamed to its final
//! name and its directory synced ([`crate::durable_file`]), so a file with
//! a final name is complete; the trailing hash catches later damage. A
//! reader streams the frames and fails at the end if the hash does not
//! match, so whoever reads must not act on what it read until the end.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::durable_file;
use crate::error::{EngineError, Result};

const END: u32 = u32::MAX;

fn error(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Writes a framed file under a temporary name; [`Writer::finish`] gives it
/// its final name once it is on disk. Dropped unfinished, it removes the
/// temporary file.
pub struct Writer {
    tmp: PathBuf,
    out: Option<HashingWriter<BufWriter<File>>>,
    bytes: u64,
}

impl Writer {
    /// Starts a file that [`Writer::finish`] will name `path`, readable by
    /// its owner only: backups and archive files hold the ledger (members'
    /// numbers, password hashes, sealed keys).
    pub fn create(path: &Path, magic: &[u8; 8], kind: u8) -> Result<Writer> {
        let tmp = durable_file::temporary_name(path);
        let file = durable_file::create_file(&tmp, durable_file::Access::Owner)
            .map_err(|e| error(&tmp, e))?;
        let mut w = Writer {
            out: Some(HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hash: Sha256::new(),
            }),
            tmp,
            bytes: 0,
        };
        w.write(magic)?;
        w.write(&[kind])?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| error(&self.tmp, "written after finishing"))?;
        out.write_all(bytes).map_err(|e| error(&self.tmp, e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Appends one frame.
    pub fn push(&mut self, frame: &[u8]) -> Result<()> {
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|l| *l != END)
            .ok_or_else(|| error(&self.tmp, "record too large"))?;
        self.write(&len.to_be_bytes())?;
        self.write(frame)
    }

    /// Ends the file, syncs it and gives it its final name `path`; returns
    /// its size. Only then is it a file of this format.
    pub fn finish(mut self, path: &Path) -> Result<u64> {
        self.write(&END.to_be_bytes())?;
        let mut out = self
            .out
            .take()
            .ok_or_else(|| error(&self.tmp, "finished twice"))?;
        let digest = out.hash.clone().finalize();
        out.inner
            .write_all(&digest)
            .and_then(|()| out.inner.flush())
            .map_err(|e| error(&self.tmp, e))?;
        let file = out
            .inner
            .into_inner()
            .map_err(|e| error(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| error(&self.tmp, e))?;
        drop(file);
        durable_file::commit(&self.tmp, path).map_err(|e| error(path, e))?;
        Ok(self.bytes + digest.len() as u64)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Reads the frames of a framed file in order. The last item is an error
/// if the file is truncated, damaged (its hash does not match) or of
/// another kind.
pub struct Reader {
    path: PathBuf,
    input: BufReader<File>,
    hash: Sha256,
    done: bool,
    /// Bytes of the file not read yet: no frame's length may claim more
    /// (a damaged length would otherwise ask for up to 4 GiB at once).
    left: u64,
}

impl Reader {
    pub fn open(path: &Path, magic: &[u8; 8], kind: u8) -> Result<Reader> {
        let file = File::open(path).map_err(|e| error(path, e))?;
        let left = file.metadata().map_err(|e| error(path, e))?.len();
        let mut r = Reader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            done: false,
            left,
        };
        let mut head = [0u8; 9];
        r.read_exact(&mut head)?;
        if &head[..8] != magic {
            return Err(error(path, "not a file of this kind"));
        }
        if head[8] != kind {
            return Err(error(path, "holds another kind of record"));
        }
        Ok(r)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => error(&self.path, "truncated"),
            _ => error(&self.path, e),
        })?;
        self.hash.update(&*buf);
        self.left = self.left.saturating_sub(buf.len() as u64);
        Ok(())
    }

    fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len == END {
            let expected = std::mem::take(&mut self.hash).finalize();
            let mut digest = [0u8; 32];
            self.input
                .read_exact(&mut digest)
                .map_err(|_| error(&self.path, "truncated"))?;
            if digest[..] != expected[..] {
                return Err(error(
                    &self.path,
                    "hash does not match: the file was damaged",
                ));
            }
            let mut rest = [0u8; 1];
            if self
                .input
                .read(&mut rest)
                .map_err(|e| error(&self.path, e))?
                != 0
            {
                return Err(error(&self.path, "bytes after the end mark"));
            }
            return Ok(None);
        }
        if u64::from(len) > self.left {
            return Err(error(&self.path, "truncated"));
        }
        let mut frame = vec![0u8; len as usize];
        self.read_exact(&mut frame)?;
        Ok(Some(frame))
    }
}

impl Iterator for Reader {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_frame().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
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
    use crate::scratch::Scratch;

    const MAGIC: &[u8; 8] = b"TESTFRM1";

    /// A file `f` in a fresh directory, removed with the directory.
    fn file(name: &str) -> (Scratch, PathBuf) {
        let d = Scratch::new(&format!("framed-{name}"));
        let f = d.join("f");
        (d, f)
    }

    fn write(path: &Path, frames: &[&[u8]]) {
        let mut w = Writer::create(path, MAGIC, 7).unwrap();
        for f in frames {
            w.push(f).unwrap();
        }
        w.finish(path).unwrap();
    }

    #[test]
    fn frames_read_back_in_order() {
        let (_dir, path) = file("order");
        write(&path, &[b"one", b"", b"three"]);
        let back: Vec<Vec<u8>> = Reader::open(&path, MAGIC, 7)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(back, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
    }

    #[test]
    fn a_damaged_or_truncated_file_fails_by_its_end_and_another_kind_at_once() {
        let (_dir, path) = file("damaged");
        write(&path, &[b"one", b"two"]);
        assert!(Reader::open(&path, MAGIC, 8).is_err());
        assert!(Reader::open(&path, b"OTHERFMT", 7).is_err());
        let mut raw = std::fs::read(&path).unwrap();
        raw[14] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let read: Result<Vec<_>> = Reader::open(&path, MAGIC, 7).unwrap().collect();
        assert!(read.is_err());
        raw[14] ^= 1;
        raw.truncate(raw.len() - 1);
        std::fs::write(&path, &raw).unwrap();
        let read: Result<Vec<_>> = Reader::open(&path, MAGIC, 7).unwrap().collect();
        assert!(read.is_err());
    }

    #[test]
    fn a_length_damaged_past_the_files_end_is_truncation_not_an_allocation() {
        let (_dir, path) = file("length");
        write(&path, &[b"one"]);
        let mut raw = std::fs::read(&path).unwrap();
        // The first frame's length, after the magic and the kind.
        raw[9..13].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        std::fs::write(&path, &raw).unwrap();
        let read: Result<Vec<_>> = Reader::open(&path, MAGIC, 7).unwrap().collect();
        let e = read.unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_framed_file_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path) = file("owner");
        write(&path, &[b"ledger"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_unfinished_file_leaves_nothing_behind() {
        let (dir, path) = file("unfinished");
        let mut w = Writer::create(&path, MAGIC, 7).unwrap();
        w.push(b"half").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&*dir).unwrap().count(), 0);
    }
}
