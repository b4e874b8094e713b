//! Admin API for cards: club cards issued one at a time or in printed
//! batches, bank cards enrolled, finding a card by number, the actions on
//! a card (block, expiry, limits, link, renew, top-up), its history, and
//! store credit granted to a member at a merchant.

use axum::extract::{Path, State};
use axum::Json;
use clubswitch_engine::{AccountKey, Card, CardKind, MemberId, NewCard, Status, UnixTime};
use clubswitch_wire::CardNumber;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    amount, bad, blocking, card_hash, expiry, merchant_id, not_found, pan, txn_json, ApiResult,
    Http, Key, Shared,
};

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CardView {
    hash: String,
    last4: String,
    #[schema(value_type = String, example = "club")]
    kind: CardKind,
    #[schema(required = true)]
    member: Option<u64>,
    #[schema(value_type = String, example = "active")]
    status: Status,
    #[schema(required = true)]
    expiry: Option<String>,
    #[schema(required = true)]
    balance: Option<i64>,
    #[schema(required = true)]
    available: Option<i64>,
    #[schema(required = true)]
    replaced_by: Option<String>,
}

/// A card as the API shows it, with its club balance (read on the
/// blocking pool).
pub(super) async fn card_view(h: &Http, c: &Card) -> ApiResult<CardView> {
    let account = c.account;
    let acc = blocking(h, move |e| {
        account
            .map(|id| e.admin().account(&AccountKey::Club(id)))
            .transpose()
    })
    .await?;
    Ok(CardView {
        hash: c.hash.to_hex(),
        last4: String::from_utf8_lossy(&c.last4).into_owned(),
        kind: c.kind,
        member: c.member.map(|m| m.0),
        status: c.status,
        expiry: c
            .expiry
            .map(|e| String::from_utf8_lossy(&e.to_yymm()).into_owned()),
        balance: acc.as_ref().map(|a| a.balance),
        available: acc.map(|a| a.available()),
        replaced_by: c.replaced_by.map(|r| r.to_hex()),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CardIn {
    pan: String,
    #[serde(default = "club")]
    #[schema(value_type = String, example = "club")]
    kind: CardKind,
    member: Option<u64>,
    expiry: Option<String>,
    max_amount: Option<u64>,
    daily_limit: Option<u64>,
}

fn club() -> CardKind {
    CardKind::Club
}

pub(super) async fn issue_card(
    State(h): Shared,
    Json(c): Json<CardIn>,
) -> ApiResult<Json<CardView>> {
    let new = NewCard {
        pan: pan(&c.pan)?,
        kind: c.kind,
        member: c.member.map(MemberId),
        expiry: expiry(c.expiry.as_deref())?,
        max_amount: c.max_amount.map(amount).transpose()?,
        daily_limit: c.daily_limit.map(amount).transpose()?,
    };
    let card = blocking(&h, move |e| e.admin().issue_card(&new))
        .await?
        .await?;
    Ok(Json(card_view(&h, &card).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct BatchIn {
    /// Card-number prefix (6 to 10 digits); the rest is a sequence and the
    /// Luhn digit.
    bin: String,
    count: u32,
    /// First sequence number.
    #[serde(default)]
    start: u64,
    #[serde(default = "sixteen")]
    length: usize,
    expiry: Option<String>,
    #[serde(default)]
    names: Vec<String>,
}

fn sixteen() -> usize {
    16
}

/// A batch of club cards issued: what the card printer needs.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct BatchIssued {
    /// One record per card, in sequence order.
    personalization: Vec<Personalization>,
}

/// One card of a batch, for the printer: the only place the switch ever
/// shows a card number in clear.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Personalization {
    /// The card number, in clear.
    pan: String,
    /// YYMM, as asked (`null`: none).
    #[schema(required = true)]
    expiry: Option<String>,
    /// The name to print, as asked (empty: none).
    name: String,
    /// The member the card was issued to.
    member: u64,
    /// The card's hash, as every other route names it.
    hash: String,
}

/// Issues a batch of club cards and returns the personalization records for
/// the card printer: the only place the switch ever shows card numbers.
pub(super) async fn issue_batch(
    State(h): Shared,
    Json(b): Json<BatchIn>,
) -> ApiResult<Json<BatchIssued>> {
    if !(6..=10).contains(&b.bin.len()) || !b.bin.bytes().all(|d| d.is_ascii_digit()) {
        return Err(bad("bin must be 6 to 10 digits"));
    }
    if !(12..=19).contains(&b.length) || b.count == 0 || b.count > 10_000 {
        return Err(bad("length must be 12-19 and count 1-10000"));
    }
    let exp = expiry(b.expiry.as_deref())?;
    let seq_digits = b.length - b.bin.len() - 1;
    let mut planned = Vec::new();
    for i in 0..u64::from(b.count) {
        let seq = b.start + i;
        let body = format!("{}{:0width$}", b.bin, seq, width = seq_digits);
        if body.len() != b.length - 1 {
            return Err(bad("the sequence does not fit the card length"));
        }
        let number = (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|n| n.parse::<CardNumber>().is_ok_and(|p| p.luhn_ok()))
            .ok_or_else(|| bad("no Luhn digit"))?;
        let name = b.names.get(i as usize).cloned().unwrap_or_default();
        planned.push((name, pan(&number)?, exp));
    }
    // One transaction: a batch is issued whole or not at all.
    let cards = planned.clone();
    let issued = blocking(&h, move |e| e.admin().issue_batch(&cards))
        .await?
        .await?;
    let personalization = planned
        .iter()
        .zip(&issued)
        .map(|((name, pan, _), (member, card))| Personalization {
            pan: String::from_utf8_lossy(pan.expose()).into_owned(),
            expiry: b.expiry.clone(),
            name: name.clone(),
            member: member.id.0,
            hash: card.hash.to_hex(),
        })
        .collect();
    tracing::info!(count = b.count, "issued a card batch");
    Ok(Json(BatchIssued { personalization }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PanIn {
    pub(super) pan: String,
}

pub(super) async fn find_card(State(h): Shared, Json(p): Json<PanIn>) -> ApiResult<Json<CardView>> {
    let hash = h.switch.engine.card_hash(&pan(&p.pan)?);
    let c = blocking(&h, move |e| e.admin().card(&hash))
        .await?
        .ok_or_else(|| not_found("card"))?;
    Ok(Json(card_view(&h, &c).await?))
}

pub(super) async fn get_card(
    State(h): Shared,
    Path(hash): Path<String>,
) -> ApiResult<Json<CardView>> {
    let hash = card_hash(&hash)?;
    let c = blocking(&h, move |e| e.admin().card(&hash))
        .await?
        .ok_or_else(|| not_found("card"))?;
    Ok(Json(card_view(&h, &c).await?))
}

pub(super) async fn card_history(State(h): Shared, Path(hash): Path<String>) -> ApiResult {
    let hash = card_hash(&hash)?;
    let ts = blocking(&h, move |e| e.admin().card_history(&hash)).await?;
    Ok(Json(Value::Array(ts.iter().map(txn_json).collect())))
}

pub(super) async fn card_action(
    State(h): Shared,
    k: Key,
    Path((hash, action)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> ApiResult<Json<CardView>> {
    let hash = card_hash(&hash)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let update =
        |f: Box<dyn Fn(&mut Card) + Send>| blocking(&h, move |e| e.admin().update_card(&hash, f));
    let card = match action.as_str() {
        "block" => update(Box::new(|c| c.status = Status::Blocked)).await?,
        "unblock" => update(Box::new(|c| c.status = Status::Active)).await?,
        "expiry" => {
            let e = expiry(body["expiry"].as_str())?;
            update(Box::new(move |c| c.expiry = e)).await?
        }
        "limits" => {
            let max = body["max_amount"].as_u64().map(amount).transpose()?;
            let daily = body["daily_limit"].as_u64().map(amount).transpose()?;
            update(Box::new(move |c| {
                c.max_amount = max;
                c.daily_limit = daily;
            }))
            .await?
        }
        "link" => {
            let m = MemberId(
                body["member"]
                    .as_u64()
                    .ok_or_else(|| bad("member is required"))?,
            );
            blocking(&h, move |e| e.admin().member(m))
                .await?
                .ok_or_else(|| not_found("member"))?;
            update(Box::new(move |c| c.member = Some(m))).await?
        }
        "renew" => {
            let p = pan(body["pan"].as_str().ok_or_else(|| bad("pan is required"))?)?;
            let e = expiry(body["expiry"].as_str())?;
            blocking(&h, move |en| en.admin().renew_card(&hash, &p, e)).await?
        }
        "top-up" => {
            let a = amount(
                body["amount"]
                    .as_u64()
                    .ok_or_else(|| bad("amount is required"))?,
            )?;
            // The balance answered is the one the top-up left, so a repeat
            // under its key answers exactly as the first did.
            let (card, acc) = blocking(&h, move |e| {
                let done = k.admin(e).top_up(&hash, a, UnixTime::now())?;
                let card = e.admin().card(&hash)?.ok_or_else(|| {
                    clubswitch_engine::EngineError::NotFound {
                        what: "card",
                        key: hash.to_hex(),
                    }
                })?;
                Ok(done.map(|acc| (card, acc)))
            })
            .await?
            .await?;
            let mut view = card_view(&h, &card).await?;
            view.balance = Some(acc.balance);
            view.available = Some(acc.available());
            return Ok(Json(view));
        }
        other => return Err(not_found(&format!("card action {other:?}"))),
    };
    let card = card.await?;
    Ok(Json(card_view(&h, &card).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CreditIn {
    member: u64,
    merchant: String,
    amount: u64,
}

/// A member's store credit at a merchant after a grant, in rials.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CreditView {
    balance: i64,
    /// The balance less what pending purchases hold.
    available: i64,
}

pub(super) async fn grant_store_credit(
    State(h): Shared,
    k: Key,
    Json(c): Json<CreditIn>,
) -> ApiResult<Json<CreditView>> {
    let (member, merchant, amount) = (
        MemberId(c.member),
        merchant_id(&c.merchant)?,
        amount(c.amount)?,
    );
    let acc = blocking(&h, move |e| {
        k.admin(e)
            .grant_store_credit(member, &merchant, amount, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(CreditView {
        balance: acc.balance,
        available: acc.available(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundIn {
    /// The merchant the purchase was made at (a cashier: its own).
    merchant: String,
    /// The purchase's RRN (DE 37 on its receipt).
    rrn: String,
    /// Rials to refund: all that is left, or part.
    amount: u64,
}

/// A refund done at the desk.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RefundView {
    /// The refund's own RRN.
    rrn: String,
    /// The purchase it refunds.
    purchase: String,
    amount: u64,
    /// What is left to refund of the purchase.
    refundable: u64,
}

/// A refund of a confirmed club, store-credit or points purchase, as its
/// terminal's 0200 would make it: for a cashier at the desk, whose
/// terminal cannot.
pub(super) async fn refund(
    State(h): Shared,
    k: Key,
    Json(r): Json<RefundIn>,
) -> ApiResult<Json<RefundView>> {
    let merchant = merchant_id(&r.merchant)?;
    let rrn: clubswitch_wire::Rrn = r
        .rrn
        .parse()
        .map_err(|_| bad("rrn: the purchase's 12-character RRN"))?;
    let a = amount(r.amount)?;
    let done = blocking(&h, move |e| {
        k.admin(e).refund(&merchant, &rrn, a, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(RefundView {
        rrn: done.rrn.as_str().to_owned(),
        purchase: done.purchase.as_str().to_owned(),
        amount: done.amount,
        refundable: done.refundable,
    }))
}
