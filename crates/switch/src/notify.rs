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
use clubswitch_engine::{Engine, Event, Notice, NoticeKind, Tier, UnixTime};
use serde::Serialize;
use serde_json::json;

use crate::config::{format_date, ConfigError, NoticeChannel, Notices, WebhookMethod};
use crate::error::SwitchError;
use crate::metrics::Metrics;
use crate::words::Words;

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

/// The gateway request's shape, from the configuration: the URL and,
/// where one is set, the body, each a template over the notice (see
/// [`Notices::webhook_body`]). A placeholder the templates do not know is
/// an error when the switch starts, never at the first notice.
pub struct Shape {
    env: minijinja::Environment<'static>,
    body: bool,
}

impl Shape {
    pub fn of(cfg: &Notices) -> Result<Shape, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned("url", cfg.webhook_url.clone().unwrap_or_default())?;
        if let Some(b) = &cfg.webhook_body {
            env.add_template_owned("body", b.clone())?;
        }
        let shape = Shape {
            env,
            body: cfg.webhook_body.is_some(),
        };
        shape.render(&sample(NoticeKind::Birthday, None), "sample")?;
        Ok(shape)
    }

    /// The URL and the body for `n` with words `text`.
    fn render(&self, n: &Notice, text: &str) -> Result<(String, String), minijinja::Error> {
        let detail = NoticeDetail::of(&n.kind);
        let ctx = minijinja::context! {
            id => n.id,
            member => n.member.0,
            to => &n.phone,
            at => n.at.0,
            text => text,
            notice => &detail,
        };
        let url = self.env.get_template("url")?.render(&ctx)?;
        let body = if self.body {
            self.env.get_template("body")?.render(&ctx)?
        } else {
            json!({
                "id": n.id,
                "member": n.member.0,
                "to": n.phone,
                "at": n.at.0,
                "text": text,
                "notice": detail,
            })
            .to_string()
        };
        Ok((url, body))
    }
}

/// A notice of `kind` to a made-up member, to try a template on.
pub(crate) fn sample(kind: NoticeKind, language: Option<clubswitch_engine::Language>) -> Notice {
    Notice {
        id: 1,
        member: clubswitch_engine::MemberId(7),
        phone: "09120000001".into(),
        at: UnixTime(0),
        kind,
        attempts: 0,
        next_at: UnixTime(0),
        last_error: None,
        language,
    }
}

/// Sends each notice to an SMS gateway over HTTP, in the request shape the
/// configuration gives (by default a JSON POST with a bearer token).
pub struct Webhook {
    agent: ureq::Agent,
    shape: Shape,
    method: WebhookMethod,
    content_type: String,
    /// The authorization header and its value.
    auth: Option<(String, String)>,
}

impl Webhook {
    pub fn new(cfg: &Notices, token: Option<String>) -> Result<Webhook, SwitchError> {
        let shape = Shape::of(cfg)
            .map_err(|e| ConfigError::Invalid(format!("notices webhook templates: {e}")))?;
        let auth = token.map(|t| {
            let value = match cfg.webhook_auth_scheme.trim() {
                "" => t,
                scheme => format!("{scheme} {t}"),
            };
            (cfg.webhook_auth_header.clone(), value)
        });
        Ok(Webhook {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_millis(cfg.webhook_timeout_ms))
                .build(),
            shape,
            method: cfg.webhook_method,
            content_type: cfg.webhook_content_type.clone(),
            auth,
        })
    }
}

