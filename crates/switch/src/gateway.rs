//! What a member notice looks like to an SMS gateway: its details as JSON
//! and the request shape the configuration gives. Apart from the delivery
//! loop (`notify`) so the configuration check can try the shape without
//! importing what delivers.

use clubswitch_engine::{iso_date, Notice, NoticeKind, Tier, UnixTime};
use serde::Serialize;
use serde_json::json;

/// The gateway request's shape, from the configuration: the URL and,
/// where one is set, the body, each a template over the notice (see
/// `[notices] webhook_body`). A placeholder the templates do not know is
/// an error when the switch starts, never at the first notice.
pub struct Shape {
    env: minijinja::Environment<'static>,
    body: bool,
}

impl Shape {
    /// The shape of templates `url` and `body` (none: the notice as JSON),
    /// tried on a sample notice.
    pub fn of(url: Option<&str>, body: Option<&str>) -> Result<Shape, minijinja::Error> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_template_owned("url", url.unwrap_or_default().to_owned())?;
        if let Some(b) = body {
            env.add_template_owned("body", b.to_owned())?;
        }
        let shape = Shape {
            env,
            body: body.is_some(),
        };
        shape.render(&sample(NoticeKind::Birthday, None), "sample")?;
        Ok(shape)
    }

    /// The URL and the body for `n` with words `text`.
    pub fn render(&self, n: &Notice, text: &str) -> Result<(String, String), minijinja::Error> {
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
                valid_through: iso_date(*by),
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
                valid_through: iso_date(*through),
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
                review_day: iso_date(*by),
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

#[cfg(test)]
mod tests {
    use super::sample as notice;
    use super::*;

    #[test]
    fn the_gateway_request_follows_the_configured_url_and_body_templates() {
        let shape = Shape::of(
            Some("https://sms.example/send?to={{ to }}&msg={{ text|urlencode }}"),
            Some(r#"{"receptor": {{ to|tojson }}, "message": {{ text|tojson }}, "ref": {{ id }}}"#),
        )
        .unwrap();
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
        assert!(Shape::of(None, Some("{{ txet }}")).is_err());
        assert!(Shape::of(Some("https://sms.example/{{ too }}"), None).is_err());
    }
}
