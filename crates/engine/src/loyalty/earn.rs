//! Earning at confirm and taking back at reversal or refund, inside the
//! terminal request's transaction.

use clubswitch_wire::{
    AccountType, Amount, AmountBlock, AmountType, Currency, MerchantId, ProcessingCode,
};

use super::{month_of_day, Program, Standing};
use crate::cx::Cx;
use crate::ledger::{self, signed};
use crate::model::{AccountKey, Card, JournalKind, Member, MemberId, Tier, Txn, UnixTime};
use crate::model::{Earned, Recovered};
use crate::notice::{self, NoticeKind};
use crate::storage::{Table, Tx, TxResult};

fn member_key(id: MemberId) -> [u8; 8] {
    id.0.to_be_bytes()
}

/// The member behind a transaction's card, if the card is enrolled.
fn member_of(tx: &Tx<'_>, txn: &Txn) -> TxResult<Option<Member>> {
    let Some(hash) = &txn.card else {
        return Ok(None);
    };
    let Some(card) = tx.get::<Card>(Table::Cards, &hash.0)? else {
        return Ok(None);
    };
    match card.member {
        Some(id) => tx.get(Table::Members, &member_key(id)),
        None => Ok(None),
    }
}

/// Moves a member to tier `to`, and tells them.
pub(crate) fn set_tier(tx: &Tx<'_>, now: UnixTime, member: &mut Member, to: Tier) -> TxResult<()> {
    notice::enqueue(
        tx,
        now,
        member,
        NoticeKind::TierChange {
            from: member.tier,
            to,
        },
    )?;
    member.tier = to;
    tx.put(Table::Members, &member_key(member.id), member)
}

/// The merchant's programme, if it has an active one.
pub(crate) fn program(tx: &Tx<'_>, merchant: &MerchantId) -> TxResult<Option<Program>> {
    Ok(tx
        .get::<Program>(Table::Programs, merchant.as_bytes())?
        .filter(|p| p.active))
}

fn points_key(member: MemberId, merchant: MerchantId) -> AccountKey {
    AccountKey::Points { member, merchant }
}

fn store_key(member: MemberId, merchant: MerchantId) -> AccountKey {
    AccountKey::Store { member, merchant }
}

/// Available (never negative) balance of a customer account.
fn available(tx: &Tx<'_>, key: &AccountKey) -> TxResult<u64> {
    Ok(u64::try_from(ledger::account(tx, key)?.available()).unwrap_or(0))
}

/// Credits `points` and `credit` (store credit) to a member at a merchant.
pub(crate) fn grant(
    tx: &Tx<'_>,
    now: UnixTime,
    kind: JournalKind,
    txn: Option<&Txn>,
    (member, merchant): (MemberId, MerchantId),
    points: u64,
    credit: u64,
) -> TxResult<()> {
    let postings = grant_postings((member, merchant), points, credit)?;
    ledger::post(tx, now, kind, txn.map(|t| t.rrn), postings)
}

/// The postings that credit `points` and `credit` (store credit) to a
/// member at a merchant.
fn grant_postings(
    (member, merchant): (MemberId, MerchantId),
    points: u64,
    credit: u64,
) -> TxResult<Vec<(AccountKey, i64)>> {
    let (p, c) = (signed(points)?, signed(credit)?);
    Ok(vec![
        (points_key(member, merchant), p),
        (AccountKey::PointsIssued(merchant), -p),
        (store_key(member, merchant), c),
        (AccountKey::StoreIssued(merchant), -c),
    ])
}

/// Turns `points` into store credit at the programme's rate.
pub(crate) fn convert(
    tx: &Tx<'_>,
    now: UnixTime,
    member: &Member,
    merchant: MerchantId,
    program: &Program,
    points: u64,
) -> TxResult<u64> {
    let credit = points.saturating_mul(program.credit_per_point);
    let (p, c) = (signed(points)?, signed(credit)?);
    ledger::post(
        tx,
        now,
        JournalKind::PointsConversion,
        None,
        vec![
            (points_key(member.id, merchant), -p),
            (AccountKey::PointsIssued(merchant), p),
            (store_key(member.id, merchant), c),
            (AccountKey::StoreIssued(merchant), -c),
        ],
    )?;
    notice::enqueue(
        tx,
        now,
        member,
        NoticeKind::PointsConverted {
            merchant,
            points,
            credit,
        },
    )?;
    Ok(credit)
}

