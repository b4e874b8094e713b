//! Admin API for loyalty: merchants' programmes, members' points and
//! standing, conversion on request, referrals, the period review and the
//! notice outbox.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clubswitch_engine::loyalty::month_of_day;
use clubswitch_engine::loyalty::{Coalition, Draw, DrawSpec, Segment};
use clubswitch_engine::{Engine, Unit};
use clubswitch_engine::{MemberId, Program, ReferralCode, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    bad, blocking, blocking_api, local_days, merchant_id, not_found, ApiError, ApiResult, Key,
    Shared,
};
use crate::config::format_date;

pub(super) async fn get_program(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let merchant = merchant_id(&id)?;
    let p = blocking(&h, move |e| e.loyalty().program(&merchant))
        .await?
        .ok_or_else(|| not_found("programme"))?;
    Ok(Json(serde_json::to_value(&p).unwrap_or_default()))
}

pub(super) async fn put_program(
    State(h): Shared,
    Path(id): Path<String>,
    Json(p): Json<Program>,
) -> ApiResult {
    let (merchant, program) = (merchant_id(&id)?, p.clone());
    blocking(&h, move |e| e.loyalty().put_program(&merchant, &program))
        .await?
        .await?;
    Ok(Json(serde_json::to_value(&p).unwrap_or_default()))
}

/// Tier, VIP, referral code, the rolling figure, and points and store
/// credit by merchant with what of them expires when.
pub(super) async fn member_loyalty(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    blocking_api(&h, move |e| member_loyalty_of(e, id)).await
}

