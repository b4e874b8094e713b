//! Admin API for loyalty: merchants' programmes, members' points and
//! standing, conversion on request, referrals, the period review and the
//! notice outbox.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use clubswitch_engine::loyalty::month_of_day;
use clubswitch_engine::{MemberId, Program, ReferralCode, UnixTime};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{bad, merchant_id, not_found, ApiError, ApiResult, Http, Shared};

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route(
            "/v1/merchants/{id}/program",
            get(get_program).put(put_program),
        )
        .route("/v1/members/{id}/loyalty", get(member_loyalty))
        .route("/v1/members/{id}/convert", post(convert))
        .route("/v1/members/{id}/referral", post(refer))
        .route("/v1/loyalty/review", post(review))
        .route("/v1/notices", get(notices))
}

async fn get_program(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let p = h
        .switch
        .engine
        .program(&merchant_id(&id)?)?
        .ok_or_else(|| not_found("programme"))?;
    Ok(Json(serde_json::to_value(&p).unwrap_or_default()))
}

async fn put_program(
    State(h): Shared,
    Path(id): Path<String>,
    Json(p): Json<Program>,
) -> ApiResult {
    h.switch.engine.put_program(&merchant_id(&id)?, &p)?;
    Ok(Json(serde_json::to_value(&p).unwrap_or_default()))
}

/// Tier, VIP, referral code, the rolling figure, and points and store
/// credit by merchant.
async fn member_loyalty(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    let e = &h.switch.engine;
    let member = e.member(MemberId(id))?.ok_or_else(|| not_found("member"))?;
    let cfg = &e.config().loyalty;
    let standing = e.standing(member.id)?.unwrap_or_default();
    let month = month_of_day(UnixTime::now().local_day(e.config().utc_offset_secs));
    let balances: Vec<Value> = e
        .member_balances(member.id)?
        .into_iter()
        .map(|(m, points, credit)| {
            json!({
                "merchant": m.as_str(),
                "points": points.available(),
                "store_credit": credit.available(),
            })
        })
        .collect();
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvertIn {
    merchant: String,
    /// Default: all.
    points: Option<u64>,
}

async fn convert(State(h): Shared, Path(id): Path<u64>, Json(c): Json<ConvertIn>) -> ApiResult {
    let merchant = merchant_id(&c.merchant)?;
    let switch = Arc::clone(&h.switch);
    let (points, credit) = tokio::task::spawn_blocking(move || {
        switch
            .engine
            .convert_points(MemberId(id), &merchant, c.points, UnixTime::now())
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(json!({ "points": points, "credit": credit })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferIn {
    code: String,
}

async fn refer(State(h): Shared, Path(id): Path<u64>, Json(r): Json<ReferIn>) -> ApiResult {
    let code: ReferralCode = r.code.parse().map_err(|_| bad("not a referral code"))?;
    h.switch.engine.refer(MemberId(id), code)?;
    Ok(Json(json!({ "member": id, "referred_by": code.0 .0 })))
}

/// Runs this month's period review now, if it has not run.
async fn review(State(h): Shared) -> ApiResult {
    let switch = Arc::clone(&h.switch);
    let r = tokio::task::spawn_blocking(move || switch.engine.review_standing(UnixTime::now()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(serde_json::to_value(&r).unwrap_or_default()))
}

/// The first notices waiting in the outbox (phone numbers masked).
async fn notices(State(h): Shared) -> ApiResult {
    let e = &h.switch.engine;
    let waiting = e.due_notices(UnixTime(i64::MAX), 100, 100)?;
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
    Ok(Json(json!({ "waiting": e.outbox_len(), "first": list })))
}