impl Channel for Webhook {
    fn send(&self, n: &Notice, text: &str) -> Result<(), SwitchError> {
        let (url, body) = self.shape.render(n, text)?;
        let mut req = self.agent.request(self.method.as_str(), &url);
        if let Some((header, value)) = &self.auth {
            req = req.set(header, value);
        }
        let sent = match self.method {
            WebhookMethod::Get => req.call(),
            WebhookMethod::Post | WebhookMethod::Put => req
                .set("Content-Type", &self.content_type)
                .send_string(&body),
        };
        match sent {
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
            if cfg.webhook_url.is_none() {
                return Err(ConfigError::Invalid("notices.webhook_url is not set".into()).into());
            }
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
            Ok(Box::new(Webhook::new(cfg, token)?))
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
    /// A campaign's message.
    Campaign { campaign: u64 },
    /// The member last bought at a merchant `days` days ago.
    Repurchase { merchant: String, days: u32 },
    /// The member joined `years` years ago today.
    Anniversary { years: u32 },
    /// The member falls from `tier` at the review on `review_day`
    /// (YYYY-MM-DD) unless they spend `short` rials more before it.
    TierAtRisk {
        tier: Tier,
        short: u64,
        review_day: String,
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
            NoticeKind::Campaign { campaign } => NoticeDetail::Campaign {
                campaign: *campaign,
            },
            NoticeKind::Repurchase { merchant, days } => NoticeDetail::Repurchase {
                merchant: merchant.as_str().to_owned(),
                days: *days,
            },
            NoticeKind::Anniversary { years } => NoticeDetail::Anniversary { years: *years },
            NoticeKind::TierAtRisk { tier, short, by } => NoticeDetail::TierAtRisk {
                tier: *tier,
                short: *short,
                review_day: format_date(*by),
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

/// A tier's name in Persian.
pub fn tier_fa(t: Tier) -> &'static str {
    match t {
        Tier::Bronze => "برنزی",
        Tier::Silver => "نقره‌ای",
        Tier::Gold => "طلایی",
        Tier::Platinum => "پلاتینی",
    }
}

/// Records looked at per round: a gateway that has been down for long
/// leaves many notices waiting, and each round looks at no more than this.
pub(crate) const SCAN_PER_ROUND: usize = 100_000;

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
    let mut words = Words::new(engine, tier_names, cfg.language);
    // Greetings and reminders are marketing: held through quiet hours,
    // dropped for a member who opted out since they were written.
    let offset = engine.config().utc_offset_secs;
    let quiet = cfg.quiet_hours.quiet_at(now, offset);
    let mut held = Vec::new();
    // An error part-way stops the round, but what was sent is still
    // recorded below: nothing is sent twice for it.
    let mut stopped = None;
    for n in due {
        if Event::of(&n.kind).is_some_and(Event::is_marketing) {
            if quiet {
                held.push(n.id);
                continue;
            }
            match engine.admin().member(n.member) {
                Ok(Some(m)) if m.opted_out.is_none() => {}
                Ok(_) => {
                    tracing::debug!(id = n.id, "marketing notice dropped: the member opted out");
                    delivered.push(n.id);
                    continue;
                }
                Err(e) => {
                    stopped = Some(SwitchError::Outbox(e));
                    break;
                }
            }
        }
        let text = match words.write(&n) {
            Ok(text) => text,
            Err(e) => {
                stopped = Some(e);
                break;
            }
        };
        match channel.send(&n, &text) {
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
    engine
        .outbox()
        .postpone(&held, cfg.quiet_hours.end_after(now, offset))
        .map_err(SwitchError::Outbox)?;
    if let Some((id, e, wait)) = failed {
        engine
            .outbox()
            .failed(id, now, &e.to_string(), wait)
            .map_err(|source| SwitchError::NoticeRescheduled { id, source })?;
    }
    stopped.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::sample as notice;

    #[test]
    fn the_gateway_request_follows_the_configured_url_and_body_templates() {
        let cfg = Notices {
            webhook_url: Some(
                "https://sms.example/send?to={{ to }}&msg={{ text|urlencode }}".into(),
            ),
            webhook_body: Some(
                r#"{"receptor": {{ to|tojson }}, "message": {{ text|tojson }}, "ref": {{ id }}}"#
                    .into(),
            ),
            ..Notices::default()
        };
        let shape = Shape::of(&cfg).unwrap();
        let n = notice(NoticeKind::Birthday, None);
        let (url, body) = shape.render(&n, "تولدتان \"مبارک\"").unwrap();
        assert_eq!(
            url,
            "https://sms.example/send?to=09120000001&msg=%D8%AA%D9%88%D9%84%D8%AF%D8%AA%D8%A7%D9%86%20%22%D9%85%D8%A8%D8%A7%D8%B1%DA%A9%22"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["message"], "تولدتان \"مبارک\"");
        assert_eq!(v["receptor"], "09120000001");
        assert_eq!(v["ref"], 1);
        // A misspelt placeholder is found when the switch starts.
        let typo = Notices {
            webhook_body: Some("{{ txet }}".into()),
            ..Notices::default()
        };
        assert!(Shape::of(&typo).is_err());
    }

    #[test]
    fn phone_numbers_are_masked_in_the_middle() {
        assert_eq!(mask_phone("09121234567"), "0912***4567");
        assert_eq!(mask_phone("12345"), "*****");
    }
}
