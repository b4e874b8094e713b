//! How records are stored: one format-version byte, then bincode.
//!
//! Every record carries the version it was written in, and a release reads
//! every version up to its own: a type whose layout changed says in
//! [`Record::upgrade`] (fixed-width bodies, formats 1 to 6) and
//! [`Record::upgrade_compact`] (varint bodies, format 7 on) how an older
//! body reads, and the rest read as they are. So a data directory (and
//! every archive file) written by an earlier release opens without a
//! migration pass, and records are rewritten in the new version as they
//! change. The `meta` tree records the newest version the data directory
//! has seen; a release older than that refuses to open it.
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
//! - 7: the same fields, with integers (and lengths and enum tags) as
//!   varints instead of fixed-width: bincode's default options where
//!   versions 1 to 6 used its fixed-width `serialize`. Most numbers
//!   stored are far below 2^32 (amounts in rials and Unix seconds take 5
//!   bytes instead of 8, ids, counts, lengths and tags 1), so a transaction
//!   takes about a third less room and every copy the storage engine makes
//!   of it is smaller. A body of versions 1 to 6 is upgraded in the
//!   fixed-width layout it was written in ([`Record::upgrade`]) and
//!   decoded in it.
//! - 8: the same bodies as 7; request records are keyed by the time their
//!   DE 7 names first (`requests`). Nothing is rewritten, but a release of
//!   format 7 would look for this release's request records under keys
//!   they no longer have, and answer a retransmission as a new request:
//!   the new version keeps it from opening the ledger.
//! - 9: the same bodies as 7; on a ledger one process owns, a confirm no
//!   longer indexes its item as unsettled (`unsettled`): settlement finds
//!   items by reading the transactions from a cursor (`settlement`). A
//!   release of format 8 would look for them in the index and never
//!   settle them.
//! - 10: the same bodies as 7; on a ledger one process owns, an
//!   authorization no longer indexes its hold by expiry (`HoldsDue`): the
//!   sweep finds holds due by reading the transactions from a cursor
//!   (`expiry`). A release of format 9 would look for them in the index
//!   and never expire them.
//! - 11: a settlement batch counts the items whose RRNs left its list with
//!   their transactions for the archive
//!   ([`crate::model::SettlementBatch::items_archived`]). Appended: a
//!   body of versions 7 to 10 reads with it at 0 ([`Record::upgrade_compact`]).

use std::borrow::Cow;

use std::cell::Cell;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EngineError, Result};

/// The record format this release writes (and the newest it reads).
pub const FORMAT_VERSION: u8 = 11;

/// The last record format with fixed-width integers.
pub const LAST_FIXED_WIDTH: u8 = 6;

/// The first record format with varints: it and every later one encode
/// bodies alike.
const FIRST_VARINT: u8 = LAST_FIXED_WIDTH + 1;

/// The oldest record format this release reads.
pub const OLDEST_VERSION: u8 = 1;

/// A type the ledger stores.
pub trait Record: Serialize + DeserializeOwned {
    /// The body of a record written in `version` (up to
    /// [`LAST_FIXED_WIDTH`]) as this release's type reads in the
    /// fixed-width layout every such version shares: with every field
    /// appended since at its end ([`with_tail`]), formats 7 on included.
    /// Unchanged by default.
    fn upgrade(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
        let _ = version;
        Ok(Cow::Borrowed(body))
    }

    /// The body of a record written in `version` (from format 7 on, older
    /// than [`FORMAT_VERSION`]) as this release encodes it: varints, with
    /// any field appended since at the end ([`with_compact_tail`]).
    /// Unchanged by default.
    fn upgrade_compact(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
        let _ = version;
        Ok(Cow::Borrowed(body))
    }
}

/// `body` followed by the (fixed-width) encoding of `tail`: how a body
/// written before a field was appended reads with that field at `tail`.
pub(crate) fn with_tail<'a, T: Serialize>(body: &'a [u8], tail: &T) -> Result<Cow<'a, [u8]>> {
    appended::<T>(body, |out| bincode::serialize_into(out, tail))
}

/// `body` (format 7 on) followed by the varint encoding of `tail`: how a
/// body written before a field was appended reads with that field at
/// `tail`.
pub(crate) fn with_compact_tail<'a, T: Serialize>(
    body: &'a [u8],
    tail: &T,
) -> Result<Cow<'a, [u8]>> {
    appended::<T>(body, |out| compact().serialize_into(out, tail))
}

/// `body` followed by what `encode` writes of a `T`.
fn appended<'a, T>(
    body: &'a [u8],
    encode: impl FnOnce(&mut Vec<u8>) -> bincode::Result<()>,
) -> Result<Cow<'a, [u8]>> {
    let mut out = body.to_vec();
    encode(&mut out).map_err(|e| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })?;
    Ok(Cow::Owned(out))
}

/// The options of format 7 on: varints, little-endian, no trailing bytes.
fn compact() -> impl Options {
    bincode::DefaultOptions::new()
}

// Formats 7 to 11 encode bodies alike (varints); a type whose body
// changed since says how an older one reads in `Record::upgrade_compact`.
// A format that encodes bodies another way needs a path of its own in
// `from_slice`.
const _: () = assert!(FORMAT_VERSION == FIRST_VARINT + 4);

thread_local! {
    static FIXED_WIDTH: Cell<bool> = const { Cell::new(false) };
}

/// While the guard lives, records written on this thread are written as
/// format [`LAST_FIXED_WIDTH`] wrote them. Only for tests that build the
/// data directory of an earlier release; the switch never writes an older
/// format.
#[doc(hidden)]
pub fn write_fixed_width() -> FixedWidth {
    FixedWidth {
        before: FIXED_WIDTH.with(|f| f.replace(true)),
        _thread: std::marker::PhantomData,
    }
}

