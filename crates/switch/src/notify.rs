//! Delivers member notices from the engine's outbox.
//!
//! The engine writes a notice in the same transaction as its event; this
//! module drains the outbox on its own task, so a slow or dead gateway
//! never delays a terminal. Delivery is at least once: a notice is removed
//! only after the channel accepted it, and a failed one is tried again with
//! exponential backoff. Each carries its outbox id, which a gateway can use
//! to drop the rare duplicate (a crash between sending and removing).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use clubswitch_engine::notice::backoff;
use clubswitch_engine::{Engine, Notice, NoticeKind, Tier, UnixTime};
use serde::Serialize;
use serde_json::json;

use crate::config::{format_date, ConfigError, NoticeChannel, Notices};
use crate::error::SwitchError;
use crate::metrics::Metrics;

/// Where notices go.
pub trait Channel: Send + Sync {
    /// Delivers one notice; an error means it was not accepted.
    fn send(&self, notice: &Notice, text: &str) -> Result<(), SwitchError>;
}

/// Writes notices to the log, the phone number masked (the demo).
pub struct LogChannel;

impl Channel for LogChannel {
    fn send(&self, n: &Notice, text: &str) -> Result<(), SwitchError> {
        // A login code is a credential: never in the log.
        let text = if matches!(n.kind, NoticeKind::LoginCode { .. }) {
            "a login code (withheld from the log)"
        } else {
            text
        };
        tracing::info!(
            id = n.id,
            member = n.member.0,
            to = %mask_phone(&n.phone),
            "notice: {text}"
        );
        Ok(())
    }
}

/// POSTs each notice as JSON to an SMS gateway.
pub struct Webhook {
    agent: ureq::Agent,
    url: String,
    token: Option<String>,
}

impl Webhook {
    pub fn new(url: String, token: Option<String>, timeout: Duration) -> Webhook {
        Webhook {
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            url,
            token,
        }
    }
}

impl Channel for Webhook {
    fn send(&self, n: &Notice, text: &str) -> Result<(), SwitchError> {
        let body = json!({
            "id": n.id,
            "member": n.member.0,
            "to": n.phone,
            "at": n.at.0,
            "text": text,
            "notice": NoticeDetail::of(&n.kind),
        });
        let mut req = self.agent.post(&self.url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        match req.send_json(body) {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(code, _)) => Err(SwitchError::GatewayStatus(code)),
            Err(e) => Err(SwitchError::Gateway(Box::new(e))),
        }
    }
}

/// The channel the configuration asks for.
pub fn channel(cfg: &Notices) -> Result<Box<dyn Channel>, SwitchError> {
    match cfg.channel {
        NoticeChannel::Log => Ok(Box::new(LogChannel)),
        NoticeChannel::Webhook => {
            let url = cfg
                .webhook_url
                .clone()
                .ok_or_else(|| ConfigError::Invalid("notices.webhook_url is not set".into()))?;
            let token = match &cfg.webhook_token_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|source| SwitchError::Io {
                            path: p.clone(),
                            source,
                        })?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            Ok(Box::new(Webhook::new(
                url,
                token,
                Duration::from_millis(cfg.webhook_timeout_ms),
            )))
        }
    }
}

/// `09121234567` → `0912***4567`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

/// A notice's kind and details as JSON, with ids as strings: `{"kind":
/// "receipt", "rrn": "000000000061", ...}`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeDetail {
    /// A confirmed purchase.
    Receipt {
        rrn: String,
        merchant: String,
        amount: u64,
        points: u64,
    },
    /// The club balance fell below the configured threshold.
    LowBalance { available: i64 },
    /// The member's tier changed.
    TierChange { from: Tier, to: Tier },
    /// The member became VIP, through the month before `until_month` (a
    /// month index: year × 12 + month − 1).
    Vip { until_month: i64 },
    /// Points turned into store credit.
    PointsConverted {
        merchant: String,
        points: u64,
        credit: u64,
    },
    /// A referral bonus was paid.
    ReferralBonus { merchant: String, points: u64 },
    /// The member won a lucky draw.
    DrawWon {
        draw: u64,
        merchant: String,
        points: u64,
    },
    /// Store credit or points came back after a refund or reversal.
    Returned {
        rrn: String,
        merchant: String,
        points: u64,
        credit: u64,
    },
    /// Points or store credit at a merchant will expire: this much is
    /// valid through the end of local day `valid_through` (YYYY-MM-DD).
    ExpiryWarning {
        merchant: String,
        points: u64,
        credit: u64,
        valid_through: String,
    },
    /// Points or store credit at a merchant expired.
    Expired {
        merchant: String,
        points: u64,
        credit: u64,
    },
    /// Greetings on the member's birthday.
    Birthday,
    /// The member's card (by its last four digits) is valid through the
    /// end of local day `valid_through` (YYYY-MM-DD).
    CardExpiring {
        last4: String,
        valid_through: String,
    },
    /// A one-time code to sign in to the console with. The code goes to
    /// the member's phone only: the admin API never shows it.
    LoginCode {
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
}

