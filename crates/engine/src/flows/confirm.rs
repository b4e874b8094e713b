//! Phase 2 (0220): make an approval final, for the held amount or less.

use clubswitch_wire::{Mti, ProcessingCode, ResponseCode};

use super::{
    adjust_allowance, adjust_daily, approved, discount_blocks, end_hold, hold_ended, points, Flow,
};
use crate::cx::Cx;
use crate::ledger::{self, signed};
use crate::loyalty;
use crate::model::{keys, AccountKey, JournalKind, Txn, TxnState};
use crate::request::Confirm;
use crate::rules::{self, RuleRecord};
use crate::storage::{Table, TxResult};

/// The DE 54 blocks a confirm answers with, decided before loyalty runs
/// (balances are read after it, so they include cashback).
enum Blocks {
    Balance(AccountKey),
    Discount(Vec<clubswitch_wire::AmountBlock>),
    /// Points paid at the till, and the account they came from.
    Points(AccountKey, u64),
}

pub(crate) fn run(cx: &Cx<'_>, req: &Confirm) -> TxResult<Flow> {
    use ResponseCode as Rc;
    if !req.code.is_purchase() {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    }
    let Some(mut txn) = cx.tx.get::<Txn>(Table::Txns, req.rrn.as_bytes())? else {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    };
    let o = &req.original;
    let names_it = txn.request.terminal == req.key.terminal
        && txn.auth_id == req.auth_id
        && txn.refund_of.is_none()
        && o.mti == Mti::AUTH_REQUEST
        && o.stan == txn.request.stan
        && o.transmitted == txn.request.transmitted;
    if !names_it {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    }
    if txn.code != req.code {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    }
    match txn.state {
        TxnState::Confirmed => {
            // A second confirm (new STAN) answers as the first did.
            if let Some(first) = txn.confirm_outcome.clone() {
                return Ok(Flow {
                    outcome: first,
                    rrn: Some(txn.rrn),
                    durable: true,
                });
            }
            return Ok(Flow::decline(Rc::OriginalNotFound));
        }
        TxnState::Held if cx.now >= txn.expires => {
            // Expired but not yet swept: expire it now.
            end_hold(cx.tx, &mut txn, TxnState::Expired, cx.cfg.utc_offset_secs)?;
            cx.save_txn(&txn)?;
            return Ok(Flow::decline(Rc::OriginalNotFound));
        }
        TxnState::Held => {}
        TxnState::Voided | TxnState::Expired | TxnState::Reversed => {
            return Ok(Flow::decline(Rc::OriginalNotFound))
        }
    }
    let amount = req.amount.value();
    if amount == 0 || amount > txn.amount || req.currency != txn.currency {
        return Ok(Flow::decline(Rc::InvalidAmount));
    }

    let m = cx.merchant;
    let offset = cx.cfg.utc_offset_secs;
    let held_day = txn.created.local_day(offset);
    let (mut postings, blocks) = match txn.code {
        ProcessingCode::ClubPurchase | ProcessingCode::StorePurchase => {
            let Some(acc) = txn.account.clone() else {
                return Ok(Flow::decline(Rc::SystemMalfunction));
            };
            ledger::release(cx.tx, &acc, txn.amount)?;
            let postings = if txn.code == ProcessingCode::ClubPurchase {
                let fee = rules::fee(m, amount, 0);
                txn.fee = fee;
                txn.payable_delta = signed(amount - fee)?;
                if let (Some(card), true) = (&txn.card, txn.daily_tracked) {
                    adjust_daily(cx.tx, card, held_day, -i128::from(txn.amount - amount))?;
                }
                vec![
                    (acc.clone(), -signed(amount)?),
                    (AccountKey::Payable(m.id), txn.payable_delta),
                    (AccountKey::FeeIncome, signed(fee)?),
                ]
            } else {
                vec![
                    (acc.clone(), -signed(amount)?),
                    (loyalty::store_counter(&acc, m.id), signed(amount)?),
                ]
            };
            (postings, Blocks::Balance(acc))
        }
        ProcessingCode::PointsPurchase => {
            let (Some(acc), Some(mut paid)) = (txn.account.clone(), txn.points) else {
                return Ok(Flow::decline(Rc::SystemMalfunction));
            };
            ledger::release(cx.tx, &acc, paid.held)?;
            paid.paid = points::paid_for(&paid, amount);
            txn.points = Some(paid);
            let postings = points::postings(&acc, m.id, signed(paid.paid)?);
            (postings, Blocks::Points(acc, paid.paid))
        }
        ProcessingCode::BankDiscount => {
            let held = txn.discount;
            let mut discount = held.min(amount);
            if let Some(id) = txn.rule {
                let key = keys::rule(&txn.merchant, id);
                if let Some(mut r) = cx.tx.get::<RuleRecord>(Table::Rules, &key)? {
                    discount = discount.min(r.rule.discount_on(amount));
                    // Only a campaign with a budget keeps counts: a shared
                    // record written by every lookup would serialize them.
                    if r.rule.budget.is_some() {
                        r.held = r.held.saturating_sub(held);
                        r.spent = r.spent.saturating_add(discount);
                        cx.tx.put(Table::Rules, &key, &r)?;
                    }
                }
                if let Some(card) = &txn.card {
                    adjust_allowance(cx.tx, card, id, held_day, 0, -i128::from(held - discount))?;
                }
            }
            let fee = rules::fee(m, amount, discount);
            txn.discount = discount;
            txn.fee = fee;
            txn.payable_delta = -signed(fee)?;
            let postings = vec![
                (AccountKey::Payable(m.id), txn.payable_delta),
                (AccountKey::FeeIncome, signed(fee)?),
            ];
            let blocks = discount_blocks(txn.currency, amount, discount, fee);
            (postings, Blocks::Discount(blocks))
        }
        _ => return Ok(Flow::decline(Rc::InvalidTransaction)),
    };
    txn.final_amount = amount;
    // A bank-card purchase earns on what the member paid after discount; a
    // purchase paid with points earns nothing, nor counts as spend, but is
    // still a visit.
    let charged = txn.charged();
    // What it earns is posted in the purchase's own journal entry.
    let earning = loyalty::earning(cx, &txn, charged)?;
    if let Some(e) = &earning {
        postings.extend(e.postings(txn.merchant)?);
    }
    ledger::post(
        cx.tx,
        cx.now,
        JournalKind::Purchase,
        Some(txn.rrn),
        postings,
    )?;
    // The member the earning found (none: the card is no member's), for
    // the rollup's visit: read once, here.
    let member = earning.as_ref().map(|e| e.member());
    let earned = match earning {
        Some(e) => e.finish(cx, &mut txn, charged)?,
        None => Vec::new(),
    };
    let mut blocks = match blocks {
        Blocks::Balance(acc) => cx.balance_blocks(&acc, txn.currency)?,
        Blocks::Discount(b) => b,
        Blocks::Points(acc, paid) => points::blocks(cx, &acc, txn.currency, Some(paid))?,
    };
    blocks.extend(earned);

    if txn.settles() {
        crate::settlement::item_confirmed(cx.tx, &txn.merchant, &txn.rrn)?;
    }
    let outcome = approved(Some(txn.rrn), Some(txn.auth_id), blocks);
    hold_ended(cx.tx, &txn)?;
    txn.state = TxnState::Confirmed;
    txn.confirmed = Some(cx.now);
    txn.confirm_outcome = Some(outcome.clone());
    crate::rollup::confirmed(cx, &txn, member)?;
    cx.save_txn(&txn)?;
    Ok(Flow {
        outcome,
        rrn: Some(txn.rrn),
        durable: true,
    })
}
