//! A merchant's pages: its dashboard, its discounts and campaigns (made
//! and edited with a preview of a sample purchase), its loyalty
//! programme, draws, customer segments and settlement statement. The
//! guard has already checked that `{id}` is the caller's own merchant (or
//! that the caller is an operator).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Form, Json};
use clubswitch_engine::{DiscountRule, Tier, UnixTime};
use serde_json::{json, Value};

use super::super::access::{Actor, Roles};
use super::super::{
    blocking, draws, loyalty, merchant_id, merchants as api, payouts, ApiError, Shared,
};
use super::i18n::Lang;
use super::operator::{days_of, figures};
use super::{ascii_number, paginate, percent_text, see_other, Page, PageResult};

pub(in super::super) async fn dashboard(
    State(h): Shared,
    page: Page,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let merchant = merchant_id(&id).map_err(|e| page.fail(e))?;
    let record = blocking(&h, move |e| e.admin().merchant(&merchant))
        .await
        .map_err(|e| page.fail(e))?
        .ok_or_else(|| page.fail(super::super::not_found("merchant")))?;
    let days = days_of(&q);
    let (total, chart) = figures(&page, &actor, days, Some(&id)).await?;
    let now = UnixTime::now();
    // The best customers, by name: only for whom the API shows members'
    // segments (/v1/segments), not for finance.
    let names = Roles::SUPPORT.or(Roles::MERCHANT).allows(&actor.role);
    let (held, best) = blocking(&h, move |e| {
        let held = e.loyalty().held(Some(&merchant))?;
        let best = if names {
            let mut best = e.loyalty().segments(Some(&merchant), None, now)?;
            best.sort_by_key(|b| std::cmp::Reverse(b.monetary));
            best.truncate(5);
            Some(best)
        } else {
            None
        };
        Ok((held.get(&merchant).copied().unwrap_or_default(), best))
    })
    .await
    .map_err(|e| page.fail(e))?;
    let mine = (held.points, held.store_credit);
    page.render(
        "dashboard.html",
        json!({
            "title": "nav.dashboard",
            "scope": "merchant",
            "merchant": { "id": id, "name": record.name },
            "days": days,
            "periods": [1, 7, 30, 365],
            "total": total,
            "chart": chart,
            "points_outstanding": mine.0,
            "credit_outstanding": mine.1,
            "best": best,
        }),
    )
}

/// A rule form's fields as typed (repeated fields, such as tiers, kept).
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, name: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

/// A whole number of rials, or the error's text key.
fn rials(s: &str) -> Result<Option<u64>, &'static str> {
    let s = ascii_number(s);
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<u64>()
        .ok()
        .filter(|v| *v <= 999_999_999_999)
        .map(Some)
        .ok_or("form.must_be_number")
}

/// A percent with up to two decimals, as basis points.
fn percent_bps(s: &str) -> Result<u32, &'static str> {
    let s = ascii_number(s);
    if s.is_empty() {
        return Ok(0);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() > 2 || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return Err("form.must_be_number");
    }
    let whole: u32 = whole.parse().map_err(|_| "form.must_be_number")?;
    let frac: u32 = format!("{frac:0<2}").parse().unwrap_or(0);
    let bps = whole.saturating_mul(100).saturating_add(frac);
    if bps > 10_000 {
        return Err("form.percent_range");
    }
    Ok(bps)
}

/// A local date typed as ISO (`2026-12-02`) or Jalali (`1405/09/11`, a
/// year before 1700), with Persian digits or not: its day number.
fn local_day(s: &str) -> Result<Option<i64>, &'static str> {
    let s = ascii_number(s);
    if s.is_empty() {
        return Ok(None);
    }
    let parts: Vec<&str> = s.split(['-', '/']).collect();
    let [y, m, d] = parts[..] else {
        return Err("form.bad_date");
    };
    let (y, m, d): (i32, u8, u8) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err("form.bad_date"),
    };
    let day = if y < 1700 {
        clubswitch_engine::calendar::day_from_jalali(y, m, d)
    } else {
        crate::config::parse_date(&format!("{y:04}-{m:02}-{d:02}"))
    };
    day.map(Some).ok_or("form.bad_date")
}

