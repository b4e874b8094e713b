//! Undo (0400 / 0420): void a pending hold, reverse a confirmed purchase
//! not yet settled, or reverse a refund.

use clubswitch_wire::{ProcessingCode, ResponseCode};

use super::{adjust_allowance, adjust_daily, approved, end_hold, points, Flow};
use crate::cx::Cx;
use crate::ledger::{self, signed};
use crate::loyalty::{self, Share};
use crate::model::{keys, AccountKey, JournalKind, RequestKey, Txn, TxnState};
use crate::request::Undo;
use crate::requests;
use crate::rules::RuleRecord;
use crate::storage::{Table, TxResult};

fn find(cx: &Cx<'_>, req: &Undo) -> TxResult<Option<Txn>> {
    if let Some(rrn) = &req.rrn {
        return cx.tx.get(Table::Txns, rrn.as_bytes());
    }
    let Some(o) = &req.original else {
        return Ok(None);
    };
    let key = RequestKey {
        terminal: req.key.terminal,
        stan: o.stan,
        transmitted: o.transmitted,
    };
    let stored = key.to_key(cx.now);
    let Some(rec) = requests::find(cx.tx, &key, &stored, cx.first_layout)? else {
        return Ok(None);
    };
    match rec.rrn {
        Some(rrn) => cx.tx.get(Table::Txns, rrn.as_bytes()),
        None => Ok(None),
    }
}

pub(crate) fn run(cx: &Cx<'_>, req: &Undo) -> TxResult<Flow> {
    use ResponseCode as Rc;
    let Some(mut txn) = find(cx, req)? else {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    };
    if txn.request.terminal != req.key.terminal {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    }
    if req.code.is_some_and(|c| c != txn.code) {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    }
    if let Some(first) = txn.undo_outcome.clone() {
        return Ok(Flow {
            outcome: first,
            rrn: Some(txn.rrn),
            durable: true,
        });
    }
    let offset = cx.cfg.utc_offset_secs;
    match txn.state {
        TxnState::Held => end_hold(cx.tx, &mut txn, TxnState::Voided, offset)?,
        TxnState::Confirmed => {
            if txn.settled.is_some() || txn.refunded > 0 {
                return Ok(Flow::decline(Rc::InvalidTransaction));
            }
            if let Some(code) = reverse(cx, &mut txn)? {
                return Ok(Flow::decline(code));
            }
        }
        // Already ended: the undo's purpose is met.
        TxnState::Voided | TxnState::Expired | TxnState::Reversed => {}
    }
    let outcome = approved(Some(txn.rrn), None, Vec::new());
    txn.undo_outcome = Some(outcome.clone());
    cx.save_txn(&txn)?;
    Ok(Flow {
        outcome,
        rrn: Some(txn.rrn),
        durable: true,
    })
}

