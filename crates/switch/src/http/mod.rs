//! HTTP: metrics, health and readiness on one listener; the bearer-token
//! admin API on another (loopback by default).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clubswitch_engine::{
    settlement, AccountKey, Birthday, Card, CardHash, CardKind, DiscountRule, Engine, EngineError,
    FeeBase, Member, MemberId, Merchant, NewCard, Offers, Status, Terminal, Tier, Txn, UnixTime,
};
use clubswitch_wire::{Amount, CardNumber, Expiry, MerchantId, ProcessingCode, TerminalId, Tmk};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::handler::{Switch, TMK_PURPOSE};

mod loyalty;

/// What the HTTP handlers share.
pub struct Http {
    pub switch: Arc<Switch>,
    pub token: String,
    pub ready: AtomicBool,
}

type Shared = State<Arc<Http>>;

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
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
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
    let switch = Arc::clone(&h.switch);
    tokio::task::spawn_blocking(move || f(&switch.engine))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(ApiError::from)
}

pub fn metrics_router(http: Arc<Http>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(http)
}

async fn metrics(State(h): Shared) -> impl IntoResponse {
    let engine = &h.switch.engine;
    let flush = engine.store().flush_stats();
    let extra = [
        (
            "clubswitch_pending_holds",
            "Holds awaiting confirm at the last sweep.",
            engine.pending_holds() as f64,
        ),
        (
            "clubswitch_flushes_total",
            "Group-commit flushes.",
            flush.flushes as f64,
        ),
        (
            "clubswitch_flush_tickets_total",
            "Durable operations served by flushes.",
            flush.tickets as f64,
        ),
        (
            "clubswitch_flush_last_batch",
            "Operations served by the last flush.",
            flush.last_batch as f64,
        ),
        (
            "clubswitch_flush_last_seconds",
            "Duration of the last flush.",
            flush.last_flush.as_secs_f64(),
        ),
        (
            "clubswitch_flush_seconds_total",
            "Time spent flushing.",
            flush.total_flush.as_secs_f64(),
        ),
        (
            "clubswitch_flush_failures_total",
            "Flushes that failed.",
            flush.failures as f64,
        ),
        (
            "clubswitch_notices_waiting",
            "Member notices in the outbox, due or backing off.",
            engine.outbox_len() as f64,
        ),
        (
            "clubswitch_storage_healthy",
            "1 while the ledger accepts writes; 0 after a storage failure until it is reopened.",
            if engine.store().healthy() { 1.0 } else { 0.0 },
        ),
    ];
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.switch.metrics.render(&extra),
    )
}

async fn ready(State(h): Shared) -> impl IntoResponse {
    if !h.ready.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    } else if !h.switch.engine.store().healthy() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage failure: reopening the ledger\n",
        )
    } else {
        (StatusCode::OK, "ready\n")
    }
}

pub fn admin_router(http: Arc<Http>) -> Router {
    Router::new()
        .route("/v1/merchants", get(list_merchants).post(put_merchant))
        .route("/v1/merchants/{id}/rules", get(list_rules).post(add_rule))
        .route("/v1/terminals", get(list_terminals).post(add_terminal))
        .route("/v1/terminals/{id}/{action}", post(terminal_action))
        .route("/v1/terminals/{id}/history", get(terminal_history))
        .route("/v1/members", post(add_member))
        .route("/v1/members/{id}", get(get_member).put(update_member))
        .route("/v1/cards", post(issue_card))
        .route("/v1/cards/batch", post(issue_batch))
        .route("/v1/cards/find", post(find_card))
        .route("/v1/cards/{hash}", get(get_card))
        .route("/v1/cards/{hash}/history", get(card_history))
        .route("/v1/cards/{hash}/{action}", post(card_action))
        .route("/v1/store-credit", post(grant_store_credit))
        .route(
            "/v1/settlements",
            get(list_settlements).post(run_settlement),
        )
        .route("/v1/reports", get(report))
        .route("/v1/audit", get(audit))
        .route("/v1/backup", post(backup))
        .merge(loyalty::routes())
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&http),
            auth,
        ))
        .with_state(http)
}

