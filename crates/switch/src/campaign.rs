//! Campaign messages on the switch's side: their words, written for each
//! member from the campaign's template, and their delivery from the
//! engine's marketing lane.
//!
//! A campaign's text is a template with placeholders (`{{ name }}`,
//! `{{ tier }}`, `{{ merchant }}`, `{{ points }}`, `{{ credit }}`,
//! `{{ today }}`), filled in the member's language: in Persian with Persian
//! digits and Jalali dates. A placeholder it does not know is refused when
//! the campaign is written, never found at the first member.
//!
//! Delivery keeps three promises: no campaign message goes in quiet hours
//! (checked before each message, so a long round stops on the minute);
//! no more than the configured rate goes per second (each round sends at
//! most its share of the second); and every message ends exactly once as
//! sent, failed (after its last attempt) or dropped, recorded on its
//! campaign (`clubswitch_engine::campaign`). A failing gateway is tried
//! again with backoff; one that fails three times in a row ends the round.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

use clubswitch_engine::campaign::Outcome;
use clubswitch_engine::notice::backoff;
use clubswitch_engine::{Campaign, Engine, Member, Notice, NoticeKind, Status, Tier};
use clubswitch_engine::{MemberId, UnixTime};
use clubswitch_wire::MerchantId;
use minijinja::{Environment, Value};

use crate::config::Notices;
use crate::error::SwitchError;
use crate::lang::Lang;
use crate::metrics::Metrics;
use crate::notify::{Channel, SCAN_PER_ROUND};
use crate::sms;
use crate::words::{check_template, environment, tier_in, MAX_WRITTEN};

/// Failures in a row that end a round: the gateway is down, not fussy.
const FAILURES_IN_A_ROW: u32 = 3;

/// Messages per round at most, whatever the rate: what a crash before the
/// round's outcomes are recorded would send again.
const PER_ROUND: usize = 1_000;

/// The placeholders a campaign to one merchant's members may use.
pub const PLACEHOLDERS: [&str; 6] = ["name", "tier", "merchant", "points", "credit", "today"];

/// The placeholders a campaign to every merchant's members may use: a
/// merchant, its points and its credit name none there.
const NETWORK_PLACEHOLDERS: [&str; 3] = ["name", "tier", "today"];

/// What a member's message is written from.
struct Facts<'a> {
    member: &'a Member,
    merchant: Option<(&'a MerchantId, &'a str)>,
    points: i64,
    credit: i64,
    today: i64,
}

/// The placeholders' values for `f` in `lang`.
fn context(f: &Facts<'_>, lang: Lang, tier_names: &[String; 4]) -> Value {
    minijinja::context! {
        name => &f.member.name,
        tier => tier_in(f.member.tier, lang, tier_names),
        merchant => f.merchant.map(|(_, name)| name).unwrap_or_default(),
        points => f.points,
        credit => f.credit,
        today => lang.date(f.today),
    }
}

/// A campaign's text checked ([`check_template`] with the campaign
/// placeholders: a campaign to one merchant's members (`merchant`) may name
/// the merchant, its points and its credit). What it writes for a sample
/// member.
pub fn check_text(
    text: &str,
    lang: Lang,
    tier_names: &[String; 4],
    merchant: bool,
) -> Result<String, String> {
    let member = Member {
        id: MemberId(1),
        name: match lang {
            Lang::Fa => "سارا".into(),
            Lang::En => "Sara".into(),
        },
        phone: "09120000000".into(),
        tier: Tier::Silver,
        groups: Vec::new(),
        status: Status::Active,
        language: None,
        opted_out: None,
        joined: None,
    };
    let facts = Facts {
        member: &member,
        merchant: None,
        points: 1_250,
        credit: 50_000,
        today: UnixTime::now().0.div_euclid(86_400),
    };
    let ctx = context(&facts, lang, tier_names);
    if merchant {
        check_template(text, lang, "a campaign", &PLACEHOLDERS, ctx)
    } else {
        let what = "a campaign to every merchant's members";
        check_template(text, lang, what, &NETWORK_PLACEHOLDERS, ctx)
    }
}

