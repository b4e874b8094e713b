//! Refund (0200, 209100 / 209200 / 209300) of a confirmed purchase, in full
//! or in part, to where the value came from (for a points purchase, the
//! points it paid with, in proportion).

use clubswitch_wire::{ProcessingCode, ResponseCode};

use super::{approved, points, Flow};
use crate::cx::Cx;
use crate::ledger::{self, signed};
use crate::loyalty::{self, Share};
use crate::model::{AccountKey, JournalKind, PointsPaid, Txn, TxnState};
use crate::request::Refund;
use crate::storage::{Table, TxResult};

pub(crate) fn run(cx: &Cx<'_>, req: &Refund) -> TxResult<Flow> {
    use ResponseCode as Rc;
    let Some(purchase_code) = req.code.refunds() else {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    };
    let amount = req.amount.value();
    if amount == 0 || !cx.currency_ok(req.currency) {
        return Ok(Flow::decline(Rc::InvalidAmount));
    }
    let Some(mut purchase) = cx.tx.get::<Txn>(Table::Txns, req.rrn.as_bytes())? else {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    };
    if purchase.merchant != cx.merchant.id {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    }
    // Past the window a purchase is as if archived, whether or not the
    // archiver took it yet (a shared ledger never archives).
    let window = cx.cfg.refund_window_secs;
    if purchase
        .confirmed
        .is_some_and(|c| cx.now.0.saturating_sub(c.0) > window)
    {
        return Ok(Flow::decline(Rc::OriginalNotFound));
    }
    if purchase.code != purchase_code
        || purchase.refund_of.is_some()
        || purchase.state != TxnState::Confirmed
    {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    }
    if req.currency != purchase.currency {
        return Ok(Flow::decline(Rc::InvalidAmount));
    }
    let refundable = purchase.final_amount - purchase.refunded;
    if amount > refundable {
        return Ok(Flow::decline(Rc::InvalidAmount));
    }
    let Some(acc) = purchase.account.clone() else {
        return Ok(Flow::decline(Rc::SystemMalfunction));
    };
    // The fee goes back in proportion to what has been refunded so far,
    // this refund included, rounded down: so a purchase refunded in full
    // returns all its fee, and no refund returns more fee than its amount
    // (the fee is at most the purchase). Rounding each refund on its own
    // would leave the last one to return every earlier one's rounding,
    // more than a one-rial refund can carry. (A purchase refunded in parts
    // by an earlier release, which rounded each, may have a rial or two
    // more to return than its last refunds can carry: they carry what
    // they can.)
    let fee_back = u64::try_from(
        u128::from(purchase.fee) * u128::from(purchase.refunded + amount)
            / u128::from(purchase.final_amount),
    )
    .unwrap_or(purchase.fee)
    .saturating_sub(purchase.fee_refunded)
    .min(amount);
    let m = cx.merchant.id;
    let mut points_back = None;
    let (payable_delta, postings) = match req.code {
        ProcessingCode::ClubRefund => {
            let delta = -signed(amount - fee_back)?;
            (
                delta,
                vec![
                    (acc.clone(), signed(amount)?),
                    (AccountKey::Payable(m), delta),
                    (AccountKey::FeeIncome, -signed(fee_back)?),
                ],
            )
        }
        ProcessingCode::PointsRefund => {
            let Some(paid) = purchase.points.as_mut() else {
                return Ok(Flow::decline(Rc::SystemMalfunction));
            };
            let back = points::refunded_for(paid, amount, refundable, purchase.final_amount);
            paid.returned += back;
            points_back = Some(PointsPaid {
                rate: paid.rate,
                returned: back,
                ..PointsPaid::default()
            });
            (0, points::postings(&acc, m, -signed(back)?))
        }
        _ => (
            0,
            vec![
                (acc.clone(), signed(amount)?),
                (loyalty::store_counter(&acc, m), -signed(amount)?),
            ],
        ),
    };

    let (rrn, auth_id) = cx.new_rrn()?;
    ledger::post(cx.tx, cx.now, JournalKind::Refund, Some(rrn), postings)?;
    purchase.refunded += amount;
    purchase.fee_refunded += fee_back;

    let mut refund = Txn {
        rrn,
        auth_id,
        code: req.code,
        request: req.key,
        merchant: m,
        card: purchase.card,
        account: Some(acc.clone()),
        currency: req.currency,
        amount,
        final_amount: amount,
        discount: 0,
        fee: fee_back,
        rule: None,
        state: TxnState::Confirmed,
        created: cx.now,
        expires: cx.now,
        confirmed: Some(cx.now),
        confirm_outcome: None,
        undo_outcome: None,
        settled: None,
        refunded: 0,
        fee_refunded: 0,
        refund_of: Some(purchase.rrn),
        payable_delta,
        daily_tracked: false,
        earned: None,
        points: points_back,
    };
    let share = Share {
        amount,
        last: amount == refundable,
    };
    loyalty::take_back(cx, &mut purchase, Some(&mut refund), share)?;
    cx.save_txn(&purchase)?;
    crate::rollup::refunded(cx, &refund)?;
    cx.save_txn(&refund)?;
    if refund.settles() {
        crate::settlement::item_confirmed(cx.tx, &m, &rrn)?;
    }
    let blocks = match points_back {
        Some(p) => points::blocks(cx, &acc, req.currency, Some(p.returned))?,
        None => cx.balance_blocks(&acc, req.currency)?,
    };
    Ok(Flow {
        outcome: approved(Some(rrn), Some(auth_id), blocks),
        rrn: Some(rrn),
        durable: true,
    })
}