async fn auth(
    State(h): Shared,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison of the token.
    let ok = given.len() == h.token.len()
        && given
            .bytes()
            .zip(h.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token".into(),
        )
        .into_response();
    }
    next.run(req).await
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
    h.switch.engine.put_merchant(&rec)?;
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
    let ms = h.switch.engine.merchants()?;
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
    let id = h.switch.engine.add_rule(&merchant_id(&id)?, rule)?;
    Ok(Json(json!({ "id": id })))
}

async fn list_rules(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let rules = h.switch.engine.rules(&merchant_id(&id)?)?;
    Ok(Json(serde_json::to_value(rules).unwrap_or_default()))
}

#[derive(Deserialize)]
struct TerminalIn {
    id: String,
    merchant: String,
}

fn terminal_json(t: &Terminal) -> Value {
    json!({
        "id": t.id.as_str(), "merchant": t.merchant.as_str(), "status": t.status,
        "locked": t.locked, "security_failures": t.security_failures,
        "key_change_pending": t.previous_tmk.is_some(),
    })
}

/// Registers a terminal; the answer carries its TMK, shown this once.
async fn add_terminal(State(h): Shared, Json(t): Json<TerminalIn>) -> ApiResult {
    let tmk = Tmk::generate();
    let rec = Terminal {
        id: terminal_id(&t.id)?,
        merchant: merchant_id(&t.merchant)?,
        status: Status::Active,
        sealed_tmk: h.switch.master.seal(TMK_PURPOSE, tmk.as_bytes()),
        previous_tmk: None,
        security_failures: 0,
        locked: false,
    };
    let mark = h.switch.engine.store().mark();
    h.switch.engine.add_terminal(&rec)?;
    h.switch
        .engine
        .store()
        .durable_since(mark)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::info!(terminal = %rec.id, merchant = %rec.merchant, "terminal registered");
    let mut out = terminal_json(&rec);
    out["tmk"] = json!(tmk.to_hex());
    Ok(Json(out))
}

async fn list_terminals(State(h): Shared) -> ApiResult {
    let ts = h.switch.engine.terminals()?;
    Ok(Json(Value::Array(ts.iter().map(terminal_json).collect())))
}

