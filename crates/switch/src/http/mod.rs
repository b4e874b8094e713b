//! HTTP: metrics, health and readiness on one listener; the admin API on
//! another (loopback by default).
//!
//! This module holds what every resource shares: the handlers' state, the
//! error type and its status codes, and the parsing of ids and amounts
//! from paths and bodies. Each resource keeps its handlers in a file of
//! its own; [`routes::table`] lists every route with who may call it, and
//! [`admin_router`] builds the API from that table behind
//! [`access::guard`].

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use clubswitch_engine::{CardHash, Engine, EngineError, FlushError, Txn, UnixTime};
use clubswitch_wire::{Amount, CardNumber, Expiry, MerchantId, TerminalId};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::config::parse_date;
use crate::error::SwitchError;
use crate::handler::Switch;

pub mod access;
mod audit;
mod backup;
mod campaigns;
mod cards;
mod coalitions;
pub mod console;
mod draws;
pub mod gateway;
mod health;
mod login;
mod loyalty;
mod members;
mod merchants;
mod notices;
pub mod openapi;
mod payouts;
mod reports;
pub mod routes;
mod settlements;
mod templates;
mod terminals;
mod users;

pub use health::metrics_router;

/// What the HTTP handlers share.
pub struct Http {
    pub switch: Arc<Switch>,
    /// The bootstrap operator credential (`admin.token`).
    pub token: String,
    pub ready: AtomicBool,
    /// Who may call each admin route, from [`routes::table`].
    rules: access::Rules,
    /// The OpenAPI description of the same table.
    openapi: serde_json::Value,
    /// Requests per credential (and failed sign-ins per address).
    limiter: access::Limiter,
    /// Sign-in tries per address.
    sign_ins: access::Limiter,
    /// Payment gateways and their secrets.
    gateways: gateway::Gateways,
    /// The console's templates.
    console: console::Console,
    /// Turns true when the switch begins to stop: long admin work (a
    /// settlement run) ends early on it, so its answer comes within the
    /// grace period.
    stopping: watch::Receiver<bool>,
}

impl Http {
    /// The handlers' state; fails only if an embedded console template
    /// does not parse (a bug the first test that starts the switch finds).
    pub fn new(
        switch: Arc<Switch>,
        token: String,
        gateways: gateway::Gateways,
        stopping: watch::Receiver<bool>,
    ) -> Result<Http, SwitchError> {
        let console = console::Console::new()
            .map_err(|e| SwitchError::invalid(format!("console template: {e}")))?;
        Ok(Http {
            console,
            stopping,
            gateways,
            limiter: access::Limiter::new(switch.cfg.admin.requests_per_sec),
            sign_ins: access::Limiter::per_minute(switch.cfg.admin.sign_ins_per_minute),
            switch,
            token,
            ready: AtomicBool::new(false),
            rules: access::Rules::new(&routes::table()),
            openapi: openapi::document(&routes::table()),
        })
    }
}

type Shared = State<Arc<Http>>;

/// Who moves money, and under which idempotency key (on a route declared
/// `keyed` that was sent one), as [`access::guard`] found them: the engine
/// keeps the key with the answer and names the caller in the journal.
#[derive(Clone, Default)]
pub(super) struct Key {
    idem: Option<clubswitch_engine::Idempotency>,
    by: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Key {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Key {
            idem: parts.extensions.get().cloned(),
            by: parts
                .extensions
                .get::<access::Actor>()
                .map(|a| a.name.clone()),
        })
    }
}

impl Key {
    fn admin(self, e: &Engine) -> clubswitch_engine::admin::Admin<'_> {
        e.admin().keyed(self.idem).by(self.by)
    }

    fn loyalty(self, e: &Engine) -> clubswitch_engine::loyalty::Loyalty<'_> {
        e.loyalty().keyed(self.idem).by(self.by)
    }

    fn payouts(self, e: &Engine) -> clubswitch_engine::payout::Payouts<'_> {
        e.payouts().keyed(self.idem).by(self.by)
    }
}

/// An admin error: status and message.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
            EngineError::Exists { .. } => StatusCode::CONFLICT,
            EngineError::Invalid(_) => StatusCode::BAD_REQUEST,
            EngineError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            EngineError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

