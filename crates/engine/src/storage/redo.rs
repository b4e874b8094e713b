//! The embedded ledger's redo record: a transaction's whole write set as
//! one value, so that one sled insert (atomic on its own) carries it.
//!
//! Layout: a version byte ([`VERSION`]), the number of writes, then for
//! each write its key and, if the key is written rather than removed, its
//! value; counts and lengths are u32 little-endian:
//!
//! ```text
//! version | count | key_len key (1 value_len value | 0)  ...
//! ```
//!
//! Guarantee: [`decode`] gives back exactly the writes [`encode`] was
//! given, in the same order, or an error for a record that is not whole:
//! cut short anywhere, longer than its writes, with a mark other than 0
//! or 1, or of another version. The record is replayed into the ledger,
//! so one that is not whole must stop the ledger from opening, never be
//! half applied. (Bytes changed in place are sled's to catch: each message
//! in its log carries a CRC.)

use crate::error::StorageError;

/// The layout written today; a later one must take another number.
const VERSION: u8 = 1;

/// One write: the key as the ledger tree holds it and its value (`None`:
/// removed).
pub(super) type Write<'a> = (&'a [u8], Option<&'a [u8]>);

/// Bytes [`encode`] writes for `writes`.
pub(super) fn encoded_len<'a>(writes: impl Iterator<Item = Write<'a>>) -> usize {
    1 + 4
        + writes
            .map(|(k, v)| 4 + k.len() + 1 + v.map_or(0, |v| 4 + v.len()))
            .sum::<usize>()
}

/// The record of `writes`. A key or value longer than `u32::MAX` bytes,
/// or more writes than that, cannot be in a transaction (sled's own
/// limits are far below them).
pub(super) fn encode<'a>(writes: impl Iterator<Item = Write<'a>>, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(VERSION);
    out.extend_from_slice(&[0; 4]);
    let mut count = 0u32;
    for (k, v) in writes {
        count += 1;
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
    }
    out[1..5].copy_from_slice(&count.to_le_bytes());
    out
}

/// The writes in `record`.
pub(super) fn decode(record: &[u8]) -> Result<Vec<Write<'_>>, StorageError> {
    writes(record)?.collect()
}

/// Whether `record` (as [`encode`] made it) writes or removes `key`.
pub(super) fn names(record: &[u8], key: &[u8]) -> bool {
    writes(record).is_ok_and(|mut w| w.any(|w| w.is_ok_and(|(k, _)| k == key)))
}

/// The writes in `record`, one by one.
fn writes(record: &[u8]) -> Result<Writes<'_>, StorageError> {
    let (&version, rest) = record.split_first().ok_or_else(|| corrupt("empty"))?;
    if version != VERSION {
        return Err(corrupt(&format!("version {version}, not {VERSION}")));
    }
    let (count, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("its count is cut short"))?;
    Ok(Writes {
        left: u32::from_le_bytes(*count),
        rest,
    })
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(format!("the ledger's redo record: {why}"))
}

/// What is left of a record to read: `left` writes in `rest`. Both empty
/// once it ended or was found damaged (the error is the last item).
struct Writes<'a> {
    left: u32,
    rest: &'a [u8],
}

impl<'a> Iterator for Writes<'a> {
    type Item = Result<Write<'a>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match (self.left, self.rest.is_empty()) {
            (0, true) => return None,
            (0, false) => Err(corrupt("bytes after its last write")),
            (_, true) => Err(corrupt("writes are missing")),
            (_, false) => read_write(self.rest),
        };
        match &next {
            Ok((_, rest)) => {
                self.left -= 1;
                self.rest = rest;
            }
            Err(_) => (self.left, self.rest) = (0, &[]),
        }
        Some(next.map(|(write, _)| write))
    }
}

/// The write at the start of `bytes`, and what follows it.
fn read_write(bytes: &[u8]) -> Result<(Write<'_>, &[u8]), StorageError> {
    let (key, rest) = take_sized(bytes).ok_or_else(|| corrupt("a key is cut short"))?;
    let (&present, rest) = rest
        .split_first()
        .ok_or_else(|| corrupt("a write is cut short"))?;
    match present {
        0 => Ok(((key, None), rest)),
        1 => {
            let (value, rest) = take_sized(rest).ok_or_else(|| corrupt("a value is cut short"))?;
            Ok(((key, Some(value)), rest))
        }
        other => Err(corrupt(&format!("a write marked {other}"))),
    }
}

/// A u32-length-prefixed slice at the start of `bytes`, and what follows.
fn take_sized(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Write<'static>> {
        vec![
            (b"\x06txn".as_slice(), Some(b"hold".as_slice())),
            (b"\x0aholds-due".as_slice(), None),
            (b"\x09".as_slice(), Some(b"".as_slice())),
        ]
    }

    #[test]
    fn a_record_decodes_to_the_writes_it_was_made_of() {
        let writes = sample();
        let len = encoded_len(writes.iter().copied());
        let record = encode(writes.iter().copied(), len);
        assert_eq!(record.len(), len);
        assert_eq!(decode(&record).unwrap(), writes);
        assert_eq!(decode(&encode(std::iter::empty(), 1)).unwrap(), vec![]);
    }

    #[test]
    fn a_record_names_the_keys_it_writes_or_removes_and_no_other() {
        let record = encode(sample().into_iter(), 0);
        for (k, _) in sample() {
            assert!(names(&record, k));
        }
        assert!(!names(&record, b"\x06tx"));
        assert!(!names(&record, b"hold"));
        assert!(!names(&record[..9], b"\x06txn"));
    }

    #[test]
    fn a_record_cut_short_anywhere_or_longer_than_its_writes_is_refused() {
        let record = encode(sample().into_iter(), 0);
        for cut in 0..record.len() {
            let decoded = decode(&record[..cut]);
            assert!(
                matches!(decoded, Err(StorageError::Corrupt(_))),
                "cut at {cut}: {decoded:?}"
            );
        }
        let longer = [&record[..], &record[5..]].concat();
        assert!(matches!(decode(&longer), Err(StorageError::Corrupt(_))));
    }

    #[test]
    fn a_record_of_another_version_or_with_a_bad_mark_is_refused() {
        let mut record = encode(sample().into_iter(), 0);
        record[0] = VERSION + 1;
        assert!(matches!(decode(&record), Err(StorageError::Corrupt(_))));
        let mut record = encode(sample().into_iter(), 0);
        // The first write's mark follows the count, its key's length and
        // its 4-byte key.
        record[1 + 4 + 4 + 4] = 2;
        assert!(matches!(decode(&record), Err(StorageError::Corrupt(_))));
    }
}