fn points_block(currency: Currency, t: AmountType, v: u64) -> AmountBlock {
    AmountBlock::credit(
        AccountType::Unspecified,
        t,
        currency,
        Amount::new(v).unwrap_or(Amount::MAX),
    )
}

/// DE 54 block of a member's points balance at a merchant (balance
/// inquiries).
pub(crate) fn balance_block(
    tx: &Tx<'_>,
    member: MemberId,
    merchant: MerchantId,
    currency: Currency,
) -> TxResult<Option<AmountBlock>> {
    if program(tx, &merchant)?.is_none() {
        return Ok(None);
    }
    let v = available(tx, &points_key(member, merchant))?;
    Ok(Some(points_block(currency, AmountType::PointsBalance, v)))
}

/// What a confirmed purchase earns, worked out before the purchase is
/// posted so that its points and cashback join the purchase's journal
/// entry (one entry, one write, for a confirm that earns).
pub(crate) struct Earning {
    member: Member,
    standing: Standing,
    program: Option<Program>,
    month: i64,
    points: u64,
    cashback: u64,
}

/// The earning of a purchase confirmed for `charged` rials, if its card is
/// a member's: the member's standing counts the spend whether or not the
/// merchant has a programme.
pub(crate) fn earning(cx: &Cx<'_>, txn: &Txn, charged: u64) -> TxResult<Option<Earning>> {
    let tx = cx.tx;
    let Some(member) = member_of(tx, txn)? else {
        return Ok(None);
    };
    let month = month_of_day(cx.day(cx.now));
    let mut standing: Standing = tx
        .get(Table::Standing, &member_key(member.id))?
        .unwrap_or_default();
    let program = program(tx, &txn.merchant)?.filter(|p| match txn.code {
        ProcessingCode::StorePurchase => p.earn_on_store,
        ProcessingCode::PointsPurchase => false,
        _ => true,
    });
    let vip = standing.vip(month);
    let (points, cashback) = program.as_ref().map_or((0, 0), |p| {
        (
            p.points_on(charged, member.tier, vip, cx.now),
            p.cashback_on(charged),
        )
    });
    let m = standing.month_mut(month);
    m.spend = m.spend.saturating_add(charged);
    m.points = m.points.saturating_add(points);
    m.purchases = m.purchases.saturating_add(1);
    standing.purchases += 1;
    standing.last_purchase = Some(cx.now);
    Ok(Some(Earning {
        member,
        standing,
        program,
        month,
        points,
        cashback,
    }))
}

impl Earning {
    /// The member who earns.
    pub(crate) fn member(&self) -> MemberId {
        self.member.id
    }

    /// The postings of the points and cashback, for the purchase's entry.
    pub(crate) fn postings(&self, merchant: MerchantId) -> TxResult<Vec<(AccountKey, i64)>> {
        grant_postings((self.member.id, merchant), self.points, self.cashback)
    }

