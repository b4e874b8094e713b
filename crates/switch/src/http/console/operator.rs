//! The operator's pages: the club's dashboard, merchants, terminals,
//! members, settlement batches, the action log, the ledger audit and the
//! notices waiting. Each reads what the API answers the same caller.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{Path, Query, State};
use axum::Extension;
use clubswitch_engine::{Role, UnixTime};
use serde_json::{json, Value};

use super::super::access::{Actor, Roles};
use super::super::{
    audit as api_audit, blocking, merchants as api_merchants, not_found, notices, payouts, reports,
    settlements, terminal_id, terminals as api_terminals, users, Shared,
};
use super::i18n::Lang;
use super::{chart, paginate, query_of, see_other, Page, PageResult};

/// The periods a dashboard shows, in days.
const PERIODS: [i64; 4] = [1, 7, 30, 365];

/// `?days=` of a dashboard: one of [`PERIODS`], 7 unless it says another.
pub(super) fn days_of(q: &HashMap<String, String>) -> i64 {
    q.get("days")
        .and_then(|d| d.parse().ok())
        .filter(|d| PERIODS.contains(d))
        .unwrap_or(7)
}

/// What the rollups say of `days` days to today, added up over merchants
/// and by period (days, or months for a year: Jalali months in Persian),
/// from `GET /v1/reports/history` as `actor` may see it.
pub(super) async fn figures(
    page: &Page,
    actor: &Actor,
    days: i64,
    merchant: Option<&str>,
) -> Result<(Value, Value), super::PageError> {
    let h = &page.h;
    let today = UnixTime::now().local_day(h.switch.cfg.utc_offset_secs);
    let period = match (days > 31, page.lang) {
        (false, _) => "day",
        (true, Lang::Fa) => "jalali-month",
        (true, Lang::En) => "month",
    };
    let mut q: HashMap<String, String> = HashMap::from([
        ("from".into(), crate::config::format_date(today - days + 1)),
        ("to".into(), crate::config::format_date(today)),
        ("period".into(), period.into()),
    ]);
    if let Some(m) = merchant {
        q.insert("merchant".into(), m.to_owned());
    }
    let answer =
        page.json(reports::history(State(h.clone()), Extension(actor.clone()), Query(q)).await)?;
    let mut by_period: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    if period == "day" {
        for d in today - days + 1..=today {
            by_period.insert(crate::config::format_date(d), BTreeMap::new());
        }
    }
    let mut total: BTreeMap<String, i64> = BTreeMap::new();
    for line in answer["lines"].as_array().into_iter().flatten() {
        let f = &line["figures"];
        let n = |k: &str| f[k].as_i64().unwrap_or(0);
        let c = |k: &str, w: &str| f[k][w].as_i64().unwrap_or(0);
        let sums = [
            (
                "sales",
                c("bank", "amount")
                    + c("club", "amount")
                    + c("store", "amount")
                    + c("points", "amount"),
            ),
            (
                "purchases",
                c("bank", "count")
                    + c("club", "count")
                    + c("store", "count")
                    + c("points", "count"),
            ),
            ("bank", c("bank", "count")),
            ("club", c("club", "count")),
            ("store", c("store", "count")),
            ("points", c("points", "count")),
            ("refunds", c("refunds", "amount")),
            ("discounts", n("discounts")),
            ("fees", n("fees")),
            ("points_issued", n("points_issued")),
            ("points_redeemed", n("points_redeemed")),
            ("new_members", n("new_members")),
            ("returning_members", n("returning_members")),
        ];
        let label = line["period"].as_str().unwrap_or_default().to_owned();
        let slot = by_period.entry(label).or_default();
        for (k, v) in sums {
            *slot.entry(k.into()).or_default() += v;
            *total.entry(k.into()).or_default() += v;
        }
    }
    let bars: Vec<(String, i64)> = by_period
        .iter()
        .map(|(label, v)| {
            let shown = if period == "day" {
                crate::config::parse_date(label)
                    .map_or_else(|| label.clone(), |d| page.lang.date(d))
            } else {
                page.lang.digits(label)
            };
            (shown, v.get("sales").copied().unwrap_or(0))
        })
        .collect();
    let svg = chart::bars(page.lang.text("chart.sales_by_day"), &bars);
    Ok((json!(total), json!({ "svg": svg })))
}