/// See [`write_fixed_width`]. Dropped, it puts back what was in force
/// before it; it stays on its thread (not `Send`).
#[doc(hidden)]
pub struct FixedWidth {
    before: bool,
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for FixedWidth {
    fn drop(&mut self) {
        FIXED_WIDTH.with(|f| f.set(self.before));
    }
}

pub fn to_vec<T: Record>(value: &T) -> Result<Vec<u8>> {
    let corrupt = |e: bincode::Error| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    };
    let mut out = Vec::with_capacity(64);
    if FIXED_WIDTH.with(Cell::get) {
        out.push(LAST_FIXED_WIDTH);
        bincode::serialize_into(&mut out, value).map_err(corrupt)?;
    } else {
        out.push(FORMAT_VERSION);
        compact().serialize_into(&mut out, value).map_err(corrupt)?;
    }
    Ok(out)
}

pub fn from_slice<T: Record>(raw: &[u8]) -> Result<T> {
    let corrupt = |reason: String| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason,
    };
    match raw.split_first() {
        Some((&v, body)) if v == FORMAT_VERSION => compact()
            .deserialize(body)
            .map_err(|e| corrupt(e.to_string())),
        Some((&v, body)) if (FIRST_VARINT..FORMAT_VERSION).contains(&v) => compact()
            .deserialize(&T::upgrade_compact(v, body)?)
            .map_err(|e| corrupt(e.to_string())),
        Some((&v, body)) if (OLDEST_VERSION..=LAST_FIXED_WIDTH).contains(&v) => {
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
    fn formats_7_and_8_write_varints_and_read_format_6_bodies_in_their_fixed_width_layout() {
        let g = Grown {
            a: 1_250_000,
            added: Some(3),
        };
        let v8 = to_vec(&g).unwrap();
        assert_eq!(v8[0], FORMAT_VERSION);
        // The amount: a varint tag (u32) and four bytes; the option tag;
        // the small number: one byte. Fixed width takes 8, 1 and 4.
        assert_eq!(v8.len(), 1 + 5 + 1 + 1);
        let mut v6 = vec![6];
        bincode::serialize_into(&mut v6, &g).unwrap();
        assert_eq!(v6.len(), 1 + 8 + 1 + 4);
        assert_eq!(from_slice::<Grown>(&v6).unwrap(), g);
        assert_eq!(from_slice::<Grown>(&v8).unwrap(), g);
        // Format 7 wrote the same body.
        let mut seven = v8.clone();
        seven[0] = 7;
        assert_eq!(from_slice::<Grown>(&seven).unwrap(), g);
        // A fixed-width body under version 7 is refused, not misread.
        v6[0] = 7;
        assert!(matches!(
            from_slice::<Grown>(&v6),
            Err(EngineError::Corrupt { .. })
        ));
    }

    /// [`Grown`] with a field appended in format 11.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct GrownAgain {
        a: u64,
        added: Option<u32>,
        counted: u64,
    }

    impl Record for GrownAgain {
        fn upgrade(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
            let v2 = match version {
                1 => with_tail(body, &None::<u32>)?,
                _ => Cow::Borrowed(body),
            };
            Ok(Cow::Owned(with_tail(&v2, &0u64)?.into_owned()))
        }

        fn upgrade_compact(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
            match version {
                ..=10 => with_compact_tail(body, &0u64),
                _ => Ok(Cow::Borrowed(body)),
            }
        }
    }

    #[test]
    fn a_varint_body_of_an_older_format_reads_with_the_field_appended_since_at_its_default() {
        let before = Grown {
            a: 1_250_000,
            added: Some(3),
        };
        let grown = |counted| GrownAgain {
            a: 1_250_000,
            added: Some(3),
            counted,
        };
        for version in FIRST_VARINT..FORMAT_VERSION {
            let mut old = to_vec(&before).unwrap();
            old[0] = version;
            assert_eq!(
                from_slice::<GrownAgain>(&old).unwrap(),
                grown(0),
                "{version}"
            );
        }
        let mut v6 = vec![6];
        bincode::serialize_into(&mut v6, &before).unwrap();
        assert_eq!(from_slice::<GrownAgain>(&v6).unwrap(), grown(0));
        let now = to_vec(&grown(70_000)).unwrap();
        assert_eq!(from_slice::<GrownAgain>(&now).unwrap(), grown(70_000));
        // A current body is read as it is: without the field it is refused,
        // not read with a default.
        let mut short = to_vec(&before).unwrap();
        short[0] = FORMAT_VERSION;
        assert!(matches!(
            from_slice::<GrownAgain>(&short),
            Err(EngineError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_fixed_width_writer_writes_format_6_on_its_thread_only_while_it_lives() {
        let guard = write_fixed_width();
        let v6 = to_vec(&7u64).unwrap();
        assert_eq!(v6, [6, 7, 0, 0, 0, 0, 0, 0, 0]);
        let elsewhere = std::thread::spawn(|| to_vec(&7u64).unwrap())
            .join()
            .unwrap();
        assert_eq!(elsewhere, [FORMAT_VERSION, 7]);
        let inner = write_fixed_width();
        drop(inner);
        assert_eq!(to_vec(&7u64).unwrap()[0], 6, "the outer guard still holds");
        drop(guard);
        assert_eq!(to_vec(&7u64).unwrap(), [FORMAT_VERSION, 7]);
        assert_eq!(from_slice::<u64>(&v6).unwrap(), 7);
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
