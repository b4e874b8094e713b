//! The terminal flows, each run inside the request's transaction.

pub(crate) mod authorize;
pub(crate) mod confirm;
pub(crate) mod points;
pub(crate) mod refund;
pub(crate) mod undo;

use clubswitch_wire::{
    AccountType, Amount, AmountBlock, AmountType, AuthId, Currency, ProcessingCode, ResponseCode,
    Rrn,
};

use crate::ledger;
use crate::model::{keys, Outcome, Txn, TxnState};
use crate::rules::{AllowanceUse, RuleRecord};
use crate::storage::{Table, Tx, TxResult};

/// What a flow hands back to the request wrapper.
pub(crate) struct Flow {
    pub outcome: Outcome,
    pub rrn: Option<Rrn>,
    /// Whether money moved, so the answer must wait for a flush.
    pub durable: bool,
}

impl Flow {
    pub fn decline(code: ResponseCode) -> Flow {
        Flow {
            outcome: Outcome::decline(code),
            rrn: None,
            durable: false,
        }
    }
}

/// DE 54 blocks of a bank-card discount: discount, fee, net.
pub(crate) fn discount_blocks(
    currency: Currency,
    amount: u64,
    discount: u64,
    fee: u64,
) -> Vec<AmountBlock> {
    let block = |t, v: u64| {
        AmountBlock::credit(
            AccountType::Unspecified,
            t,
            currency,
            Amount::new(v).unwrap_or(Amount::MAX),
        )
    };
    vec![
        block(AmountType::Discount, discount),
        block(AmountType::Fee, fee),
        block(AmountType::NetAmount, amount.saturating_sub(discount)),
    ]
}

pub(crate) fn approved(
    rrn: Option<Rrn>,
    auth_id: Option<AuthId>,
    amounts: Vec<AmountBlock>,
) -> Outcome {
    Outcome {
        code: ResponseCode::Approved,
        rrn,
        auth_id,
        amounts,
    }
}

/// Puts a pending hold in the expiry index, so the sweep finds it by time.
pub(crate) fn index_hold(tx: &Tx<'_>, txn: &Txn) -> TxResult<()> {
    tx.mark(Table::HoldsDue, &keys::hold_due(txn.expires, &txn.rrn))
}

/// Puts a new hold in the expiry index where the ledger is shared (see
/// `expiry`); nothing elsewhere: the sweep finds it among the
/// transactions.
pub(crate) fn hold_started(tx: &Tx<'_>, txn: &Txn) -> TxResult<()> {
    if !tx.shared() {
        return Ok(());
    }
    index_hold(tx, txn)
}

/// Takes a hold that ended (confirmed, voided, expired) out of the index
/// where the ledger is shared. Elsewhere an entry an earlier format left
/// is removed by the sweep once it is due (see `expiry`).
pub(crate) fn hold_ended(tx: &Tx<'_>, txn: &Txn) -> TxResult<()> {
    if !tx.shared() {
        return Ok(());
    }
    tx.remove(Table::HoldsDue, &keys::hold_due(txn.expires, &txn.rrn))
}

/// Ends a pending hold without confirming it (void or expiry), releasing
/// everything it held. Ends it exactly once: a hold that is no longer
/// `Held` is left alone.
pub(crate) fn end_hold(
    tx: &Tx<'_>,
    txn: &mut Txn,
    state: TxnState,
    utc_offset: i64,
) -> TxResult<()> {
    if txn.state != TxnState::Held {
        return Ok(());
    }
    hold_ended(tx, txn)?;
    match txn.code {
        ProcessingCode::ClubPurchase
        | ProcessingCode::StorePurchase
        | ProcessingCode::PointsPurchase => {
            if let Some(acc) = &txn.account {
                ledger::release(tx, acc, txn.hold_amount())?;
            }
            if txn.daily_tracked {
                if let Some(card) = &txn.card {
                    adjust_daily(
                        tx,
                        card,
                        txn.created.local_day(utc_offset),
                        -(txn.amount as i128),
                    )?;
                }
            }
        }
        ProcessingCode::BankDiscount => {
            if let Some(rule) = txn.rule {
                let key = keys::rule(&txn.merchant, rule);
                if let Some(mut r) = tx
                    .get::<RuleRecord>(Table::Rules, &key)?
                    .filter(|r| r.rule.budget.is_some())
                {
                    r.held = r.held.saturating_sub(txn.discount);
                    tx.put(Table::Rules, &key, &r)?;
                }
                if let Some(card) = &txn.card {
                    adjust_allowance(
                        tx,
                        card,
                        rule,
                        txn.created.local_day(utc_offset),
                        -1,
                        -(txn.discount as i128),
                    )?;
                }
            }
        }
        _ => {}
    }
    txn.state = state;
    Ok(())
}

/// Adds `delta` to a card's club spend of `day`.
pub(crate) fn adjust_daily(
    tx: &Tx<'_>,
    card: &crate::model::CardHash,
    day: i64,
    delta: i128,
) -> TxResult<u64> {
    let key = keys::daily(card, day);
    let cur: u64 = tx.get(Table::DailySpend, &key)?.unwrap_or(0);
    let next = (i128::from(cur) + delta).clamp(0, i128::from(u64::MAX)) as u64;
    if next == 0 {
        tx.remove(Table::DailySpend, &key)?;
    } else {
        tx.put(Table::DailySpend, &key, &next)?;
    }
    Ok(next)
}

/// Adds to a card's use of a rule's allowance on `day`. Touches only what
/// changes: a confirm for the whole held discount of a rule without daily
/// limits (most confirms) neither reads nor writes, and an absent record
/// stays absent.
pub(crate) fn adjust_allowance(
    tx: &Tx<'_>,
    card: &crate::model::CardHash,
    rule: u64,
    day: i64,
    count: i64,
    amount: i128,
) -> TxResult<()> {
    if count == 0 && amount == 0 {
        return Ok(());
    }
    let key = keys::allowance(card, rule, day);
    let before: Option<AllowanceUse> = tx.get(Table::Allowance, &key)?;
    let mut used = before.unwrap_or_default();
    used.count = (i64::from(used.count) + count).clamp(0, i64::from(u32::MAX)) as u32;
    used.amount = (i128::from(used.amount) + amount).clamp(0, i128::from(u64::MAX)) as u64;
    if used != AllowanceUse::default() {
        tx.put(Table::Allowance, &key, &used)
    } else if before.is_some() {
        tx.remove(Table::Allowance, &key)
    } else {
        Ok(())
    }
}