impl NoticeDetail {
    /// The details of `kind`, all of them: what the member is sent.
    pub fn of(kind: &NoticeKind) -> NoticeDetail {
        match kind {
            NoticeKind::Receipt {
                rrn,
                merchant,
                amount,
                points,
            } => NoticeDetail::Receipt {
                rrn: rrn.as_str().to_owned(),
                merchant: merchant.as_str().to_owned(),
                amount: *amount,
                points: *points,
            },
            NoticeKind::LowBalance { available } => NoticeDetail::LowBalance {
                available: *available,
            },
            NoticeKind::TierChange { from, to } => NoticeDetail::TierChange {
                from: *from,
                to: *to,
            },
            NoticeKind::Vip { until } => NoticeDetail::Vip {
                until_month: *until,
            },
            NoticeKind::PointsConverted {
                merchant,
                points,
                credit,
            } => NoticeDetail::PointsConverted {
                merchant: merchant.as_str().to_owned(),
                points: *points,
                credit: *credit,
            },
            NoticeKind::ReferralBonus { merchant, points } => NoticeDetail::ReferralBonus {
                merchant: merchant.as_str().to_owned(),
                points: *points,
            },
            NoticeKind::DrawWon {
                draw,
                merchant,
                points,
            } => NoticeDetail::DrawWon {
                draw: *draw,
                merchant: merchant.as_str().to_owned(),
                points: *points,
            },
            NoticeKind::Returned {
                rrn,
                merchant,
                points,
                credit,
            } => NoticeDetail::Returned {
                rrn: rrn.as_str().to_owned(),
                merchant: merchant.as_str().to_owned(),
                points: *points,
                credit: *credit,
            },
            NoticeKind::ExpiryWarning {
                merchant,
                points,
                credit,
                by,
            } => NoticeDetail::ExpiryWarning {
                merchant: merchant.as_str().to_owned(),
                points: *points,
                credit: *credit,
                valid_through: format_date(*by),
            },
            NoticeKind::Expired {
                merchant,
                points,
                credit,
            } => NoticeDetail::Expired {
                merchant: merchant.as_str().to_owned(),
                points: *points,
                credit: *credit,
            },
            NoticeKind::Birthday => NoticeDetail::Birthday,
            NoticeKind::CardExpiring { last4, through } => NoticeDetail::CardExpiring {
                last4: last4.clone(),
                valid_through: format_date(*through),
            },
            NoticeKind::LoginCode { code } => NoticeDetail::LoginCode {
                code: Some(code.clone()),
            },
        }
    }

    /// The details of `kind` without what only the member may see (a login
    /// code, which would let its reader sign in as the member).
    pub fn withheld(kind: &NoticeKind) -> NoticeDetail {
        match NoticeDetail::of(kind) {
            NoticeDetail::LoginCode { .. } => NoticeDetail::LoginCode { code: None },
            other => other,
        }
    }
}

/// "200 points and 5000 rials of credit", leaving out what is zero.
fn points_and_credit(points: u64, credit: u64) -> String {
    match (points, credit) {
        (p, 0) => format!("{p} points"),
        (0, c) => format!("{c} rials of credit"),
        (p, c) => format!("{p} points and {c} rials of credit"),
    }
}