/// A campaign's words for a member: its templates compiled once per round.
pub struct Writer<'e> {
    engine: &'e Engine,
    tier_names: &'e [String; 4],
    default: Lang,
    offset: i64,
    /// Persian, English.
    envs: [Environment<'static>; 2],
    /// Campaigns met this round (none: gone) and their merchant's name.
    campaigns: HashMap<u64, Option<(Campaign, Option<String>)>>,
}

impl<'e> Writer<'e> {
    pub fn new(engine: &'e Engine, tier_names: &'e [String; 4], default: Lang) -> Writer<'e> {
        Writer {
            engine,
            tier_names,
            default,
            offset: engine.config().utc_offset_secs,
            envs: [environment(Lang::Fa), environment(Lang::En)],
            campaigns: HashMap::new(),
        }
    }

    /// Loads campaign `id` and compiles its texts, once.
    fn campaign(&mut self, id: u64) -> Result<Option<&(Campaign, Option<String>)>, SwitchError> {
        if !self.campaigns.contains_key(&id) {
            let found = match self
                .engine
                .campaigns()
                .get(id)
                .map_err(SwitchError::Campaigns)?
            {
                Some(c) => {
                    // A campaign without English words is written in
                    // Persian for everyone (`write`): no English template.
                    let [fa_env, en_env] = &mut self.envs;
                    fa_env.add_template_owned(id.to_string(), c.text_fa.clone())?;
                    if !c.text_en.trim().is_empty() {
                        en_env.add_template_owned(id.to_string(), c.text_en.clone())?;
                    }
                    let merchant_name = match &c.audience.merchant {
                        Some(m) => self
                            .engine
                            .admin()
                            .merchant(m)
                            .map_err(SwitchError::Campaigns)?
                            .map(|found| found.name)
                            .filter(|n| !n.trim().is_empty())
                            .or_else(|| Some(m.as_str().to_owned())),
                        None => None,
                    };
                    Some((c, merchant_name))
                }
                None => None,
            };
            self.campaigns.insert(id, found);
        }
        Ok(self.campaigns.get(&id).and_then(Option::as_ref))
    }

    /// The words of campaign `id` for `member` at `now`.
    pub fn write(
        &mut self,
        id: u64,
        member: &Member,
        now: UnixTime,
    ) -> Result<String, SwitchError> {
        let chosen = member.language.map(Lang::of).unwrap_or(self.default);
        let (engine, tier_names, offset) = (self.engine, self.tier_names, self.offset);
        let Some((c, merchant_name)) = self.campaign(id)? else {
            return Err(SwitchError::CampaignGone(id));
        };
        // A campaign written in Persian only goes to everyone in Persian,
        // digits and dates included, not Persian words around Latin digits
        // and a Gregorian date.
        let lang = if c.text_en.trim().is_empty() {
            Lang::Fa
        } else {
            chosen
        };
        let merchant = c.audience.merchant;
        let merchant_name = merchant_name.clone().unwrap_or_default();
        let uses = |p: &str| c.text_fa.contains(p) || c.text_en.contains(p);
        let (mut points, mut credit) = (0, 0);
        if let Some(m) = &merchant {
            if uses("points") {
                points = engine
                    .loyalty()
                    .points(member.id, m)
                    .map_err(SwitchError::Campaigns)?
                    .balance;
            }
            if uses("credit") {
                credit = engine
                    .admin()
                    .account(&clubswitch_engine::AccountKey::Store {
                        member: member.id,
                        merchant: *m,
                    })
                    .map_err(SwitchError::Campaigns)?
                    .balance;
            }
        }
        let facts = Facts {
            member,
            merchant: merchant.as_ref().map(|m| (m, merchant_name.as_str())),
            points,
            credit,
            today: now.local_day(offset),
        };
        let ctx = context(&facts, lang, tier_names);
        let env = &self.envs[usize::from(lang == Lang::En)];
        let text = env.get_template(&id.to_string())?.render(ctx)?;
        if text.chars().count() > MAX_WRITTEN {
            return Err(SwitchError::TooLong(text.chars().count()));
        }
        Ok(text)
    }
}