    /// Everything else, once the purchase (with the postings) is posted:
    /// a referral bonus, automatic conversion, the tier, what it earned
    /// (kept on the purchase), notices. Returns the DE 54 blocks to add
    /// (points earned and balance) when the merchant has a programme.
    pub(crate) fn finish(
        self,
        cx: &Cx<'_>,
        txn: &mut Txn,
        charged: u64,
    ) -> TxResult<Vec<AmountBlock>> {
        let Earning {
            mut member,
            mut standing,
            program: earns,
            month,
            points,
            cashback,
        } = self;
        let tx = cx.tx;
        let cfg = &cx.cfg.loyalty;
        let merchant = txn.merchant;
        let mut earned = Earned {
            member: member.id,
            points,
            cashback,
            credit_per_point: earns.as_ref().map_or(0, |p| p.credit_per_point),
            ..Earned::default()
        };

        if let Some(p) = &earns {
            referral(cx, &mut standing, &member, merchant, p)?;
            if let Some(step) = p.auto_convert_at {
                let balance = available(tx, &points_key(member.id, merchant))?;
                if balance >= step {
                    convert(tx, cx.now, &member, merchant, p, balance / step * step)?;
                }
            }
        }

        let tier = cfg.tier_for(standing.rolling(cfg, month));
        if tier > member.tier {
            earned.upgraded_from = Some(member.tier);
            set_tier(tx, cx.now, &mut member, tier)?;
        }
        standing.trim(cfg, month);
        tx.put(Table::Standing, &member_key(member.id), &standing)?;
        // Only what a take-back needs more than the purchase itself: the
        // spend it counted follows from the transaction.
        if earned.points > 0 || earned.cashback > 0 || earned.upgraded_from.is_some() {
            txn.earned = Some(earned);
        }

        if cfg.receipts {
            notice::enqueue(
                tx,
                cx.now,
                &member,
                NoticeKind::Receipt {
                    rrn: txn.rrn,
                    merchant,
                    amount: charged,
                    points,
                },
            )?;
        }
        if let (Some(limit), Some(acc @ AccountKey::Club(_))) = (cfg.low_balance, &txn.account) {
            let after = ledger::account(tx, acc)?.available();
            let before = after.saturating_add(signed(charged)?);
            let limit = signed(limit)?;
            if after < limit && before >= limit {
                notice::enqueue(
                    tx,
                    cx.now,
                    &member,
                    NoticeKind::LowBalance { available: after },
                )?;
            }
        }

        if earns.is_none() {
            return Ok(Vec::new());
        }
        let balance = available(tx, &points_key(member.id, merchant))?;
        Ok(vec![
            points_block(txn.currency, AmountType::PointsEarned, points),
            points_block(txn.currency, AmountType::PointsBalance, balance),
        ])
    }
}

/// Pays the referral bonus at the newcomer's first confirmed purchase at a
/// merchant whose programme has one, once.
fn referral(
    cx: &Cx<'_>,
    standing: &mut Standing,
    newcomer: &Member,
    merchant: MerchantId,
    p: &Program,
) -> TxResult<()> {
    let Some(referrer) = standing.referred_by else {
        return Ok(());
    };
    if standing.referral_paid || p.referral_points == 0 {
        return Ok(());
    }
    standing.referral_paid = true;
    let referrer = cx
        .tx
        .get::<Member>(Table::Members, &member_key(referrer))?
        .filter(|m| m.status == crate::model::Status::Active);
    for m in std::iter::once(newcomer).chain(referrer.as_ref()) {
        grant(
            cx.tx,
            cx.now,
            JournalKind::ReferralBonus,
            None,
            (m.id, merchant),
            p.referral_points,
            0,
        )?;
        notice::enqueue(
            cx.tx,
            cx.now,
            m,
            NoticeKind::ReferralBonus {
                merchant,
                points: p.referral_points,
            },
        )?;
    }
    Ok(())
}

/// The part of a purchase a take-back is for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Share {
    pub amount: u64,
    /// Whether this take-back leaves nothing of the purchase (a reversal,
    /// or the refund of what remained): it takes whatever is left.
    pub last: bool,
}

/// `part` of `total` in proportion `amount / of`, rounded down.
fn pro_rata(total: u64, amount: u64, of: u64) -> u64 {
    if of == 0 {
        return 0;
    }
    (u128::from(total) * u128::from(amount) / u128::from(of)) as u64
}

/// What a purchase counted toward the tier (the amount charged) and in
/// which local month.
fn counted(cx: &Cx<'_>, purchase: &Txn) -> (u64, i64) {
    let charged = purchase.charged();
    let at = purchase.confirmed.unwrap_or(purchase.created);
    (charged, month_of_day(cx.day(at)))
}

/// The spend of the slice `[before, after)` of a purchase's amount: exact,
/// so the slices of any sequence of refunds add up to the whole.
fn spend_slice(charged: u64, before: u64, after: u64, of: u64) -> u64 {
    pro_rata(charged, after, of) - pro_rata(charged, before, of)
}