/// Reverses a confirmed, unsettled purchase or refund in full: the exact
/// inverse of its postings. Returns a decline code when it cannot.
fn reverse(cx: &Cx<'_>, txn: &mut Txn) -> TxResult<Option<ResponseCode>> {
    let m = txn.merchant;
    let amount = signed(txn.final_amount)?;
    let fee = signed(txn.fee)?;
    let offset = cx.cfg.utc_offset_secs;
    let account = txn.account.clone();
    let (kind, postings) = match (txn.code, &account) {
        (ProcessingCode::ClubPurchase, Some(acc)) => {
            if let (Some(card), true) = (&txn.card, txn.daily_tracked) {
                adjust_daily(
                    cx.tx,
                    card,
                    txn.created.local_day(offset),
                    -i128::from(txn.final_amount),
                )?;
            }
            (
                JournalKind::Reversal,
                vec![
                    (acc.clone(), amount),
                    (AccountKey::Payable(m), -txn.payable_delta),
                    (AccountKey::FeeIncome, -fee),
                ],
            )
        }
        (ProcessingCode::StorePurchase, Some(acc)) => (
            JournalKind::Reversal,
            vec![
                (acc.clone(), amount),
                (loyalty::store_counter(acc, m), -amount),
            ],
        ),
        (ProcessingCode::PointsPurchase, Some(acc)) => {
            let paid = txn.points.map_or(0, |p| p.paid);
            (
                JournalKind::Reversal,
                points::postings(acc, m, -signed(paid)?),
            )
        }
        (ProcessingCode::PointsRefund, Some(acc)) => {
            let back = txn.points.map_or(0, |p| p.returned);
            if ledger::account(cx.tx, acc)?.available() < signed(back)? {
                return Ok(Some(ResponseCode::InsufficientFunds));
            }
            let Some(orig_rrn) = txn.refund_of else {
                return Ok(Some(ResponseCode::InvalidTransaction));
            };
            if let Some(mut orig) = cx.tx.get::<Txn>(Table::Txns, orig_rrn.as_bytes())? {
                orig.refunded = orig.refunded.saturating_sub(txn.final_amount);
                if let Some(p) = orig.points.as_mut() {
                    p.returned = p.returned.saturating_sub(back);
                }
                loyalty::on_refund_reversed(cx, txn, &mut orig)?;
                cx.save_txn(&orig)?;
            }
            (
                JournalKind::RefundReversal,
                points::postings(acc, m, signed(back)?),
            )
        }
        (ProcessingCode::BankDiscount, _) => {
            if let Some(id) = txn.rule {
                let key = keys::rule(&m, id);
                if let Some(mut r) = cx
                    .tx
                    .get::<RuleRecord>(Table::Rules, &key)?
                    .filter(|r| r.rule.budget.is_some())
                {
                    r.spent = r.spent.saturating_sub(txn.discount);
                    cx.tx.put(Table::Rules, &key, &r)?;
                }
                if let Some(card) = &txn.card {
                    adjust_allowance(
                        cx.tx,
                        card,
                        id,
                        txn.created.local_day(offset),
                        -1,
                        -i128::from(txn.discount),
                    )?;
                }
            }
            (
                JournalKind::Reversal,
                vec![
                    (AccountKey::Payable(m), -txn.payable_delta),
                    (AccountKey::FeeIncome, -fee),
                ],
            )
        }
        (ProcessingCode::ClubRefund | ProcessingCode::StoreRefund, Some(acc)) => {
            if ledger::account(cx.tx, acc)?.available() < amount {
                return Ok(Some(ResponseCode::InsufficientFunds));
            }
            let Some(orig_rrn) = txn.refund_of else {
                return Ok(Some(ResponseCode::InvalidTransaction));
            };
            if let Some(mut orig) = cx.tx.get::<Txn>(Table::Txns, orig_rrn.as_bytes())? {
                orig.refunded = orig.refunded.saturating_sub(txn.final_amount);
                orig.fee_refunded = orig.fee_refunded.saturating_sub(txn.fee);
                loyalty::on_refund_reversed(cx, txn, &mut orig)?;
                cx.save_txn(&orig)?;
            }
            let postings = if txn.code == ProcessingCode::ClubRefund {
                vec![
                    (acc.clone(), -amount),
                    (AccountKey::Payable(m), -txn.payable_delta),
                    (AccountKey::FeeIncome, fee),
                ]
            } else {
                vec![
                    (acc.clone(), -amount),
                    (loyalty::store_counter(acc, m), amount),
                ]
            };
            (JournalKind::RefundReversal, postings)
        }
        _ => return Ok(Some(ResponseCode::InvalidTransaction)),
    };
    ledger::post(cx.tx, cx.now, kind, Some(txn.rrn), postings)?;
    if kind == JournalKind::Reversal {
        let all = Share {
            amount: txn.final_amount,
            last: true,
        };
        loyalty::take_back(cx, txn, None, all)?;
    }
    // A shared ledger, or one of record format 8 or before, may index the
    // item as unsettled (see `settlement`): it is not one any more.
    cx.tx
        .remove(Table::Unsettled, &keys::unsettled(&m, &txn.rrn))?;
    crate::rollup::reversed(cx, txn)?;
    txn.state = TxnState::Reversed;
    Ok(None)
}