/// The rule a form describes, or each field's error (field, text key).
fn rule_of(f: &Fields, offset: i64) -> Result<DiscountRule, Vec<(&'static str, &'static str)>> {
    let mut errors = Vec::new();
    let mut take = |name: &'static str, r: Result<Option<u64>, &'static str>| match r {
        Ok(v) => v,
        Err(e) => {
            errors.push((name, e));
            None
        }
    };
    let fixed = rials(field(f, "fixed"));
    let fixed_ok = fixed.is_ok();
    let fixed = take("fixed", fixed).unwrap_or(0);
    let cap = take("cap", rials(field(f, "cap")));
    let min_purchase = take("min_purchase", rials(field(f, "min_purchase"))).unwrap_or(0);
    let budget = take("budget", rials(field(f, "budget")));
    let percent = percent_bps(field(f, "percent")).map_err(|e| errors.push(("percent", e)));
    let mut day = |name: &'static str| {
        local_day(field(f, name)).unwrap_or_else(|e| {
            errors.push((name, e));
            None
        })
    };
    let (from, to) = (day("from"), day("to"));
    let name = field(f, "name");
    if name.is_empty() || name.chars().count() > 80 {
        errors.push(("name", "form.name_required"));
    }
    // "Give some discount" only when both fields read: a field that did
    // not read already says what is wrong with it.
    if percent == Ok(0) && fixed_ok && fixed == 0 {
        errors.push(("percent", "form.some_discount"));
    }
    let percent = percent.unwrap_or(0);
    if let (Some(a), Some(b)) = (from, to) {
        if a > b {
            errors.push(("to", "form.bad_period"));
        }
    }
    let tiers: Vec<Tier> = f
        .iter()
        .filter(|(k, _)| k == "tiers")
        .filter_map(|(_, v)| serde_json::from_value(Value::from(v.as_str())).ok())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(DiscountRule {
        name: name.to_owned(),
        active: field(f, "active") != "off",
        percent_bps: percent,
        fixed,
        cap,
        min_purchase,
        tiers,
        budget,
        // A campaign runs from the start of its first local day to the
        // end of its last.
        valid_from: from.map(|d| UnixTime(d * 86_400 - offset)),
        valid_to: to.map(|d| UnixTime((d + 1) * 86_400 - offset)),
        ..DiscountRule::default()
    })
}

/// A stored rule with the fields the form edits taken from `form`. The
/// rest (whether it is active, card ranges, groups, days, hours, daily
/// limits: set through the API) stay as stored, so an edit here never
/// widens a rule to cards or times it did not cover.
fn form_over(stored: &DiscountRule, form: &DiscountRule) -> DiscountRule {
    DiscountRule {
        name: form.name.clone(),
        percent_bps: form.percent_bps,
        fixed: form.fixed,
        cap: form.cap,
        min_purchase: form.min_purchase,
        tiers: form.tiers.clone(),
        budget: form.budget,
        valid_from: form.valid_from,
        valid_to: form.valid_to,
        ..stored.clone()
    }
}

/// The form's fields for a rule as stored (to edit it).
fn fields_of(r: &DiscountRule, offset: i64, lang: Lang) -> Value {
    let day = |t: Option<UnixTime>, end: bool| {
        t.map(|t| {
            let d = (t.0 + offset).div_euclid(86_400) - i64::from(end);
            match lang {
                Lang::Fa => clubswitch_engine::calendar::jalali_of_day(d)
                    .map(|(y, m, d)| format!("{y:04}/{m:02}/{d:02}"))
                    .unwrap_or_default(),
                Lang::En => crate::config::format_date(d),
            }
        })
    };
    json!({
        "rule": r.id,
        "name": r.name,
        "percent": percent_text(r.percent_bps),
        "fixed": if r.fixed > 0 { r.fixed.to_string() } else { String::new() },
        "cap": r.cap.map(|c| c.to_string()),
        "min_purchase": if r.min_purchase > 0 { r.min_purchase.to_string() } else { String::new() },
        "budget": r.budget.map(|c| c.to_string()),
        "from": day(r.valid_from, false),
        "to": day(r.valid_to, true),
        "tiers": r.tiers,
        "active": r.active,
    })
}

/// What a sample purchase of `amount` would get under `rule` at this
/// merchant (its conditions but the amount aside): discount, fee, and
/// what the member pays.
fn preview(rule: &DiscountRule, merchant: &clubswitch_engine::Merchant, amount: u64) -> Value {
    let discount = if amount >= rule.min_purchase {
        rule.discount_on(amount)
    } else {
        0
    };
    json!({
        "amount": amount,
        "discount": discount,
        "fee": clubswitch_engine::rules::fee(merchant, amount, discount),
        "net": amount - discount,
        "below_minimum": amount < rule.min_purchase,
    })
}

