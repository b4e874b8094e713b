//! Loyalty on the real binary: points in DE 54, the programme and member
//! admin API, and member notices through a webhook gateway that fails,
//! recovers, or never answers.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clubswitch_wire::{AccountType, AmountType, Message, ProcessingCode, ResponseCode};
use serde_json::{json, Value};
use support::{about_one_in_the_morning, club_purchase, gateway, purchase, Daemon, Gateway};

const BOOK_CITY: &str = "MERCHANT0000002";

fn points(m: &Message, t: AmountType) -> Option<u64> {
    m.additional_amounts()
        .ok()?
        .find(AccountType::Unspecified, t)
        .map(|b| b.amount.value())
}

/// A member's loyalty view's balances at `merchant`.
fn balance_at(view: &Value, merchant: &str) -> Value {
    view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["merchant"] == merchant)
        .unwrap()
        .clone()
}

/// What the gateway has accepted once it has `n` notices, or after 30 s.
fn delivered(accepted: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    accepted.lock().unwrap().clone()
}

#[tokio::test]
async fn receipts_reach_a_failing_gateway_after_retries_and_carry_the_points() {
    let (url, accepted) = gateway(Gateway::FailFirst(2));
    let d = Daemon::start_configured(
        "loyalty-webhook",
        &format!(
            "[loyalty]\nreceipts = true\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\nretry_base_secs = 1\nretry_max_secs = 2\ninterval_ms = 200\n"
        ),
        &[],
    );
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    let pan = d.pan("reza-club");
    for amount in [100_000, 200_000, 300_000] {
        let (resp, confirmed) = club_purchase(&mut conn, &mut t, BOOK_CITY, &pan, amount).await;
        assert_eq!(resp.response_code().unwrap(), ResponseCode::Approved);
        let c = confirmed.unwrap();
        assert_eq!(c.response_code().unwrap(), ResponseCode::Approved);
        // Reza is gold: 1.5 points per 10,000 rials.
        assert_eq!(
            points(&c, AmountType::PointsEarned),
            Some(amount / 10_000 * 3 / 2)
        );
    }
    let got = delivered(&accepted, 3);
    assert_eq!(
        got.len(),
        3,
        "every receipt delivered once the gateway recovered: {got:?}"
    );
    let mut amounts: Vec<u64> = got
        .iter()
        .map(|n| n["notice"]["amount"].as_u64().unwrap())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [100_000, 200_000, 300_000]);
    for n in &got {
        assert_eq!(n["to"], "09120000002");
        assert_eq!(n["notice"]["kind"], "receipt");
        assert_eq!(n["notice"]["merchant"], BOOK_CITY);
        // Persian by default: Persian digits with separators.
        let text = n["text"].as_str().unwrap();
        assert!(
            text.contains("امتیاز گرفتید") && text.contains("۰۰۰"),
            "{n}"
        );
    }
    assert!(d.metric("clubswitch_notices_failed_total") >= 2);
    assert_eq!(d.metric("clubswitch_notices_sent_total"), 3);
}

#[tokio::test]
async fn a_gateway_that_never_answers_holds_up_no_terminal() {
    let (url, _) = gateway(Gateway::Hang);
    // A gateway timeout of ten minutes: were delivery on the terminal's
    // path, no purchase below would be answered within the test.
    let d = Daemon::start_configured(
        "loyalty-hang",
        &format!(
            "[loyalty]\nreceipts = true\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\nwebhook_timeout_ms = 600000\ninterval_ms = 100\n"
        ),
        &[],
    );
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    let pan = d.pan("reza-club");
    for _ in 0..5 {
        let (resp, confirmed) = club_purchase(&mut conn, &mut t, BOOK_CITY, &pan, 50_000).await;
        assert_eq!(resp.response_code().unwrap(), ResponseCode::Approved);
        assert_eq!(
            confirmed.unwrap().response_code().unwrap(),
            ResponseCode::Approved
        );
    }
    // The receipts wait in the outbox, none lost and none delivered.
    assert_eq!(d.metric("clubswitch_notices_waiting"), 5);
    assert_eq!(d.metric("clubswitch_notices_sent_total"), 0);
}

