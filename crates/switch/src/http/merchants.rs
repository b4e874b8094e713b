//! Admin API for merchants and their discount rules.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use clubswitch_engine::{DiscountRule, FeeBase, Merchant, Offers, Status};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{amount, bad, blocking, merchant_id, ApiResult, Http, Shared};

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/v1/merchants", get(list_merchants).post(put_merchant))
        .route("/v1/merchants/{id}/rules", get(list_rules).post(add_rule))
}

#[derive(Deserialize)]
struct MerchantIn {
    id: String,
    name: String,
    #[serde(default)]
    fee_bps: u32,
    #[serde(default)]
    fee_base: FeeBase,
    #[serde(default)]
    settlement_account: String,
    #[serde(default)]
    offers: Offers,
    #[serde(default)]
    max_amount: Option<u64>,
    #[serde(default)]
    status: Status,
}

async fn put_merchant(State(h): Shared, Json(m): Json<MerchantIn>) -> ApiResult {
    if m.fee_bps > 10_000 {
        return Err(bad("fee_bps is at most 10000 (100%)"));
    }
    let rec = Merchant {
        id: merchant_id(&m.id)?,
        name: m.name,
        status: m.status,
        fee_bps: m.fee_bps,
        fee_base: m.fee_base,
        settlement_account: m.settlement_account,
        offers: m.offers,
        max_amount: m.max_amount.map(amount).transpose()?,
    };
    let stored = rec.clone();
    blocking(&h, move |e| e.admin().put_merchant(&stored))
        .await?
        .await?;
    Ok(Json(merchant_json(&rec)))
}

fn merchant_json(m: &Merchant) -> Value {
    json!({
        "id": m.id.as_str(), "name": m.name, "status": m.status, "fee_bps": m.fee_bps,
        "fee_base": m.fee_base, "settlement_account": m.settlement_account, "offers": m.offers,
        "max_amount": m.max_amount.map(|a| a.value()),
    })
}

async fn list_merchants(State(h): Shared) -> ApiResult {
    let ms = blocking(&h, |e| e.admin().merchants()).await?;
    Ok(Json(Value::Array(ms.iter().map(merchant_json).collect())))
}

async fn add_rule(
    State(h): Shared,
    Path(id): Path<String>,
    Json(rule): Json<DiscountRule>,
) -> ApiResult {
    if rule.percent_bps > 10_000 {
        return Err(bad("percent_bps is at most 10000"));
    }
    let merchant = merchant_id(&id)?;
    let id = blocking(&h, move |e| e.admin().add_rule(&merchant, rule))
        .await?
        .await?;
    Ok(Json(json!({ "id": id })))
}

async fn list_rules(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let merchant = merchant_id(&id)?;
    let rules = blocking(&h, move |e| e.admin().rules(&merchant)).await?;
    Ok(Json(serde_json::to_value(rules).unwrap_or_default()))
}
