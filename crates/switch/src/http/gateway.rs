//! Payment gateways' top-up callbacks.
//!
//! A member pays for a top-up on a payment gateway's page; the gateway then
//! calls `POST /v1/gateways/{name}/top-up`, and calls again until it is
//! answered. Each gateway has its own secret (`[[admin.gateways]]`); a
//! callback is taken only when it carries
//!
//! - `X-Clubswitch-Timestamp`: Unix seconds, within the gateway's window of
//!   the switch's clock (default ±300 s), so a captured callback cannot be
//!   played much later, and
//! - `X-Clubswitch-Signature`: the hex of `HMAC-SHA256(secret, timestamp ‖
//!   "." ‖ body)`, compared in constant time.
//!
//! Anything else is 401, and moves nothing. The body's `reference` (the
//! gateway's own payment reference) is the callback's idempotency key,
//! scoped to the gateway: however often and however concurrently a callback
//! is repeated, the card is credited once and every repeat is answered as
//! the first (see `clubswitch_engine::idempotency`). Checked in
//! [`super::access::guard`], like every other credential.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use clubswitch_engine::{Idempotency, UnixTime};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{amount, card_hash, ApiResult, Shared};
use crate::config::GatewayConfig;
use crate::error::SwitchError;

/// The header with the callback's time, Unix seconds.
pub const TIMESTAMP: &str = "x-clubswitch-timestamp";
/// The header with the callback's signature, hex.
pub const SIGNATURE: &str = "x-clubswitch-signature";

/// The gateways the switch takes callbacks from, by name.
#[derive(Default)]
pub struct Gateways(HashMap<String, Gateway>);

struct Gateway {
    secret: Vec<u8>,
    window_secs: i64,
}

impl Gateways {
    /// Reads each gateway's secret from its file.
    pub fn load(list: &[GatewayConfig]) -> Result<Gateways, SwitchError> {
        let mut out = HashMap::with_capacity(list.len());
        for g in list {
            let secret = std::fs::read_to_string(&g.secret_file)
                .map_err(|source| SwitchError::Io {
                    path: g.secret_file.clone(),
                    source,
                })?
                .trim()
                .as_bytes()
                .to_vec();
            if secret.len() < 32 {
                return Err(SwitchError::Config(crate::config::ConfigError::Invalid(
                    format!(
                        "gateway {}: the secret in {} is shorter than 32 characters",
                        g.name,
                        g.secret_file.display()
                    ),
                )));
            }
            out.insert(
                g.name.clone(),
                Gateway {
                    secret,
                    window_secs: i64::from(g.window_secs),
                },
            );
        }
        Ok(Gateways(out))
    }

    /// Checks a callback from gateway `name` and returns its idempotency
    /// key; the error says why it is refused (answered 401, or 400 for a
    /// signed body without a reference).
    pub(super) fn verify(
        &self,
        name: &str,
        headers: &HeaderMap,
        body: &[u8],
        now: UnixTime,
    ) -> Result<Idempotency, Refused> {
        let gateway = self.0.get(name).ok_or(Refused::Signature)?;
        let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
        let stamp = header(TIMESTAMP).ok_or(Refused::Signature)?;
        let at: i64 = stamp.parse().map_err(|_| Refused::Signature)?;
        let sig = header(SIGNATURE)
            .and_then(|s| hex::decode(s).ok())
            .ok_or(Refused::Signature)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&gateway.secret).map_err(|_| Refused::Signature)?;
        mac.update(stamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).map_err(|_| Refused::Signature)?;
        if (now.0 - at).abs() > gateway.window_secs {
            return Err(Refused::Stale);
        }
        let reference = serde_json::from_slice::<Reference>(body)
            .ok()
            .map(|r| r.reference)
            .filter(|r| (1..=255).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(Refused::Reference)?;
        Ok(Idempotency::new(
            &format!("gateway:{name}"),
            &reference,
            Sha256::digest(body).into(),
        ))
    }
}

/// Why a callback is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Unknown gateway, or a missing or wrong signature.
    Signature,
    /// Signed, but its timestamp is outside the window.
    Stale,
    /// Signed, but it names no usable reference.
    Reference,
}

impl Refused {
    pub(super) fn message(self) -> &'static str {
        match self {
            Refused::Signature => "missing or wrong gateway signature",
            Refused::Stale => "the callback's timestamp is outside the gateway's window",
            Refused::Reference => "reference: 1 to 255 visible ASCII characters",
        }
    }
}

#[derive(Deserialize)]
struct Reference {
    reference: String,
}

/// A paid top-up, as the gateway reports it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CallbackIn {
    /// The gateway's payment reference: unique per payment.
    reference: String,
    /// The club card's hash (hex), as the member's page named it.
    card: String,
    /// Rials paid.
    amount: u64,
}

/// The top-up done (or, for a repeat, as first done).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CallbackView {
    reference: String,
    card: String,
    amount: u64,
    /// The card's club balance right after this top-up.
    balance: i64,
    available: i64,
}

pub(super) async fn top_up(
    State(h): Shared,
    Extension(idem): Extension<Idempotency>,
    Path(gateway): Path<String>,
    Json(c): Json<CallbackIn>,
) -> ApiResult<Json<CallbackView>> {
    let hash = card_hash(&c.card)?;
    let a = amount(c.amount)?;
    let acc = super::blocking(&h, move |e| {
        e.admin()
            .keyed(Some(idem))
            .by(Some(format!("gateway:{gateway}")))
            .top_up(&hash, a, UnixTime::now())
    })
    .await?
    .await?;
    Ok(Json(CallbackView {
        reference: c.reference,
        card: c.card,
        amount: c.amount,
        balance: acc.balance,
        available: acc.available(),
    }))
}
