//! Money in, on the real binary: admin money moves under an
//! `Idempotency-Key`, and payment gateways' signed top-up callbacks, which
//! credit once however often and however concurrently they are repeated.

mod support;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::*;

const SECRET: &str = "a-test-gateway-secret-of-at-least-32-chars";

/// A demo switch taking callbacks from gateway `testpay`, allowing enough
/// requests a second for a thousand at once, and naming the operator's
/// account payouts are paid from. The gateway's secret is removed with it.
fn switch(name: &str) -> Daemon {
    let keys = Scratch::new(&format!("{name}-gateway"));
    let secret = keys.join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut d = Daemon::start_configured(
        name,
        &format!(
            "[admin]\nrequests_per_sec = 100000\n\
             [[admin.gateways]]\nname = \"testpay\"\nsecret_file = {:?}\n\
             [settlement.debtor]\nname = \"Club Operator & Co <Tehran>\"\n\
             iban = \"IR120170000000123456789012\"\n",
            secret.display().to_string()
        ),
        &[],
    );
    d.keep(keys);
    d
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(secret: &str, stamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(stamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Sends a callback as gateway `gateway` would; returns status and answer.
fn callback(d: &Daemon, gateway: &str, body: &Value, stamp: i64, secret: &str) -> (u16, Value) {
    let raw = serde_json::to_vec(body).unwrap();
    let stamp = stamp.to_string();
    let resp = ureq::post(&format!("http://{}/v1/gateways/{gateway}/top-up", d.admin))
        .set("Content-Type", "application/json")
        .set("X-Clubswitch-Timestamp", &stamp)
        .set("X-Clubswitch-Signature", &sign(secret, &stamp, &raw))
        .send_bytes(&raw);
    answer(resp)
}

fn answer(resp: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match resp {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    }
}

fn balance(d: &Daemon, hash: &str) -> i64 {
    d.admin("GET", &format!("/v1/cards/{hash}"), None).unwrap()["balance"]
        .as_i64()
        .unwrap()
}

#[test]
fn the_same_gateway_callback_sent_a_thousand_times_at_once_credits_once() {
    let d = switch("money-callback");
    let card = card_hash(&d, "mina-club");
    let before = balance(&d, &card);
    let body = json!({ "reference": "pay-2026-000123", "card": card, "amount": 250_000 });
    let stamp = now();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (addr, body) = (d.admin.clone(), body.clone());
            std::thread::spawn(move || {
                let raw = serde_json::to_vec(&body).unwrap();
                let stamp = stamp.to_string();
                let sig = sign(SECRET, &stamp, &raw);
                let agent = ureq::AgentBuilder::new().build();
                (0..20)
                    .map(|_| {
                        answer(
                            agent
                                .post(&format!("http://{addr}/v1/gateways/testpay/top-up"))
                                .set("Content-Type", "application/json")
                                .set("X-Clubswitch-Timestamp", &stamp)
                                .set("X-Clubswitch-Signature", &sig)
                                .send_bytes(&raw),
                        )
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(answers.len(), 1_000);
    let first = &answers[0];
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1["balance"], json!(before + 250_000));
    assert!(
        answers.iter().all(|a| a == first),
        "every repeat answered as the first: {:?}",
        answers.iter().find(|a| *a != first)
    );
    assert_eq!(balance(&d, &card), before + 250_000, "credited once");

    // A new reference is a new payment.
    let again = json!({ "reference": "pay-2026-000124", "card": card, "amount": 1_000 });
    assert_eq!(callback(&d, "testpay", &again, now(), SECRET).0, 200);
    assert_eq!(balance(&d, &card), before + 251_000);
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
}

#[test]
fn a_callback_unsigned_wrongly_signed_stale_or_from_an_unknown_gateway_moves_nothing() {
    let d = switch("money-refused");
    let card = card_hash(&d, "mina-club");
    let before = balance(&d, &card);
    let body = json!({ "reference": "pay-1", "card": card, "amount": 5_000 });
    let wrong = "another-secret-that-is-long-enough-to-pass";
    let cases = [
        ("testpay", now(), wrong, 401, "wrong secret"),
        ("testpay", now() - 3_600, SECRET, 401, "an hour old"),
        ("testpay", now() + 3_600, SECRET, 401, "an hour ahead"),
        ("otherpay", now(), SECRET, 401, "unknown gateway"),
    ];
    for (gateway, stamp, secret, status, what) in cases {
        let (got, answer) = callback(&d, gateway, &body, stamp, secret);
        assert_eq!(got, status, "{what}: {answer}");
        assert!(answer["error"].is_string(), "{what}: {answer}");
    }
    // No signature at all.
    let (got, _) = answer(
        ureq::post(&format!("http://{}/v1/gateways/testpay/top-up", d.admin)).send_json(&body),
    );
    assert_eq!(got, 401);
    // An admin's bearer token is no gateway's signature.
    let (got, _) = answer(
        ureq::post(&format!("http://{}/v1/gateways/testpay/top-up", d.admin))
            .set("Authorization", &format!("Bearer {}", d.token))
            .send_json(&body),
    );
    assert_eq!(got, 401);
    // Signed, but without a reference: refused before anything moves.
    let (got, _) = callback(
        &d,
        "testpay",
        &json!({ "card": card, "amount": 5_000 }),
        now(),
        SECRET,
    );
    assert_eq!(got, 400);
    assert_eq!(balance(&d, &card), before);
    // Each refusal is in the action log.
    let log = d.admin("GET", "/v1/audit-log?limit=50", None).unwrap();
    let refused = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == json!("POST /v1/gateways/{name}/top-up"))
        .count();
    assert!(refused >= 7, "{log}");
}

/// An admin call with a key; returns status and answer.
fn keyed(d: &Daemon, path: &str, key: &str, body: Value) -> (u16, Value) {
    answer(
        ureq::post(&format!("http://{}{path}", d.admin))
            .set("Authorization", &format!("Bearer {}", d.token))
            .set("Idempotency-Key", key)
            .send_json(body),
    )
}

#[test]
fn an_admin_top_up_repeated_under_its_key_credits_once_and_another_body_gets_422() {
    let d = switch("money-keyed");
    let card = card_hash(&d, "mina-club");
    let before = balance(&d, &card);
    let path = format!("/v1/cards/{card}/top-up");
    let first = keyed(&d, &path, "topup-77", json!({ "amount": 40_000 }));
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1["balance"], json!(before + 40_000));
    d.admin("POST", &path, Some(json!({ "amount": 1 })))
        .unwrap();
    // The repeat answers with the balance the first left, and moves nothing.
    assert_eq!(
        keyed(&d, &path, "topup-77", json!({ "amount": 40_000 })),
        first
    );
    assert_eq!(balance(&d, &card), before + 40_001);
    let (status, answer) = keyed(&d, &path, "topup-77", json!({ "amount": 50_000 }));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(balance(&d, &card), before + 40_001);

    // Points grants take keys too.
    let member = d.admin("GET", &format!("/v1/cards/{card}"), None).unwrap()["member"].clone();
    let grant = json!({ "member": member, "merchant": "MERCHANT0000001", "points": 70 });
    let g1 = keyed(&d, "/v1/points", "grant-1", grant.clone());
    assert_eq!(g1.0, 200, "{g1:?}");
    assert_eq!(keyed(&d, "/v1/points", "grant-1", grant), g1);

    // So do draws: the repeat answers the draw the first ran, and no
    // second draw credits prizes again.
    let draw = json!({ "merchant": "MERCHANT0000001", "from": 0, "to": now() + 60,
        "prizes": 1, "prize_points": 10 });
    let d1 = keyed(&d, "/v1/draws", "draw-1", draw.clone());
    assert_eq!(d1.0, 200, "{d1:?}");
    assert_eq!(keyed(&d, "/v1/draws", "draw-1", draw), d1);
    let draws = d.admin("GET", "/v1/draws", None).unwrap();
    assert_eq!(draws.as_array().map(Vec::len), Some(1), "{draws}");

    // A key on a route that moves no money is refused, not ignored.
    let (status, answer) = keyed(&d, "/v1/members", "k", json!({ "name": "Sara" }));
    assert_eq!(status, 400, "{answer}");
    // A key that is not visible ASCII is refused.
    let (status, _) = keyed(&d, &path, "", json!({ "amount": 1 }));
    assert_eq!(status, 400);
}

/// Fails on what a person or a bank's system cannot read: an array of byte
/// values (an id or RRN serialized raw) or a date as a day count.
fn assert_readable(what: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            let bytes =
                items.len() >= 4 && items.iter().all(|i| i.as_u64().is_some_and(|n| n <= 255));
            assert!(!bytes, "{what}: an array of byte values: {v}");
            for i in items {
                assert_readable(what, i);
            }
        }
        Value::Object(fields) => {
            for (k, f) in fields {
                assert!(
                    !(k.ends_with("_day") && f.is_number()),
                    "{what}: {k} is a day count: {f}"
                );
                assert_readable(&format!("{what}.{k}"), f);
            }
        }
        _ => {}
    }
}

#[test]
fn every_admin_answer_and_settlement_file_shows_ids_as_strings_and_dates_as_iso_dates() {
    let d = switch("money-readable");
    // Confirmed club purchases and lookups, so that a settlement has items.
    let load = std::process::Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", "2", "-d", "1"])
        .args(["--mix", "discount=50,club=50", "--demo"])
        .arg(d.dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(load.status.success(), "{load:?}");
    let settled = d.admin("POST", "/v1/settlements", Some(json!({}))).unwrap();
    let batches = settled["batches"].as_array().unwrap();
    assert!(!batches.is_empty(), "{settled}");
    assert_readable("POST /v1/settlements", &settled);
    let batch = &batches[0];
    assert!(batch["merchant"].as_str().unwrap().starts_with("MERCHANT"));
    let due = batch["due_date"].as_str().unwrap();
    assert!(
        due.len() == 10 && due.as_bytes()[4] == b'-' && due.as_bytes()[7] == b'-',
        "{due}"
    );
    assert!(batch["items"][0].as_str().unwrap().len() == 12, "{batch}");
    for file in settled["files"].as_array().unwrap() {
        let path = file.as_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        if path.ends_with(".json") {
            assert_readable(path, &serde_json::from_str(&text).unwrap());
        } else {
            assert!(text.contains(due), "{path}: {text}");
        }
    }

    // Every GET of the admin API, on objects that exist.
    let campaign = d
        .admin(
            "POST",
            "/v1/campaigns",
            Some(json!({ "name": "readable", "merchant": "MERCHANT0000001", "text_fa": "سلام {{ name }}", "at": 4_000_000_000u64 })),
        )
        .unwrap()["id"]
        .to_string();
    let card = card_hash(&d, "mina-club");
    let member = d.admin("GET", &format!("/v1/cards/{card}"), None).unwrap()["member"].to_string();
    let routes = d.admin("GET", "/v1/access", None).unwrap();
    let mut read = 0;
    for r in routes.as_array().unwrap() {
        if r["method"] != json!("GET") {
            continue;
        }
        let path = r["path"]
            .as_str()
            .unwrap()
            .replace("/merchants/{id}", "/merchants/MERCHANT0000001")
            .replace("/terminals/{id}", "/terminals/TERM0001")
            .replace("/members/{id}", &format!("/members/{member}"))
            .replace("{hash}", &card)
            .replace("/draws/{id}", "/draws/1")
            .replace("/campaigns/{id}", &format!("/campaigns/{campaign}"))
            .replace("/payouts/{id}", "/payouts/1")
            .replace(
                "/payouts/statement",
                "/payouts/statement?merchant=MERCHANT0000001&from=2000-01-01",
            );
        match d.admin("GET", &path, None) {
            Ok(answer) => {
                assert_readable(&format!("GET {path}"), &answer);
                read += 1;
            }
            // A draw that was never held, say: nothing to read.
            Err((404, _)) => {}
            Err(e) => panic!("GET {path}: {e:?}"),
        }
    }
    assert!(read >= 20, "{read} answers read");
}

/// A Python that can validate against the ISO 20022 schemas, if this
/// machine has one; CI must (`.ci/run` installs it).
fn xsd_python() -> Option<String> {
    let set = std::env::var("CLUBSWITCH_PYTHON").ok();
    let py = set.clone().unwrap_or_else(|| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import xmlschema, sepaxml"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    assert!(
        set.is_none(),
        "CLUBSWITCH_PYTHON is set but lacks xmlschema and sepaxml: the payout file must be validated"
    );
    eprintln!("skipping the schema check: no Python with xmlschema and sepaxml");
    None
}

/// A camt.053.001.08 statement: `paid` booked as debits, `returned` as
/// returns with reason AC04.
fn camt053(paid: &[(&str, i64)], returned: &[(&str, i64)]) -> String {
    let mut entries = String::new();
    for (id, amount) in paid {
        entries.push_str(&format!(
            "<Ntry><Amt Ccy=\"IRR\">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <NtryDtls><TxDtls><Refs><EndToEndId>{id}</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>"
        ));
    }
    for (id, amount) in returned {
        entries.push_str(&format!(
            "<Ntry><Amt Ccy=\"IRR\">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>\
             <NtryDtls><TxDtls><Refs><EndToEndId>{id}</EndToEndId></Refs>\
             <RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Closed account</AddtlInf></RtrInf>\
             </TxDtls></NtryDtls></Ntry>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\"><BkToCstmrStmt>\
         <GrpHdr><MsgId>S1</MsgId><CreDtTm>2026-12-03T08:00:00</CreDtTm></GrpHdr>\
         <Stmt><Id>1</Id><Acct><Id><IBAN>IR120170000000123456789012</IBAN></Id></Acct>{entries}</Stmt>\
         </BkToCstmrStmt></Document>"
    )
}

#[test]
fn a_payout_file_is_valid_pain001_and_a_returned_transfer_is_reconciled_and_paid_again() {
    let d = switch("money-payout");
    // Two merchants' club purchases, settled.
    let load = std::process::Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", "4", "-d", "1"])
        .args(["--mix", "club=100", "--demo"])
        .arg(d.dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(load.status.success(), "{load:?}");
    let settled = d.admin("POST", "/v1/settlements", Some(json!({}))).unwrap();
    let paying: Vec<&Value> = settled["batches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["net"].as_i64().unwrap() > 0)
        .collect();
    assert!(!paying.is_empty(), "{settled}");

    // The payout, through the CLI, as the bank's file.
    let xml = admin_cli(&d, &["settlement", "payout", "--format", "pain001"]);
    assert!(
        xml.contains("urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"),
        "{xml}"
    );
    assert!(
        xml.contains("Club Operator &amp; Co &lt;Tehran&gt;"),
        "escaped: {xml}"
    );
    assert_eq!(xml.matches("<CdtTrfTxInf>").count(), paying.len());
    let file = d.dir.join("payout.xml");
    std::fs::write(&file, &xml).unwrap();
    if let Some(py) = xsd_python() {
        let script =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/xsd.py");
        let out = std::process::Command::new(py)
            .arg(script)
            .arg("pain.001.001.09.xsd")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pain.001 against the schema: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let payouts = d.admin("GET", "/v1/payouts", None).unwrap();
    let id = payouts[0]["id"].as_u64().unwrap();
    let first = d.admin("GET", &format!("/v1/payouts/{id}"), None).unwrap();
    let items = first["items"].as_array().unwrap();
    let csv = admin_cli(
        &d,
        &["settlement", "payout", &id.to_string(), "--format", "csv"],
    );
    assert_eq!(csv.lines().count(), items.len() + 1, "{csv}");

    // The bank pays all but the first, which it returns.
    let e2e = |i: &Value| i["end_to_end_id"].as_str().unwrap().to_owned();
    let amount = |i: &Value| i["amount"].as_i64().unwrap();
    let returned = &items[0];
    let paid: Vec<(String, i64)> = items[1..].iter().map(|i| (e2e(i), amount(i))).collect();
    let paid_refs: Vec<(&str, i64)> = paid.iter().map(|(a, b)| (a.as_str(), *b)).collect();
    let statement = d.dir.join("statement.xml");
    std::fs::write(
        &statement,
        camt053(&paid_refs, &[(&e2e(returned), amount(returned))]),
    )
    .unwrap();
    let done: Value = serde_json::from_str(&admin_cli(
        &d,
        &["settlement", "reconcile", statement.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(done["paid"], json!(paid.len()), "{done}");
    assert_eq!(done["returned"], json!(1), "{done}");
    // Reading it again changes nothing.
    let again: Value = serde_json::from_str(&admin_cli(
        &d,
        &["settlement", "reconcile", statement.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(again["unchanged"], json!(items.len()), "{again}");

    let merchant = returned["merchant"].as_str().unwrap();
    let outstanding = d.admin("GET", "/v1/payouts/outstanding", None).unwrap();
    let row = outstanding
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["merchant"] == json!(merchant))
        .unwrap();
    assert_eq!(row["returned"].as_i64(), Some(amount(returned)), "{row}");

    // The next payout sends the returned transfer again, with its reason.
    let (status, next) = keyed(&d, "/v1/payouts", "payout-2", json!({}));
    assert_eq!(status, 200, "{next}");
    // Retried under its key, the same payout, not a second one.
    assert_eq!(
        keyed(&d, "/v1/payouts", "payout-2", json!({})),
        (200, next.clone())
    );
    let again_items = next["payout"]["items"].as_array().unwrap();
    assert_eq!(again_items.len(), 1, "{next}");
    assert_eq!(again_items[0]["batch"], returned["batch"]);
    assert!(
        again_items[0]["returns"][0]
            .as_str()
            .unwrap()
            .contains("AC04 Closed account"),
        "{next}"
    );
    let results = d.dir.join("results.csv");
    std::fs::write(
        &results,
        format!(
            "end_to_end_id,status,reason\n{},paid\n",
            e2e(&again_items[0])
        ),
    )
    .unwrap();
    admin_cli(&d, &["settlement", "reconcile", results.to_str().unwrap()]);
    let outstanding = d.admin("GET", "/v1/payouts/outstanding", None).unwrap();
    for row in outstanding.as_array().unwrap() {
        assert_eq!(row["outstanding"], json!(0), "all paid: {row}");
    }
    // The merchant's statement shows each batch paid, the return kept.
    let st = d
        .admin(
            "GET",
            &format!("/v1/payouts/statement?merchant={merchant}&from=2000-01-01"),
            None,
        )
        .unwrap();
    let lines = st["lines"].as_array().unwrap();
    assert!(!lines.is_empty(), "{st}");
    assert!(lines
        .iter()
        .filter(|l| l["net"].as_i64().unwrap() > 0)
        .all(|l| l["transfer"] == json!("paid")));
    assert!(
        lines
            .iter()
            .any(|l| l["returns"][0] == json!("AC04 Closed account")),
        "{st}"
    );
    assert_eq!(st["paid"], st["net"], "{st}");
    assert_readable("statement", &st);
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
    assert_readable("payouts", &d.admin("GET", "/v1/payouts", None).unwrap());
}

#[test]
fn demo_history_makes_a_year_that_the_history_report_reads_after_archiving() {
    let mut d = switch("money-history");
    d.kill();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .arg("-c")
            .arg(d.dir.join("switch.toml"))
            .arg("--data-dir")
            .arg(&d.dir)
            .args(d.store_url())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let made = run(&["demo-history", "--days", "90", "--per-day", "2"]);
    assert!(made.contains("90 days"), "{made}");
    if !on_postgres() {
        let archived = run(&["archive"]);
        assert!(
            !archived.starts_with("archived 0 transactions"),
            "{archived}"
        );
    }
    d.restart();
    let history = d
        .admin("GET", "/v1/reports/history?period=year&by=merchant", None)
        .unwrap();
    let purchases: i64 = history["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["figures"]["bank"]["count"].as_i64().unwrap()
                + l["figures"]["club"]["count"].as_i64().unwrap()
        })
        .sum();
    // Three terminals, two a day for 90 days (some declined, a few
    // reversed): far more than the 30 live days.
    assert!(purchases > 300, "{history}");
    let live = d.admin("GET", "/v1/reports?from=2000-01-01", None).unwrap();
    let live_purchases: u64 = live["lines"]
        .as_object()
        .unwrap()
        .values()
        .map(|l| l["purchases"].as_u64().unwrap())
        .sum();
    if !on_postgres() {
        assert!(
            (live_purchases as i64) < purchases,
            "the live ledger holds 30 days, the rollups all 90: {live_purchases} vs {purchases}"
        );
    }
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
}

#[test]
fn a_cashier_refunds_at_its_own_merchant_once_per_key_and_never_at_another() {
    let d = switch("money-refund");
    // A connection per demo terminal, so each merchant has purchases.
    let load = std::process::Command::new(BIN)
        .args(["loadgen", "--addr", &d.addr, "-c", "3", "-d", "1"])
        .args(["--mix", "club=100", "--demo"])
        .arg(d.dir.join("demo.json"))
        .output()
        .unwrap();
    assert!(load.status.success(), "{load:?}");
    // A confirmed club purchase at each merchant.
    let purchase_at = |terminal: &str| -> Value {
        let h = d
            .admin("GET", &format!("/v1/terminals/{terminal}/history"), None)
            .unwrap();
        h.as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == json!("ClubPurchase") && t["state"] == json!("confirmed"))
            .cloned()
            .unwrap_or_else(|| panic!("no confirmed club purchase at {terminal}: {h}"))
    };
    let mine = purchase_at("TERM0001");
    let theirs = purchase_at("TERM0003");
    d.admin(
        "POST",
        "/v1/users",
        Some(json!({ "name": "desk-1", "role": "cashier", "merchant": "MERCHANT0000001" })),
    )
    .unwrap();
    let token = d
        .admin("POST", "/v1/users/desk-1/tokens", Some(json!({})))
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refund = |key: &str, body: Value| {
        answer(
            ureq::post(&format!("http://{}/v1/refunds", d.admin))
                .set("Authorization", &format!("Bearer {token}"))
                .set("Idempotency-Key", key)
                .send_json(body),
        )
    };
    let amount = mine["final_amount"].as_u64().unwrap();
    let half = json!({ "merchant": "MERCHANT0000001", "rrn": mine["rrn"], "amount": amount / 2 });
    let first = refund("desk-1-a", half.clone());
    assert_eq!(first.0, 200, "{first:?}");
    assert_eq!(first.1["refundable"], json!(amount - amount / 2));
    // The cashier's retry refunds nothing more.
    assert_eq!(refund("desk-1-a", half), first);
    // More than is left: refused, nothing moves.
    let (status, body) = refund(
        "desk-1-b",
        json!({ "merchant": "MERCHANT0000001", "rrn": mine["rrn"], "amount": amount }),
    );
    assert_eq!(status, 400, "{body}");
    // Another merchant's purchase: hidden, whether named as its own
    // merchant or as the other.
    let (status, _) = refund(
        "desk-1-c",
        json!({ "merchant": "MERCHANT0000002", "rrn": theirs["rrn"], "amount": 1_000 }),
    );
    assert_eq!(status, 404);
    let (status, _) = refund(
        "desk-1-d",
        json!({ "merchant": "MERCHANT0000001", "rrn": theirs["rrn"], "amount": 1_000 }),
    );
    assert_eq!(status, 404);
    let history = d
        .admin("GET", "/v1/terminals/TERM0001/history", None)
        .unwrap();
    let refunds = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["code"] == json!("ClubRefund"))
        .count();
    assert_eq!(refunds, 1, "{history}");
    let log = d.admin("GET", "/v1/audit-log?limit=20", None).unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == json!("desk-1") && e["action"] == json!("POST /v1/refunds")),
        "{log}"
    );
    let audit = d.admin("GET", "/v1/audit", None).unwrap();
    assert_eq!(audit["violations"], json!([]), "{audit}");
}

#[test]
fn a_year_of_demo_history_archived_reports_the_same_year_as_its_archive_files() {
    use clubswitch_engine::archive::file::{self, Kind};
    use clubswitch_engine::rollup::Figures;
    use clubswitch_engine::{Period, SalesBy, Txn, TxnState, UnixTime};
    use std::collections::BTreeMap;

    let dir = std::env::temp_dir().join(format!("clubswitch-year-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = clubswitch::config::Config {
        data_dir: dir.clone(),
        ..clubswitch::config::Config::default()
    };
    let master = clubswitch::master::MasterKey::from_hex(&"5a".repeat(32)).unwrap();
    let engine = clubswitch::boot::open_engine(&cfg, &master).unwrap();
    let demo = clubswitch::demo::seed(&engine, &master, &dir, &cfg.holds).unwrap();
    let demo: Value = serde_json::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    let now = UnixTime::now();
    // What `clubswitch demo-history --days 365 --per-day 2` does.
    let made = clubswitch::cli::history::drive(&engine, &demo, 365, 2, now).unwrap();
    assert!(
        made.purchases > 1_500 && made.refunds > 0 && made.reversals > 0,
        "{made:?}"
    );
    let archive = dir.join("archive");
    let run = engine
        .archive()
        .run(now.plus(-30 * 86_400), &archive)
        .unwrap();
    assert!(run.transactions > 1_000, "{run:?}");

    // The year recomputed from the archive files and what is still live.
    let offset = engine.config().utc_offset_secs;
    let mut txns: Vec<Txn> = Vec::new();
    let (files, _) = file::list(&archive).unwrap();
    for f in files.iter().filter(|f| f.kind == Kind::Transactions) {
        txns.extend(file::read::<Txn>(&f.path, Kind::Transactions).unwrap());
    }
    txns.extend(engine.admin().transactions(|_| true).unwrap());
    let mut expected: BTreeMap<String, Figures> = BTreeMap::new();
    for t in txns.iter().filter(|t| t.state == TxnState::Confirmed) {
        if let Some(at) = t.confirmed {
            let year = Period::Year.label(at.local_day(offset));
            expected.entry(year).or_default().count(t, 1);
        }
    }

    let today = now.local_day(offset);
    let mut got: BTreeMap<String, Figures> = BTreeMap::new();
    for line in engine
        .reports()
        .history(today - 400, today, None, SalesBy::Merchant, Period::Year)
        .unwrap()
    {
        let f = got.entry(line.period).or_default();
        f.merge(&line.figures);
        // Visits are counted as they happen, not kept on transactions.
        f.new_members = 0;
        f.returning_members = 0;
    }
    assert_eq!(got, expected);
    assert!(engine.audit().ledger().unwrap().ok());
    engine.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