/// Home: the operator's dashboard; a merchant, cashier or member goes to
/// its own.
pub(in super::super) async fn home(
    State(h): Shared,
    page: Page,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let actor = page.actor()?.clone();
    match &actor.role {
        Role::Merchant { merchant } => {
            // Its own dashboard, for the period asked.
            let days = q
                .get("days")
                .map(|_| format!("?days={}", days_of(&q)))
                .unwrap_or_default();
            return Ok(see_other(&format!(
                "/merchants/{}{days}",
                merchant.as_str()
            )));
        }
        Role::Cashier { .. } => return Ok(see_other("/balance")),
        Role::Member { member } => return Ok(see_other(&format!("/members/{}", member.0))),
        Role::Admin | Role::Support | Role::Finance => {}
    }
    let days = days_of(&q);
    let (total, chart) = figures(&page, &actor, days, None).await?;
    // Points and store credit members hold now, over every merchant.
    let held = blocking(&h, |e| e.loyalty().held(None))
        .await
        .map_err(|e| page.fail(e))?;
    let points_outstanding: i64 = held.values().map(|m| m.points).sum();
    let credit_outstanding: i64 = held.values().map(|m| m.store_credit).sum();
    // What is owed to merchants: only for whom the API shows it
    // (/v1/payouts/outstanding), not for support.
    let settlement_due: Option<i64> = if Roles::FINANCE.allows(&actor.role) {
        let owed =
            page.json(payouts::outstanding(State(h.clone()), Extension(actor.clone())).await)?;
        Some(
            owed.as_array()
                .into_iter()
                .flatten()
                .map(|o| o["outstanding"].as_i64().unwrap_or(0))
                .sum(),
        )
    } else {
        None
    };
    let m = &h.switch.metrics;
    let codes: Vec<Value> = m
        .by_response_code()
        .into_iter()
        .map(|(code, n)| json!({ "code": code, "count": n }))
        .collect();
    page.render(
        "dashboard.html",
        json!({
            "title": "nav.dashboard",
            "scope": "club",
            "days": days,
            "periods": PERIODS,
            "total": total,
            "chart": chart,
            "points_outstanding": points_outstanding,
            "credit_outstanding": credit_outstanding,
            "settlement_due": settlement_due,
            "connections": m.connections_open.load(Relaxed),
            "codes": codes,
        }),
    )
}

/// Whether a listed text holds a search's `needle` (lowercased), case
/// aside: ids are upper case, and people type them in lower case.
fn holds(field: &Value, needle: &str) -> bool {
    field
        .as_str()
        .is_some_and(|s| s.to_lowercase().contains(needle))
}

pub(in super::super) async fn merchants(
    State(h): Shared,
    page: Page,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let list = page.json(api_merchants::list_merchants(State(h), Extension(actor)).await)?;
    let needle = query_of(&q).to_lowercase();
    let items: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| needle.is_empty() || holds(&m["name"], &needle) || holds(&m["id"], &needle))
        .cloned()
        .collect();
    page.render(
        "merchants.html",
        json!({ "title": "nav.merchants", "q": query_of(&q), "list": paginate(items, &q, 20) }),
    )
}

pub(in super::super) async fn terminals(
    State(h): Shared,
    page: Page,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let list = page.json(api_terminals::list_terminals(State(h), Extension(actor)).await)?;
    let needle = query_of(&q).to_lowercase();
    let items: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| needle.is_empty() || holds(&t["id"], &needle) || holds(&t["merchant"], &needle))
        .cloned()
        .collect();
    page.render(
        "terminals.html",
        json!({ "title": "nav.terminals", "q": query_of(&q), "list": paginate(items, &q, 20) }),
    )
}

/// Block, unblock or unlock a terminal, and back to the list.
/// One terminal: its state (status, lock, failed security checks, a key
/// change the terminal has not yet taken) and its transactions, newest
/// first.
pub(in super::super) async fn terminal(
    State(h): Shared,
    page: Page,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let tid = terminal_id(&id).map_err(|e| page.fail(e))?;
    let record = blocking(&h, move |e| e.admin().terminal(&tid))
        .await
        .map_err(|e| page.fail(e))?
        .ok_or_else(|| page.fail(not_found("terminal")))?;
    let history = page.json(api_terminals::terminal_history(State(h), Path(id)).await)?;
    let mut items: Vec<Value> = history.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|t| std::cmp::Reverse(t["created"].as_i64().unwrap_or(0)));
    page.render(
        "terminal.html",
        json!({
            "title": "nav.terminals",
            "terminal": api_terminals::terminal_json(&record),
            "history": paginate(items, &q, 20),
        }),
    )
}

