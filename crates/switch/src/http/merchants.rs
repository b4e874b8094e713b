//! Admin API for merchants and their discount rules.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use clubswitch_engine::{DiscountRule, FeeBase, Merchant, Offers, RuleRecord, Status};
use serde::Deserialize;
use serde_json::Value;

use super::access::Actor;
use super::{amount, bad, blocking, merchant_id, ApiResult, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct MerchantIn {
    id: String,
    name: String,
    #[serde(default)]
    fee_bps: u32,
    #[serde(default)]
    #[schema(value_type = String, example = "gross")]
    fee_base: FeeBase,
    #[serde(default)]
    settlement_account: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    offers: Offers,
    #[serde(default)]
    max_amount: Option<u64>,
    #[serde(default)]
    #[schema(value_type = String, example = "active")]
    status: Status,
}

pub(super) async fn put_merchant(State(h): Shared, Json(m): Json<MerchantIn>) -> ApiResult {
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

/// A merchant as the API shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct MerchantView {
    id: String,
    name: String,
    #[schema(value_type = String, example = "active")]
    status: Status,
    fee_bps: u32,
    #[schema(value_type = String, example = "gross")]
    fee_base: FeeBase,
    settlement_account: String,
    #[schema(value_type = Object)]
    offers: Offers,
    #[schema(required = true)]
    max_amount: Option<u64>,
}

fn merchant_json(m: &Merchant) -> Value {
    serde_json::to_value(MerchantView {
        id: m.id.as_str().to_owned(),
        name: m.name.clone(),
        status: m.status,
        fee_bps: m.fee_bps,
        fee_base: m.fee_base,
        settlement_account: m.settlement_account.clone(),
        offers: m.offers,
        max_amount: m.max_amount.map(|a| a.value()),
    })
    .unwrap_or_default()
}

/// Every merchant; a merchant's own user sees only its own.
pub(super) async fn list_merchants(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
) -> ApiResult {
    let ms = blocking(&h, |e| e.admin().merchants()).await?;
    Ok(Json(Value::Array(
        ms.iter()
            .filter(|m| actor.merchant().is_none_or(|own| *own == m.id))
            .map(merchant_json)
            .collect(),
    )))
}

/// A discount rule just added.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct RuleAdded {
    /// The id the switch gave it (the body's `id` is not kept).
    id: u64,
}

pub(super) async fn add_rule(
    State(h): Shared,
    Path(id): Path<String>,
    Json(rule): Json<DiscountRule>,
) -> ApiResult<Json<RuleAdded>> {
    if rule.percent_bps > 10_000 {
        return Err(bad("percent_bps is at most 10000"));
    }
    let merchant = merchant_id(&id)?;
    let id = blocking(&h, move |e| e.admin().add_rule(&merchant, rule))
        .await?
        .await?;
    Ok(Json(RuleAdded { id }))
}

pub(super) async fn list_rules(
    State(h): Shared,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<RuleRecord>>> {
    let merchant = merchant_id(&id)?;
    let rules = blocking(&h, move |e| e.admin().rules(&merchant)).await?;
    Ok(Json(rules))
}
