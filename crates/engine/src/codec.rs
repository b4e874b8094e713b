//! How records are stored: one format-version byte, then bincode.
//!
//! Every record carries the version it was written in, and a release reads
//! every version up to its own: a type whose layout changed says in
//! [`Record::upgrade`] how an older body reads, and the rest read as they
//! are. So a data directory (and every archive file) written by an earlier
//! release opens without a migration pass, and records are rewritten in the
//! new version as they change. The `meta` tree records the newest version
//! the data directory has seen; a release older than that refuses to open
//! it.
//!
//! Versions:
//! - 1: the first.
//! - 2: a transaction carries what it earned ([`crate::model::Txn::earned`],
//!   before in a record of its own), and a member's points and store-credit
//!   accounts the lots of their balance ([`crate::model::Account::grants`],
//!   before in a record per member and merchant). Both were appended, so
//!   a version-1 body is a version-2 body without its last field.
//! - 3: profile 1.1's points at the till: a transaction carries the points
//!   it moved ([`crate::model::Txn::points`]) and a loyalty programme whether
//!   it lets members pay with points ([`crate::loyalty::Program::till`]);
//!   a journal entry names who moved the value
//!   ([`crate::model::JournalEntry::actor`]). All appended.
//! - 4: a user keeps the language it reads the console in
//!   ([`crate::access::User::language`]). Appended.
//! - 5: a member keeps the language messages are written in and when they
//!   opted out of marketing ([`crate::model::Member::language`],
//!   [`crate::model::Member::opted_out`]), and a notice the language it
//!   is written in ([`crate::notice::Notice::language`]). Appended.
//! - 6: a member keeps the day they joined ([`crate::model::Member::joined`],
//!   for anniversaries) and a loyalty programme after how many days a
//!   member is reminded to come back
//!   ([`crate::loyalty::Program::repurchase_days`]). Appended.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EngineError, Result};

/// The record format this release writes (and the newest it reads).
pub const FORMAT_VERSION: u8 = 6;

/// The oldest record format this release reads.
pub const OLDEST_VERSION: u8 = 1;

/// A type the ledger stores.
pub trait Record: Serialize + DeserializeOwned {
    /// The body of a record written in `version` (older than
    /// [`FORMAT_VERSION`]) as this release encodes it. Unchanged by
    /// default.
    fn upgrade(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
        let _ = version;
        Ok(Cow::Borrowed(body))
    }
}

/// `body` followed by the encoding of `tail`: how a body written before a
/// field was appended reads with that field at `tail`.
pub(crate) fn with_tail<'a, T: Serialize>(body: &'a [u8], tail: &T) -> Result<Cow<'a, [u8]>> {
    let mut out = body.to_vec();
    bincode::serialize_into(&mut out, tail).map_err(|e| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })?;
    Ok(Cow::Owned(out))
}

pub fn to_vec<T: Record>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serialize_into(&mut out, value).map_err(|e| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

pub fn from_slice<T: Record>(raw: &[u8]) -> Result<T> {
    let corrupt = |reason: String| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason,
    };
    match raw.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            bincode::deserialize(body).map_err(|e| corrupt(e.to_string()))
        }
        Some((&v, body)) if (OLDEST_VERSION..FORMAT_VERSION).contains(&v) => {
            bincode::deserialize(&T::upgrade(v, body)?).map_err(|e| corrupt(e.to_string()))
        }
        Some((&found, _)) => Err(EngineError::FormatVersion {
            found,
            supported: FORMAT_VERSION,
        }),
        None => Err(corrupt("empty record".into())),
    }
}

/// Plain values stored as they have been since version 1 (counters,
/// cursors, keys). Each record type of the ledger implements [`Record`]
/// where it is defined.
macro_rules! unchanged_records {
    ($($t:ty),* $(,)?) => { $(impl Record for $t {})* };
}

unchanged_records!(u64, i64, (), String, Vec<u8>, Vec<u64>, (u64, u64));

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Grown {
        a: u64,
        added: Option<u32>,
    }

    impl Record for Grown {
        fn upgrade(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
            match version {
                1 => with_tail(body, &None::<u32>),
                _ => Ok(Cow::Borrowed(body)),
            }
        }
    }

    #[test]
    fn a_record_of_an_older_version_reads_with_the_appended_field_at_its_default() {
        let mut v1 = vec![1];
        bincode::serialize_into(&mut v1, &7u64).unwrap();
        let g: Grown = from_slice(&v1).unwrap();
        assert_eq!(g, Grown { a: 7, added: None });
        let v2 = to_vec(&Grown {
            a: 7,
            added: Some(3),
        })
        .unwrap();
        assert_eq!(v2[0], FORMAT_VERSION);
        assert_eq!(from_slice::<Grown>(&v2).unwrap().added, Some(3));
    }

    #[test]
    fn a_record_of_a_newer_version_or_none_at_all_is_refused() {
        let newer = [FORMAT_VERSION + 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            from_slice::<u64>(&newer),
            Err(EngineError::FormatVersion { found, .. }) if found == FORMAT_VERSION + 1
        ));
        assert!(matches!(
            from_slice::<u64>(&[0, 1, 2]),
            Err(EngineError::FormatVersion { found: 0, .. })
        ));
        assert!(matches!(
            from_slice::<u64>(&[]),
            Err(EngineError::Corrupt { .. })
        ));
    }
}
