//! The ledger's invariants, recomputed from scratch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::archive::Archive;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::model::{
    keys, Account, AccountKey, JournalEntry, RequestRecord, SettlementBatch, Txn, TxnState,
};
use crate::rules::RuleRecord;
use crate::storage::Table;

/// The ledger's invariants recomputed from scratch, and the balances they
/// imply.
pub struct Audit<'a> {
    core: &'a Core,
}

impl<'a> Audit<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Audit { core }
    }
}

/// What an audit found.
#[derive(Debug, Default, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditReport {
    pub journal_entries: usize,
    pub accounts: usize,
    pub transactions: usize,
    pub pending_holds: usize,
    pub requests: usize,
    pub settlements: usize,
    /// Entries in the action log, whose chain was checked.
    pub actions: u64,
    /// Moved out of the live ledger by the archive (their sums are checked
    /// with the rest; `verify_archive` checks the files).
    pub archived_journal_entries: u64,
    pub archived_transactions: u64,
    /// Archive files checked (by [`Audit::everything`]).
    pub archive_files: usize,
    /// Every broken invariant, in words.
    pub violations: Vec<String>,
}

/// Records of each kind in the live ledger (see [`Audit::records`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Records {
    pub journal_entries: usize,
    pub transactions: usize,
    pub request_records: usize,
    pub accounts: usize,
    /// Member notices awaiting delivery.
    pub notices: usize,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl Audit<'_> {
    /// The whole ledger, live and archived: [`Audit::ledger`], then
    /// [`Archive::verify`] on the files in `archive`, with no
    /// archive run in between.
    pub fn everything(&self, archive: &Path) -> Result<AuditReport> {
        let _no_archive_run = self
            .core
            .archiving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut r = self.ledger()?;
        let check = Archive::new(self.core).verify(archive)?;
        r.archive_files = check.files;
        r.violations.extend(
            check
                .violations
                .into_iter()
                .map(|v| format!("archive: {v}")),
        );
        Ok(r)
    }

    /// How many records the live ledger holds of each kind: a count, not a
    /// check (for metrics and tests; it may cost a scan).
    pub fn records(&self) -> Records {
        let store = &self.core.store;
        Records {
            journal_entries: store.len(Table::Journal),
            transactions: store.len(Table::Txns),
            request_records: store.len(Table::Requests),
            accounts: store.len(Table::Accounts),
            notices: store.len(Table::Outbox),
        }
    }

    /// Up to `max` journal entries of the live ledger with ids from `from`
    /// on, in id order (entries archived before are in the archive files).
    pub fn journal(&self, from: u64, max: usize) -> Result<Vec<JournalEntry>> {
        self.core
            .store
            .scan_from::<JournalEntry>(Table::Journal, &from.to_be_bytes())
            .take(max)
            .map(|item| item.map(|(_, e)| e))
            .collect()
    }

    /// Each customer account's stored balance (club, store credit, points).
    pub fn balances(&self) -> Result<BTreeMap<AccountKey, i64>> {
        let mut out = BTreeMap::new();
        for item in self.core.store.scan::<Account>(Table::Accounts, b"") {
            let (k, acc) = item?;
            let key = AccountKey::from_key(&k).ok_or_else(|| EngineError::Corrupt {
                what: "account key",
                reason: hex::encode(&k),
            })?;
            out.insert(key, acc.balance);
        }
        Ok(out)
    }

    /// Each customer account's balance as the journal entries with ids
    /// below `below` (and what the archive took out) leave it: the
    /// balances at an instant a backup reports.
    pub fn balances_before(&self, below: u64) -> Result<BTreeMap<AccountKey, i64>> {
        let mut out: BTreeMap<AccountKey, i64> = Archive::new(self.core)
            .archived_sums()?
            .into_values()
            .filter(|(k, _)| k.is_customer())
            .collect();
        for item in self.core.store.scan::<JournalEntry>(Table::Journal, b"") {
            let (_, e) = item?;
            if e.id >= below {
                continue;
            }
            for (k, v) in e.postings.into_iter().filter(|(k, _)| k.is_customer()) {
                let slot = out.entry(k).or_default();
                *slot = slot.saturating_add(v);
            }
        }
        Ok(out)
    }

    /// Checks: every journal entry balances; every stored balance equals the
    /// sum of its postings; no customer account is below zero available;
    /// no balance's lots add up to more than it; every account's holds
    /// equal its pending transactions; every
    /// transaction is in exactly one state with the indexes that state
    /// implies; budgeted campaigns' holds match pending lookups; every approved request
    /// names an existing (or archived) transaction; settled batches equal
    /// their items, and list as many as the transactions that name them.
    /// What the archive took out counts through the sums it kept.
    pub fn ledger(&self) -> Result<AuditReport> {
        let mut r = AuditReport::default();
        let archived = Archive::new(self.core).state()?;
        r.archived_journal_entries = archived.journal_entries;
        r.archived_transactions = archived.transactions;
        let mut sums = Archive::new(self.core).archived_sums()?;
        for item in self.core.store.scan::<JournalEntry>(Table::Journal, b"") {
            let (_, e) = item?;
            r.journal_entries += 1;
            let total: i128 = e.postings.iter().map(|(_, v)| i128::from(*v)).sum();
            if total != 0 {
                r.violations
                    .push(format!("journal entry {} does not balance ({total})", e.id));
            }
            for (k, v) in e.postings {
                let slot = sums.entry(k.to_key()).or_insert((k, 0));
                slot.1 = slot.1.saturating_add(v);
            }
        }

        let mut held: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut rule_held: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut unsettled_expected = BTreeSet::new();
        // What settlement finds its items by (see `settlement`): the index
        // of unsettled items, and the transactions from its cursor on.
        let unsettled_index: BTreeSet<Vec<u8>> = self
            .core
            .store
            .keys_in(Table::Unsettled, b"", &[0xFF])
            .collect::<Result<_>>()?;
        let settle_cursor: Vec<u8> = self
            .core
            .store
            .get(Table::Meta, crate::settlement::CURSOR)?
            .unwrap_or_default();
        let shared = self.core.store.shared();
        let archived_batches = Archive::new(self.core).archived_batches()?;
        let mut payable_by_batch = archived_batches.clone();
        // Live transactions per batch that names them.
        let mut named_by: BTreeMap<u64, usize> = BTreeMap::new();
        // What the sweep finds holds by (see `expiry`): the transactions
        // from its cursor on, and the index.
        let (expiry_cursor, _) = crate::expiry::cursor(&self.core.store)?;
        for item in self.core.store.scan::<Txn>(Table::Txns, b"") {
            let (key, t) = item?;
            r.transactions += 1;
            // A transaction the cursor passed unfinished is found only by
            // the index: once it is an item, or (where the ledger is shared
            // and confirms index their items) once it becomes one.
            if key < settle_cursor && !t.finished() {
                let indexed = match t.state {
                    TxnState::Confirmed => {
                        unsettled_index.contains(&keys::unsettled(&t.merchant, &t.rrn))
                    }
                    _ => shared,
                };
                if !indexed {
                    r.violations.push(format!(
                        "{} is not finished but the settlement cursor has passed it",
                        t.rrn
                    ));
                }
            }

            if t.state == TxnState::Held {
                r.pending_holds += 1;
                let due = keys::hold_due(t.expires, &t.rrn);
                if key < expiry_cursor && !self.core.store.contains(Table::HoldsDue, &due)? {
                    r.violations.push(format!(
                        "{} is held but neither in the expiry index nor after the expiry cursor",
                        t.rrn
                    ));
                }
                if let Some(acc) = &t.account {
                    *held.entry(acc.to_key()).or_default() += t.hold_amount() as i64;
                }
                if let Some(rule) = t.rule {
                    *rule_held.entry(keys::rule(&t.merchant, rule)).or_default() += t.discount;
                }
            }
            if t.state == TxnState::Confirmed && t.settles() && t.settled.is_none() {
                unsettled_expected.insert(keys::unsettled(&t.merchant, &t.rrn));
            }
            if let Some(b) = t.settled {
                *payable_by_batch.entry(b).or_default() += t.payable_delta;
                *named_by.entry(b).or_default() += 1;
            }
            if t.refunded > t.final_amount {
                r.violations.push(format!(
                    "{} refunded {} of {}",
                    t.rrn, t.refunded, t.final_amount
                ));
            }
        }

        for item in self.core.store.scan::<Account>(Table::Accounts, b"") {
            let (k, acc) = item?;
            r.accounts += 1;
            let (name, expected) = match sums.remove(&k) {
                Some((key, v)) => (format!("{key:?}"), v),
                None => (hex::encode(&k), 0),
            };
            if acc.balance != expected {
                r.violations.push(format!(
                    "{name}: balance {} but journal says {expected}",
                    acc.balance
                ));
            }
            let h = held.remove(&k).unwrap_or(0);
            if acc.held != h {
                r.violations.push(format!(
                    "{name}: holds {} but pending transactions hold {h}",
                    acc.held
                ));
            }
            let in_lots = acc
                .grants
                .lots
                .iter()
                .fold(0u64, |s, l| s.saturating_add(l.amount));
            if in_lots > acc.balance.max(0).unsigned_abs() {
                r.violations.push(format!(
                    "{name}: lots of {in_lots} but a balance of {}",
                    acc.balance
                ));
            }
            // Every customer account (club, store credit and points, which
            // points purchases hold) must keep what it holds covered.
            let customer = AccountKey::from_key(&k).is_some_and(|key| key.is_customer());
            if customer && acc.available() < 0 {
                r.violations.push(format!(
                    "{name}: available balance {} below zero",
                    acc.available()
                ));
            }
        }
        // Non-customer accounts live in the journal only.
        for (_, (key, v)) in sums {
            if key.is_customer() && v != 0 {
                r.violations.push(format!(
                    "{key:?}: journal says {v} but no balance is stored"
                ));
            }
        }
        for (k, h) in held {
            r.violations.push(format!(
                "{}: {h} held by pending transactions but no account",
                hex::encode(k)
            ));
        }

        for item in self.core.store.scan::<RuleRecord>(Table::Rules, b"") {
            let (k, rec) = match item {
                Ok(v) => v,
                Err(_) => continue, // the per-merchant id lists share the tree
            };
            if k.len() != 23 || rec.rule.budget.is_none() {
                rule_held.remove(&k);
                continue;
            }
            let expect = rule_held.remove(&k).unwrap_or(0);
            if rec.held != expect {
                r.violations.push(format!(
                    "rule {}: holds {} but pending lookups hold {expect}",
                    rec.rule.id, rec.held
                ));
            }
            if rec.rule.budget.is_some_and(|b| rec.spent > b) {
                r.violations.push(format!(
                    "rule {} spent {} over its budget",
                    rec.rule.id, rec.spent
                ));
            }
        }

        for key in &unsettled_index {
            if !unsettled_expected.contains(key) {
                r.violations.push(format!(
                    "unsettled index has {} which is not a confirmed unsettled item",
                    String::from_utf8_lossy(key)
                ));
            }
        }

        for item in self.core.store.scan::<RequestRecord>(Table::Requests, b"") {
            let (_, rec) = item?;
            r.requests += 1;
            if rec.outcome.approved() && rec.outcome.auth_id.is_some() {
                let exists = rec.rrn.is_some_and(|rrn| {
                    archived.archived(&rrn)
                        || self
                            .core
                            .store
                            .get::<Txn>(Table::Txns, rrn.as_bytes())
                            .is_ok_and(|t| t.is_some())
                });
                if !exists {
                    r.violations.push(format!(
                        "approved request {:?} names no transaction",
                        rec.rrn
                    ));
                }
            }
        }

        for item in self
            .core
            .store
            .scan::<SettlementBatch>(Table::Settlements, b"")
        {
            let (_, b) = item?;
            r.settlements += 1;
            let items = payable_by_batch.remove(&b.id).unwrap_or(0);
            if items != b.net {
                r.violations.push(format!(
                    "batch {}: net {} but its items sum to {items}",
                    b.id, b.net
                ));
            }
            // Until the archive takes some of them, every transaction a
            // batch lists names it (an item lost from the list, or listed
            // twice, shows).
            let named = named_by.remove(&b.id).unwrap_or(0);
            let archived = archived_batches.contains_key(&b.id);
            if named > b.items.len() || (!archived && named != b.items.len()) {
                r.violations.push(format!(
                    "batch {}: lists {} items but {named} transactions name it",
                    b.id,
                    b.items.len()
                ));
            }
            if b.items_archived > 0 && !archived {
                r.violations.push(format!(
                    "batch {}: {} items left its list for the archive, which holds none of its transactions",
                    b.id, b.items_archived
                ));
            }
        }
        for (b, v) in payable_by_batch {
            r.violations
                .push(format!("items name batch {b} ({v}) which does not exist"));
        }
        let (actions, broken) = crate::access::Access::new(self.core).verify_log()?;
        r.actions = actions;
        r.violations.extend(broken);
        Ok(r)
    }
}
