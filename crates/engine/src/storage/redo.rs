//! The embedded ledger's redo record: a transaction's whole write set as
//! one value, so that one sled insert (atomic on its own) carries it.
//!
//! Layout: a version byte ([`VERSION`]), then for each write its key and,
//! if the key is written rather than removed, its value; lengths are u32
//! little-endian:
//!
//! ```text
//! version | key_len key (1 value_len value | 0)  ...
//! ```
//!
//! Guarantee: [`decode`] gives back exactly the writes [`encode`] was
//! given, in the same order, or an error for anything else (a cut, a byte
//! flipped in a length, another version): the record is replayed into the
//! ledger, so a damaged one must stop the ledger from opening, never be
//! half applied.

use crate::error::StorageError;

/// The layout written today; a later one must take another number.
const VERSION: u8 = 1;

/// One write: the key as the ledger tree holds it and its value (`None`:
/// removed).
pub(super) type Write<'a> = (&'a [u8], Option<&'a [u8]>);

/// Bytes [`encode`] writes for `writes`.
pub(super) fn encoded_len<'a>(writes: impl Iterator<Item = Write<'a>>) -> usize {
    1 + writes
        .map(|(k, v)| 4 + k.len() + 1 + v.map_or(0, |v| 4 + v.len()))
        .sum::<usize>()
}

/// The record of `writes`. A key or value longer than `u32::MAX` bytes
/// cannot be in the ledger (sled's own limit is far below it).
pub(super) fn encode<'a>(writes: impl Iterator<Item = Write<'a>>, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(VERSION);
    for (k, v) in writes {
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
    Ok(Writes { rest })
}

fn corrupt(why: &str) -> StorageError {
    StorageError::Corrupt(format!("the ledger's redo record: {why}"))
}

/// What is left of a record to read; empty once it ended or was found
/// damaged (the error is the last item).
struct Writes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Writes<'a> {
    type Item = Result<Write<'a>, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let next = read_write(self.rest);
        self.rest = match &next {
            Ok((_, rest)) => rest,
            Err(_) => &[],
        };
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
        assert!(!names(&record[..5], b"\x06txn"));
    }

    #[test]
    fn a_record_cut_short_anywhere_is_refused() {
        let writes = sample();
        let record = encode(writes.iter().copied(), 0);
        // Every proper prefix but those that end exactly between two
        // writes (which are records of fewer writes) is refused.
        let whole_writes = [1, 1 + 4 + 4 + 1 + 4 + 4, 1 + 4 + 4 + 1 + 4 + 4 + 4 + 10 + 1];
        for cut in 0..record.len() {
            let decoded = decode(&record[..cut]);
            if whole_writes.contains(&cut) {
                assert!(decoded.is_ok(), "cut at {cut}");
            } else {
                assert!(
                    matches!(decoded, Err(StorageError::Corrupt(_))),
                    "cut at {cut}: {decoded:?}"
                );
            }
        }
    }

    #[test]
    fn a_record_of_another_version_or_with_a_bad_mark_is_refused() {
        let mut record = encode(sample().into_iter(), 0);
        record[0] = VERSION + 1;
        assert!(matches!(decode(&record), Err(StorageError::Corrupt(_))));
        let mut record = encode(sample().into_iter(), 0);
        // The first write's mark follows its 4-byte length and 4-byte key.
        record[1 + 4 + 4] = 2;
        assert!(matches!(decode(&record), Err(StorageError::Corrupt(_))));
    }
}