pub(in super::super) async fn terminal_action(
    State(h): Shared,
    page: Page,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    page.json(api_terminals::terminal_action(State(h), Path((id, action))).await)?;
    Ok(see_other("/terminals"))
}

pub(in super::super) async fn members(
    State(h): Shared,
    page: Page,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let needle = query_of(&q);
    // Four digits of a card, typed in Persian digits too.
    let digits = super::ascii_number(&needle);
    let search = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits
    } else {
        needle.clone()
    };
    let found = blocking(&h, move |e| e.admin().find_members(&search, 1_000))
        .await
        .map_err(|e| page.fail(e))?;
    let items: Vec<Value> = found
        .iter()
        .map(|m| {
            json!({
                "id": m.id.0, "name": m.name, "phone": m.phone,
                "tier": m.tier, "status": m.status,
            })
        })
        .collect();
    page.render(
        "members.html",
        json!({ "title": "nav.members", "q": needle, "list": paginate(items, &q, 20) }),
    )
}

pub(in super::super) async fn settlements(
    State(h): Shared,
    page: Page,
    Extension(actor): Extension<Actor>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    // Operators see the payouts too, with the files that went to the bank.
    let payouts = match actor.role {
        Role::Admin | Role::Finance => {
            let mut all = page.json(payouts::list_payouts(State(h.clone())).await)?;
            if let Some(list) = all.as_array_mut() {
                list.reverse();
                list.truncate(20);
            }
            all
        }
        _ => Value::Null,
    };
    let r = settlements::list_settlements(State(h), Extension(actor), Query(HashMap::new())).await;
    let list = page.body(Ok(r)).await?;
    let needle = query_of(&q).to_lowercase();
    let batch: Option<u64> = super::ascii_number(&needle).parse().ok();
    let mut items: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| {
            needle.is_empty()
                || b["id"].as_u64().is_some_and(|id| batch == Some(id))
                || b["merchant"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&needle)
        })
        .cloned()
        .collect();
    items.reverse();
    page.render(
        "settlements.html",
        json!({
            "title": "nav.settlements",
            "q": query_of(&q),
            "list": paginate(items, &q, 20),
            "payouts": payouts,
        }),
    )
}

pub(in super::super) async fn audit_log(
    State(h): Shared,
    page: Page,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let mut filter = HashMap::new();
    for k in ["actor", "target"] {
        if let Some(v) = q.get(k).filter(|v| !v.is_empty()) {
            filter.insert(k.to_owned(), v.clone());
        }
    }
    filter.insert("limit".into(), "1000".into());
    let list = page.json(users::audit_log(State(h), Query(filter)).await)?;
    let items = list.as_array().cloned().unwrap_or_default();
    page.render(
        "audit_log.html",
        json!({
            "title": "nav.audit_log",
            "actor": q.get("actor"), "target": q.get("target"),
            "list": paginate(items, &q, 50),
        }),
    )
}

pub(in super::super) async fn audit(State(h): Shared, page: Page) -> PageResult {
    let report = page.json(api_audit::audit(State(h)).await)?;
    page.render(
        "audit.html",
        json!({ "title": "nav.audit", "report": report }),
    )
}

pub(in super::super) async fn notices(
    State(h): Shared,
    page: Page,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let answer = page.json(notices::notices(State(h)).await)?;
    // A phone number in any form, or a kind of notice. The list shows
    // numbers masked (0912***4567): a whole number typed is masked alike
    // to be found; a part is looked for in what shows.
    let needle = query_of(&q);
    let typed = clubswitch_engine::access::normal_phone(&needle);
    let phone = match clubswitch_engine::access::mobile(&typed) {
        Ok(whole) => clubswitch_engine::access::normal_phone(&crate::notify::mask_phone(&whole)),
        Err(_) => typed,
    };
    let items: Vec<Value> = answer["first"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            needle.is_empty()
                || (!phone.is_empty()
                    && clubswitch_engine::access::normal_phone(
                        n["to"].as_str().unwrap_or_default(),
                    )
                    .contains(&phone))
                || n["notice"]["kind"].as_str() == Some(needle.as_str())
        })
        .cloned()
        .collect();
    page.render(
        "notices.html",
        json!({
            "title": "nav.notices",
            "q": needle,
            "answer": answer,
            "list": paginate(items, &q, 50),
        }),
    )
}