fn member_loyalty_of(e: &Engine, id: u64) -> ApiResult {
    let member = e
        .admin()
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    let cfg = &e.config().loyalty;
    let standing = e.loyalty().standing(member.id)?.unwrap_or_default();
    let month = month_of_day(UnixTime::now().local_day(e.config().utc_offset_secs));
    let balances: Vec<Value> = e
        .loyalty()
        .member_balances(member.id)?
        .into_iter()
        .map(|(m, points, credit)| {
            let expiring: Vec<Value> = e
                .loyalty()
                .expiring(member.id, &m)?
                .into_iter()
                .map(|x| {
                    let unit = match x.unit {
                        Unit::Points => "points",
                        Unit::Credit => "store_credit",
                    };
                    json!({ (unit): x.amount, "valid_through": format_date(x.valid_through) })
                })
                .collect();
            Ok(json!({
                "merchant": m.as_str(),
                "points": points.available(),
                "store_credit": credit.available(),
                "expiring": expiring,
            }))
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(json!({
        "member": member.id.0,
        "tier": member.tier,
        "tier_name": cfg.tier_names[member.tier as usize],
        "rolling": standing.rolling(cfg, month),
        "window_months": cfg.window_months,
        "vip": standing.vip(month),
        "referral_code": ReferralCode(member.id).to_string(),
        "referred_by": standing.referred_by.map(|m| m.0),
        "purchases": standing.purchases,
        "last_purchase": standing.last_purchase.map(|t| t.0),
        "balances": balances,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConvertIn {
    merchant: String,
    /// Default: all.
    points: Option<u64>,
}

pub(super) async fn convert(
    State(h): Shared,
    k: Key,
    Path(id): Path<u64>,
    Json(c): Json<ConvertIn>,
) -> ApiResult {
    let merchant = merchant_id(&c.merchant)?;
    let (points, credit) = blocking(&h, move |e| {
        k.loyalty(e)
            .convert_points(MemberId(id), &merchant, c.points, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(json!({ "points": points, "credit": credit })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PointsIn {
    member: u64,
    merchant: String,
    /// Points to grant; negative: to take back (at most what is available).
    points: i64,
}

/// A member's points after a grant.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PointsView {
    member: u64,
    merchant: String,
    balance: i64,
    available: i64,
}

pub(super) async fn grant_points(
    State(h): Shared,
    k: Key,
    Json(p): Json<PointsIn>,
) -> ApiResult<Json<PointsView>> {
    let merchant = merchant_id(&p.merchant)?;
    let member = MemberId(p.member);
    let acc = blocking(&h, move |e| {
        k.loyalty(e)
            .grant_points(member, &merchant, p.points, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(PointsView {
        member: member.0,
        merchant: merchant.as_str().to_owned(),
        balance: acc.balance,
        available: acc.available(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReferIn {
    code: String,
}

pub(super) async fn refer(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(r): Json<ReferIn>,
) -> ApiResult {
    let code: ReferralCode = r.code.parse().map_err(|_| bad("not a referral code"))?;
    blocking(&h, move |e| e.loyalty().refer(MemberId(id), code))
        .await?
        .await?;
    Ok(Json(json!({ "member": id, "referred_by": code.0 .0 })))
}

/// Runs this month's period review now, if it has not run.
pub(super) async fn review(State(h): Shared) -> ApiResult {
    let r = blocking(&h, |e| e.loyalty().review_standing(UnixTime::now())).await?;
    Ok(Json(serde_json::to_value(&r).unwrap_or_default()))
}

/// Today's daily pass now, before its hour if need be (`null` if it is
/// done for today).
pub(super) async fn daily(State(h): Shared) -> ApiResult {
    let r = blocking(&h, |e| e.loyalty().daily_pass_now(UnixTime::now())).await?;
    Ok(Json(serde_json::to_value(&r).unwrap_or_default()))
}

/// The first notices waiting in the outbox (phone numbers masked).
pub(super) async fn notices(State(h): Shared) -> ApiResult {
    let (waiting, total) = blocking(&h, |e| {
        Ok((
            e.outbox().due(UnixTime(i64::MAX), 100, 100)?,
            e.outbox().len(),
        ))
    })
    .await?;
    let list: Vec<Value> = waiting
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "member": n.member.0,
                "to": crate::notify::mask_phone(&n.phone),
                "at": n.at.0,
                "notice": crate::notify::kind_json(&n.kind),
                "attempts": n.attempts,
                "next_at": n.next_at.0,
                "last_error": n.last_error,
            })
        })
        .collect();
    Ok(Json(json!({ "waiting": total, "first": list })))
}

/// Local days `from` and `to` (YYYY-MM-DD, default today) as the Unix
/// times of their start and of the end of `to`.
fn period(q: &HashMap<String, String>, offset: i64) -> ApiResult<(UnixTime, UnixTime)> {
    let (from, to) = local_days(q, offset)?;
    Ok((
        UnixTime(from * 86_400 - offset),
        UnixTime((to + 1) * 86_400 - offset),
    ))
}

/// Points issued, redeemed and taken back, outstanding points and store
/// credit by merchant, campaigns against their sales, repeat buyers.
pub(super) async fn loyalty_report(
    State(h): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let (from, to) = period(&q, h.switch.cfg.utc_offset_secs)?;
    let r = blocking(&h, move |e| e.loyalty().loyalty_report(from, to)).await?;
    Ok(Json(serde_json::to_value(&r).unwrap_or_default()))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Members with their RFM scores: `?merchant=` (default: the network),
/// `?group=` (a member tag), `?format=csv` for a member list.
pub(super) async fn segments(
    State(h): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let merchant = q.get("merchant").map(|m| merchant_id(m)).transpose()?;
    let group = q.get("group").cloned();
    let list: Vec<Segment> = blocking(&h, move |e| {
        e.loyalty()
            .segments(merchant.as_ref(), group.as_deref(), UnixTime::now())
    })
    .await?;
    if q.get("format").map(String::as_str) != Some("csv") {
        return Ok(Json(serde_json::to_value(&list).unwrap_or_default()).into_response());
    }
    let mut out = String::from(
        "member,name,phone,tier,groups,recency_days,frequency,monetary,r,f,m,segment\n",
    );
    for s in &list {
        let tier = serde_json::to_value(s.tier).unwrap_or_default();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            s.member,
            csv_field(&s.name),
            csv_field(&s.phone),
            tier.as_str().unwrap_or_default(),
            csv_field(&s.groups.join(";")),
            s.recency_days,
            s.frequency,
            s.monetary,
            s.r,
            s.f,
            s.m,
            s.segment
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DrawIn {
    merchant: String,
    /// Unix times; purchases in [from, to) make a member eligible.
    from: i64,
    to: i64,
    prizes: u32,
    prize_points: u64,
    /// Default 2500 (25%).
    min_chance_bps: Option<u32>,
    /// Default: a fresh random seed, recorded with the draw.
    seed: Option<u64>,
}

fn draw_view(d: &Draw) -> Value {
    json!({
        "id": d.id,
        "at": d.at.0,
        "merchant": d.spec.merchant.as_str(),
        "from": d.spec.from.0,
        "to": d.spec.to.0,
        "prizes": d.spec.prizes,
        "prize_points": d.spec.prize_points,
        "min_chance_bps": d.spec.min_chance_bps,
        "seed": d.spec.seed,
        "eligible": d.eligible.iter().map(|m| m.0).collect::<Vec<_>>(),
        "winners": d.winners.iter().map(|m| m.0).collect::<Vec<_>>(),
        "odds_bps": d.odds_bps,
    })
}

/// Runs a lucky draw now and credits its prizes.
pub(super) async fn run_draw(State(h): Shared, Json(d): Json<DrawIn>) -> ApiResult {
    let spec = DrawSpec {
        merchant: merchant_id(&d.merchant)?,
        from: UnixTime(d.from),
        to: UnixTime(d.to),
        prizes: d.prizes,
        prize_points: d.prize_points,
        min_chance_bps: d.min_chance_bps.unwrap_or(2_500),
        seed: d.seed.unwrap_or_else(rand::random),
    };
    let draw = blocking(&h, move |e| e.loyalty().run_draw(&spec, UnixTime::now()))
        .await?
        .await?;
    Ok(Json(draw_view(&draw)))
}

/// Lucky draws (a merchant's user: its own).
pub(super) async fn list_draws(
    State(h): Shared,
    axum::Extension(actor): axum::Extension<super::access::Actor>,
) -> ApiResult {
    let draws = blocking(&h, |e| e.loyalty().draws()).await?;
    Ok(Json(Value::Array(
        draws
            .iter()
            .filter(|d| actor.merchant().is_none_or(|own| *own == d.spec.merchant))
            .map(draw_view)
            .collect(),
    )))
}

/// Runs a recorded draw's published algorithm again from its seed.
pub(super) async fn verify_draw(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    let ok = blocking(&h, move |e| e.loyalty().verify_draw(id)).await?;
    Ok(Json(json!({ "draw": id, "reproduced": ok })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CoalitionIn {
    name: String,
    merchants: Vec<String>,
}

fn coalition_view(c: &Coalition) -> Value {
    json!({
        "name": c.name,
        "merchants": c.merchants.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
    })
}

/// Creates or replaces a coalition of merchants that honour one another's
/// store credit.
pub(super) async fn put_coalition(State(h): Shared, Json(c): Json<CoalitionIn>) -> ApiResult {
    let merchants = c
        .merchants
        .iter()
        .map(|m| merchant_id(m))
        .collect::<ApiResult<Vec<_>>>()?;
    let coalition = Coalition {
        name: c.name,
        merchants,
    };
    let stored = coalition.clone();
    blocking(&h, move |e| e.loyalty().put_coalition(&stored))
        .await?
        .await?;
    Ok(Json(coalition_view(&coalition)))
}

pub(super) async fn list_coalitions(State(h): Shared) -> ApiResult {
    let list = blocking(&h, |e| e.loyalty().coalitions()).await?;
    Ok(Json(Value::Array(
        list.iter().map(coalition_view).collect(),
    )))
}

/// The inter-merchant clearing report: who owes whom for coalition credit.
pub(super) async fn clearing(State(h): Shared) -> ApiResult {
    let owed = blocking(&h, |e| e.loyalty().clearing()).await?;
    Ok(Json(serde_json::to_value(&owed).unwrap_or_default()))
}