async fn terminal_action(
    State(h): Shared,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult {
    let id = terminal_id(&id)?;
    let engine = &h.switch.engine;
    let mark = engine.store().mark();
    let mut out = json!({});
    match action.as_str() {
        "block" => engine.update_terminal(&id, |t| t.status = Status::Blocked)?,
        "unblock" => engine.update_terminal(&id, |t| t.status = Status::Active)?,
        "unlock" => engine.update_terminal(&id, |t| {
            t.locked = false;
            t.security_failures = 0;
        })?,
        "rotate-key" => {
            let tmk = Tmk::generate();
            let sealed = h.switch.master.seal(TMK_PURPOSE, tmk.as_bytes());
            engine.update_terminal(&id, |t| {
                t.sealed_tmk = sealed.clone();
                t.previous_tmk = None;
            })?;
            out["tmk"] = json!(tmk.to_hex());
        }
        other => return Err(not_found(&format!("terminal action {other:?}"))),
    }
    engine
        .store()
        .durable_since(mark)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    h.switch.forget_terminal(&id);
    let t = engine.terminal(&id)?.ok_or_else(|| not_found("terminal"))?;
    let mut view = terminal_json(&t);
    if let Some(k) = out.get("tmk") {
        view["tmk"] = k.clone();
    }
    Ok(Json(view))
}

fn txn_json(t: &Txn) -> Value {
    json!({
        "rrn": t.rrn.as_str(), "auth_id": t.auth_id.as_str(), "code": t.code, "state": t.state,
        "terminal": t.request.terminal.as_str(), "merchant": t.merchant.as_str(),
        "amount": t.amount, "final_amount": t.final_amount, "discount": t.discount, "fee": t.fee,
        "refunded": t.refunded, "refund_of": t.refund_of.map(|r| r.as_str().to_owned()),
        "created": t.created.0, "confirmed": t.confirmed.map(|c| c.0), "settled_batch": t.settled,
    })
}

async fn terminal_history(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let ts = h.switch.engine.terminal_history(&terminal_id(&id)?)?;
    Ok(Json(Value::Array(ts.iter().map(txn_json).collect())))
}

#[derive(Deserialize)]
struct MemberIn {
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    tier: Tier,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    status: Option<Status>,
    /// "MM-DD" or "YYYY-MM-DD" (only the month and day are kept); left
    /// out: unchanged; "": forgotten.
    #[serde(default)]
    birthday: Option<String>,
}

impl MemberIn {
    /// The birthday to record, if the request says one: `Some(None)`
    /// forgets it.
    fn birthday(&self) -> Result<Option<Option<Birthday>>, ApiError> {
        match self.birthday.as_deref().map(str::trim) {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(s) => Ok(Some(Some(s.parse()?))),
        }
    }
}

/// A member as JSON, with their birthday.
fn member_json(h: &Http, m: &Member) -> ApiResult {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    let birthday = h.switch.engine.birthday(m.id)?.map(|b| b.to_string());
    v["birthday"] = json!(birthday);
    Ok(Json(v))
}

async fn add_member(State(h): Shared, Json(m): Json<MemberIn>) -> ApiResult {
    let birthday = m.birthday()?;
    let engine = &h.switch.engine;
    let rec = engine.add_member(&m.name, &m.phone, m.tier, m.groups)?;
    if let Some(b) = birthday {
        engine.set_birthday(rec.id, b)?;
    }
    member_json(&h, &rec)
}

async fn get_member(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    let m = h
        .switch
        .engine
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    member_json(&h, &m)
}

async fn update_member(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(m): Json<MemberIn>,
) -> ApiResult {
    let old = h
        .switch
        .engine
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    let birthday = m.birthday()?;
    let rec = Member {
        id: old.id,
        name: m.name,
        phone: m.phone,
        tier: m.tier,
        groups: m.groups,
        status: m.status.unwrap_or(old.status),
    };
    h.switch.engine.put_member(&rec)?;
    if let Some(b) = birthday {
        h.switch.engine.set_birthday(rec.id, b)?;
    }
    member_json(&h, &rec)
}

#[derive(Serialize)]
struct CardView {
    hash: String,
    last4: String,
    kind: CardKind,
    member: Option<u64>,
    status: Status,
    expiry: Option<String>,
    balance: Option<i64>,
    available: Option<i64>,
    replaced_by: Option<String>,
}

fn card_view(h: &Http, c: &Card) -> ApiResult<CardView> {
    let acc = c
        .account
        .map(|id| h.switch.engine.account(&AccountKey::Club(id)))
        .transpose()?;
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

#[derive(Deserialize)]
struct CardIn {
    pan: String,
    #[serde(default = "club")]
    kind: CardKind,
    member: Option<u64>,
    expiry: Option<String>,
    max_amount: Option<u64>,
    daily_limit: Option<u64>,
}

fn club() -> CardKind {
    CardKind::Club
}

async fn issue_card(State(h): Shared, Json(c): Json<CardIn>) -> ApiResult<Json<CardView>> {
    let card = h.switch.engine.issue_card(&NewCard {
        pan: pan(&c.pan)?,
        kind: c.kind,
        member: c.member.map(MemberId),
        expiry: expiry(c.expiry.as_deref())?,
        max_amount: c.max_amount.map(amount).transpose()?,
        daily_limit: c.daily_limit.map(amount).transpose()?,
    })?;
    Ok(Json(card_view(&h, &card)?))
}

#[derive(Deserialize)]
struct BatchIn {
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

/// Issues a batch of club cards and returns the personalization records for
/// the card printer: the only place the switch ever shows card numbers.
async fn issue_batch(State(h): Shared, Json(b): Json<BatchIn>) -> ApiResult {
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
    let issued = h.switch.engine.issue_batch(&planned)?;
    let out: Vec<Value> = planned
        .iter()
        .zip(&issued)
        .map(|((name, pan, _), (member, card))| {
            json!({
                "pan": String::from_utf8_lossy(pan.expose()), "expiry": b.expiry, "name": name,
                "member": member.id.0, "hash": card.hash.to_hex(),
            })
        })
        .collect();
    tracing::info!(count = b.count, "issued a card batch");
    Ok(Json(json!({ "personalization": out })))
}

#[derive(Deserialize)]
struct PanIn {
    pan: String,
}

async fn find_card(State(h): Shared, Json(p): Json<PanIn>) -> ApiResult<Json<CardView>> {
    let hash = h.switch.engine.card_hash(&pan(&p.pan)?);
    let c = h
        .switch
        .engine
        .card(&hash)?
        .ok_or_else(|| not_found("card"))?;
    Ok(Json(card_view(&h, &c)?))
}

async fn get_card(State(h): Shared, Path(hash): Path<String>) -> ApiResult<Json<CardView>> {
    let c = h
        .switch
        .engine
        .card(&card_hash(&hash)?)?
        .ok_or_else(|| not_found("card"))?;
    Ok(Json(card_view(&h, &c)?))
}

async fn card_history(State(h): Shared, Path(hash): Path<String>) -> ApiResult {
    let ts = h.switch.engine.card_history(&card_hash(&hash)?)?;
    Ok(Json(Value::Array(ts.iter().map(txn_json).collect())))
}

async fn card_action(
    State(h): Shared,
    Path((hash, action)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> ApiResult<Json<CardView>> {
    let hash = card_hash(&hash)?;
    let body = body.map(|b| b.0).unwrap_or_default();
    let engine = &h.switch.engine;
    let mark = engine.store().mark();
    let card = match action.as_str() {
        "block" => engine.update_card(&hash, |c| c.status = Status::Blocked)?,
        "unblock" => engine.update_card(&hash, |c| c.status = Status::Active)?,
        "expiry" => {
            let e = expiry(body["expiry"].as_str())?;
            engine.update_card(&hash, |c| c.expiry = e)?
        }
        "limits" => {
            let max = body["max_amount"].as_u64().map(amount).transpose()?;
            let daily = body["daily_limit"].as_u64().map(amount).transpose()?;
            engine.update_card(&hash, |c| {
                c.max_amount = max;
                c.daily_limit = daily;
            })?
        }
        "link" => {
            let m = MemberId(
                body["member"]
                    .as_u64()
                    .ok_or_else(|| bad("member is required"))?,
            );
            engine.member(m)?.ok_or_else(|| not_found("member"))?;
            engine.update_card(&hash, |c| c.member = Some(m))?
        }
        "renew" => {
            let p = pan(body["pan"].as_str().ok_or_else(|| bad("pan is required"))?)?;
            engine.renew_card(&hash, &p, expiry(body["expiry"].as_str())?)?
        }
        "top-up" => {
            let a = amount(
                body["amount"]
                    .as_u64()
                    .ok_or_else(|| bad("amount is required"))?,
            )?;
            engine.top_up(&hash, a, UnixTime::now())?;
            engine.card(&hash)?.ok_or_else(|| not_found("card"))?
        }
        other => return Err(not_found(&format!("card action {other:?}"))),
    };
    engine
        .store()
        .durable_since(mark)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(card_view(&h, &card)?))
}

#[derive(Deserialize)]
struct CreditIn {
    member: u64,
    merchant: String,
    amount: u64,
}

async fn grant_store_credit(State(h): Shared, Json(c): Json<CreditIn>) -> ApiResult {
    let acc = h.switch.engine.grant_store_credit(
        MemberId(c.member),
        &merchant_id(&c.merchant)?,
        amount(c.amount)?,
        UnixTime::now(),
    )?;
    Ok(Json(
        json!({ "balance": acc.balance, "available": acc.available() }),
    ))
}

#[derive(Deserialize)]
struct SettleIn {
    /// Unix time; default now.
    cutoff: Option<i64>,
}

/// Runs a settlement and writes its CSV and JSON files.
async fn run_settlement(State(h): Shared, body: Option<Json<SettleIn>>) -> ApiResult {
    let now = UnixTime::now();
    let cutoff = body.and_then(|b| b.0.cutoff).map(UnixTime).unwrap_or(now);
    let batches = blocking(&h, move |e| e.settle(cutoff, now)).await?;
    let files = crate::settlement::write_files(&h.switch.cfg, &batches, now)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(json!({ "batches": batches, "files": files })))
}

async fn list_settlements(
    State(h): Shared,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let batches = match h.switch.engine.settlements() {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if q.get("format").map(String::as_str) == Some("csv") {
        return (
            [(header::CONTENT_TYPE, "text/csv")],
            settlement::to_csv(&batches),
        )
            .into_response();
    }
    Json(serde_json::to_value(batches).unwrap_or_default()).into_response()
}

#[derive(Default, Serialize)]
struct Line {
    purchases: u64,
    sales: u64,
    discounts: u64,
    fees: u64,
    refunds: u64,
}

/// The local days `from` and `to` of a query (YYYY-MM-DD, default today).
fn local_days(q: &std::collections::HashMap<String, String>, offset: i64) -> ApiResult<(i64, i64)> {
    let today = UnixTime::now().local_day(offset);
    let day = |k: &str| -> ApiResult<i64> {
        q.get(k)
            .map(|s| {
                crate::config::parse_date(s).ok_or_else(|| bad(format!("{k} must be YYYY-MM-DD")))
            })
            .transpose()
            .map(|d| d.unwrap_or(today))
    };
    Ok((day("from")?, day("to")?))
}

/// Sales, discounts, fees and refunds by merchant or terminal, for a period
/// of local dates (`from`, `to` inclusive, YYYY-MM-DD; default today).
async fn report(
    State(h): Shared,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> ApiResult {
    let offset = h.switch.cfg.utc_offset_secs;
    let (from, to) = local_days(&q, offset)?;
    let by_terminal = q.get("by").map(String::as_str) == Some("terminal");
    let txns = h.switch.engine.transactions(|t| {
        t.confirmed
            .is_some_and(|c| (from..=to).contains(&c.local_day(offset)))
    })?;
    let mut lines: std::collections::BTreeMap<String, Line> = Default::default();
    for t in &txns {
        let key = if by_terminal {
            t.request.terminal.as_str().to_owned()
        } else {
            t.merchant.as_str().to_owned()
        };
        let l = lines.entry(key).or_default();
        match t.code {
            ProcessingCode::ClubRefund | ProcessingCode::StoreRefund => l.refunds += t.final_amount,
            _ if t.state == clubswitch_engine::TxnState::Confirmed => {
                l.purchases += 1;
                l.sales += t.final_amount;
                l.discounts += t.discount;
                l.fees += t.fee;
            }
            _ => {}
        }
    }
    let fmt = crate::config::format_date;
    Ok(Json(
        json!({ "from": fmt(from), "to": fmt(to), "by": if by_terminal { "terminal" } else { "merchant" }, "lines": lines }),
    ))
}

#[derive(Deserialize)]
struct BackupIn {
    /// A new directory on the switch's machine, as an absolute path.
    dir: String,
}

/// An online backup into a new directory; answers with its manifest once
/// it is on disk.
async fn backup(State(h): Shared, Json(b): Json<BackupIn>) -> ApiResult {
    let dir = std::path::PathBuf::from(&b.dir);
    if !dir.is_absolute() {
        return Err(bad("dir must be an absolute path on the switch's machine"));
    }
    let paths = crate::backup::prepare(&dir, &h.switch.cfg).map_err(bad)?;
    let started = UnixTime::now();
    let engine = h.switch.engine.clone();
    let report = crate::background::run("backup", move || engine.backup(&paths))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    let manifest = crate::backup::write_manifest(&dir, &report, started)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    tracing::info!(dir = %dir.display(), records = report.records, took_ms = report.took_ms, "backup taken");
    let mut out = serde_json::to_value(manifest).unwrap_or_default();
    out["dir"] = json!(b.dir);
    Ok(Json(out))
}

async fn audit(State(h): Shared) -> ApiResult {
    let dir = crate::layout::archive_dir(&h.switch.cfg.data_dir);
    let report = blocking(&h, move |e| e.audit_all(&dir)).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}