/// The rules page: the list, and a form (new, or `?edit=` a rule).
pub(in super::super) async fn rules(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<Fields>,
) -> PageResult {
    let edit = field(&q, "edit").parse::<u64>().ok();
    show_rules(&h, &page, &id, &q, edit, false, Vec::new()).await
}

#[allow(clippy::too_many_arguments)]
async fn show_rules(
    h: &std::sync::Arc<super::super::Http>,
    page: &Page,
    id: &str,
    form: &Fields,
    edit: Option<u64>,
    asked_preview: bool,
    mut errors: Vec<(&'static str, &'static str)>,
) -> PageResult {
    let merchant = merchant_id(id).map_err(|e| page.fail(e))?;
    let (record, list) = blocking(h, move |e| {
        Ok((e.admin().merchant(&merchant)?, e.admin().rules(&merchant)?))
    })
    .await
    .map_err(|e| page.fail(e))?;
    let record = record.ok_or_else(|| page.fail(super::super::not_found("merchant")))?;
    let offset = h.switch.cfg.utc_offset_secs;
    let mut shown = if asked_preview || !errors.is_empty() {
        let mut v = json!({});
        for (k, val) in form {
            if k == "tiers" {
                let mut t = v["tiers"].as_array().cloned().unwrap_or_default();
                t.push(Value::from(val.as_str()));
                v["tiers"] = Value::from(t);
            } else {
                v[k.as_str()] = Value::from(val.as_str());
            }
        }
        v
    } else if let Some(r) = edit.and_then(|e| list.iter().find(|r| r.rule.id == e)) {
        fields_of(&r.rule, offset, page.lang)
    } else {
        json!({ "active": true, "sample": "1000000" })
    };
    let mut sample = None;
    if asked_preview && errors.is_empty() {
        match (rule_of(form, offset), rials(field(form, "sample"))) {
            (Ok(rule), Ok(Some(amount))) => sample = Some(preview(&rule, &record, amount)),
            (Err(e), _) => errors = e,
            (_, Err(e)) => errors.push(("sample", e)),
            (_, Ok(None)) => {}
        }
    }
    if shown.get("sample").is_none() {
        shown["sample"] = "1000000".into();
    }
    let rules: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({
                "id": r.rule.id, "name": r.rule.name, "active": r.rule.active,
                "percent": format!("{}.{:02}", r.rule.percent_bps / 100, r.rule.percent_bps % 100),
                "fixed": r.rule.fixed, "cap": r.rule.cap, "min_purchase": r.rule.min_purchase,
                "budget": r.rule.budget, "spent": r.spent,
                "from": r.rule.valid_from.map(|t| (t.0 + offset).div_euclid(86_400)),
                "to": r.rule.valid_to.map(|t| (t.0 + offset).div_euclid(86_400) - 1),
            })
        })
        .collect();
    let errors: HashMap<&str, &str> = errors.into_iter().collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut r = page.render(
        "rules.html",
        json!({
            "title": "nav.rules",
            "merchant": { "id": id, "name": record.name },
            "rules": rules,
            "form": shown,
            "editing": edit.or_else(|| field(form, "rule").parse().ok()),
            "errors": errors,
            "preview": sample,
            "may_edit": page.actor.as_ref().is_some_and(|a| a.role.merchant().is_some() || a.role.name() == "admin"),
            "tiers": ["bronze", "silver", "gold", "platinum"],
        }),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

/// Makes a rule (or, with `rule`, replaces one) from the form; the form
/// again with its errors if it is not valid. Sent with `preview`, it
/// changes nothing and shows the form with what a sample purchase would
/// get under the rule as typed.
pub(in super::super) async fn add_rule(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> PageResult {
    let offset = h.switch.cfg.utc_offset_secs;
    let editing = field(&f, "rule").parse::<u64>().ok();
    if !field(&f, "preview").is_empty() {
        return show_rules(&h, &page, &id, &f, editing, true, Vec::new()).await;
    }
    let rule = match rule_of(&f, offset) {
        Ok(r) => r,
        Err(errors) => return show_rules(&h, &page, &id, &f, editing, false, errors).await,
    };
    match editing {
        None => {
            page.json(api::add_rule(State(h.clone()), Path(id.clone()), Json(rule)).await)?;
        }
        Some(rule_id) => {
            let merchant = merchant_id(&id).map_err(|e| page.fail(e))?;
            blocking(&h, move |e| {
                e.admin()
                    .update_rule(&merchant, rule_id, |stored| form_over(stored, &rule))
            })
            .await
            .map_err(|e| page.fail(e))?
            .await
            .map_err(|e| page.fail(ApiError::from(e)))?;
        }
    }
    Ok(see_other(&format!("/merchants/{id}/rules")))
}

pub(in super::super) async fn program(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
) -> PageResult {
    let program = match loyalty::get_program(State(h), Path(id.clone())).await {
        Ok(p) => Some(p.0),
        Err(e) if e.0 == StatusCode::NOT_FOUND => None,
        Err(e) => return Err(page.fail(e)),
    };
    page.render(
        "program.html",
        json!({ "title": "nav.program", "merchant": { "id": id }, "program": program }),
    )
}

pub(in super::super) async fn draws(
    State(h): Shared,
    page: Page,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> PageResult {
    let all = page.json(draws::list_draws(State(h), Extension(actor)).await)?;
    let mine: Vec<Value> = all
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["merchant"].as_str() == Some(id.as_str()))
        .cloned()
        .collect();
    page.render(
        "draws.html",
        json!({ "title": "nav.draws", "merchant": { "id": id }, "draws": mine }),
    )
}

pub(in super::super) async fn segments(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let ask = HashMap::from([("merchant".to_owned(), id.clone())]);
    let list = page
        .body(loyalty::segments(State(h), Query(ask)).await)
        .await?;
    let items = list.as_array().cloned().unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for s in &items {
        *counts
            .entry(s["segment"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let wanted = q.get("segment").cloned().unwrap_or_default();
    let shown: Vec<Value> = items
        .into_iter()
        .filter(|s| wanted.is_empty() || s["segment"].as_str() == Some(wanted.as_str()))
        .map(|mut s| {
            // The console shows a member's phone masked, as notices do.
            let phone = s["phone"].as_str().unwrap_or_default().to_owned();
            s["phone"] = Value::from(crate::notify::mask_phone(&phone));
            s
        })
        .collect();
    page.render(
        "segments.html",
        json!({
            "title": "nav.segments",
            "merchant": { "id": id },
            "counts": counts,
            "segment": wanted,
            "list": paginate(shown, &q, 25),
        }),
    )
}

/// How many days a statement covers when no period is asked for.
const STATEMENT_DAYS: i64 = 30;

pub(in super::super) async fn statements(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let mut ask = HashMap::from([("merchant".to_owned(), id.clone())]);
    for k in ["from", "to"] {
        if let Some(v) = q.get(k).filter(|v| !v.is_empty()) {
            ask.insert(k.to_owned(), v.clone());
        }
    }
    // Without a start, the 30 days up to the end asked for (or today):
    // the API's default, that one day alone, rarely holds a batch.
    if !ask.contains_key("from") {
        let end = ask
            .get("to")
            .and_then(|to| local_day(to).ok().flatten())
            .unwrap_or_else(|| UnixTime::now().local_day(h.switch.cfg.utc_offset_secs));
        ask.insert(
            "from".to_owned(),
            clubswitch_engine::iso_date(end - STATEMENT_DAYS + 1),
        );
    }
    let statement = page.json(payouts::statement(State(h), Query(ask)).await)?;
    page.render(
        "statements.html",
        json!({ "title": "merchant.statements", "merchant": { "id": id }, "statement": statement }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clubswitch_engine::rules::BinRange;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_edit_keeps_what_the_form_does_not_show_and_takes_what_it_does() {
        let stored = DiscountRule {
            id: 7,
            name: "weekday lunch".into(),
            active: false,
            percent_bps: 500,
            bins: vec![BinRange {
                digits: 6,
                from: 603_799,
                to: 603_799,
            }],
            groups: vec!["staff".into()],
            days: 0b0011111,
            hours: Some((11, 15)),
            daily_count: Some(1),
            daily_amount: Some(2_000_000),
            ..DiscountRule::default()
        };
        let edited = rule_of(
            &form(&[("name", "lunch"), ("percent", "12"), ("cap", "50000")]),
            0,
        )
        .unwrap();
        let rule = form_over(&stored, &edited);
        assert_eq!(
            (rule.name.as_str(), rule.percent_bps, rule.cap),
            ("lunch", 1_200, Some(50_000))
        );
        let kept = DiscountRule {
            name: rule.name.clone(),
            percent_bps: rule.percent_bps,
            cap: rule.cap,
            ..stored.clone()
        };
        assert_eq!(rule, kept, "only the form's fields change");
    }
}
