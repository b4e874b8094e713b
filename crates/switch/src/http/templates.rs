//! Admin API for the words of member notices: every event's template in
//! Persian and English as it applies (a merchant's own, the network's, or
//! the default), and writing or forgetting one. A merchant's users see and
//! write their own merchant's (`?merchant=`); the network's are support's.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use clubswitch_engine::{Event, Template, UnixTime};
use serde::{Deserialize, Serialize};

use super::access::Actor;
use super::{bad, blocking, merchant_id, not_found, ApiError, ApiResult, Http, Shared};
use crate::lang::Lang;
use crate::sms;
use crate::words::{check, default_text, placeholders};

/// One event's template in one language, as it applies.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct TemplateView {
    /// receipt, expiry_warning, birthday, …
    event: &'static str,
    /// "fa" or "en".
    language: &'static str,
    text: String,
    /// Where it comes from: merchant, network or default.
    source: &'static str,
    /// What it may name.
    placeholders: Vec<&'static str>,
    /// Written for a sample notice, and its size as SMS.
    sample: String,
    #[schema(value_type = Object)]
    length: sms::Length,
    /// Unix seconds and who, for a kept one.
    #[schema(required = true)]
    updated: Option<i64>,
    #[schema(required = true)]
    by: Option<String>,
}

/// A template's new words; "" forgets it (the next one down applies).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateIn {
    text: String,
}

fn lang_of(code: &str) -> Result<Lang, ApiError> {
    match code {
        "fa" => Ok(Lang::Fa),
        "en" => Ok(Lang::En),
        other => Err(bad(format!("language is \"fa\" or \"en\", not {other:?}"))),
    }
}

/// The template that applies, as the API shows it.
fn view(
    h: &Http,
    event: Event,
    lang: Lang,
    kept: Option<Template>,
) -> Result<TemplateView, ApiError> {
    let names = &h.switch.engine.config().loyalty.tier_names;
    let (text, source, updated, by) = match kept {
        Some(t) => {
            let source = if t.merchant.is_some() {
                "merchant"
            } else {
                "network"
            };
            (t.text, source, Some(t.updated.0), t.by)
        }
        None => (default_text(event, lang), "default", None, None),
    };
    // A kept template was checked when it was written.
    let sample = check(&text, event, lang, names).unwrap_or_default();
    Ok(TemplateView {
        event: event.name(),
        language: lang.code(),
        length: sms::Length::of(&sample),
        sample,
        placeholders: placeholders(event).to_vec(),
        text,
        source,
        updated,
        by,
    })
}

fn merchant_of(
    q: &HashMap<String, String>,
) -> Result<Option<clubswitch_wire::MerchantId>, ApiError> {
    q.get("merchant").map(|m| merchant_id(m)).transpose()
}

/// Every event's template in both languages, as it applies to the
/// network or to `?merchant=`.
pub(super) async fn list(
    State(h): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Vec<TemplateView>>> {
    let merchant = merchant_of(&q)?;
    if let Some(m) = merchant {
        blocking(&h, move |e| e.admin().merchant(&m))
            .await?
            .ok_or_else(|| not_found("merchant"))?;
    }
    let kept = blocking(&h, move |e| {
        let mut out = Vec::new();
        for event in Event::ALL {
            for lang in [Lang::Fa, Lang::En] {
                let t = e
                    .templates()
                    .effective(merchant.as_ref(), event, lang.language())?;
                out.push((event, lang, t));
            }
        }
        Ok(out)
    })
    .await?;
    kept.into_iter()
        .map(|(event, lang, t)| view(&h, event, lang, t))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
}

/// Writes (or, with "", forgets) the template of an event in a language,
/// the network's or `?merchant=`'s.
pub(super) async fn put(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
    Path((event, lang)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    Json(t): Json<TemplateIn>,
) -> ApiResult<Json<TemplateView>> {
    let event = Event::from_name(&event)?;
    let lang = lang_of(&lang)?;
    let merchant = merchant_of(&q)?;
    if merchant.is_some() && !event.at_merchant() {
        return Err(bad(format!(
            "{} is no event at a merchant: its template is the network's",
            event.name()
        )));
    }
    if let Some(m) = merchant {
        blocking(&h, move |e| e.admin().merchant(&m))
            .await?
            .ok_or_else(|| not_found("merchant"))?;
    }
    if t.text.trim().is_empty() {
        blocking(&h, move |e| {
            e.templates()
                .remove(merchant.as_ref(), event, lang.language())
        })
        .await?
        .await?;
    } else {
        let names = &h.switch.engine.config().loyalty.tier_names;
        check(&t.text, event, lang, names).map_err(bad)?;
        let kept = Template {
            merchant,
            event,
            language: lang.language(),
            text: t.text,
            updated: UnixTime::now(),
            by: Some(actor.name),
        };
        blocking(&h, move |e| e.templates().put(&kept))
            .await?
            .await?;
    }
    let now = blocking(&h, move |e| {
        e.templates()
            .effective(merchant.as_ref(), event, lang.language())
    })
    .await?;
    Ok(Json(view(&h, event, lang, now)?))
}
