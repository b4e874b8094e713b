//! Pages about one person or card: a member's own page (balances, points,
//! tier and what the next one needs, history, referral code), the card
//! actions an operator takes from it, and a cashier's balance look-up.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Form, Json};
use clubswitch_engine::{MemberId, Tier};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::{blocking, cards, loyalty, members, txn_json, ApiResult, Http, Key, Shared};
use super::{ascii_number, paginate, see_other, Page, PageResult};

pub(in super::super) async fn member(
    State(h): Shared,
    page: Page,
    Path(id): Path<u64>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let record = page.json(members::get_member(State(h.clone()), Path(id)).await)?;
    let standing = page.json(loyalty::member_loyalty(State(h.clone()), Path(id)).await)?;
    let (list, history) = blocking(&h, move |e| {
        let list = e.admin().cards_of(MemberId(id))?;
        let mut history = Vec::new();
        for c in &list {
            history.extend(e.admin().card_history(&c.hash)?);
        }
        history.sort_by_key(|b| std::cmp::Reverse(b.created.0));
        Ok((list, history))
    })
    .await
    .map_err(|e| page.fail(e))?;
    let mut shown = Vec::new();
    for c in &list {
        let view = cards::card_view(&h, c).await.map_err(|e| page.fail(e))?;
        shown.push(serde_json::to_value(view).unwrap_or_default());
    }
    // What the next tier needs: the threshold of the tier above, less
    // what counts toward it now.
    let cfg = &h.switch.engine.config().loyalty;
    let tier: Tier = serde_json::from_value(standing["tier"].clone()).unwrap_or_default();
    let rolling = standing["rolling"].as_u64().unwrap_or(0);
    let next = match tier {
        Tier::Bronze => Some(1),
        Tier::Silver => Some(2),
        Tier::Gold => Some(3),
        Tier::Platinum => None,
    }
    .map(|i| {
        let at = cfg.tier_thresholds[i - 1];
        json!({ "name": cfg.tier_names[i], "needs": at.saturating_sub(rolling) })
    });
    let history: Vec<Value> = history.iter().map(txn_json).collect();
    let names = merchant_names(&h, &standing, &history)
        .await
        .map_err(|e| page.fail(e))?;
    page.render(
        "member.html",
        json!({
            "title": "nav.members",
            "member": record,
            "standing": standing,
            "next_tier": next,
            // What `rolling` counts: rials spent, or points earned.
            "rolling_key": match cfg.tier_basis {
                clubswitch_engine::TierBasis::Spend => "member.rolling",
                clubswitch_engine::TierBasis::Points => "member.rolling_points",
            },
            "names": names,
            "cards": shown,
            "history": paginate(history, &q, 20),
            "idem": idempotency_key(),
        }),
    )
}

/// The names of the merchants a member's page mentions, by id: a member
/// knows the shop, not its merchant id. Only those ids are read.
async fn merchant_names(h: &Http, standing: &Value, history: &[Value]) -> ApiResult<Value> {
    let ids: std::collections::BTreeSet<String> = standing["balances"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(history)
        .filter_map(|v| v["merchant"].as_str().map(str::to_owned))
        .collect();
    blocking(h, move |e| {
        let mut names = serde_json::Map::new();
        for id in ids {
            let Ok(mid) = id.parse::<clubswitch_wire::MerchantId>() else {
                continue;
            };
            if let Some(m) = e.admin().merchant(&mid)? {
                names.insert(id, Value::from(m.name));
            }
        }
        Ok(Value::Object(names))
    })
    .await
}

/// A fresh key for a form that moves money: sent twice (a double click, a
/// reload), it moves once.
fn idempotency_key() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("console-{}", hex::encode(raw))
}

#[derive(Deserialize)]
pub(in super::super) struct CardForm {
    /// The member page to go back to.
    member: u64,
    /// For a top-up: rials.
    #[serde(default)]
    amount: String,
    /// For a renewal: the replacement card's number (never shown back).
    #[serde(default)]
    pan: String,
    /// For a renewal: the replacement card's expiry, YYMM.
    #[serde(default)]
    expiry: String,
}

/// Blocks, unblocks, renews or tops up a card, and back to its member's
/// page.
pub(in super::super) async fn card_action(
    State(h): Shared,
    page: Page,
    k: Key,
    Path((hash, action)): Path<(String, String)>,
    Form(f): Form<CardForm>,
) -> PageResult {
    let body = match action.as_str() {
        "top-up" => {
            let amount: u64 = ascii_number(&f.amount)
                .parse()
                .map_err(|_| page.fail(super::super::bad(page.lang.text("form.must_be_number"))))?;
            Some(Json(json!({ "amount": amount })))
        }
        "renew" => {
            let expiry = ascii_number(&f.expiry);
            Some(Json(json!({
                "pan": ascii_number(&f.pan),
                "expiry": (!expiry.is_empty()).then_some(expiry),
            })))
        }
        _ => None,
    };
    page.json(cards::card_action(State(h), k, Path((hash, action)), body).await)?;
    Ok(see_other(&format!("/members/{}", f.member)))
}

#[derive(Deserialize)]
pub(in super::super) struct ConsentForm {
    /// "on": take marketing messages; anything else: stop them.
    #[serde(default)]
    marketing: String,
}

/// A member's consent to marketing messages, set by the member or by
/// support from the member's page, and back to it.
pub(in super::super) async fn marketing(
    State(h): Shared,
    page: Page,
    Path(id): Path<u64>,
    Form(f): Form<ConsentForm>,
) -> PageResult {
    let consent = members::MarketingIn::from(f.marketing == "on");
    page.json(members::set_marketing(State(h), Path(id), Json(consent)).await)?;
    Ok(see_other(&format!("/members/{id}")))
}

/// The cashier's page: a card number in, its masked number and balance
/// out.
pub(in super::super) async fn balance(page: Page) -> PageResult {
    page.render("balance.html", json!({ "title": "nav.dashboard" }))
}

#[derive(Deserialize)]
pub(in super::super) struct PanForm {
    pan: String,
}

pub(in super::super) async fn look_up(
    State(h): Shared,
    page: Page,
    Form(f): Form<PanForm>,
) -> PageResult {
    let pan = ascii_number(&f.pan);
    let found = cards::find_card(State(h), Json(cards::PanIn { pan })).await;
    match found {
        Ok(card) => page.render(
            "balance.html",
            json!({ "title": "nav.dashboard", "card": serde_json::to_value(card.0).unwrap_or_default() }),
        ),
        Err(e) => {
            let status = e.0;
            let mut r = page.render(
                "balance.html",
                json!({
                    "title": "nav.dashboard",
                    "error": if status == axum::http::StatusCode::NOT_FOUND { "err.not_found" } else { "err.bad_request" },
                }),
            )?;
            *r.status_mut() = status;
            Ok(r)
        }
    }
}
