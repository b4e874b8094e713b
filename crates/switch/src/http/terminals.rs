//! Admin API for terminals: registration (the one time a terminal's key is
//! shown), blocking, unlocking, key rotation and history.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use clubswitch_engine::{Status, Terminal};
use clubswitch_wire::Tmk;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::Actor;
use super::{blocking, merchant_id, not_found, terminal_id, txn_json, ApiResult, Shared};
use crate::handler::TMK_PURPOSE;

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct TerminalIn {
    id: String,
    merchant: String,
}

/// A terminal as the API shows it: its key only when just made.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TerminalView {
    id: String,
    merchant: String,
    #[schema(value_type = String, example = "active")]
    status: Status,
    locked: bool,
    security_failures: u32,
    key_change_pending: bool,
    /// The terminal master key (hex), in the answer that made it only.
    #[serde(skip_serializing_if = "Option::is_none")]
    tmk: Option<String>,
}

pub(super) fn terminal_json(t: &Terminal) -> Value {
    serde_json::to_value(TerminalView {
        id: t.id.as_str().to_owned(),
        merchant: t.merchant.as_str().to_owned(),
        status: t.status,
        locked: t.locked,
        security_failures: t.security_failures,
        key_change_pending: t.previous_tmk.is_some(),
        tmk: None,
    })
    .unwrap_or_default()
}

/// Registers a terminal; the answer carries its TMK, shown this once.
pub(super) async fn add_terminal(State(h): Shared, Json(t): Json<TerminalIn>) -> ApiResult {
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
    let stored = rec.clone();
    blocking(&h, move |e| e.admin().add_terminal(&stored))
        .await?
        .await?;
    tracing::info!(terminal = %rec.id, merchant = %rec.merchant, "terminal registered");
    let mut out = terminal_json(&rec);
    out["tmk"] = json!(tmk.to_hex());
    Ok(Json(out))
}

/// Every terminal; a merchant's user sees only its own.
pub(super) async fn list_terminals(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
) -> ApiResult {
    let ts = blocking(&h, |e| e.admin().terminals()).await?;
    Ok(Json(Value::Array(
        ts.iter()
            .filter(|t| actor.merchant().is_none_or(|own| *own == t.merchant))
            .map(terminal_json)
            .collect(),
    )))
}

pub(super) async fn terminal_action(
    State(h): Shared,
    Path((id, action)): Path<(String, String)>,
) -> ApiResult {
    let id = terminal_id(&id)?;
    let mut out = json!({});
    let change: Box<dyn Fn(&mut Terminal) + Send> = match action.as_str() {
        "block" => Box::new(|t| t.status = Status::Blocked),
        "unblock" => Box::new(|t| t.status = Status::Active),
        "unlock" => Box::new(|t| {
            t.locked = false;
            t.security_failures = 0;
        }),
        "rotate-key" => {
            let tmk = Tmk::generate();
            let sealed = h.switch.master.seal(TMK_PURPOSE, tmk.as_bytes());
            out["tmk"] = json!(tmk.to_hex());
            Box::new(move |t| {
                t.sealed_tmk = sealed.clone();
                t.previous_tmk = None;
            })
        }
        other => return Err(not_found(&format!("terminal action {other:?}"))),
    };
    let t = blocking(&h, move |e| e.admin().update_terminal(&id, change))
        .await?
        .await?;
    h.switch.forget_terminal(&id);
    let mut view = terminal_json(&t);
    if let Some(k) = out.get("tmk") {
        view["tmk"] = k.clone();
    }
    Ok(Json(view))
}

pub(super) async fn terminal_history(State(h): Shared, Path(id): Path<String>) -> ApiResult {
    let id = terminal_id(&id)?;
    let ts = blocking(&h, move |e| e.admin().terminal_history(&id)).await?;
    Ok(Json(Value::Array(ts.iter().map(txn_json).collect())))
}
