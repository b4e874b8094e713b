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

use crate::config::{format_date, ConfigError, NoticeChannel, Notices, WebhookMethod};
use crate::error::SwitchError;
use crate::lang::Lang;
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
        let sample = Notice {
            id: 1,
            member: clubswitch_engine::MemberId(1),
            phone: "09120000000".into(),
            at: UnixTime(0),
            kind: NoticeKind::Birthday,
            attempts: 0,
            next_at: UnixTime(0),
            last_error: None,
            language: None,
        };
        shape.render(&sample, "sample")?;
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

/// The words of a notice, in the member's language (`default` where they
/// chose none).
pub fn text(n: &Notice, tier_names: &[String; 4], default: Lang) -> String {
    match n.language.map(Lang::of).unwrap_or(default) {
        Lang::Fa => persian(n),
        Lang::En => english(n, tier_names),
    }
}

/// A count or amount in Persian digits with separators.
fn num(v: u64) -> String {
    Lang::Fa.number(i64::try_from(v).unwrap_or(i64::MAX))
}

/// "۲۰۰ امتیاز و ۵٬۰۰۰ ریال اعتبار", leaving out what is zero.
fn points_and_credit_fa(points: u64, credit: u64) -> String {
    match (points, credit) {
        (p, 0) => format!("{} امتیاز", num(p)),
        (0, c) => format!("{} ریال اعتبار", num(c)),
        (p, c) => format!("{} امتیاز و {} ریال اعتبار", num(p), num(c)),
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

/// The words of a notice in Persian: amounts with Persian digits and
/// separators, dates in the Jalali calendar.
fn persian(n: &Notice) -> String {
    let fa = Lang::Fa;
    let tier = tier_fa;
    match &n.kind {
        NoticeKind::Receipt {
            merchant,
            amount,
            points,
            ..
        } => {
            if *points > 0 {
                format!(
                    "خرید {} ریال در {merchant}؛ {} امتیاز گرفتید.",
                    num(*amount),
                    num(*points)
                )
            } else {
                format!("خرید {} ریال در {merchant}.", num(*amount))
            }
        }
        NoticeKind::LowBalance { available } => {
            format!("موجودی باشگاه شما کم است: {} ریال.", fa.number(*available))
        }
        NoticeKind::TierChange { from, to } if to > from => {
            format!("تبریک! سطح شما اکنون {} است.", tier(*to))
        }
        NoticeKind::TierChange { to, .. } => format!("سطح شما اکنون {} است.", tier(*to)),
        NoticeKind::Vip { until } => {
            // VIP through the end of month `until - 1`: the day before the
            // first of month `until`.
            let (y, m) = (until.div_euclid(12), until.rem_euclid(12) as u8 + 1);
            let last = clubswitch_wire::fields::days_from_civil(y, m, 1) - 1;
            format!("شما تا {} عضو ویژهٔ باشگاه هستید.", fa.date(last))
        }
        NoticeKind::PointsConverted {
            merchant,
            points,
            credit,
        } => format!(
            "{} امتیاز در {merchant} به {} ریال اعتبار تبدیل شد.",
            num(*points),
            num(*credit)
        ),
        NoticeKind::ReferralBonus { merchant, points } => {
            format!("پاداش معرفی: {} امتیاز در {merchant}.", num(*points))
        }
        NoticeKind::DrawWon {
            merchant, points, ..
        } => format!("در قرعه‌کشی {merchant} برندهٔ {} امتیاز شدید.", num(*points)),
        NoticeKind::Returned {
            merchant,
            points,
            credit,
            ..
        } => format!(
            "با برگشت خرید در {merchant}، {} جابه‌جا شد.",
            points_and_credit_fa(*points, *credit)
        ),
        NoticeKind::ExpiryWarning {
            merchant,
            points,
            credit,
            by,
        } => format!(
            "{} شما در {merchant} پس از {} منقضی می‌شود؛ پیش از آن استفاده کنید.",
            points_and_credit_fa(*points, *credit),
            fa.date(*by)
        ),
        NoticeKind::Expired {
            merchant,
            points,
            credit,
        } => format!(
            "{} شما در {merchant} منقضی شد.",
            points_and_credit_fa(*points, *credit)
        ),
        NoticeKind::Birthday => "تولدتان مبارک! باشگاه مشتریان شما".to_owned(),
        NoticeKind::CardExpiring { last4, through } => format!(
            "کارت باشگاه شما با شمارهٔ پایانی {} تا {} اعتبار دارد؛ برای تمدید آن اقدام کنید.",
            fa.digits(last4),
            fa.date(*through)
        ),
        // The code in Latin digits: phones offer to fill in only those.
        NoticeKind::LoginCode { code } => {
            format!("کد ورود شما به باشگاه: {code}\nیک بار و تا پنج دقیقه معتبر است.")
        }
        // Written from the campaign's own text (see `campaign`); this is
        // what the outbox would say of one.
        NoticeKind::Campaign { campaign } => {
            format!("پیام باشگاه (کارزار {})", fa.number(*campaign as i64))
        }
    }
}

/// The words of a notice in English.
fn english(n: &Notice, tier_names: &[String; 4]) -> String {
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
        NoticeKind::Campaign { campaign } => {
            format!("A message from your club (campaign {campaign}).")
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
        match channel.send(&n, &text(&n, tier_names, cfg.language)) {
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

    fn notice(kind: NoticeKind, language: Option<clubswitch_engine::Language>) -> Notice {
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

    #[test]
    fn persian_notices_have_persian_digits_and_jalali_dates() {
        use clubswitch_wire::fields::days_from_civil;
        let names = ["Bronze", "Silver", "Gold", "Platinum"].map(String::from);
        let merchant: clubswitch_wire::MerchantId = "MERCHANT0000001".parse().unwrap();
        // 2 December 2026 is 11 Azar 1405; 21 March 2026 is 1 Farvardin.
        let warn = notice(
            NoticeKind::ExpiryWarning {
                merchant,
                points: 1_250,
                credit: 30_000,
                by: days_from_civil(2026, 12, 2),
            },
            None,
        );
        assert_eq!(
            text(&warn, &names, Lang::Fa),
            "۱٬۲۵۰ امتیاز و ۳۰٬۰۰۰ ریال اعتبار شما در MERCHANT0000001 پس از ۱۴۰۵/۰۹/۱۱ منقضی می‌شود؛ پیش از آن استفاده کنید."
        );
        assert_eq!(
            text(&warn, &names, Lang::En),
            "1250 points and 30000 rials of credit at MERCHANT0000001 expire after 2026-12-02: use them before then."
        );
        // VIP through March 2026 (until April, month index 2026 × 12 + 3):
        // through its last day, 31 March, which is 11 Farvardin 1405.
        let vip = notice(
            NoticeKind::Vip {
                until: 2026 * 12 + 3,
            },
            None,
        );
        assert_eq!(
            text(&vip, &names, Lang::Fa),
            "شما تا ۱۴۰۵/۰۱/۱۱ عضو ویژهٔ باشگاه هستید."
        );
        assert_eq!(text(&vip, &names, Lang::En), "You are VIP through 2026-03.");
        let card = notice(
            NoticeKind::CardExpiring {
                last4: "0007".into(),
                through: days_from_civil(2027, 3, 20),
            },
            None,
        );
        assert!(text(&card, &names, Lang::Fa).contains("۰۰۰۷ تا ۱۴۰۵/۱۲/۲۹"));
    }

    #[test]
    fn a_member_who_chose_a_language_gets_it_whatever_the_default() {
        let names = ["Bronze", "Silver", "Gold", "Platinum"].map(String::from);
        let receipt = |language| {
            notice(
                NoticeKind::Receipt {
                    rrn: "000000000061".parse().unwrap(),
                    merchant: "MERCHANT0000002".parse().unwrap(),
                    amount: 1_500_000,
                    points: 15,
                },
                language,
            )
        };
        let en = receipt(Some(clubswitch_engine::Language::English));
        assert_eq!(
            text(&en, &names, Lang::Fa),
            "Purchase of 1500000 rials at MERCHANT0000002; 15 points earned."
        );
        let fa = receipt(Some(clubswitch_engine::Language::Persian));
        assert_eq!(
            text(&fa, &names, Lang::En),
            "خرید ۱٬۵۰۰٬۰۰۰ ریال در MERCHANT0000002؛ ۱۵ امتیاز گرفتید."
        );
        assert_eq!(
            text(&receipt(None), &names, Lang::Fa),
            text(&fa, &names, Lang::En)
        );
    }

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
