//! Admin API for campaign messages: preview an audience and a text, send
//! (now or at a time), follow the figures, cancel. A merchant's users
//! message only its own customers: the access check holds them to their
//! merchant in the body (create, preview) and to their own campaigns
//! (list, show, cancel).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use clubswitch_engine::{Audience, Campaign, CampaignState, Figures, NewCampaign, Tier, UnixTime};
use serde::{Deserialize, Serialize};

use super::access::Actor;
use super::{bad, blocking, merchant_id, not_found, ApiError, ApiResult, Shared};
use crate::campaign::check_text;
use crate::lang::Lang;
use crate::sms;

/// Who a campaign goes to: every condition given must hold.
#[derive(Deserialize, utoipa::ToSchema, Default)]
pub(super) struct AudienceIn {
    /// Customers of this merchant (bought there in the last twelve
    /// months); a merchant's user must name its own.
    #[serde(default)]
    merchant: Option<String>,
    /// champions, loyal, new, at_risk, lost or regular.
    #[serde(default)]
    segment: Option<String>,
    #[serde(default)]
    #[schema(example = "gold")]
    tier: Option<String>,
    /// Members in this group (tag).
    #[serde(default)]
    group: Option<String>,
    /// No purchase for at least this many days.
    #[serde(default)]
    inactive_days: Option<u32>,
    /// Born in this month (1–12).
    #[serde(default)]
    birthday_month: Option<u8>,
}

impl AudienceIn {
    fn audience(&self) -> Result<Audience, ApiError> {
        let tier = match self.tier.as_deref() {
            None => None,
            Some(t) => Some(
                serde_json::from_value::<Tier>(serde_json::Value::String(t.to_lowercase()))
                    .map_err(|_| {
                        bad(format!(
                            "tier is bronze, silver, gold or platinum, not {t:?}"
                        ))
                    })?,
            ),
        };
        let a = Audience {
            merchant: self.merchant.as_deref().map(merchant_id).transpose()?,
            segment: self.segment.clone(),
            tier,
            group: self.group.clone(),
            inactive_days: self.inactive_days,
            birthday_month: self.birthday_month,
        };
        a.check()?;
        Ok(a)
    }
}

/// A campaign to send.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CampaignIn {
    name: String,
    #[serde(flatten)]
    audience: AudienceIn,
    /// The Persian text, a template: {{ name }}, {{ tier }}, {{ merchant }},
    /// {{ points }}, {{ credit }}, {{ today }}.
    #[schema(example = "{{ name }} عزیز، {{ points }} امتیاز منتظر شماست.")]
    text_fa: String,
    /// The English text; left out: the Persian text goes to everyone.
    #[serde(default)]
    text_en: String,
    /// Unix seconds: not before then; left out: now.
    #[serde(default)]
    at: Option<i64>,
}

/// An audience and a text to look at before sending.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PreviewIn {
    #[serde(flatten)]
    audience: AudienceIn,
    #[serde(default)]
    text_fa: String,
    #[serde(default)]
    text_en: String,
}

/// A text written for a sample member, and its size as SMS.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Sample {
    text: String,
    #[schema(value_type = Object)]
    length: sms::Length,
}

/// Who an audience reaches now, and what the text costs.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct PreviewView {
    /// Active members the audience matches.
    matched: u64,
    /// Of them, opted out of marketing: not messaged.
    opted_out: u64,
    /// Of them, with no phone number.
    no_phone: u64,
    /// Messages that would go.
    messages: u64,
    #[schema(required = true)]
    fa: Option<Sample>,
    #[schema(required = true)]
    en: Option<Sample>,
    /// Rials, at `notices.sms_part_cost` per part, with every member
    /// getting the Persian text's parts.
    estimated_cost: u64,
}

/// Who a campaign goes to, as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AudienceView {
    #[schema(required = true)]
    merchant: Option<String>,
    #[schema(required = true)]
    segment: Option<String>,
    #[schema(required = true, value_type = Option<String>)]
    tier: Option<Tier>,
    #[schema(required = true)]
    group: Option<String>,
    #[schema(required = true)]
    inactive_days: Option<u32>,
    #[schema(required = true)]
    birthday_month: Option<u8>,
}

impl From<Audience> for AudienceView {
    fn from(a: Audience) -> Self {
        AudienceView {
            merchant: a.merchant.map(|m| m.as_str().to_owned()),
            segment: a.segment,
            tier: a.tier,
            group: a.group,
            inactive_days: a.inactive_days,
            birthday_month: a.birthday_month,
        }
    }
}

/// A campaign, its figures and what it cost.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CampaignView {
    id: u64,
    name: String,
    audience: AudienceView,
    text_fa: String,
    text_en: String,
    /// Unix seconds: not before then.
    at: i64,
    created: i64,
    #[schema(required = true)]
    created_by: Option<String>,
    #[schema(value_type = String, example = "sending")]
    state: CampaignState,
    #[schema(value_type = Object)]
    figures: Figures,
    /// Messages still waiting to go.
    waiting: u64,
    /// Rials: parts sent × `notices.sms_part_cost`.
    cost: u64,
}

