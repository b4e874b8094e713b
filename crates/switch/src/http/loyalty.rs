//! Admin API for loyalty: merchants' programmes, members' points and
//! standing, conversion on request, referrals, the period review and the
//! daily pass, and the loyalty report and RFM segments. Lucky draws,
//! coalitions and the notice outbox have modules of their own.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clubswitch_engine::loyalty::month_of_day;
use clubswitch_engine::loyalty::{LoyaltyReport, Segment};
use clubswitch_engine::{DailyRun, Engine, Review, Tier, Unit};
use clubswitch_engine::{MemberId, Program, ReferralCode, UnixTime};
use serde::{Deserialize, Serialize};

use super::{
    bad, blocking, blocking_api, local_days, merchant_id, not_found, ApiError, ApiResult, Key,
    Shared,
};
use crate::config::format_date;

pub(super) async fn get_program(
    State(h): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Program>> {
    let merchant = merchant_id(&id)?;
    let p = blocking(&h, move |e| e.loyalty().program(&merchant))
        .await?
        .ok_or_else(|| not_found("programme"))?;
    Ok(Json(p))
}

pub(super) async fn put_program(
    State(h): Shared,
    Path(id): Path<String>,
    Json(p): Json<Program>,
) -> ApiResult<Json<Program>> {
    let (merchant, program) = (merchant_id(&id)?, p.clone());
    blocking(&h, move |e| e.loyalty().put_program(&merchant, &program))
        .await?
        .await?;
    Ok(Json(p))
}

/// A member's loyalty standing and balances.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct MemberLoyaltyView {
    member: u64,
    tier: Tier,
    /// The tier's name as configured.
    tier_name: String,
    /// The figure the tier is decided on (spend or points, per the
    /// configuration), over the last `window_months` months.
    rolling: u64,
    window_months: u32,
    vip: bool,
    /// What a newcomer this member refers gives to be credited.
    referral_code: String,
    /// The member who referred this one (`null`: none).
    #[schema(required = true)]
    referred_by: Option<u64>,
    /// Confirmed purchases, ever.
    purchases: u64,
    /// Unix seconds of the last one (`null`: none yet).
    #[schema(required = true)]
    last_purchase: Option<i64>,
    /// Points and store credit by merchant.
    balances: Vec<BalanceView>,
}

/// A member's points and store credit at one merchant.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct BalanceView {
    merchant: String,
    /// Available points.
    points: i64,
    /// Available store credit, in rials.
    store_credit: i64,
    /// What of them expires when, soonest first.
    expiring: Vec<ExpiringView>,
}

/// Points or store credit that stop being valid after a day: one of
/// `points` and `store_credit`, never both.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ExpiringView {
    #[serde(skip_serializing_if = "Option::is_none")]
    points: Option<u64>,
    /// Rials.
    #[serde(skip_serializing_if = "Option::is_none")]
    store_credit: Option<u64>,
    /// The last local day it is valid on (YYYY-MM-DD).
    valid_through: String,
}

/// Tier, VIP, referral code, the rolling figure, and points and store
/// credit by merchant with what of them expires when.
pub(super) async fn member_loyalty(
    State(h): Shared,
    Path(id): Path<u64>,
) -> ApiResult<Json<MemberLoyaltyView>> {
    blocking_api(&h, move |e| member_loyalty_of(e, id)).await
}