/// A write that was committed but not made durable: not done, so a server
/// error.
impl From<FlushError> for ApiError {
    fn from(e: FlushError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// An engine error keeps its status; anything else the switch itself
/// failed at (a file, a thread) is a server error.
impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::Engine(e) => e.into(),
            other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(what: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("{what} not found"))
}

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// Runs `f` on the engine on the blocking pool, so a scan or a long
/// transaction holds up no other request.
async fn blocking<T: Send + 'static>(
    h: &Http,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> ApiResult<T> {
    blocking_api(h, move |e| f(e).map_err(ApiError::from)).await
}

/// [`blocking`] for work that answers with the API's own errors (a record
/// not found, a bad value) as well as the engine's. Every read of the
/// ledger goes through here or [`blocking`]: a ledger's client may block
/// (a database round trip), and never on a worker serving connections.
async fn blocking_api<T: Send + 'static>(
    h: &Http,
    f: impl FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let switch = Arc::clone(&h.switch);
    tokio::task::spawn_blocking(move || f(&switch.engine))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// The admin API: every route of [`routes::table`], each behind
/// [`access::guard`] (which runs once a route matched, so it knows the
/// route's rule and parameters), and that behind
/// [`console::page_answers`], which turns a console page's refusals into
/// pages. A path no route matches answers 404.
pub fn admin_router(http: Arc<Http>) -> Router {
    let mut router = Router::new();
    for r in routes::table() {
        router = router.route(r.path, r.handler);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&http),
            access::guard,
        ))
        // Outside the guard, so the guard's refusals of a page become pages.
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&http),
            console::page_answers,
        ))
        .with_state(http)
}

fn merchant_id(s: &str) -> ApiResult<MerchantId> {
    s.parse()
        .map_err(|_| bad("merchant id must be 15 printable characters"))
}

fn terminal_id(s: &str) -> ApiResult<TerminalId> {
    s.parse()
        .map_err(|_| bad("terminal id must be 8 printable characters"))
}

fn card_hash(s: &str) -> ApiResult<CardHash> {
    CardHash::from_hex(s).ok_or_else(|| bad("card hash must be 64 hex digits"))
}

fn pan(s: &str) -> ApiResult<CardNumber> {
    let p: CardNumber = s
        .parse()
        .map_err(|_| bad("card number must be 12 to 19 digits"))?;
    if !p.luhn_ok() {
        return Err(bad("card number fails the Luhn check"));
    }
    Ok(p)
}

fn expiry(s: Option<&str>) -> ApiResult<Option<Expiry>> {
    s.map(|e| Expiry::from_yymm(e.as_bytes()).ok_or_else(|| bad("expiry must be YYMM")))
        .transpose()
}

fn amount(v: u64) -> ApiResult<Amount> {
    Amount::new(v).ok_or_else(|| bad("amount must be at most 12 digits"))
}

/// The local days `from` and `to` of a query (YYYY-MM-DD, default today).
fn local_days(q: &HashMap<String, String>, offset: i64) -> ApiResult<(i64, i64)> {
    let today = UnixTime::now().local_day(offset);
    let day = |k: &str| -> ApiResult<i64> {
        q.get(k)
            .map(|s| parse_date(s).ok_or_else(|| bad(format!("{k} must be YYYY-MM-DD"))))
            .transpose()
            .map(|d| d.unwrap_or(today))
    };
    Ok((day("from")?, day("to")?))
}

/// A transaction as the history of a terminal or a card shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TxnView {
    rrn: String,
    auth_id: String,
    /// What was asked (DE 3): BankDiscount, ClubPurchase, StorePurchase,
    /// ClubBalance, StoreBalance, ClubRefund or StoreRefund.
    #[schema(value_type = String, example = "ClubPurchase")]
    code: clubswitch_wire::ProcessingCode,
    #[schema(value_type = String, example = "confirmed")]
    state: clubswitch_engine::TxnState,
    terminal: String,
    merchant: String,
    amount: u64,
    final_amount: u64,
    discount: u64,
    fee: u64,
    refunded: u64,
    #[schema(required = true)]
    refund_of: Option<String>,
    /// Unix seconds.
    created: i64,
    #[schema(required = true)]
    confirmed: Option<i64>,
    #[schema(required = true)]
    settled_batch: Option<u64>,
}

fn txn_json(t: &Txn) -> Value {
    serde_json::to_value(TxnView {
        rrn: t.rrn.as_str().to_owned(),
        auth_id: t.auth_id.as_str().to_owned(),
        code: t.code,
        state: t.state,
        terminal: t.request.terminal.as_str().to_owned(),
        merchant: t.merchant.as_str().to_owned(),
        amount: t.amount,
        final_amount: t.final_amount,
        discount: t.discount,
        fee: t.fee,
        refunded: t.refunded,
        refund_of: t.refund_of.map(|r| r.as_str().to_owned()),
        created: t.created.0,
        confirmed: t.confirmed.map(|c| c.0),
        settled_batch: t.settled,
    })
    .unwrap_or_default()
}