/// The words of a notice.
pub fn text(n: &Notice, tier_names: &[String; 4]) -> String {
    let tier = |t: clubswitch_engine::Tier| tier_names[t as usize].as_str();
    match &n.kind {
        NoticeKind::Receipt {
            merchant,
            amount,
            points,
            ..
        } => {
            if *points > 0 {
                format!("Purchase of {amount} rials at {merchant}; {points} points earned.")
            } else {
                format!("Purchase of {amount} rials at {merchant}.")
            }
        }
        NoticeKind::LowBalance { available } => {
            format!("Your club balance is low: {available} rials available.")
        }
        NoticeKind::TierChange { from, to } if to > from => {
            format!("Congratulations: you are now {}.", tier(*to))
        }
        NoticeKind::TierChange { to, .. } => format!("Your tier is now {}.", tier(*to)),
        NoticeKind::Vip { until } => format!(
            "You are VIP through {}-{:02}.",
            until.saturating_sub(1).div_euclid(12),
            until.saturating_sub(1).rem_euclid(12) + 1
        ),
        NoticeKind::PointsConverted {
            merchant,
            points,
            credit,
        } => format!("{points} points became {credit} rials of credit at {merchant}."),
        NoticeKind::ReferralBonus { merchant, points } => {
            format!("Referral bonus: {points} points at {merchant}.")
        }
        NoticeKind::DrawWon {
            merchant, points, ..
        } => format!("You won {points} points at {merchant} in the lucky draw."),
        NoticeKind::Returned {
            merchant,
            points,
            credit,
            ..
        } => format!(
            "A refund at {merchant} took back {points} points and {credit} rials of credit."
        ),
        NoticeKind::ExpiryWarning {
            merchant,
            points,
            credit,
            by,
        } => format!(
            "{} at {merchant} expire after {}: use them before then.",
            points_and_credit(*points, *credit),
            format_date(*by)
        ),
        NoticeKind::Expired {
            merchant,
            points,
            credit,
        } => format!(
            "{} at {merchant} expired.",
            points_and_credit(*points, *credit)
        ),
        NoticeKind::Birthday => "Happy birthday from your club!".to_owned(),
        NoticeKind::CardExpiring { last4, through } => format!(
            "Your club card ending {last4} is valid through {}; ask for a renewal.",
            format_date(*through)
        ),
        NoticeKind::LoginCode { code } => {
            format!("Your club login code is {code}. It works once, for five minutes.")
        }
    }
}

/// Records looked at per round: a gateway that has been down for long
/// leaves many notices waiting, and each round looks at no more than this.
const SCAN_PER_ROUND: usize = 100_000;

/// One delivery round: sends what is due, removes what was accepted (in
/// one transaction at the end: a crash before it sends those again, which
/// at-least-once allows) and reschedules what was not.
pub fn round(
    engine: &Engine,
    channel: &dyn Channel,
    cfg: &Notices,
    tier_names: &[String; 4],
    metrics: &Metrics,
    now: UnixTime,
) -> Result<(), SwitchError> {
    let due = engine
        .outbox()
        .due(now, cfg.per_round, SCAN_PER_ROUND)
        .map_err(SwitchError::Outbox)?;
    let mut delivered = Vec::with_capacity(due.len());
    let mut failed = None;
    for n in due {
        match channel.send(&n, &text(&n, tier_names)) {
            Ok(()) => {
                metrics.notices_sent.fetch_add(1, Relaxed);
                delivered.push(n.id);
            }
            Err(e) => {
                metrics.notices_failed.fetch_add(1, Relaxed);
                let wait = backoff(n.attempts, cfg.retry_base_secs, cfg.retry_max_secs);
                tracing::warn!(
                    id = n.id,
                    attempts = n.attempts + 1,
                    retry_in_secs = wait,
                    "notice not delivered: {e}"
                );
                failed = Some((n.id, e, wait));
                // The gateway is failing: leave the rest for the next round.
                break;
            }
        }
    }
    engine
        .outbox()
        .delivered(&delivered)
        .map_err(|source| SwitchError::NoticesDelivered {
            count: delivered.len(),
            source,
        })?;
    match failed {
        Some((id, e, wait)) => engine
            .outbox()
            .failed(id, now, &e.to_string(), wait)
            .map_err(|source| SwitchError::NoticeRescheduled { id, source }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_masked_in_the_middle() {
        assert_eq!(mask_phone("09121234567"), "0912***4567");
        assert_eq!(mask_phone("12345"), "*****");
    }
}
