//! Points at the till (profile 1.1: 009300, 209300): a purchase paid with
//! the member's points at this merchant, at its programme's rate.
//!
//! The points move between the member's [`AccountKey::Points`] and the
//! merchant's [`AccountKey::PointsIssued`], in the purchase's own journal
//! entry, as a conversion moves them: the merchant carries what its points
//! paid for, as it carries its store credit, and no settlement follows. The
//! rate is fixed at the request (kept in [`PointsPaid::rate`]), so a
//! programme changed between request and confirm changes nothing already
//! held.

use clubswitch_wire::{
    AccountType, Amount, AmountBlock, AmountType, Currency, MerchantId, ResponseCode,
};

use crate::cx::Cx;
use crate::ledger;
use crate::loyalty;
use crate::model::{AccountKey, Member, PointsPaid};
use crate::storage::TxResult;

/// The hold of a points purchase of `rials`, or why it is declined.
pub(crate) fn hold(
    cx: &Cx<'_>,
    member: &Member,
    rials: u64,
) -> TxResult<Result<Held, ResponseCode>> {
    let Some(till) = loyalty::program(cx.tx, &cx.merchant.id)?.and_then(|p| p.till) else {
        return Ok(Err(ResponseCode::NotPermittedToCardholder));
    };
    let points = till.points_for(rials);
    if points < till.min_points {
        return Ok(Err(ResponseCode::InvalidAmount));
    }
    let account = account(member, cx.merchant.id);
    if !ledger::hold(cx.tx, &account, points)? {
        return Ok(Err(ResponseCode::InsufficientFunds));
    }
    Ok(Ok(Held {
        account,
        paid: PointsPaid {
            rate: till.rials_per_point,
            held: points,
            paid: 0,
            returned: 0,
        },
    }))
}

/// Points held for a purchase.
pub(crate) struct Held {
    pub account: AccountKey,
    pub paid: PointsPaid,
}

fn account(member: &Member, merchant: MerchantId) -> AccountKey {
    AccountKey::Points {
        member: member.id,
        merchant,
    }
}

/// The points that pay for `rials` at the rate fixed at request: rounded
/// up, and never more than were held.
pub(crate) fn paid_for(p: &PointsPaid, rials: u64) -> u64 {
    rials.div_ceil(p.rate.max(1)).min(p.held)
}

/// The points a refund of `rials` gives back: in proportion to what the
/// purchase paid, rounded down; the refund of the rest gives back whatever
/// is left, so a purchase refunded in full gives back all its points.
pub(crate) fn refunded_for(p: &PointsPaid, rials: u64, refundable: u64, confirmed: u64) -> u64 {
    let left = p.paid.saturating_sub(p.returned);
    if rials >= refundable || confirmed == 0 {
        return left;
    }
    let share = u128::from(p.paid) * u128::from(rials) / u128::from(confirmed);
    u64::try_from(share).unwrap_or(u64::MAX).min(left)
}

/// The postings that move `points` from the member to the merchant
/// (negative `points`: back to the member).
pub(crate) fn postings(
    account: &AccountKey,
    merchant: MerchantId,
    points: i64,
) -> Vec<(AccountKey, i64)> {
    vec![
        (account.clone(), -points),
        (AccountKey::PointsIssued(merchant), points),
    ]
}

/// DE 54 of a points purchase: the points it holds or paid (`00/95`, when
/// `redeemed` is given) and the points available after (`00/94`).
pub(crate) fn blocks(
    cx: &Cx<'_>,
    account: &AccountKey,
    currency: Currency,
    redeemed: Option<u64>,
) -> TxResult<Vec<AmountBlock>> {
    let block = |t, v: u64| {
        AmountBlock::credit(
            AccountType::Unspecified,
            t,
            currency,
            Amount::new(v).unwrap_or(Amount::MAX),
        )
    };
    let available = ledger::account(cx.tx, account)?.available().max(0);
    let mut out = Vec::with_capacity(2);
    if let Some(r) = redeemed {
        out.push(block(AmountType::PointsRedeemed, r));
    }
    out.push(block(AmountType::PointsBalance, available.unsigned_abs()));
    Ok(out)
}