fn view(c: Campaign, part_cost: u64) -> CampaignView {
    CampaignView {
        waiting: c.figures.waiting(),
        cost: c.figures.parts.saturating_mul(part_cost),
        id: c.id,
        name: c.name,
        audience: c.audience.into(),
        text_fa: c.text_fa,
        text_en: c.text_en,
        at: c.at.0,
        created: c.created.0,
        created_by: c.created_by,
        state: c.state,
        figures: c.figures,
    }
}

/// Checks both texts; the Persian one is required. `merchant`: the
/// campaign goes to one merchant's members.
fn check_texts(
    h: &super::Http,
    fa: &str,
    en: &str,
    merchant: bool,
) -> Result<(Sample, Option<Sample>), ApiError> {
    let names = &h.switch.engine.config().loyalty.tier_names;
    let sample = |text: &str, lang| -> Result<Sample, ApiError> {
        let text = check_text(text, lang, names, merchant).map_err(bad)?;
        Ok(Sample {
            length: sms::Length::of(&text),
            text,
        })
    };
    if fa.trim().is_empty() {
        return Err(bad("text_fa is required: most members read Persian"));
    }
    let fa = sample(fa, Lang::Fa)?;
    let en = match en.trim() {
        "" => None,
        en => Some(sample(en, Lang::En)?),
    };
    Ok((fa, en))
}

/// Whether the merchant an audience names exists.
async fn known_merchant(h: &super::Http, a: &Audience) -> Result<(), ApiError> {
    if let Some(m) = a.merchant {
        blocking(h, move |e| e.admin().merchant(&m))
            .await?
            .ok_or_else(|| not_found("merchant"))?;
    }
    Ok(())
}

/// Who an audience reaches and what the text looks like, sending nothing.
pub(super) async fn preview(
    State(h): Shared,
    Json(p): Json<PreviewIn>,
) -> ApiResult<Json<PreviewView>> {
    let audience = p.audience.audience()?;
    known_merchant(&h, &audience).await?;
    let (fa, en) = if p.text_fa.trim().is_empty() {
        (None, None)
    } else {
        let (fa, en) = check_texts(&h, &p.text_fa, &p.text_en, audience.merchant.is_some())?;
        (Some(fa), en)
    };
    let members = blocking(&h, move |e| {
        e.campaigns().audience(&audience, UnixTime::now())
    })
    .await?;
    let opted_out = members.iter().filter(|m| m.opted_out.is_some()).count() as u64;
    let no_phone = members
        .iter()
        .filter(|m| m.opted_out.is_none() && m.phone.is_empty())
        .count() as u64;
    let messages = members.len() as u64 - opted_out - no_phone;
    let parts = fa.as_ref().map_or(0, |s| s.length.parts as u64);
    Ok(Json(PreviewView {
        matched: members.len() as u64,
        opted_out,
        no_phone,
        messages,
        fa,
        en,
        estimated_cost: messages
            .saturating_mul(parts)
            .saturating_mul(h.switch.cfg.notices.sms_part_cost),
    }))
}

/// Records a campaign; it is queued when its time comes (now, if none).
pub(super) async fn create(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Json(c): Json<CampaignIn>,
) -> ApiResult<Json<CampaignView>> {
    let audience = c.audience.audience()?;
    if let Some(own) = actor.merchant() {
        // The access check held the body's merchant to the caller's; a
        // merchant's campaign always has one.
        if audience.merchant.as_ref() != Some(own) {
            return Err(bad("a merchant's campaign names its merchant"));
        }
    }
    known_merchant(&h, &audience).await?;
    check_texts(&h, &c.text_fa, &c.text_en, audience.merchant.is_some())?;
    let now = UnixTime::now();
    let new = NewCampaign {
        name: c.name,
        audience,
        text_fa: c.text_fa,
        text_en: c.text_en,
        at: c.at.map_or(now, UnixTime),
    };
    let by = Some(actor.name);
    let made = blocking(&h, move |e| e.campaigns().create(new, by, now))
        .await?
        .await?;
    Ok(Json(view(made, h.switch.cfg.notices.sms_part_cost)))
}

/// Campaigns, newest first (a merchant's user: its own).
pub(super) async fn list(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
) -> ApiResult<Json<Vec<CampaignView>>> {
    let all = blocking(&h, |e| e.campaigns().list()).await?;
    let cost = h.switch.cfg.notices.sms_part_cost;
    Ok(Json(
        all.into_iter()
            .filter(|c| {
                actor
                    .merchant()
                    .is_none_or(|own| c.audience.merchant.as_ref() == Some(own))
            })
            .map(|c| view(c, cost))
            .collect(),
    ))
}

/// One campaign and its figures.
pub(super) async fn show(State(h): Shared, Path(id): Path<u64>) -> ApiResult<Json<CampaignView>> {
    let c = blocking(&h, move |e| e.campaigns().get(id))
        .await?
        .ok_or_else(|| not_found("campaign"))?;
    Ok(Json(view(c, h.switch.cfg.notices.sms_part_cost)))
}

/// Stops a campaign: what was not sent is dropped.
pub(super) async fn cancel(State(h): Shared, Path(id): Path<u64>) -> ApiResult<Json<CampaignView>> {
    let c = blocking(&h, move |e| e.campaigns().cancel(id))
        .await?
        .await?;
    Ok(Json(view(c, h.switch.cfg.notices.sms_part_cost)))
}
