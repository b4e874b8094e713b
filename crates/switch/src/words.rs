//! The words of member notices: a template per event and language, the
//! merchant's own over the network's over the default shipped here (every
//! event has one, in Persian and in English).
//!
//! Templates are minijinja. Numbers are printed in the notice's language
//! (Persian digits with separators in Persian) and dates are Jalali in
//! Persian, so a template writes `{{ points }}`, not a formatting rule;
//! numbers stay numbers for `{% if points %}`. A template is checked when
//! it is kept: it must parse and name only its event's placeholders. A
//! kept template that still fails when a notice is written (it cannot,
//! short of a corrupt record) gives way to the default: a member is never
//! left without their receipt.

use std::collections::HashMap;

use clubswitch_engine::template::merchant_of;
use clubswitch_engine::{Engine, Event, Notice, NoticeKind, Tier, UnixTime};
use clubswitch_wire::MerchantId;
use minijinja::value::ValueKind;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::error::SwitchError;
use crate::lang::Lang;

/// Instructions a template may run per message: far more than any SMS
/// needs, far fewer than a loop written to hold the switch up.
const FUEL: u64 = 20_000;

/// The longest text a template may write, in characters (ten SMS parts of
/// Persian).
pub const MAX_WRITTEN: usize = 700;

/// An environment whose `{{ }}` prints numbers in `lang`; undefined
/// placeholders are errors, and a render runs out of fuel long before it
/// could hold a thread.
pub fn environment(lang: Lang) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_formatter(move |out, state, value| {
        if value.kind() == ValueKind::Number {
            if let Ok(n) = i64::try_from(value.clone()) {
                return Ok(out.write_str(&lang.number(n))?);
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// "۲۰۰ امتیاز و ۵٬۰۰۰ ریال اعتبار", leaving out what is zero.
const POINTS_AND_CREDIT_FA: &str = "{% if points %}{{ points }} امتیاز{% endif %}{% if points and credit %} و {% endif %}{% if credit %}{{ credit }} ریال اعتبار{% endif %}";
const POINTS_AND_CREDIT_EN: &str = "{% if points %}{{ points }} points{% endif %}{% if points and credit %} and {% endif %}{% if credit %}{{ credit }} rials of credit{% endif %}";

/// The default words of `event` in `lang`.
pub fn default_text(event: Event, lang: Lang) -> String {
    let (fa, en): (&str, &str) = match event {
        Event::Receipt => (
            "خرید {{ amount }} ریال در {{ merchant }}{% if points %}؛ {{ points }} امتیاز گرفتید{% endif %}.",
            "Purchase of {{ amount }} rials at {{ merchant }}{% if points %}; {{ points }} points earned{% endif %}.",
        ),
        Event::LowBalance => (
            "موجودی باشگاه شما کم است: {{ available }} ریال.",
            "Your club balance is low: {{ available }} rials available.",
        ),
        Event::TierChange => (
            "{% if up %}تبریک! {% endif %}سطح شما اکنون {{ tier }} است.",
            "{% if up %}Congratulations: you are now {{ tier }}.{% else %}Your tier is now {{ tier }}.{% endif %}",
        ),
        Event::Vip => (
            "شما تا {{ until }} عضو ویژهٔ باشگاه هستید.",
            "You are VIP through {{ until }}.",
        ),
        Event::PointsConverted => (
            "{{ points }} امتیاز در {{ merchant }} به {{ credit }} ریال اعتبار تبدیل شد.",
            "{{ points }} points became {{ credit }} rials of credit at {{ merchant }}.",
        ),
        Event::ReferralBonus => (
            "پاداش معرفی: {{ points }} امتیاز در {{ merchant }}.",
            "Referral bonus: {{ points }} points at {{ merchant }}.",
        ),
        Event::DrawWon => (
            "در قرعه‌کشی {{ merchant }} برندهٔ {{ points }} امتیاز شدید.",
            "You won {{ points }} points at {{ merchant }} in the lucky draw.",
        ),
        Event::Returned => {
            return match lang {
                Lang::Fa => format!("با برگشت خرید در {{{{ merchant }}}}، {POINTS_AND_CREDIT_FA} جابه‌جا شد."),
                Lang::En => format!("A refund at {{{{ merchant }}}} moved {POINTS_AND_CREDIT_EN}."),
            }
        }
        Event::ExpiryWarning => {
            return match lang {
                Lang::Fa => format!("{POINTS_AND_CREDIT_FA} شما در {{{{ merchant }}}} پس از {{{{ date }}}} منقضی می‌شود؛ پیش از آن استفاده کنید."),
                Lang::En => format!("{POINTS_AND_CREDIT_EN} at {{{{ merchant }}}} expire after {{{{ date }}}}: use them before then."),
            }
        }
        Event::Expired => {
            return match lang {
                Lang::Fa => format!("{POINTS_AND_CREDIT_FA} شما در {{{{ merchant }}}} منقضی شد."),
                Lang::En => format!("{POINTS_AND_CREDIT_EN} at {{{{ merchant }}}} expired."),
            }
        }
        Event::Birthday => (
            "{{ name }} عزیز، تولدتان مبارک! باشگاه مشتریان شما",
            "Happy birthday, {{ name }}, from your club!",
        ),
        Event::CardExpiring => (
            "کارت باشگاه شما با شمارهٔ پایانی {{ last4 }} تا {{ date }} اعتبار دارد؛ برای تمدید آن اقدام کنید.",
            "Your club card ending {{ last4 }} is valid through {{ date }}; ask for a renewal.",
        ),
        Event::Repurchase => (
            "{{ name }} عزیز، {{ days }} روز از آخرین خرید شما در {{ merchant }} گذشته است؛ منتظر دیدارتان هستیم.",
            "{{ name }}, it has been {{ days }} days since your last visit to {{ merchant }}: we hope to see you soon.",
        ),
        Event::Anniversary => (
            "{{ name }} عزیز، {{ years }} سال همراهی شما با باشگاه مبارک؛ سپاسگزاریم!",
            "{{ name }}, happy {{ years }}-year club anniversary, and thank you!",
        ),
        Event::TierAtRisk => (
            "برای ماندن در سطح {{ tier }}، تا {{ date }} {{ short }} ریال خرید دیگر لازم است.",
            "To stay {{ tier }}, spend {{ short }} rials more by {{ date }}.",
        ),
    };
    match lang {
        Lang::Fa => fa.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// The placeholders of `event`'s templates.
pub fn placeholders(event: Event) -> &'static [&'static str] {
    match event {
        Event::Receipt => &["name", "merchant", "amount", "points", "rrn"],
        Event::LowBalance => &["name", "available"],
        Event::TierChange => &["name", "tier", "from_tier", "up"],
        Event::Vip => &["name", "until"],
        Event::PointsConverted => &["name", "merchant", "points", "credit"],
        Event::ReferralBonus => &["name", "merchant", "points"],
        Event::DrawWon => &["name", "merchant", "points", "draw"],
        Event::Returned => &["name", "merchant", "points", "credit", "rrn"],
        Event::ExpiryWarning => &["name", "merchant", "points", "credit", "date"],
        Event::Expired => &["name", "merchant", "points", "credit"],
        Event::Birthday => &["name"],
        Event::CardExpiring => &["name", "last4", "date"],
        Event::Repurchase => &["name", "merchant", "days"],
        Event::Anniversary => &["name", "years"],
        Event::TierAtRisk => &["name", "tier", "short", "date"],
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

/// A tier's name in `lang`.
pub fn tier_in(t: Tier, lang: Lang, tier_names: &[String; 4]) -> String {
    match lang {
        Lang::Fa => tier_fa(t).to_owned(),
        Lang::En => tier_names[t as usize].clone(),
    }
}

/// The last day of the month before month index `until` (VIP through).
fn vip_through(until: i64) -> i64 {
    let (y, m) = (until.div_euclid(12), until.rem_euclid(12) as u8 + 1);
    clubswitch_wire::fields::days_from_civil(y, m, 1) - 1
}

/// The placeholders' values for `kind`, in `lang`; `merchant` is the
/// merchant's name, `name` the member's.
fn context(
    kind: &NoticeKind,
    lang: Lang,
    tier_names: &[String; 4],
    name: &str,
    merchant: &str,
) -> Value {
    let tier = |t: Tier| tier_in(t, lang, tier_names);
    match kind {
        NoticeKind::Receipt {
            rrn,
            amount,
            points,
            ..
        } => minijinja::context! { name, merchant, amount, points, rrn => rrn.as_str() },
        NoticeKind::LowBalance { available } => minijinja::context! { name, available },
        NoticeKind::TierChange { from, to } => minijinja::context! {
            name, tier => tier(*to), from_tier => tier(*from), up => to > from,
        },
        NoticeKind::Vip { until } => {
            minijinja::context! { name, until => lang.date(vip_through(*until)) }
        }
        NoticeKind::PointsConverted { points, credit, .. } => {
            minijinja::context! { name, merchant, points, credit }
        }
        NoticeKind::ReferralBonus { points, .. } => minijinja::context! { name, merchant, points },
        NoticeKind::DrawWon { draw, points, .. } => {
            minijinja::context! { name, merchant, points, draw }
        }
        NoticeKind::Returned {
            rrn,
            points,
            credit,
            ..
        } => minijinja::context! { name, merchant, points, credit, rrn => rrn.as_str() },
        NoticeKind::ExpiryWarning {
            points, credit, by, ..
        } => minijinja::context! { name, merchant, points, credit, date => lang.date(*by) },
        NoticeKind::Expired { points, credit, .. } => {
            minijinja::context! { name, merchant, points, credit }
        }
        NoticeKind::Birthday => minijinja::context! { name },
        NoticeKind::CardExpiring { last4, through } => minijinja::context! {
            name, last4 => lang.digits(last4), date => lang.date(*through),
        },
        NoticeKind::Repurchase { days, .. } => minijinja::context! { name, merchant, days },
        NoticeKind::Anniversary { years } => minijinja::context! { name, years },
        NoticeKind::TierAtRisk { tier: t, short, by } => minijinja::context! {
            name, tier => tier(*t), short, date => lang.date(*by),
        },
        NoticeKind::LoginCode { .. } | NoticeKind::Campaign { .. } => minijinja::context! { name },
    }
}

/// The fixed words of the notices no template writes.
fn fixed(kind: &NoticeKind, lang: Lang) -> Option<String> {
    Some(match (kind, lang) {
        // The code in Latin digits: phones offer to fill in only those.
        (NoticeKind::LoginCode { code }, Lang::Fa) => {
            format!("کد ورود شما به باشگاه: {code}\nیک بار و تا پنج دقیقه معتبر است.")
        }
        (NoticeKind::LoginCode { code }, Lang::En) => {
            format!("Your club login code is {code}. It works once, for five minutes.")
        }
        (NoticeKind::Campaign { campaign }, lang) => match lang {
            Lang::Fa => format!("پیام باشگاه (کارزار {})", lang.number(*campaign as i64)),
            Lang::En => format!("A message from your club (campaign {campaign})."),
        },
        _ => return None,
    })
}

/// A sample notice of `event`, for checking a template.
fn sample(event: Event) -> Option<NoticeKind> {
    let merchant: MerchantId = "MERCHANT0000001".parse().ok()?;
    let rrn = "000000000001".parse().ok()?;
    let today = UnixTime::now().0.div_euclid(86_400);
    Some(match event {
        Event::Receipt => NoticeKind::Receipt {
            rrn,
            merchant,
            amount: 1_500_000,
            points: 15,
        },
        Event::LowBalance => NoticeKind::LowBalance { available: 20_000 },
        Event::TierChange => NoticeKind::TierChange {
            from: Tier::Silver,
            to: Tier::Gold,
        },
        Event::Vip => NoticeKind::Vip {
            until: today / 30 + 2,
        },
        Event::PointsConverted => NoticeKind::PointsConverted {
            merchant,
            points: 100,
            credit: 10_000,
        },
        Event::ReferralBonus => NoticeKind::ReferralBonus {
            merchant,
            points: 50,
        },
        Event::DrawWon => NoticeKind::DrawWon {
            draw: 1,
            merchant,
            points: 500,
        },
        Event::Returned => NoticeKind::Returned {
            rrn,
            merchant,
            points: 15,
            credit: 0,
        },
        Event::ExpiryWarning => NoticeKind::ExpiryWarning {
            merchant,
            points: 120,
            credit: 30_000,
            by: today + 7,
        },
        Event::Expired => NoticeKind::Expired {
            merchant,
            points: 120,
            credit: 0,
        },
        Event::Birthday => NoticeKind::Birthday,
        Event::CardExpiring => NoticeKind::CardExpiring {
            last4: "0013".into(),
            through: today + 30,
        },
        Event::Repurchase => NoticeKind::Repurchase { merchant, days: 30 },
        Event::Anniversary => NoticeKind::Anniversary { years: 2 },
        Event::TierAtRisk => NoticeKind::TierAtRisk {
            tier: Tier::Gold,
            short: 2_000_000,
            by: today + 7,
        },
    })
}

/// The words of `n` from the default templates, for the member named
/// `name`, about the merchant named `merchant`.
pub fn by_default(
    n: &Notice,
    default: Lang,
    tier_names: &[String; 4],
    name: &str,
    merchant: &str,
) -> Result<String, minijinja::Error> {
    let lang = n.language.map(Lang::of).unwrap_or(default);
    if let Some(text) = fixed(&n.kind, lang) {
        return Ok(text);
    }
    let Some(event) = Event::of(&n.kind) else {
        return Ok(String::new());
    };
    let ctx = context(&n.kind, lang, tier_names, name, merchant);
    environment(lang).render_str(&default_text(event, lang), ctx)
}

/// Checks a template written by an operator or a merchant: it parses,
/// repeats nothing (`*` would let one short template write megabytes),
/// names no variable but `allowed` in any branch, and writes at most
/// [`MAX_WRITTEN`] characters for `sample`. What it writes for the sample.
pub fn check_template(
    text: &str,
    lang: Lang,
    what: &str,
    allowed: &[&str],
    sample: Value,
) -> Result<String, String> {
    let known = || format!("placeholders of {what}: {}", allowed.join(", "));
    if text.contains('*') {
        return Err(format!("a template may not repeat (no \"*\"); {}", known()));
    }
    let mut env = environment(lang);
    env.add_template_owned("t", text.to_owned())
        .map_err(|e| format!("{e} ({})", known()))?;
    let t = env.get_template("t").map_err(|e| e.to_string())?;
    let mut unknown: Vec<String> = t
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !allowed.contains(&v.as_str()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(format!("unknown {} ({})", unknown.join(", "), known()));
    }
    let out = t.render(sample).map_err(|e| format!("{e} ({})", known()))?;
    if out.chars().count() > MAX_WRITTEN {
        return Err(format!(
            "a template may write at most {MAX_WRITTEN} characters; this one wrote {}",
            out.chars().count()
        ));
    }
    Ok(out)
}

/// Checks a template for `event` in `lang` ([`check_template`] with the
/// event's placeholders). The words it writes for a sample notice.
pub fn check(
    text: &str,
    event: Event,
    lang: Lang,
    tier_names: &[String; 4],
) -> Result<String, String> {
    let name = match lang {
        Lang::Fa => "سارا",
        Lang::En => "Sara",
    };
    let kind = sample(event).ok_or("no sample notice")?;
    let ctx = context(&kind, lang, tier_names, name, "Book City");
    check_template(text, lang, event.name(), placeholders(event), ctx)
}

/// Writes notices during one delivery round: templates looked up and
/// compiled once per merchant, event and language.
pub struct Words<'e> {
    engine: &'e Engine,
    tier_names: &'e [String; 4],
    default: Lang,
    /// Persian, English.
    envs: [Environment<'static>; 2],
    /// (merchant, event, language) → template name in its environment.
    chosen: HashMap<(Option<MerchantId>, Event, Lang), String>,
    merchants: HashMap<MerchantId, String>,
}

impl<'e> Words<'e> {
    pub fn new(engine: &'e Engine, tier_names: &'e [String; 4], default: Lang) -> Words<'e> {
        Words {
            engine,
            tier_names,
            default,
            envs: [environment(Lang::Fa), environment(Lang::En)],
            chosen: HashMap::new(),
            merchants: HashMap::new(),
        }
    }

    fn env(&self, lang: Lang) -> &Environment<'static> {
        &self.envs[usize::from(lang == Lang::En)]
    }

    /// The name in its environment of the template for `event` about
    /// `merchant` in `lang`, compiled on first use; a kept one that does
    /// not compile gives way to the default.
    fn template(
        &mut self,
        merchant: Option<MerchantId>,
        event: Event,
        lang: Lang,
    ) -> Result<String, SwitchError> {
        if let Some(name) = self.chosen.get(&(merchant, event, lang)) {
            return Ok(name.clone());
        }
        let kept = self
            .engine
            .templates()
            .effective(merchant.as_ref(), event, lang.language())
            .map_err(SwitchError::Outbox)?;
        let env = &mut self.envs[usize::from(lang == Lang::En)];
        let default_name = format!("default/{}", event.name());
        let name = match kept {
            Some(t) => {
                let name = match t.merchant {
                    Some(m) => format!("{}/{}", m.as_str(), event.name()),
                    None => format!("network/{}", event.name()),
                };
                match env.add_template_owned(name.clone(), t.text) {
                    Ok(()) => name,
                    Err(e) => {
                        tracing::warn!(template = %name, "template does not compile, default used: {e}");
                        default_name
                    }
                }
            }
            None => default_name,
        };
        if name.starts_with("default/") && env.get_template(&name).is_err() {
            env.add_template_owned(name.clone(), default_text(event, lang))?;
        }
        self.chosen.insert((merchant, event, lang), name.clone());
        Ok(name)
    }

    fn merchant_name(&mut self, id: &MerchantId) -> String {
        if let Some(n) = self.merchants.get(id) {
            return n.clone();
        }
        let name = match self.engine.admin().merchant(id) {
            Ok(Some(m)) if !m.name.trim().is_empty() => m.name,
            _ => id.as_str().to_owned(),
        };
        self.merchants.insert(*id, name.clone());
        name
    }

    /// The language a notice is written in.
    pub fn lang(&self, n: &Notice) -> Lang {
        n.language.map(Lang::of).unwrap_or(self.default)
    }

    /// The words of a notice.
    pub fn write(&mut self, n: &Notice) -> Result<String, SwitchError> {
        let lang = self.lang(n);
        if let Some(text) = fixed(&n.kind, lang) {
            return Ok(text);
        }
        let Some(event) = Event::of(&n.kind) else {
            return Ok(String::new());
        };
        let merchant = merchant_of(&n.kind);
        let template = self.template(merchant, event, lang)?;
        let merchant_name = merchant
            .as_ref()
            .map(|m| self.merchant_name(m))
            .unwrap_or_default();
        let member_name = match self.engine.admin().member(n.member) {
            Ok(Some(m)) => m.name,
            _ => String::new(),
        };
        let ctx = context(&n.kind, lang, self.tier_names, &member_name, &merchant_name);
        let env = self.env(lang);
        match env.get_template(&template).and_then(|t| t.render(&ctx)) {
            Ok(text) if text.chars().count() <= MAX_WRITTEN => return Ok(text),
            Ok(_) => tracing::warn!(template = %template, "template wrote too much, default used"),
            Err(e) => tracing::warn!(template = %template, "template failed, default used: {e}"),
        }
        Ok(by_default(
            n,
            lang,
            self.tier_names,
            &member_name,
            &merchant_name,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> [String; 4] {
        ["Bronze", "Silver", "Gold", "Platinum"].map(String::from)
    }

    use crate::gateway::sample as notice;

    /// The default words, with the merchant named by its id.
    fn text(n: &Notice, names: &[String; 4], default: Lang) -> String {
        let merchant = merchant_of(&n.kind)
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        by_default(n, default, names, "", &merchant).unwrap()
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
            "1,250 points and 30,000 rials of credit at MERCHANT0000001 expire after 2026-12-02: use them before then."
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
        assert_eq!(
            text(&vip, &names, Lang::En),
            "You are VIP through 2026-03-31."
        );
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
            "Purchase of 1,500,000 rials at MERCHANT0000002; 15 points earned."
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
    fn every_default_template_names_only_its_events_placeholders() {
        for event in Event::ALL {
            for lang in [Lang::Fa, Lang::En] {
                let text = default_text(event, lang);
                let out = check(&text, event, lang, &names());
                assert!(out.is_ok(), "{} {lang:?}: {out:?}", event.name());
            }
        }
    }

    #[test]
    fn numbers_are_printed_in_the_notices_language_and_stay_numbers_for_conditions() {
        let ctx = |points: u64| {
            context(
                &NoticeKind::Receipt {
                    rrn: "000000000061".parse().unwrap(),
                    merchant: "MERCHANT0000002".parse().unwrap(),
                    amount: 1_500_000,
                    points,
                },
                Lang::Fa,
                &names(),
                "سارا",
                "کتاب‌شهر",
            )
        };
        let fa = default_text(Event::Receipt, Lang::Fa);
        let env = environment(Lang::Fa);
        assert_eq!(
            env.render_str(&fa, ctx(15)).unwrap(),
            "خرید ۱٬۵۰۰٬۰۰۰ ریال در کتاب‌شهر؛ ۱۵ امتیاز گرفتید."
        );
        assert_eq!(
            env.render_str(&fa, ctx(0)).unwrap(),
            "خرید ۱٬۵۰۰٬۰۰۰ ریال در کتاب‌شهر."
        );
        let en = environment(Lang::En)
            .render_str(&default_text(Event::Receipt, Lang::En), ctx(15))
            .unwrap();
        assert_eq!(
            en,
            "Purchase of 1,500,000 rials at کتاب‌شهر; 15 points earned."
        );
    }

    #[test]
    fn a_template_naming_another_events_placeholder_is_refused() {
        let e = check("{{ amount }}", Event::Birthday, Lang::Fa, &names()).unwrap_err();
        assert!(e.contains("placeholders of birthday: name"), "{e}");
        assert!(check("{% if %}", Event::Receipt, Lang::Fa, &names()).is_err());
        // In a branch the sample does not take, too.
        let e = check(
            "{% if points > 1000000 %}{{ nmae }}{% endif %}",
            Event::Receipt,
            Lang::Fa,
            &names(),
        )
        .unwrap_err();
        assert!(e.starts_with("unknown nmae"), "{e}");
    }

    #[test]
    fn a_template_cannot_repeat_loop_long_or_write_more_than_ten_parts() {
        let receipt = |t: &str| check(t, Event::Receipt, Lang::Fa, &names());
        assert!(receipt("{{ merchant * 100000000 }}").is_err());
        // Loops run out of fuel; `range` is no placeholder either.
        let e = receipt(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap_err();
        assert!(e.contains("range"), "{e}");
        let e = receipt("{% for a in rrn %}{% for b in rrn %}{% for c in rrn %}{% for d in rrn %}{{ merchant }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}")
            .unwrap_err();
        assert!(e.contains("fuel") || e.contains("at most"), "{e}");
        let long = "س".repeat(701);
        assert!(receipt(&long).unwrap_err().contains("at most 700"));
    }
}