/// Adds `spend` and `points` (signed by `sign`) to a member's month.
fn adjust_standing(
    tx: &Tx<'_>,
    member: MemberId,
    month: i64,
    spend: u64,
    points: u64,
    add: bool,
) -> TxResult<Standing> {
    let mut standing: Standing = tx
        .get(Table::Standing, &member_key(member))?
        .unwrap_or_default();
    if let Some(m) = standing.months.iter_mut().find(|m| m.month == month) {
        if add {
            m.spend = m.spend.saturating_add(spend);
            m.points = m.points.saturating_add(points);
        } else {
            m.spend = m.spend.saturating_sub(spend);
            m.points = m.points.saturating_sub(points);
        }
    }
    tx.put(Table::Standing, &member_key(member), &standing)?;
    Ok(standing)
}

/// What a transaction earned (a purchase) or recovered (a refund), taken
/// out of it: on the transaction since format version 2, in a record of its
/// own before (which leaves the earnings table as it moves).
fn take_earned(tx: &Tx<'_>, txn: &mut Txn) -> TxResult<Option<Earned>> {
    if let Some(e) = txn.earned.take() {
        return Ok(Some(e));
    }
    let legacy = tx.get::<Earned>(Table::Earnings, txn.rrn.as_bytes())?;
    if legacy.is_some() {
        tx.remove(Table::Earnings, txn.rrn.as_bytes())?;
    }
    Ok(legacy)
}

/// Takes back what a purchase brought, for `share` of it, in the
/// reversal's transaction or in `refund`'s (posted under its RRN): the
/// spend it counted toward the tier and, if it earned any, its points and
/// cashback. Points still held come back first, then the store credit they
/// were converted into; what the member has already spent is written off to
/// the merchant. What a refund recovered is kept on the refund, so that
/// undoing it gives it back. `purchase.refunded` already includes a
/// refund's amount; the caller saves both transactions.
pub(crate) fn take_back(
    cx: &Cx<'_>,
    purchase: &mut Txn,
    refund: Option<&mut Txn>,
    share: Share,
) -> TxResult<Option<Recovered>> {
    let tx = cx.tx;
    let Some(member_id) = member_of(tx, purchase)?.map(|m| m.id) else {
        return Ok(None);
    };
    let (charged, month) = counted(cx, purchase);
    let (by, after) = match &refund {
        Some(r) => (r.rrn, purchase.refunded),
        None => (purchase.rrn, purchase.final_amount),
    };
    let before = after.saturating_sub(share.amount);
    let spend = spend_slice(charged, before, after, purchase.final_amount);
    let Some(mut e) = take_earned(tx, purchase)? else {
        // Nothing earned: only the tier's spend goes back.
        adjust_standing(tx, member_id, month, spend, 0, false)?;
        return Ok(None);
    };
    // After this take-back the member keeps what the amount not refunded
    // earns, rounded down as earning is: worked out from everything
    // refunded so far, not refund by refund, or each partial refund would
    // round its own share down and a purchase refunded in slices would
    // keep points for what was paid back (10,000 earning 15 points, 9,999
    // refunded: 14 back, and a point kept for one rial).
    let not_refunded = purchase.final_amount.saturating_sub(after);
    let owed = |total: u64, returned: u64| {
        let left = total.saturating_sub(returned);
        if share.last {
            left
        } else {
            let keeps = pro_rata(total, not_refunded, purchase.final_amount);
            total
                .saturating_sub(keeps)
                .saturating_sub(returned)
                .min(left)
        }
    };
    let owed_points = owed(e.points, e.returned_points);
    let owed_cashback = owed(e.cashback, e.returned_cashback);
    let merchant = purchase.merchant;

    let points = owed_points.min(available(tx, &points_key(e.member, merchant))?);
    let mut store = available(tx, &store_key(e.member, merchant))?;
    let short = owed_points - points;
    let converted = store
        .checked_div(e.credit_per_point)
        .map_or(0, |n| short.min(n));
    let credit_for_points = converted * e.credit_per_point;
    store -= credit_for_points;
    let cashback = owed_cashback.min(store);
    let rec = Recovered {
        points,
        credit_for_points,
        cashback,
        owed_points,
        owed_cashback,
    };
    let (p, c) = (signed(points)?, signed(credit_for_points + cashback)?);
    ledger::post(
        tx,
        cx.now,
        JournalKind::LoyaltyReturn,
        Some(by),
        vec![
            (points_key(e.member, merchant), -p),
            (AccountKey::PointsIssued(merchant), p),
            (store_key(e.member, merchant), -c),
            (AccountKey::StoreIssued(merchant), c),
        ],
    )?;
    e.returned_points += owed_points;
    e.returned_cashback += owed_cashback;
    e.written_off_points += short - converted;
    e.written_off_cashback += owed_cashback - cashback;
    let standing = adjust_standing(tx, e.member, month, spend, owed_points, false)?;

    if let Some(mut member) = tx.get::<Member>(Table::Members, &member_key(e.member))? {
        // Undo an upgrade this very purchase made, if it no longer holds
        // as this month's review judges it: by the window ending last
        // month, or by this month's so far.
        let cfg = &cx.cfg.loyalty;
        let this_month = month_of_day(cx.day(cx.now));
        let now_tier = cfg
            .tier_for(standing.rolling(cfg, this_month - 1))
            .max(cfg.tier_for(standing.rolling(cfg, this_month)));
        if let Some(from) = e.upgraded_from.filter(|_| now_tier < member.tier) {
            set_tier(tx, cx.now, &mut member, now_tier.max(from))?;
            e.upgraded_from = None;
        }
        if points > 0 || credit_for_points + cashback > 0 {
            notice::enqueue(
                tx,
                cx.now,
                &member,
                NoticeKind::Returned {
                    rrn: by,
                    merchant,
                    points,
                    credit: credit_for_points + cashback,
                },
            )?;
        }
    }
    if let Some(r) = refund {
        r.earned = Some(Earned {
            member: e.member,
            refund: Some(rec),
            ..Earned::default()
        });
    }
    purchase.earned = Some(e);
    Ok(Some(rec))
}

