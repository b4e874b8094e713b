//! Double-entry postings and holds, inside a transaction.
//!
//! Every movement of value is one [`JournalEntry`] whose postings sum to
//! zero. Customer accounts (club, store credit) keep a stored balance, which
//! is the sum of their postings and never goes below zero available; the
//! other accounts are the sums of their postings in the journal.

use crate::error::EngineError;
use crate::model::{Account, AccountKey, JournalEntry, JournalKind, UnixTime};
use crate::storage::{abort, Table, Tx, TxResult};
use clubswitch_wire::Rrn;

pub(crate) fn account(tx: &Tx<'_>, key: &AccountKey) -> TxResult<Account> {
    Ok(tx.get(Table::Accounts, &key.to_key())?.unwrap_or_default())
}

fn overflow<T>(what: &'static str) -> TxResult<T> {
    abort(EngineError::Overflow(what))
}

/// Holds `amount` on `key` if its available balance allows; returns whether
/// it did.
pub(crate) fn hold(tx: &Tx<'_>, key: &AccountKey, amount: u64) -> TxResult<bool> {
    let mut acc = account(tx, key)?;
    let Ok(amount) = i64::try_from(amount) else {
        return Ok(false);
    };
    if acc.available() < amount {
        return Ok(false);
    }
    acc.held = match acc.held.checked_add(amount) {
        Some(h) => h,
        None => return overflow("hold"),
    };
    tx.put(Table::Accounts, &key.to_key(), &acc)?;
    Ok(true)
}

/// Releases `amount` held on `key`.
pub(crate) fn release(tx: &Tx<'_>, key: &AccountKey, amount: u64) -> TxResult<()> {
    let mut acc = account(tx, key)?;
    let amount = i64::try_from(amount).or_else(|_| overflow("release"))?;
    acc.held = acc
        .held
        .checked_sub(amount)
        .filter(|h| *h >= 0)
        .map_or_else(
            || abort(EngineError::invalid("releasing more than is held")),
            Ok,
        )?;
    tx.put(Table::Accounts, &key.to_key(), &acc)?;
    Ok(())
}

/// Posts one balanced journal entry and applies it to the balances.
pub(crate) fn post(
    tx: &Tx<'_>,
    at: UnixTime,
    kind: JournalKind,
    rrn: Option<Rrn>,
    postings: Vec<(AccountKey, i64)>,
) -> TxResult<()> {
    let postings: Vec<_> = postings.into_iter().filter(|(_, v)| *v != 0).collect();
    if postings.is_empty() {
        return Ok(());
    }
    let sum = postings
        .iter()
        .try_fold(0i64, |s, (_, v)| s.checked_add(*v));
    if sum != Some(0) {
        return abort(EngineError::invalid(format!("unbalanced {kind:?} entry")));
    }
    for (key, delta) in postings.iter().filter(|(k, _)| k.is_customer()) {
        let mut acc = account(tx, key)?;
        acc.balance = match acc.balance.checked_add(*delta) {
            Some(b) => b,
            None => return overflow("balance"),
        };
        if acc.available() < 0 {
            return abort(EngineError::invalid(format!("{key:?} would go below zero")));
        }
        if matches!(key, AccountKey::Points { .. } | AccountKey::Store { .. }) {
            // What is taken back (what a purchase earned, a grant
            // corrected, a refund undone) leaves the lots it came into;
            // anything else spends the oldest first.
            let undoes = matches!(
                kind,
                JournalKind::LoyaltyReturn | JournalKind::PointsGrant | JournalKind::RefundReversal
            );
            if *delta < 0 && undoes {
                acc.grants.taken_back(delta.unsigned_abs(), acc.balance);
            } else {
                acc.grants.posted(at, *delta, acc.balance);
            }
        }
        tx.put(Table::Accounts, &key.to_key(), &acc)?;
    }
    let id = tx.next_id()?;
    let entry = JournalEntry {
        id,
        at,
        kind,
        rrn,
        postings,
        actor: tx.actor().map(str::to_owned),
    };
    tx.put(Table::Journal, &id.to_be_bytes(), &entry)
}

/// Signed amount for postings; every amount the engine handles is below
/// 10^12, so this never fails in practice, and when it would, it aborts.
pub(crate) fn signed(v: u64) -> TxResult<i64> {
    i64::try_from(v).or_else(|_| overflow("amount"))
}
