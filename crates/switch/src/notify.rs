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
use clubswitch_engine::{Engine, Event, Notice, NoticeKind, Status, UnixTime};

use crate::config::{ConfigError, NoticeChannel, Notices, WebhookMethod};
use crate::error::SwitchError;
use crate::gateway::Shape;
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
        let shape = Shape::of(cfg.webhook_url.as_deref(), cfg.webhook_body.as_deref())
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
            Err(ureq::Error::Transport(t)) => {
                Err(SwitchError::Gateway(match std::error::Error::source(&t) {
                    Some(why) => format!("{}: {why}", t.kind()),
                    None => t.kind().to_string(),
                }))
            }
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

/// Records looked at per round: a gateway that has been down for long
/// leaves many notices waiting, and each round looks at no more than this.
pub(crate) const SCAN_PER_ROUND: usize = 100_000;

/// One delivery round: sends what is due, removes what was accepted (in
/// one transaction at the end: a crash before it sends those again, which
/// at-least-once allows) and reschedules what was not, giving a notice up
/// after `notices.max_attempts`. A message the gateway refuses (a 4xx)
/// fails alone; any other failure ends the round. Once `stop` says so
/// (the daemon is stopping) it sends no more and records what it sent, so
/// a stop waits for one send, not a round, and sends nothing twice.
pub fn round(
    engine: &Engine,
    channel: &dyn Channel,
    cfg: &Notices,
    tier_names: &[String; 4],
    metrics: &Metrics,
    now: UnixTime,
    stop: &dyn Fn() -> bool,
) -> Result<(), SwitchError> {
    let due = engine
        .outbox()
        .due(now, cfg.per_round, SCAN_PER_ROUND)
        .map_err(SwitchError::Outbox)?;
    let mut delivered = Vec::with_capacity(due.len());
    // Notices not delivered this round: rescheduled, or given up.
    let mut failed: Vec<(u64, u32, SwitchError)> = Vec::new();
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
        if stop() {
            break;
        }
        if n.phone.trim().is_empty() {
            // Written before the switch skipped members without a number.
            tracing::debug!(id = n.id, "notice given up: the member has no number");
            metrics.notices_given_up.fetch_add(1, Relaxed);
            delivered.push(n.id);
            continue;
        }
        if Event::of(&n.kind).is_some_and(Event::is_marketing) {
            if quiet {
                held.push(n.id);
                continue;
            }
            match engine.admin().member(n.member) {
                Ok(Some(m)) if m.opted_out.is_none() && m.status == Status::Active => {}
                Ok(_) => {
                    tracing::debug!(
                        id = n.id,
                        "marketing notice dropped: the member opted out or is not active"
                    );
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
                // A 4xx other than 408 and 429 refuses this message (a
                // number the gateway does not take): the round goes on.
                // Anything else says the gateway is failing: the rest wait
                // for the next round.
                let refused = matches!(e, SwitchError::GatewayStatus(c)
                    if (400..500).contains(&c) && c != 408 && c != 429);
                failed.push((n.id, n.attempts, e));
                if !refused {
                    break;
                }
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
    for (id, attempts, e) in failed {
        if attempts.saturating_add(1) >= cfg.max_attempts {
            tracing::warn!(
                id,
                attempts = attempts + 1,
                "notice given up after notices.max_attempts: {e}"
            );
            metrics.notices_given_up.fetch_add(1, Relaxed);
            engine
                .outbox()
                .delivered(&[id])
                .map_err(|source| SwitchError::NoticesDelivered { count: 1, source })?;
            continue;
        }
        let wait = backoff(attempts, cfg.retry_base_secs, cfg.retry_max_secs);
        tracing::warn!(
            id,
            attempts = attempts + 1,
            retry_in_secs = wait,
            "notice not delivered: {e}"
        );
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

    #[test]
    fn an_unreachable_gateway_is_told_without_the_number_or_the_words() {
        // Nothing listens on the discard port: the connection is refused.
        let cfg = Notices {
            webhook_url: Some("http://127.0.0.1:9/send?to={{ to }}&text={{ text }}".into()),
            webhook_method: WebhookMethod::Get,
            webhook_timeout_ms: 2_000,
            ..Notices::default()
        };
        let hook = Webhook::new(&cfg, None).unwrap();
        let n = Notice {
            id: 1,
            member: clubswitch_engine::MemberId(1),
            phone: "09121234567".into(),
            at: clubswitch_engine::UnixTime(0),
            kind: clubswitch_engine::NoticeKind::Birthday,
            attempts: 0,
            next_at: clubswitch_engine::UnixTime(0),
            last_error: None,
            language: None,
        };
        let err = hook.send(&n, "your code 482913").unwrap_err();
        let told = err.to_string();
        assert!(matches!(err, SwitchError::Gateway(_)), "{told}");
        assert!(
            !told.contains("1234567") && !told.contains("482913"),
            "{told}"
        );
    }

    #[test]
    fn phone_numbers_are_masked_in_the_middle() {
        assert_eq!(mask_phone("09121234567"), "0912***4567");
        assert_eq!(mask_phone("12345"), "*****");
    }
}
