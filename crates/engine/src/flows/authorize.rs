//! Phase 1 (0100): check terminal, card, amount and limits, then hold; or
//! answer a balance inquiry.

use clubswitch_wire::fields::civil_from_days;
use clubswitch_wire::{Amount, AmountBlock, Expiry, ProcessingCode, ResponseCode};

use super::{
    adjust_allowance, adjust_daily, approved, discount_blocks, hold_started, points, Flow,
};
use crate::cx::Cx;
use crate::ledger;
use crate::loyalty;
use crate::model::{keys, AccountKey, Card, CardHash, CardKind, Member, Status, Txn, TxnState};
use crate::request::Authorize;
use crate::rules::{self, AllowanceUse, Context, RuleRecord};
use crate::storage::{Table, TxResult};

/// Whether a card valid through `exp` (end of that month) has expired at
/// local day `day`.
pub(crate) fn expired(exp: Expiry, day: i64) -> bool {
    let (y, m, _) = civil_from_days(day);
    (2000 + i64::from(exp.year), exp.month) < (y, m)
}

fn offered(cx: &Cx<'_>, code: ProcessingCode) -> bool {
    let o = cx.merchant.offers;
    match code {
        ProcessingCode::BankDiscount => o.discount,
        ProcessingCode::ClubPurchase | ProcessingCode::ClubBalance => o.club,
        ProcessingCode::StorePurchase | ProcessingCode::StoreBalance => o.store,
        // Whether the programme allows it is the flow's to answer (57).
        ProcessingCode::PointsPurchase => true,
        ProcessingCode::ClubRefund | ProcessingCode::StoreRefund | ProcessingCode::PointsRefund => {
            false
        }
    }
}

