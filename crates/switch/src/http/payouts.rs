//! Admin API for payouts: making a payout file of what is settled and not
//! yet paid, rendering it for the bank (pain.001 or CSV), reading the
//! bank's statement back, and what is still owed to each merchant.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use clubswitch_engine::payout::{
    ItemState, Outstanding, Payout, PayoutItem, Reconciled, Statement,
};
use clubswitch_engine::UnixTime;
use serde::Serialize;

use super::access::Actor;
use super::{bad, blocking, not_found, ApiError, ApiResult, Key, Shared};
use crate::payout::{self as files, MerchantNames, PayoutError};

/// A payout as JSON shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PayoutView {
    id: u64,
    /// RFC 3339.
    created: String,
    /// Rials.
    total: i64,
    /// How many transfers (settlement batches) it pays.
    transfers: usize,
    /// Its transfers; empty in the list of payouts.
    #[schema(inline)]
    items: Vec<ItemView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ItemView {
    end_to_end_id: String,
    /// The settlement batch it pays.
    batch: u64,
    merchant: String,
    iban: String,
    amount: i64,
    #[schema(value_type = String, example = "sent")]
    state: ItemState,
    /// Earlier returns, oldest first: "RFC 3339 time, payout, reason".
    returns: Vec<String>,
}

fn view(p: &Payout, items: &[PayoutItem]) -> PayoutView {
    PayoutView {
        id: p.id,
        created: p.created.to_rfc3339(),
        total: p.total,
        transfers: p.batches.len(),
        items: items
            .iter()
            .map(|i| ItemView {
                end_to_end_id: i.end_to_end.clone(),
                batch: i.batch,
                merchant: i.merchant.as_str().trim().to_owned(),
                iban: i.iban.clone(),
                amount: i.amount,
                state: i.state,
                returns: i
                    .returns
                    .iter()
                    .map(|r| format!("{} payout {}: {}", r.at.to_rfc3339(), r.payout, r.reason))
                    .collect(),
            })
            .collect(),
    }
}

/// What making a payout made.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Made {
    /// The new payout; `null` when every settled batch is paid or on its
    /// way.
    #[schema(inline, required = true)]
    payout: Option<PayoutView>,
}

/// A new payout of everything settled and not yet paid or on its way.
pub(super) async fn create_payout(State(h): Shared, k: Key) -> ApiResult<Json<Made>> {
    let now = UnixTime::now();
    // The payout as made, with its items: a failed read of it is an
    // error, never an answer that says nothing was made.
    let made = blocking(&h, move |e| {
        let p = k.payouts(e).create(now)?;
        Ok(p.map(|p| {
            p.map(|p| match e.payouts().get(p.id)? {
                Some((p, items)) => Ok(view(&p, &items)),
                None => Err(clubswitch_engine::EngineError::Storage(
                    clubswitch_engine::StorageError::Corrupt(format!(
                        "payout {} not found after it was made",
                        p.id
                    )),
                )),
            })
            .transpose()
        }))
    })
    .await?
    .await??;
    Ok(Json(Made { payout: made }))
}

/// Every payout (without items).
pub(super) async fn list_payouts(State(h): Shared) -> ApiResult<Json<Vec<PayoutView>>> {
    let list = blocking(&h, |e| e.payouts().list()).await?;
    Ok(Json(list.iter().map(|p| view(p, &[])).collect()))
}

/// A payout as JSON, or its file for the bank: `?format=pain001` or `csv`.
pub(super) async fn get_payout(
    State(h): Shared,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let id: u64 = id.parse().map_err(|_| bad("a payout id is a number"))?;
    let (p, items) = blocking(&h, move |e| e.payouts().get(id))
        .await?
        .ok_or_else(|| not_found("payout"))?;
    let names: MerchantNames = blocking(&h, |e| e.admin().merchants())
        .await?
        .into_iter()
        .map(|m| (m.id, m.name))
        .collect();
    let cfg = &h.switch.cfg;
    match q.get("format").map(String::as_str) {
        None | Some("json") => Ok(Json(view(&p, &items)).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv")],
            files::csv(&items, &names),
        )
            .into_response()),
        Some("pain001") => {
            let debtor = cfg
                .settlement
                .debtor
                .as_ref()
                .ok_or_else(|| payout_error(PayoutError::NoDebtor))?;
            let day = files::execution_day(UnixTime::now(), cfg.utc_offset_secs);
            let xml = files::pain001(&p, &items, debtor, &names, day).map_err(payout_error)?;
            Ok(([(header::CONTENT_TYPE, "application/xml")], xml).into_response())
        }
        Some(other) => Err(bad(format!("format {other:?}: json, csv or pain001"))),
    }
}

fn payout_error(e: PayoutError) -> ApiError {
    let status = match e {
        PayoutError::Write(_) => StatusCode::INTERNAL_SERVER_ERROR,
        PayoutError::NoDebtor | PayoutError::Statement(_) => StatusCode::BAD_REQUEST,
    };
    ApiError(status, e.to_string())
}

/// Reads a bank statement (`camt.053` XML, or a CSV of results) and marks
/// each transfer it names paid or returned.
pub(super) async fn reconcile(
    State(h): Shared,
    k: Key,
    body: Bytes,
) -> ApiResult<Json<Reconciled>> {
    let results = files::read_statement(&body).map_err(payout_error)?;
    let done = blocking(&h, move |e| {
        k.payouts(e).reconcile(&results, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(done))
}

/// What is still owed to each merchant (a merchant: itself).
pub(super) async fn outstanding(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Vec<Outstanding>>> {
    let own = actor.merchant().copied();
    let rows = blocking(&h, move |e| e.payouts().outstanding(own.as_ref())).await?;
    Ok(Json(rows))
}

/// A merchant's statement for a period (`?merchant=`, `?from=`, `?to=`,
/// YYYY-MM-DD, default today): its settled batches and where each
/// transfer stands. A merchant's user: its own.
pub(super) async fn statement(
    State(h): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Statement>> {
    let merchant = super::merchant_id(
        q.get("merchant")
            .ok_or_else(|| bad("name the merchant: ?merchant="))?,
    )?;
    let (from, to) = super::local_days(&q, h.switch.cfg.utc_offset_secs)?;
    let st = blocking(&h, move |e| e.payouts().statement(&merchant, from, to)).await?;
    Ok(Json(st))
}