fn member_loyalty_of(e: &Engine, id: u64) -> ApiResult<Json<MemberLoyaltyView>> {
    let member = e
        .admin()
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    let cfg = &e.config().loyalty;
    let standing = e.loyalty().standing(member.id)?.unwrap_or_default();
    let month = month_of_day(UnixTime::now().local_day(e.config().utc_offset_secs));
    let balances = e
        .loyalty()
        .member_balances(member.id)?
        .into_iter()
        .map(|(m, points, credit)| {
            let expiring = e
                .loyalty()
                .expiring(member.id, &m)?
                .into_iter()
                .map(|x| {
                    let (points, store_credit) = match x.unit {
                        Unit::Points => (Some(x.amount), None),
                        Unit::Credit => (None, Some(x.amount)),
                    };
                    ExpiringView {
                        points,
                        store_credit,
                        valid_through: format_date(x.valid_through),
                    }
                })
                .collect();
            Ok(BalanceView {
                merchant: m.as_str().to_owned(),
                points: points.available(),
                store_credit: credit.available(),
                expiring,
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(MemberLoyaltyView {
        member: member.id.0,
        tier: member.tier,
        tier_name: cfg.tier_names[member.tier as usize].clone(),
        rolling: standing.rolling(cfg, month),
        window_months: cfg.window_months,
        vip: standing.vip(month),
        referral_code: ReferralCode(member.id).to_string(),
        referred_by: standing.referred_by.map(|m| m.0),
        purchases: standing.purchases,
        last_purchase: standing.last_purchase.map(|t| t.0),
        balances,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConvertIn {
    merchant: String,
    /// Default: all.
    points: Option<u64>,
}

/// What a conversion did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Converted {
    /// Points converted.
    points: u64,
    /// Store credit they became, in rials.
    credit: u64,
}

pub(super) async fn convert(
    State(h): Shared,
    k: Key,
    Path(id): Path<u64>,
    Json(c): Json<ConvertIn>,
) -> ApiResult<Json<Converted>> {
    let merchant = merchant_id(&c.merchant)?;
    let (points, credit) = blocking(&h, move |e| {
        k.loyalty(e)
            .convert_points(MemberId(id), &merchant, c.points, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(Converted { points, credit }))
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

/// A referral recorded.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Referred {
    /// The newcomer.
    member: u64,
    /// The member whose code it gave.
    referred_by: u64,
}

pub(super) async fn refer(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(r): Json<ReferIn>,
) -> ApiResult<Json<Referred>> {
    let code: ReferralCode = r.code.parse().map_err(|_| bad("not a referral code"))?;
    blocking(&h, move |e| e.loyalty().refer(MemberId(id), code))
        .await?
        .await?;
    Ok(Json(Referred {
        member: id,
        referred_by: code.0 .0,
    }))
}

/// What a period review changed.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ReviewView {
    /// The month it reviewed up to, exclusive (YYYY-MM, local).
    month: String,
    /// Members reviewed, and of them those whose tier went up or down,
    /// and those who became VIP.
    members: usize,
    upgraded: usize,
    downgraded: usize,
    new_vip: usize,
}

/// "YYYY-MM" of a month index (year × 12 + month − 1).
fn year_month(index: i64) -> String {
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

/// Runs this month's period review now, if it has not run (`null` if it
/// has).
pub(super) async fn review(State(h): Shared) -> ApiResult<Json<Option<ReviewView>>> {
    let r = blocking(&h, |e| e.loyalty().review_standing(UnixTime::now())).await?;
    Ok(Json(r.map(|r: Review| ReviewView {
        month: year_month(r.month),
        members: r.members,
        upgraded: r.upgraded,
        downgraded: r.downgraded,
        new_vip: r.new_vip,
    })))
}

/// What one daily pass did.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DailyView {
    /// The local day it ran for (YYYY-MM-DD).
    day: String,
    /// Members' lots it looked at, at merchants whose programme expires
    /// points or credit.
    lots_checked: usize,
    points_expired: u64,
    /// Rials.
    credit_expired: u64,
    /// Notices sent: expiry warnings, birthday greetings, cards about to
    /// expire.
    expiry_warnings: usize,
    birthdays: usize,
    cards_expiring: usize,
    /// Reminders written: to come back, anniversaries, tiers at risk.
    repurchase_reminders: usize,
    anniversaries: usize,
    tiers_at_risk: usize,
}

/// Today's daily pass now, before its hour if need be (`null` if it is
/// done for today).
pub(super) async fn daily(State(h): Shared) -> ApiResult<Json<Option<DailyView>>> {
    let r = blocking(&h, |e| e.loyalty().daily_pass_now(UnixTime::now())).await?;
    Ok(Json(r.map(|r: DailyRun| DailyView {
        day: format_date(r.day),
        lots_checked: r.lots_checked,
        points_expired: r.points_expired,
        credit_expired: r.credit_expired,
        expiry_warnings: r.expiry_warnings,
        birthdays: r.birthdays,
        cards_expiring: r.cards_expiring,
        repurchase_reminders: r.repurchase_reminders,
        anniversaries: r.anniversaries,
        tiers_at_risk: r.tiers_at_risk,
    })))
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
) -> ApiResult<Json<LoyaltyReport>> {
    let (from, to) = period(&q, h.switch.cfg.utc_offset_secs)?;
    let r = blocking(&h, move |e| e.loyalty().loyalty_report(from, to)).await?;
    Ok(Json(r))
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
        return Ok(Json(list).into_response());
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