#[tokio::test]
async fn a_stop_during_a_slow_delivery_round_records_what_was_sent_and_the_next_start_sends_the_rest_once(
) {
    // Closed until every receipt is queued, so one round holds them all
    // (or all but the first) however fast the purchases go. The switch
    // waits for it as long as the purchases take: no send times out and
    // is retried (the switch warns that so long a timeout can outlast the
    // grace; the test's sends do not, as the gateway is open by the stop).
    static OPEN: AtomicBool = AtomicBool::new(false);
    let each = Duration::from_millis(200);
    let (url, accepted) = gateway(Gateway::Slow { each, open: &OPEN });
    let mut d = Daemon::start_configured(
        "loyalty-slow-stop",
        &format!(
            "[loyalty]\nreceipts = true\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\nwebhook_timeout_ms = 60000\ninterval_ms = 100\n[limits]\nshutdown_grace_secs = 2\n"
        ),
        &[],
    );
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    let pan = d.pan("reza-club");
    // Thirty receipts, each told apart by its amount: six seconds of
    // sending at this gateway's pace, three times the grace period.
    let amounts: Vec<u64> = (1..=30).map(|i| i * 10_000).collect();
    for &amount in &amounts {
        let (_, confirmed) = club_purchase(&mut conn, &mut t, BOOK_CITY, &pan, amount).await;
        let confirmed = confirmed.unwrap().response_code().unwrap();
        assert_eq!(confirmed, ResponseCode::Approved);
    }
    drop(conn);
    OPEN.store(true, Ordering::Release);
    // The amounts of the receipts the gateway accepted, in order.
    let receipts = || -> Vec<u64> {
        let accepted = accepted.lock().unwrap();
        let receipts = accepted.iter().filter(|n| n["notice"]["kind"] == "receipt");
        receipts
            .map(|n| n["notice"]["amount"].as_u64().unwrap())
            .collect()
    };
    // Told to stop while a round is sending (the first may have had a
    // round of its own).
    let deadline = Instant::now() + Duration::from_secs(30);
    while receipts().len() < 3 {
        assert!(Instant::now() < deadline, "no receipt sent");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(d.terminate().success());
    let before_restart = receipts().len();
    assert!(
        before_restart < amounts.len(),
        "the stop waited for the whole round: {before_restart} receipts sent"
    );

    // What was sent was recorded before the last flush: the next start
    // sends only the rest.
    d.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while receipts().len() < amounts.len() {
        assert!(Instant::now() < deadline, "{:?}", receipts());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A receipt sent twice would come in the first rounds after the start.
    std::thread::sleep(Duration::from_secs(1));
    let mut sent = receipts();
    sent.sort_unstable();
    assert_eq!(sent, amounts, "every receipt, each once");
}

#[tokio::test]
async fn programmes_conversion_and_referrals_through_the_admin_api() {
    let d = Daemon::start("loyalty-admin", &[]);
    let cafe = "MERCHANT0000001";
    // Cafe Naderi has no programme in the demo; give it one with cashback.
    assert_eq!(
        d.admin("GET", &format!("/v1/merchants/{cafe}/program"), None)
            .unwrap_err()
            .0,
        404
    );
    let bad = d.admin(
        "PUT",
        &format!("/v1/merchants/{cafe}/program"),
        Some(json!({ "per_amount": 0 })),
    );
    assert_eq!(bad.unwrap_err().0, 400);
    let p = d
        .admin(
            "PUT",
            &format!("/v1/merchants/{cafe}/program"),
            Some(json!({ "points": 2, "per_amount": 10000, "credit_per_point": 50, "cashback_bps": 100 })),
        )
        .unwrap();
    assert_eq!(p["points"], 2);
    assert_eq!(p["tier_bps"], json!([10000, 10000, 10000, 10000]));

    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let (_, c) = club_purchase(&mut conn, &mut t, cafe, &d.pan("mina-club"), 100_000).await;
    let c = c.unwrap();
    assert_eq!(points(&c, AmountType::PointsEarned), Some(20));

    // Mina is member 3 in the demo.
    let view = d.admin("GET", "/v1/members/3/loyalty", None).unwrap();
    assert_eq!(view["tier"], "bronze");
    assert_eq!(view["purchases"], 1);
    let at_cafe = balance_at(&view, cafe);
    assert_eq!(at_cafe["points"], 20);
    assert_eq!(at_cafe["store_credit"], 1_000, "1% cashback");

    let conv = d
        .admin(
            "POST",
            "/v1/members/3/convert",
            Some(json!({ "merchant": cafe })),
        )
        .unwrap();
    assert_eq!(conv, json!({ "points": 20, "credit": 1_000 }));
    let again = d.admin(
        "POST",
        "/v1/members/3/convert",
        Some(json!({ "merchant": cafe })),
    );
    assert_eq!(again.unwrap_err().0, 400, "nothing left to convert");

    // Mina has purchased, so she can no longer be referred; Ali (member
    // 4) has not.
    let code = view["referral_code"].as_str().unwrap().to_owned();
    assert_eq!(
        d.admin(
            "POST",
            "/v1/members/3/referral",
            Some(json!({ "code": "R11" }))
        )
        .unwrap_err()
        .0,
        400
    );
    d.admin(
        "POST",
        "/v1/members/4/referral",
        Some(json!({ "code": code })),
    )
    .unwrap();
    let ali = d.admin("GET", "/v1/members/4/loyalty", None).unwrap();
    assert_eq!(ali["referred_by"], 3);

    // A coalition: Sara's credit at Cafe Naderi pays at Book City, and the
    // clearing report says Cafe Naderi owes Book City for it.
    d.admin(
        "PUT",
        "/v1/coalitions",
        Some(json!({ "name": "demo", "merchants": [cafe, BOOK_CITY] })),
    )
    .unwrap();
    let mut t3 = d.terminal("TERM0003");
    let (resp, c) = purchase(
        &mut conn,
        &mut t3,
        ProcessingCode::StorePurchase,
        BOOK_CITY,
        &d.pan("sara-club"),
        100_000,
    )
    .await;
    assert_eq!(resp.response_code().unwrap(), ResponseCode::Approved);
    assert_eq!(c.unwrap().response_code().unwrap(), ResponseCode::Approved);
    let owed = d.admin("GET", "/v1/coalitions/clearing", None).unwrap();
    assert_eq!(
        owed,
        json!([{ "debtor": cafe, "creditor": BOOK_CITY, "amount": 100_000 }])
    );

    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
}

#[tokio::test]
async fn draws_the_loyalty_report_and_segments_through_the_admin_api() {
    let d = Daemon::start("loyalty-knowing", &[]);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    for label in ["sara-club", "reza-club", "reza-club"] {
        let (_, c) = club_purchase(&mut conn, &mut t, BOOK_CITY, &d.pan(label), 100_000).await;
        assert_eq!(c.unwrap().response_code().unwrap(), ResponseCode::Approved);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let draw = d
        .admin(
            "POST",
            "/v1/draws",
            Some(json!({ "merchant": BOOK_CITY, "from": now - 3600, "to": now + 3600, "prizes": 1, "prize_points": 300, "seed": 5 })),
        )
        .unwrap();
    // Two buyers, one prize: a 50% chance each, above the 25% minimum.
    assert_eq!(draw["eligible"].as_array().unwrap().len(), 2);
    assert_eq!(draw["winners"].as_array().unwrap().len(), 1);
    assert_eq!(draw["odds_bps"], 5_000);
    let id = draw["id"].as_u64().unwrap();
    let v = d
        .admin("GET", &format!("/v1/draws/{id}/verify"), None)
        .unwrap();
    assert_eq!(v["reproduced"], true);

    let report = d.admin("GET", "/v1/loyalty/report", None).unwrap();
    let book = report["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["merchant"] == BOOK_CITY)
        .unwrap()
        .clone();
    // Sara (silver) 12, Reza (gold) 15 + 15, the draw's 300, and the 300
    // the demo grants Sara to pay with at the till.
    assert_eq!(book["points_issued"], 12 + 15 + 15 + 300 + 300);
    assert_eq!(report["buyers"], 2);
    assert_eq!(report["repeat_buyers"], 1);

    let csv = ureq::get(&format!(
        "http://{}/v1/segments?merchant={BOOK_CITY}&format=csv",
        d.admin
    ))
    .set("Authorization", &format!("Bearer {}", d.token))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("member,name,phone,tier"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let reza = lines.iter().find(|l| l.contains("Reza Karimi")).unwrap();
    assert!(reza.contains(",gold,demo,0,2,200000,"), "{reza}");
}

/// `base` completed with its Luhn check digit.
fn luhn(base: &str) -> String {
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|s| {
            s.parse::<clubswitch_wire::CardNumber>()
                .is_ok_and(|p| p.luhn_ok())
        })
        .unwrap()
}

#[tokio::test]
async fn the_daily_pass_greets_birthdays_and_warns_of_cards_and_expiring_credit() {
    // A time zone in which it is about 01:00 now, so the pass (from 23:00)
    // runs only when asked.
    let (offset, today) = about_one_in_the_morning();
    let (y, m, d) = clubswitch_wire::fields::civil_from_days(today);
    // The card expires at the end of the month after next.
    let (ey, em) = if m >= 11 { (y + 1, m - 10) } else { (y, m + 2) };
    let (ny, nm) = if em == 12 { (ey + 1, 1) } else { (ey, em + 1) };
    let through = clubswitch_wire::fields::days_from_civil(ny, nm, 1) - 1;
    let (url, accepted) = gateway(Gateway::FailFirst(0));
    let dm = Daemon::start_with_top(
        "loyalty-daily",
        &format!("utc_offset_secs = {offset}"),
        &format!(
            "[loyalty]\ndaily_hour = 23\ncard_expiry_warn_days = {}\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\nquiet_hours = \"\"\n",
            through - today
        ),
        &[],
    );
    let cafe = "MERCHANT0000001";
    dm.admin(
        "PUT",
        &format!("/v1/merchants/{cafe}/program"),
        Some(json!({ "credit_valid_days": 3, "expiry_warn_days": 7 })),
    )
    .unwrap();
    let bad = dm.admin(
        "POST",
        "/v1/members",
        Some(json!({ "name": "Leila", "birthday": "02-30" })),
    );
    assert_eq!(bad.unwrap_err().0, 400, "no such date");
    let member = dm
        .admin(
            "POST",
            "/v1/members",
            Some(json!({ "name": "Leila", "phone": "09120000077", "birthday": format!("1991-{m:02}-{d:02}") })),
        )
        .unwrap();
    assert_eq!(
        member["birthday"],
        format!("{m:02}-{d:02}"),
        "the year is not kept"
    );
    let id = member["id"].as_u64().unwrap();
    dm.admin(
        "POST",
        "/v1/cards",
        Some(json!({ "pan": luhn("628023149000007"), "member": id, "expiry": format!("{:02}{em:02}", ey % 100) })),
    )
    .unwrap();
    dm.admin(
        "POST",
        "/v1/store-credit",
        Some(json!({ "member": id, "merchant": cafe, "amount": 25_000 })),
    )
    .unwrap();

    let run = dm.admin("POST", "/v1/loyalty/daily", None).unwrap();
    assert_eq!(
        (
            &run["birthdays"],
            &run["cards_expiring"],
            &run["credit_expired"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{run}"
    );
    // Leila's credit, and any the demo granted at the cafe today.
    let warnings = run["expiry_warnings"].as_u64().unwrap() as usize;
    assert!(warnings >= 1, "{run}");
    assert_eq!(
        dm.admin("POST", "/v1/loyalty/daily", None).unwrap(),
        Value::Null,
        "once a day"
    );

    let got = delivered(&accepted, 2 + warnings);
    let mut kinds: Vec<&str> = got
        .iter()
        .filter(|n| n["to"] == "09120000077")
        .map(|n| n["notice"]["kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        ["birthday", "card_expiring", "expiry_warning"],
        "{got:?}"
    );
    let fmt = |day: i64| {
        let (y, m, d) = clubswitch_wire::fields::civil_from_days(day);
        format!("{y:04}-{m:02}-{d:02}")
    };
    for n in got.iter().filter(|n| n["to"] == "09120000077") {
        match n["notice"]["kind"].as_str() {
            Some("card_expiring") => {
                assert_eq!(n["notice"]["valid_through"], fmt(through), "{n}");
                assert!(!n.to_string().contains("628023149"), "no card number: {n}");
            }
            Some("expiry_warning") => {
                assert_eq!(n["notice"]["credit"], 25_000);
                assert_eq!(n["notice"]["valid_through"], fmt(today + 3));
            }
            _ => {}
        }
    }
    let view = dm
        .admin("GET", &format!("/v1/members/{id}/loyalty"), None)
        .unwrap();
    let at_cafe = balance_at(&view, cafe);
    assert_eq!(
        at_cafe["expiring"],
        json!([{ "store_credit": 25_000, "valid_through": fmt(today + 3) }])
    );
}
