//! Idempotency keys of money-moving admin calls (top-up, store credit,
//! points grants, conversions, settlement marks) and of payment gateways'
//! callbacks.
//!
//! **Guarantee.** A call made with a key moves value at most once per key:
//! the key and the answer are written in the same transaction as the move,
//! so two calls with one key, however close together, serialize on the
//! key's record and the second finds the first's answer (and moves
//! nothing). The same key with another request (another fingerprint) is
//! refused with [`EngineError::KeyReused`], never answered as the first.
//! A crash cannot leave a key half taken: either the move and the key are
//! both in the ledger, or neither is.
//!
//! Keys are kept at least [`KEEP_SECS`]; [`forget`] takes older ones out.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Record};
use crate::error::{EngineError, Result};
use crate::model::UnixTime;
use crate::storage::{abort, Durable, Store, Table, Tx, TxResult};

/// How long a key is kept: a caller retrying within this answers as the
/// first; past it the key may be forgotten (at least 24 hours, promised).
pub const KEEP_SECS: i64 = 48 * 3_600;

/// A caller's idempotency key, already scoped to the caller (two callers'
/// keys never meet), and the fingerprint of what it asked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Idempotency {
    key: Vec<u8>,
    fingerprint: [u8; 32],
}

impl Idempotency {
    /// The key `key` of the caller `scope` (a user name, or a payment
    /// gateway), for a request whose method, path and body hash to
    /// `fingerprint`.
    pub fn new(scope: &str, key: &str, fingerprint: [u8; 32]) -> Idempotency {
        let mut k = Vec::with_capacity(scope.len() + 1 + key.len());
        k.extend_from_slice(scope.as_bytes());
        k.push(0);
        k.extend_from_slice(key.as_bytes());
        Idempotency {
            key: k,
            fingerprint,
        }
    }
}

/// On whose behalf, and under which key, a handle's money moves run (see
/// `Admin::keyed`, `Admin::by` and their like on `Loyalty` and `Payouts`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller {
    pub(crate) idem: Option<Idempotency>,
    pub(crate) actor: Option<String>,
}

impl Caller {
    /// Runs the money move `f` as one durable transaction on the caller's
    /// behalf (its journal entries name the actor), once per the caller's
    /// key.
    pub(crate) fn moves<T: Record>(
        &self,
        store: &Store,
        now: UnixTime,
        f: impl Fn(&Tx<'_>) -> TxResult<T>,
    ) -> Result<Durable<T>> {
        store.transaction_durable_as(self.actor.as_deref(), |tx| {
            once(tx, self.idem.as_ref(), now, || f(tx))
        })
    }
}

/// What a key keeps: what it was asked and what it answered.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct Kept {
    fingerprint: [u8; 32],
    at: UnixTime,
    /// The answer, as the ledger stores a record.
    answer: Vec<u8>,
}

impl Record for Kept {}

/// Runs `f` (the money move, in the caller's transaction) once per key:
/// with a key seen before, returns its first answer instead and runs
/// nothing. Without a key, just runs `f`.
fn once<T: Record>(
    tx: &Tx<'_>,
    idem: Option<&Idempotency>,
    now: UnixTime,
    f: impl FnOnce() -> TxResult<T>,
) -> TxResult<T> {
    let Some(idem) = idem else {
        return f();
    };
    if let Some(kept) = tx.get::<Kept>(Table::Idempotency, &idem.key)? {
        if kept.fingerprint != idem.fingerprint {
            return abort(EngineError::KeyReused);
        }
        return match codec::from_slice(&kept.answer) {
            Ok(v) => Ok(v),
            Err(e) => abort(e),
        };
    }
    let v = f()?;
    let answer = match codec::to_vec(&v) {
        Ok(a) => a,
        Err(e) => return abort(e),
    };
    tx.put(
        Table::Idempotency,
        &idem.key,
        &Kept {
            fingerprint: idem.fingerprint,
            at: now,
            answer,
        },
    )?;
    Ok(v)
}

/// Forgets keys older than [`KEEP_SECS`] at `now`; returns how many.
pub(crate) fn forget(store: &Store, now: UnixTime) -> Result<usize> {
    let before = now.0.saturating_sub(KEEP_SECS);
    let old: Vec<Vec<u8>> = store
        .scan::<Kept>(Table::Idempotency, b"")
        .filter_map(|r| match r {
            Ok((k, kept)) if kept.at.0 < before => Some(Ok(k)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_>>()?;
    if old.is_empty() {
        return Ok(0);
    }
    store.transaction(|tx| {
        for k in &old {
            tx.remove(Table::Idempotency, k)?;
        }
        Ok(old.len())
    })
}
