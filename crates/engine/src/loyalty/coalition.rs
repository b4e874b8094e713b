//! Coalitions: groups of merchants that honour one another's store credit.
//!
//! A store purchase at a coalition merchant spends the member's credit
//! there first; if that does not cover it, the credit at the one partner
//! that covers it in full (the largest). The partner that issued the credit
//! then owes the merchant that took it: the purchase posts to
//! [`AccountKey::CoalitionDue`] instead of the merchant's own
//! `StoreIssued`, and the clearing report sums those accounts into who owes
//! whom. Reversals and refunds post back to the same accounts.

use std::collections::BTreeMap;

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use super::Loyalty;
use crate::archive::Archive;
use crate::error::{EngineError, Result};
use crate::ledger;
use crate::model::{AccountKey, JournalEntry, MemberId};
use crate::storage::Durable;
use crate::storage::{abort, Table, Tx, TxResult};

/// A named group of merchants.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Coalition {
    pub name: String,
    pub merchants: Vec<MerchantId>,
}

/// One line of the clearing report: `debtor` owes `creditor`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Owed {
    pub debtor: String,
    pub creditor: String,
    pub amount: i64,
}

fn coalition_key(name: &str) -> Vec<u8> {
    let mut k = vec![b'C'];
    k.extend_from_slice(name.as_bytes());
    k
}

fn member_key(m: &MerchantId) -> Vec<u8> {
    let mut k = vec![b'M'];
    k.extend_from_slice(m.as_bytes());
    k
}

/// The other merchants of `merchant`'s coalition.
fn partners(tx: &Tx<'_>, merchant: &MerchantId) -> TxResult<Vec<MerchantId>> {
    let Some(name) = tx.get::<String>(Table::Coalitions, &member_key(merchant))? else {
        return Ok(Vec::new());
    };
    Ok(tx
        .get::<Coalition>(Table::Coalitions, &coalition_key(&name))?
        .map(|c| c.merchants.into_iter().filter(|m| m != merchant).collect())
        .unwrap_or_default())
}

/// The store-credit account a purchase of `amount` at `merchant` spends:
/// the member's credit there if it covers the amount, else the coalition
/// partner's credit that covers it (the largest), else the merchant's own
/// (and the hold declines).
pub(crate) fn store_account(
    tx: &Tx<'_>,
    member: MemberId,
    merchant: MerchantId,
    amount: u64,
) -> TxResult<AccountKey> {
    let own = AccountKey::Store { member, merchant };
    let available = |k: &AccountKey| -> TxResult<i64> { Ok(ledger::account(tx, k)?.available()) };
    let need = i64::try_from(amount).unwrap_or(i64::MAX);
    if available(&own)? >= need {
        return Ok(own);
    }
    let mut best: Option<(i64, AccountKey)> = None;
    for p in partners(tx, &merchant)? {
        let k = AccountKey::Store {
            member,
            merchant: p,
        };
        let a = available(&k)?;
        if a >= need && best.as_ref().is_none_or(|(b, _)| a > *b) {
            best = Some((a, k));
        }
    }
    Ok(best.map_or(own, |(_, k)| k))
}

/// What balances a store-credit posting on `acc` for a purchase at
/// `merchant`: the merchant's own issued credit, or, for credit a
/// coalition partner issued, what that partner owes the merchant.
pub(crate) fn counter(acc: &AccountKey, merchant: MerchantId) -> AccountKey {
    match acc {
        AccountKey::Store {
            merchant: issuer, ..
        } if *issuer != merchant => AccountKey::CoalitionDue {
            debtor: *issuer,
            creditor: merchant,
        },
        _ => AccountKey::StoreIssued(merchant),
    }
}

impl Loyalty<'_> {
    /// Creates or replaces a coalition. A merchant is in one coalition at
    /// most; naming one that is in another is refused.
    pub fn put_coalition(&self, c: &Coalition) -> Result<Durable<()>> {
        if c.name.is_empty() || c.merchants.len() < 2 {
            return Err(EngineError::invalid(
                "a coalition needs a name and at least two merchants",
            ));
        }
        self.core.store.transaction_durable(|tx| {
            let key = coalition_key(&c.name);
            if let Some(old) = tx.get::<Coalition>(Table::Coalitions, &key)? {
                for m in &old.merchants {
                    tx.remove(Table::Coalitions, &member_key(m))?;
                }
            }
            for m in &c.merchants {
                if !tx.contains(Table::Merchants, m.as_bytes())? {
                    return abort(crate::admin::not_found("merchant", m));
                }
                if let Some(other) = tx.get::<String>(Table::Coalitions, &member_key(m))? {
                    return abort(EngineError::invalid(format!(
                        "merchant {m} is already in coalition {other}"
                    )));
                }
                tx.put(Table::Coalitions, &member_key(m), &c.name)?;
            }
            tx.put(Table::Coalitions, &key, c)
        })
    }

    pub fn coalitions(&self) -> Result<Vec<Coalition>> {
        self.core.store.values::<Coalition>(Table::Coalitions, b"C")
    }

    /// Who owes whom for coalition credit spent at another merchant, net of
    /// what each owes the other, archived history included.
    pub fn clearing(&self) -> Result<Vec<Owed>> {
        let mut due: BTreeMap<(MerchantId, MerchantId), i64> = BTreeMap::new();
        let mut add = |key: &AccountKey, v: i64| {
            if let AccountKey::CoalitionDue { debtor, creditor } = key {
                *due.entry((*debtor, *creditor)).or_default() += v;
            }
        };
        for (_, (key, v)) in Archive::new(self.core).archived_sums()? {
            add(&key, v);
        }
        for item in self.core.store.scan::<JournalEntry>(Table::Journal, b"") {
            let (_, e) = item?;
            for (key, v) in &e.postings {
                add(key, *v);
            }
        }
        // Net each pair: what A owes B less what B owes A.
        let mut out = Vec::new();
        for (&(a, b), &v) in &due {
            if a < b {
                let net = v - due.get(&(b, a)).copied().unwrap_or(0);
                let (debtor, creditor, amount) = if net >= 0 { (a, b, net) } else { (b, a, -net) };
                if amount != 0 {
                    out.push(Owed {
                        debtor: debtor.as_str().to_owned(),
                        creditor: creditor.as_str().to_owned(),
                        amount,
                    });
                }
            } else if !due.contains_key(&(b, a)) && v != 0 {
                out.push(Owed {
                    debtor: a.as_str().to_owned(),
                    creditor: b.as_str().to_owned(),
                    amount: v,
                });
            }
        }
        Ok(out)
    }
}

impl crate::codec::Record for Coalition {}