/// Holds campaign delivery to the configured rate: credit builds at
/// `campaign_rate_per_sec` while rounds pass (up to one second's worth, so
/// a quiet night does not save up a burst) and each message sent spends
/// one.
#[derive(Debug)]
pub struct Pacer {
    credit: f64,
    last: std::time::Instant,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            credit: 0.0,
            last: std::time::Instant::now(),
        }
    }

    /// Messages this round may send.
    fn allowance(&mut self, rate: u32) -> usize {
        let now = std::time::Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * f64::from(rate);
        self.last = now;
        self.credit = (self.credit + earned).min(f64::from(rate.max(1)));
        self.credit.floor() as usize
    }

    fn spend(&mut self, messages: usize) {
        self.credit = (self.credit - messages as f64).max(0.0);
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

/// One round of campaign delivery: drops what cancelled campaigns left,
/// queues the campaigns whose time has come, then, outside quiet hours,
/// sends what is due as the pacer allows and records every outcome (even
/// when the round stops early on an error). Once `stop` says the daemon
/// is stopping, each part ends at its next transaction or message and
/// sends no more, so a stop waits for one of those, not a round, and
/// nothing sent goes unrecorded.
#[allow(clippy::too_many_arguments)]
pub fn round(
    engine: &Engine,
    channel: &dyn Channel,
    cfg: &Notices,
    tier_names: &[String; 4],
    metrics: &Metrics,
    pacer: &mut Pacer,
    now: UnixTime,
    stop: &dyn Fn() -> bool,
) -> Result<(), SwitchError> {
    let campaigns = engine.campaigns();
    campaigns
        .purge_until(stop)
        .map_err(SwitchError::Campaigns)?;
    campaigns
        .queue_due_until(now, stop)
        .map_err(SwitchError::Campaigns)?;
    if stop() {
        return Ok(());
    }
    let offset = engine.config().utc_offset_secs;
    let quiet = |at: UnixTime| cfg.quiet_hours.quiet_at(at, offset);
    if quiet(now) {
        return Ok(());
    }
    let allowed = pacer.allowance(cfg.campaign_rate_per_sec).min(PER_ROUND);
    if allowed == 0 {
        return Ok(());
    }
    let due = campaigns
        .due(now, allowed, SCAN_PER_ROUND)
        .map_err(SwitchError::Campaigns)?;
    let mut writer = Writer::new(engine, tier_names, cfg.language);
    let mut outcomes: Vec<(Notice, Outcome)> = Vec::with_capacity(due.len());
    let mut in_a_row = 0;
    let mut stopped = None;
    for n in due {
        let NoticeKind::Campaign { campaign } = n.kind else {
            continue;
        };
        // Quiet hours may begin during a round, and a stop.
        if stop() || quiet(UnixTime::now()) {
            break;
        }
        let member = match engine.admin().member(n.member) {
            Ok(m) => m,
            Err(e) => {
                stopped = Some(SwitchError::Campaigns(e));
                break;
            }
        };
        let outcome = match member {
            Some(m) if m.status != Status::Active => Outcome::Inactive,
            Some(m) if m.opted_out.is_some() => Outcome::OptedOut,
            // Gone, or no number to send to any more.
            None => Outcome::Inactive,
            Some(m) if m.phone.trim().is_empty() => Outcome::Inactive,
            Some(m) => match writer.write(campaign, &m, now) {
                // To the member's number now: one changed since the
                // campaign was queued gets it at the new number, not the
                // old one (with the member's name and balances).
                Ok(text) => {
                    let to = Notice {
                        phone: m.phone.clone(),
                        ..n.clone()
                    };
                    send(channel, cfg, metrics, &to, &text, &mut in_a_row)
                }
                // The campaign's text cannot be written for this member:
                // trying again writes it no better.
                Err(e @ (SwitchError::CampaignGone(_) | SwitchError::TooLong(_))) => {
                    Outcome::Failed {
                        error: e.to_string(),
                        retry_in_secs: None,
                    }
                }
                Err(e @ SwitchError::Template(_)) => Outcome::Failed {
                    error: e.to_string(),
                    retry_in_secs: None,
                },
                // The ledger did not answer: stop, and try it later.
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            },
        };
        outcomes.push((n, outcome));
        if in_a_row >= FAILURES_IN_A_ROW {
            break;
        }
    }
    pacer.spend(outcomes.len());
    campaigns
        .settle(&outcomes, now)
        .map_err(SwitchError::Campaigns)?;
    stopped.map_or(Ok(()), Err)
}

/// Sends one message; its outcome.
fn send(
    channel: &dyn Channel,
    cfg: &Notices,
    metrics: &Metrics,
    n: &Notice,
    text: &str,
    in_a_row: &mut u32,
) -> Outcome {
    match channel.send(n, text) {
        Ok(()) => {
            *in_a_row = 0;
            metrics.campaign_sent.fetch_add(1, Relaxed);
            Outcome::Sent {
                parts: u32::try_from(sms::Length::of(text).parts).unwrap_or(u32::MAX),
            }
        }
        Err(e) => {
            *in_a_row += 1;
            metrics.campaign_failed.fetch_add(1, Relaxed);
            let last = n.attempts.saturating_add(1) >= cfg.campaign_max_attempts;
            tracing::debug!(
                id = n.id,
                attempts = n.attempts + 1,
                last,
                "campaign message not delivered: {e}"
            );
            Outcome::Failed {
                error: e.to_string(),
                retry_in_secs: (!last)
                    .then(|| backoff(n.attempts, cfg.retry_base_secs, cfg.retry_max_secs)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> [String; 4] {
        ["Bronze", "Silver", "Gold", "Platinum"].map(String::from)
    }

    #[test]
    fn a_text_with_an_unknown_placeholder_is_refused_with_the_known_ones_named() {
        let e = check_text("سلام {{ nmae }}", Lang::Fa, &names(), true).unwrap_err();
        assert!(e.contains("placeholders of a campaign: name, tier"), "{e}");
        assert!(check_text("سلام {{ name }", Lang::Fa, &names(), true).is_err());
    }

    #[test]
    fn a_campaign_to_every_merchants_members_may_not_name_a_merchants_points() {
        let text = "{{ name }}: {{ points }} امتیاز در {{ merchant }}";
        assert!(check_text(text, Lang::Fa, &names(), true).is_ok());
        let e = check_text(text, Lang::Fa, &names(), false).unwrap_err();
        assert!(e.contains("unknown merchant, points"), "{e}");
        assert!(check_text("{{ name }}، {{ today }}", Lang::Fa, &names(), false).is_ok());
    }

    #[test]
    fn persian_placeholders_have_persian_digits_and_jalali_dates() {
        let member = Member {
            id: MemberId(7),
            name: "سارا".into(),
            phone: "09120000001".into(),
            tier: Tier::Gold,
            groups: Vec::new(),
            status: Status::Active,
            language: None,
            opted_out: None,
            joined: None,
        };
        let merchant: MerchantId = "MERCHANT0000001".parse().unwrap();
        let facts = Facts {
            member: &member,
            merchant: Some((&merchant, "کتاب‌شهر")),
            points: 12_500,
            credit: 0,
            // 2 December 2026 is 11 Azar 1405.
            today: clubswitch_wire::fields::days_from_civil(2026, 12, 2),
        };
        let text = "{{ name }} عزیز، {{ points }} امتیاز در {{ merchant }} دارید؛ سطح {{ tier }} — {{ today }}";
        let out = environment(Lang::Fa)
            .render_str(text, context(&facts, Lang::Fa, &names()))
            .unwrap();
        assert_eq!(
            out,
            "سارا عزیز، ۱۲٬۵۰۰ امتیاز در کتاب‌شهر دارید؛ سطح طلایی — ۱۴۰۵/۰۹/۱۱"
        );
        let out = environment(Lang::En)
            .render_str(
                "{{ points }} points, {{ tier }}, {{ today }}",
                context(&facts, Lang::En, &names()),
            )
            .unwrap();
        assert_eq!(out, "12,500 points, Gold, 2026-12-02");
    }
}