/// A refund was undone: gives back what it took (the spend it subtracted,
/// and the points, credit and cashback it recovered) and counts the
/// purchase's earnings as not returned again. `purchase.refunded` no
/// longer includes the refund; the caller saves both transactions.
pub(crate) fn on_refund_reversed(
    cx: &Cx<'_>,
    refund: &mut Txn,
    purchase: &mut Txn,
) -> TxResult<()> {
    let tx = cx.tx;
    // What the refund recovered goes back to the member it was recovered
    // from, whoever holds the card now (it may have been linked to
    // another member since).
    let taken = take_earned(tx, refund)?;
    let member = match taken.as_ref().map(|e| e.member) {
        Some(m) => m,
        None => match member_of(tx, purchase)? {
            Some(m) => m.id,
            None => return Ok(()),
        },
    };
    let (charged, month) = counted(cx, purchase);
    let before = purchase.refunded;
    let spend = spend_slice(
        charged,
        before,
        before + refund.final_amount,
        purchase.final_amount,
    );
    let Some(rec) = taken.and_then(|e| e.refund) else {
        adjust_standing(tx, member, month, spend, 0, true)?;
        return Ok(());
    };
    adjust_standing(tx, member, month, spend, rec.owed_points, true)?;
    grant(
        tx,
        cx.now,
        JournalKind::Loyalty,
        Some(&*refund),
        (member, purchase.merchant),
        rec.points,
        rec.credit_for_points + rec.cashback,
    )?;
    let Some(mut e) = take_earned(tx, purchase)? else {
        return Ok(());
    };
    let converted = rec
        .credit_for_points
        .checked_div(e.credit_per_point)
        .unwrap_or(0);
    e.written_off_points = e
        .written_off_points
        .saturating_sub(rec.owed_points - rec.points - converted);
    e.written_off_cashback = e
        .written_off_cashback
        .saturating_sub(rec.owed_cashback - rec.cashback);
    e.returned_points = e.returned_points.saturating_sub(rec.owed_points);
    e.returned_cashback = e.returned_cashback.saturating_sub(rec.owed_cashback);
    purchase.earned = Some(e);
    Ok(())
}