pub(crate) fn run(cx: &Cx<'_>, req: &Authorize, hash: Option<CardHash>) -> TxResult<Flow> {
    use ResponseCode as Rc;
    let code = req.code;
    if code.is_refund() {
        return Ok(Flow::decline(Rc::InvalidTransaction));
    }
    if !offered(cx, code) {
        return Ok(Flow::decline(Rc::NotPermittedToTerminal));
    }
    if !cx.currency_ok(req.currency) {
        return Ok(Flow::decline(Rc::InvalidAmount));
    }
    let amount = match (code.is_purchase(), req.amount) {
        (true, Some(a)) if !a.is_zero() => a,
        (true, _) => return Ok(Flow::decline(Rc::InvalidAmount)),
        (false, _) => Amount::ZERO,
    };
    if code.is_purchase() && cx.merchant.max_amount.is_some_and(|m| amount > m) {
        return Ok(Flow::decline(Rc::ExceedsAmountLimit));
    }

    // The card.
    let pan = &req.card.pan;
    let Some(hash) = hash else {
        return Ok(Flow::decline(Rc::SystemMalfunction));
    };
    if !pan.luhn_ok() {
        return Ok(Flow::decline(Rc::InvalidCardNumber));
    }
    let today = cx.day(cx.now);
    if req.card.expiry.is_some_and(|e| expired(e, today)) {
        return Ok(Flow::decline(Rc::ExpiredCard));
    }
    let card: Option<Card> = cx.tx.get(Table::Cards, &hash.0)?;
    let bank = code == ProcessingCode::BankDiscount;
    let card = match card {
        None if bank => None,
        None => return Ok(Flow::decline(Rc::InvalidCardNumber)),
        Some(c) if (c.kind == CardKind::Bank) != bank => {
            return Ok(Flow::decline(Rc::NotPermittedToCardholder))
        }
        Some(c) => Some(c),
    };
    let mut member: Option<Member> = None;
    if let Some(c) = &card {
        if c.status != Status::Active {
            return Ok(Flow::decline(Rc::RestrictedCard));
        }
        if c.expiry.is_some_and(|e| expired(e, today)) {
            return Ok(Flow::decline(Rc::ExpiredCard));
        }
        if c.max_amount.is_some_and(|m| amount > m) {
            return Ok(Flow::decline(Rc::ExceedsAmountLimit));
        }
        if let Some(id) = c.member {
            member = cx.tx.get(Table::Members, &id.0.to_be_bytes())?;
            if member.as_ref().is_some_and(|m| m.status != Status::Active) {
                return Ok(Flow::decline(Rc::DoNotHonour));
            }
        }
    }

    let account = match (code, &card, &member) {
        (ProcessingCode::ClubPurchase | ProcessingCode::ClubBalance, Some(c), _) => match c.account
        {
            Some(id) => Some(AccountKey::Club(id)),
            None => return Ok(Flow::decline(Rc::NotPermittedToCardholder)),
        },
        (ProcessingCode::StorePurchase, _, Some(m)) => Some(loyalty::store_account(
            cx.tx,
            m.id,
            cx.merchant.id,
            amount.value(),
        )?),
        (ProcessingCode::StoreBalance, _, Some(m)) => Some(AccountKey::Store {
            member: m.id,
            merchant: cx.merchant.id,
        }),
        (
            ProcessingCode::StorePurchase
            | ProcessingCode::StoreBalance
            | ProcessingCode::PointsPurchase,
            _,
            None,
        ) => return Ok(Flow::decline(Rc::NotPermittedToCardholder)),
        _ => None,
    };

    // Inquiries: answer and keep nothing but the request record.
    if !code.is_purchase() {
        let Some(acc) = &account else {
            return Ok(Flow::decline(Rc::NotPermittedToCardholder));
        };
        let (rrn, _) = cx.new_rrn()?;
        let mut blocks = cx.balance_blocks(acc, req.currency)?;
        if let (ProcessingCode::StoreBalance, Some(m)) = (code, &member) {
            blocks.extend(loyalty::balance_block(
                cx.tx,
                m.id,
                cx.merchant.id,
                req.currency,
            )?);
        }
        return Ok(Flow {
            outcome: approved(Some(rrn), None, blocks),
            rrn: Some(rrn),
            durable: false,
        });
    }

    let (mut discount, mut fee, mut rule) = (0u64, 0u64, None);
    match code {
        ProcessingCode::ClubPurchase => {
            if let Some(limit) = card.as_ref().and_then(|c| c.daily_limit) {
                let spent: u64 = cx
                    .tx
                    .get(Table::DailySpend, &keys::daily(&hash, today))?
                    .unwrap_or(0);
                if spent.saturating_add(amount.value()) > limit.value() {
                    return Ok(Flow::decline(Rc::ExceedsAmountLimit));
                }
            }
        }
        ProcessingCode::BankDiscount => {
            let ids: Vec<u64> = cx
                .tx
                .get(Table::Rules, cx.merchant.id.as_bytes())?
                .unwrap_or_default();
            let mut records = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = cx
                    .tx
                    .get::<RuleRecord>(Table::Rules, &keys::rule(&cx.merchant.id, id))?
                {
                    records.push(r);
                }
            }
            let groups = member.as_ref().map(|m| m.groups.as_slice()).unwrap_or(&[]);
            let rcx = Context {
                amount: amount.value(),
                pan: pan.expose(),
                tier: member.as_ref().map(|m| m.tier),
                groups,
                now: cx.now,
                utc_offset: cx.cfg.utc_offset_secs,
            };
            let mut lookup_err = None;
            let chosen = rules::choose(&records, &rcx, |r| {
                if r.daily_count.is_none() && r.daily_amount.is_none() {
                    return AllowanceUse::default();
                }
                match cx
                    .tx
                    .get(Table::Allowance, &keys::allowance(&hash, r.id, today))
                {
                    Ok(v) => v.unwrap_or_default(),
                    Err(e) => {
                        lookup_err = Some(e);
                        AllowanceUse::default()
                    }
                }
            });
            if let Some(e) = lookup_err {
                return Err(e);
            }
            if let Some((rec, d)) = chosen {
                discount = d;
                rule = Some(rec.rule.id);
                if rec.rule.budget.is_some() {
                    let mut rec = rec.clone();
                    rec.held = rec.held.saturating_add(d);
                    cx.tx.put(
                        Table::Rules,
                        &keys::rule(&cx.merchant.id, rec.rule.id),
                        &rec,
                    )?;
                }
                if rec.rule.daily_count.is_some() || rec.rule.daily_amount.is_some() {
                    adjust_allowance(cx.tx, &hash, rec.rule.id, today, 1, i128::from(d))?;
                }
            }
            fee = rules::fee(cx.merchant, amount.value(), discount);
        }
        _ => {}
    }

    // The hold.
    let daily_tracked = code == ProcessingCode::ClubPurchase
        && card.as_ref().is_some_and(|c| c.daily_limit.is_some());
    let mut account = account;
    let mut points = None;
    if let (ProcessingCode::PointsPurchase, Some(m)) = (code, &member) {
        match points::hold(cx, m, amount.value())? {
            Ok(held) => {
                account = Some(held.account);
                points = Some(held.paid);
            }
            Err(rc) => return Ok(Flow::decline(rc)),
        }
    } else if let Some(acc) = &account {
        if !ledger::hold(cx.tx, acc, amount.value())? {
            return Ok(Flow::decline(Rc::InsufficientFunds));
        }
        if daily_tracked {
            adjust_daily(cx.tx, &hash, today, i128::from(amount.value()))?;
        }
    }

    let (rrn, auth_id) = cx.new_rrn()?;
    let expires = cx.now.plus(cx.cfg.hold_ttl_secs);
    let txn = Txn {
        rrn,
        auth_id,
        code,
        request: req.key,
        merchant: cx.merchant.id,
        card: Some(hash),
        account: account.clone(),
        currency: req.currency,
        amount: amount.value(),
        final_amount: 0,
        discount,
        fee,
        rule,
        state: TxnState::Held,
        created: cx.now,
        expires,
        confirmed: None,
        confirm_outcome: None,
        undo_outcome: None,
        settled: None,
        refunded: 0,
        fee_refunded: 0,
        refund_of: None,
        payable_delta: 0,
        daily_tracked,
        earned: None,
        points,
    };
    cx.save_txn(&txn)?;
    hold_started(cx.tx, &txn)?;

    let blocks: Vec<AmountBlock> = match (&account, points) {
        (Some(acc), Some(p)) => points::blocks(cx, acc, req.currency, Some(p.held))?,
        (Some(acc), None) => cx.balance_blocks(acc, req.currency)?,
        (None, _) => discount_blocks(req.currency, amount.value(), discount, fee),
    };
    Ok(Flow {
        outcome: approved(Some(rrn), Some(auth_id), blocks),
        rrn: Some(rrn),
        durable: false,
    })
}
