//! Talking to members, on the real binary: their contact data checked at
//! the door (API and CLI), the language and consent they keep, and the
//! gateway's inbound opt-out reaching the ledger.

mod support;

use serde_json::{json, Value};
use support::*;

/// Runs `clubswitch admin …`; whether it succeeded, its output and error.
fn cli(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let out = admin_cli_output(d, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Members named like `name`, as the console's member search lists them.
fn members_named(d: &Daemon, name: &str) -> usize {
    let html = ureq::get(&format!("http://{}/members", d.admin))
        .query("q", name)
        .set("Authorization", &format!("Bearer {}", d.token))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    html.matches("<a href=\"/members/").count()
}

#[test]
fn a_blank_name_or_a_phone_that_is_no_mobile_is_refused_and_nothing_is_enrolled() {
    let d = Daemon::start("outreach-door", &[]);
    let before = members_named(&d, "Leila");
    let (ok, _, err) = cli(&d, &["member", "add", "--name", "", "--phone", "abc"]);
    assert!(!ok && err.contains("name must not be empty"), "{err}");
    let (ok, _, err) = cli(&d, &["member", "add", "--name", "Leila", "--phone", "abc"]);
    assert!(!ok && err.contains("not an Iranian mobile number"), "{err}");
    for (body, why) in [
        (
            json!({ "name": "  ", "phone": "09121234567" }),
            "blank name",
        ),
        (
            json!({ "name": "Leila", "phone": "02188776655" }),
            "a landline",
        ),
        (
            json!({ "name": "Leila", "phone": "0912123456" }),
            "ten digits",
        ),
        (
            json!({ "name": "Leila", "language": "de" }),
            "no such language",
        ),
        (
            json!({ "name": "Leila", "birthday": "1376/12/30" }),
            "no 30 Esfand in 1376",
        ),
    ] {
        let got = d.admin("POST", "/v1/members", Some(body));
        assert_eq!(got.map_err(|e| e.0), Err(400), "{why}");
    }
    assert_eq!(
        members_named(&d, "Leila"),
        before,
        "nothing enrolled by a refused call"
    );
    assert!(
        members_named(&d, "Sara") >= 1,
        "the search does find a member"
    );

    // Typed the way people type it: international form, Persian digits, a
    // Jalali birthday; kept in one form.
    let (ok, out, err) = cli(
        &d,
        &[
            "member",
            "add",
            "--name",
            " لیلا رضایی ",
            "--phone",
            "+98 912 555 ۱۲۳۴",
            "--birthday",
            "۱۳۷۰/۰۵/۱۲",
            "--language",
            "fa",
        ],
    );
    assert!(ok, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            &m["name"],
            &m["phone"],
            &m["birthday"],
            &m["language"],
            &m["marketing"]
        ),
        (
            &json!("لیلا رضایی"),
            &json!("09125551234"),
            &json!("08-03"),
            &json!("fa"),
            &json!(true)
        ),
        "{m}"
    );

    // An edit is checked the same way and leaves the record as it was.
    let id = m["id"].as_u64().unwrap();
    let path = format!("/v1/members/{id}");
    let bad = d.admin(
        "PUT",
        &path,
        Some(json!({ "name": "Leila", "phone": "09-abc" })),
    );
    assert_eq!(bad.map_err(|e| e.0), Err(400));
    assert_eq!(d.admin("GET", &path, None).unwrap()["phone"], "09125551234");
    let edited = d
        .admin(
            "PUT",
            &path,
            Some(json!({ "name": "Leila", "phone": "00989125551235" })),
        )
        .unwrap();
    assert_eq!(
        (&edited["phone"], &edited["language"]),
        (&json!("09125551235"), &json!("fa"))
    );
}

#[test]
fn an_inbound_stop_opts_the_sender_out_of_birthday_greetings_and_start_brings_them_back() {
    // A time zone in which it is about 01:00 now, so the daily pass (from
    // 23:00) runs only when asked, and everyone below has today's birthday.
    let (offset, today) = about_one_in_the_morning();
    let (_, m, dd) = clubswitch_wire::fields::civil_from_days(today);
    let (url, accepted) = gateway(Gateway::FailFirst(0));
    let d = Daemon::start_with_top(
        "outreach-opt-out",
        &format!("utc_offset_secs = {offset}"),
        &format!(
            "[loyalty]\ndaily_hour = 23\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\nquiet_hours = \"\"\n"
        ),
        &[],
    );
    let birthday = format!("{m:02}-{dd:02}");
    let add = |name: &str, phone: &str| -> u64 {
        d.admin(
            "POST",
            "/v1/members",
            Some(json!({ "name": name, "phone": phone, "birthday": birthday })),
        )
        .unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let stays = add("Stays", "09127770001");
    // Stays reads English; the rest get the default, Persian.
    d.admin(
        "PUT",
        &format!("/v1/members/{stays}"),
        Some(json!({ "name": "Stays", "phone": "09127770001", "language": "en" })),
    )
    .unwrap();
    let leaves = add("Leaves", "09127770002");
    let gone = add("Also leaves", "09127770003");

    // The gateway forwards what members texted: a STOP in Persian digits
    // from an international number, a STOP in Latin, and chatter.
    let inbound = |from: &str, text: &str| {
        d.admin(
            "POST",
            "/v1/inbound/sms",
            Some(json!({ "from": from, "text": text })),
        )
        .unwrap()
    };
    assert_eq!(
        inbound("+989127770002", "لغو ۱۱"),
        json!({ "action": "opted_out", "members": [leaves] })
    );
    assert_eq!(inbound("09127770001", "سلام")["action"], "ignored");
    assert_eq!(
        inbound("09120009999", "STOP")["action"],
        "ignored",
        "no such member"
    );
    // A member opts out on their own (as the console's member would).
    let own = d
        .admin(
            "POST",
            &format!("/v1/members/{gone}/marketing"),
            Some(json!({ "marketing": false })),
        )
        .unwrap();
    assert_eq!(own["marketing"], false);
    assert!(own["opted_out"].is_string(), "{own}");
    let leaving = d
        .admin("GET", &format!("/v1/members/{leaves}"), None)
        .unwrap();
    assert_eq!(leaving["marketing"], false, "{leaving}");

    let run = d.admin("POST", "/v1/loyalty/daily", None).unwrap();
    assert_eq!(
        run["birthdays"], 1,
        "only the one who stayed is greeted: {run}"
    );
    let got = wait_for(&accepted, |n| n["notice"]["kind"] == "birthday");
    assert_eq!(got["to"], "09127770001", "{got}");
    assert_eq!(
        got["text"], "Happy birthday, Stays, from your club!",
        "in the member's language"
    );

    // Opting back in by text restores greetings for next year.
    assert_eq!(
        inbound("۰۹۱۲۷۷۷۰۰۰۲", "start"),
        json!({ "action": "opted_in", "members": [leaves] })
    );
    let back = d
        .admin("GET", &format!("/v1/members/{leaves}"), None)
        .unwrap();
    assert_eq!(
        (&back["marketing"], &back["opted_out"]),
        (&json!(true), &Value::Null)
    );
    let staying = d
        .admin("GET", &format!("/v1/members/{stays}"), None)
        .unwrap();
    assert_eq!(staying["marketing"], true, "chatter changes nothing");
}

/// The first notice the gateway accepted that `pick` chooses, waiting up to
/// ten seconds for it.
fn wait_for(accepted: &std::sync::Mutex<Vec<Value>>, pick: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        if let Some(n) = accepted.lock().unwrap().iter().find(|n| pick(n)) {
            return n.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no such notice delivered: {:?}", accepted.lock().unwrap());
}

/// The UTC offset at which local time is `secs_of_day` now.
fn offset_for(secs_of_day: i64) -> i64 {
    let utc = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut offset = secs_of_day - utc.rem_euclid(86_400);
    if offset < -12 * 3_600 {
        offset += 86_400;
    }
    if offset > 14 * 3_600 {
        offset -= 86_400;
    }
    offset
}

/// Stops the switch, moves its clock to `offset` and starts it again.
fn restart_at(d: &mut Daemon, offset: i64) {
    assert!(d.terminate().success());
    let path = d.dir.join("switch.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let moved: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("utc_offset_secs") {
                format!("utc_offset_secs = {offset}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, moved.join("\n")).unwrap();
    d.restart();
}

/// Club balance inquiries from a control terminal until `stop` (and at
/// least `min` of them): each one's time, request to answer.
fn control_terminal(
    d: &Daemon,
    stop: &std::sync::atomic::AtomicBool,
    min: usize,
) -> Vec<std::time::Duration> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut t = d.terminal("TERM0001");
        let pan = d.pan("sara-club");
        let mut conn = d.connect().await;
        let mut times = Vec::new();
        while times.len() < min || !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (raw, m) = inquiry(&mut t, &pan);
            let began = std::time::Instant::now();
            let (_, answer) = conn.exchange(raw, &m).await.unwrap();
            times.push(began.elapsed());
            assert_eq!(
                answer.response_code().unwrap(),
                clubswitch_wire::ResponseCode::Approved
            );
        }
        times
    })
}

fn p99(mut times: Vec<std::time::Duration>) -> std::time::Duration {
    times.sort_unstable();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}

fn campaign_state(d: &Daemon, id: u64) -> Value {
    d.admin("GET", &format!("/v1/campaigns/{id}"), None)
        .unwrap()
}

/// Waits (up to `secs`) until campaign `id` satisfies `done`.
fn wait_campaign(d: &Daemon, id: u64, secs: u64, done: impl Fn(&Value) -> bool) -> Value {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let c = campaign_state(d, id);
        if done(&c) {
            return c;
        }
        assert!(
            std::time::Instant::now() < until,
            "campaign never got there: {c}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Seconds into the local day of a Unix time in milliseconds.
fn local_secs(ms: u64, offset: i64) -> i64 {
    (ms as i64 / 1000 + offset).rem_euclid(86_400)
}

#[test]
fn a_campaign_to_a_hundred_thousand_members_goes_once_to_each_never_to_the_opted_out_nor_in_quiet_hours(
) {
    const MEMBERS: u64 = 100_000;
    // Quiet from 22:00 to 08:00 (the default); the switch starts at 03:00.
    let (url, accepted) = gateway(Gateway::Flaky {
        fail_every: 10,
        hang_every: 7_919,
    });
    let mut d = Daemon::start_with_top(
        "outreach-campaign",
        &format!("utc_offset_secs = {}", offset_for(3 * 3_600)),
        &format!(
            "[loyalty]\ndaily_hour = 23\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\n\
             interval_ms = 100\nwebhook_timeout_ms = 300\nretry_base_secs = 1\nretry_max_secs = 2\n\
             campaign_max_attempts = 4\ncampaign_rate_per_sec = 50000\nsms_part_cost = 350\n"
        ),
        &[],
    );

    // A club's customer list: every hundredth enrolled opted out, every
    // tenth reads English.
    let mut ids = Vec::new();
    for batch in 0..MEMBERS / 10_000 {
        let members: Vec<Value> = (batch * 10_000..(batch + 1) * 10_000)
            .map(|i| {
                json!({
                    "name": format!("عضو {i}"),
                    "phone": format!("0912{i:07}"),
                    "groups": ["newsletter"],
                    "language": if i % 10 == 3 { "en" } else { "" },
                    "marketing": i % 100 != 7,
                })
            })
            .collect();
        let got = d
            .admin(
                "POST",
                "/v1/imports/members",
                Some(json!({ "members": members })),
            )
            .unwrap();
        ids.extend(
            got["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap()),
        );
    }
    assert_eq!(ids.len() as u64, MEMBERS);
    let opted_out_at_start: std::collections::HashSet<u64> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 == 7)
        .map(|(_, id)| *id)
        .collect();

    let audience = json!({ "group": "newsletter" });
    let mut preview = audience.clone();
    preview["text_fa"] =
        json!("{{ name }} عزیز، عضو {{ tier }} باشگاه؛ تخفیف ویژهٔ امروز {{ today }}.");
    let seen = d
        .admin("POST", "/v1/campaigns/preview", Some(preview.clone()))
        .unwrap();
    assert_eq!(
        (&seen["matched"], &seen["opted_out"], &seen["messages"]),
        (
            &json!(MEMBERS),
            &json!(MEMBERS / 100),
            &json!(MEMBERS - MEMBERS / 100)
        ),
        "{seen}"
    );
    // Persian: UCS-2, so 70 characters to a part.
    assert_eq!(seen["fa"]["length"]["unicode"], true, "{seen}");

    let mut body = preview;
    body["name"] = json!("Azar offer");
    body["text_en"] = json!("Dear {{ name }}, a {{ tier }} offer for {{ today }}.");
    let c = d.admin("POST", "/v1/campaigns", Some(body)).unwrap();
    let id = c["id"].as_u64().unwrap();

    // Queued at once, but 03:00 is quiet: nothing goes.
    let queued = wait_campaign(&d, id, 60, |c| c["state"] == "sending");
    assert_eq!(
        queued["figures"]["queued"],
        MEMBERS - MEMBERS / 100,
        "{queued}"
    );
    let stop = std::sync::atomic::AtomicBool::new(true);
    let quiet = control_terminal(&d, &stop, 2_000);
    assert_eq!(accepted.lock().unwrap().len(), 0, "nothing sent at 03:00");

    // The clock moves to 21:59:52, at 2,000 messages a second: sending
    // begins and stops at 22:00 with most of the campaign waiting.
    let config = d.dir.join("switch.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "campaign_rate_per_sec = 50000",
            "campaign_rate_per_sec = 2000",
        ),
    )
    .unwrap();
    let evening = offset_for(22 * 3_600 - 8);
    restart_at(&mut d, evening);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while local_secs(now_ms(), evening) < 22 * 3_600 {
        assert!(std::time::Instant::now() < until, "22:00 never came");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let by_ten = accepted.lock().unwrap().len();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let later = accepted.lock().unwrap().len();
    assert!(by_ten > 0, "some went before 22:00");
    assert_eq!(by_ten, later, "nothing goes after 22:00");
    for m in accepted.lock().unwrap().iter() {
        let at = local_secs(m["_received_ms"].as_u64().unwrap(), evening);
        // Decided before 22:00; the request may land within the second.
        assert!(at <= 22 * 3_600, "a message at {at} s into the day");
    }

    // And on to 08:00 the next morning, at full speed, with a control
    // terminal asking all the while; five members text STOP meanwhile.
    let config_text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        config_text.replace(
            "campaign_rate_per_sec = 2000",
            "campaign_rate_per_sec = 50000",
        ),
    )
    .unwrap();
    let morning = offset_for(8 * 3_600);
    restart_at(&mut d, morning);
    let late_stoppers: Vec<u64> = ids[ids.len() - 5..].to_vec();
    for i in MEMBERS - 5..MEMBERS {
        let got = d
            .admin(
                "POST",
                "/v1/inbound/sms",
                Some(json!({ "from": format!("+98912{i:07}"), "text": "لغو" })),
            )
            .unwrap();
        assert_eq!(got["action"], "opted_out", "{got}");
    }
    let busy = std::thread::scope(|s| {
        let control = s.spawn(|| control_terminal(&d, &stop, 2_000));
        stop.store(false, std::sync::atomic::Ordering::Relaxed);
        let done = wait_campaign(&d, id, 600, |c| c["state"] == "done");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (control.join().unwrap(), done)
    });
    let (busy, done) = busy;

    // Every message went once, or is reported failed; none to anyone who
    // opted out; the figures add up.
    let got = accepted.lock().unwrap();
    let mut members_reached = std::collections::HashSet::new();
    let mut notice_ids = std::collections::HashSet::new();
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m["notice"]["campaign"], id, "{m}");
        let member = m["member"].as_u64().unwrap();
        assert!(
            notice_ids.insert(m["id"].as_u64().unwrap()),
            "sent twice: {m}"
        );
        assert!(
            members_reached.insert(member),
            "a member reached twice: {m}"
        );
        assert!(
            !opted_out_at_start.contains(&member),
            "to an opted-out member: {m}"
        );
        assert!(!late_stoppers.contains(&member), "after its STOP: {m}");
        // The first `later` arrived in the evening, the rest in the morning.
        let offset = if i < later { evening } else { morning };
        let at = local_secs(m["_received_ms"].as_u64().unwrap(), offset);
        assert!(
            (8 * 3_600..=22 * 3_600).contains(&at),
            "in quiet hours: {m}"
        );
    }
    let f = &done["figures"];
    let n = |k: &str| f[k].as_u64().unwrap();
    assert_eq!(n("matched"), MEMBERS, "{done}");
    assert_eq!(n("opted_out"), MEMBERS / 100, "{done}");
    assert_eq!(n("opted_out_later"), 5, "{done}");
    assert_eq!(n("sent"), got.len() as u64, "{done}");
    assert_eq!(
        n("sent") + n("failed") + n("opted_out_later"),
        n("queued"),
        "every queued message ended once: {done}"
    );
    assert_eq!(done["waiting"], 0);
    assert_eq!(done["cost"], n("parts") * 350, "{done}");

    // Written in each member's language, Persian with Persian digits.
    let first = ids[0];
    let fa = got
        .iter()
        .find(|m| m["member"] == first)
        .expect("the first member got it");
    let text = fa["text"].as_str().unwrap();
    assert!(
        text.starts_with("عضو 0 عزیز، عضو برنزی باشگاه؛ تخفیف ویژهٔ امروز ۱۴"),
        "{text}"
    );
    let en = got
        .iter()
        .find(|m| m["member"] == ids[3])
        .expect("an English reader");
    assert!(
        en["text"]
            .as_str()
            .unwrap()
            .starts_with("Dear عضو 3, a bronze offer for 20"),
        "{en}"
    );

    let (quiet_p99, busy_p99) = (p99(quiet), p99(busy));
    eprintln!(
        "campaign of {MEMBERS}: sent {}, failed {}, opted out {} + {} later; control terminal p99 quiet {quiet_p99:?}, during the send {busy_p99:?} ({:.2}×)",
        n("sent"),
        n("failed"),
        n("opted_out"),
        n("opted_out_later"),
        busy_p99.as_secs_f64() / quiet_p99.as_secs_f64()
    );
}

/// A club purchase of `amount` at `merchant` through `terminal`, with the
/// demo card `card`; whether it was confirmed.
fn buy(d: &Daemon, terminal: &str, merchant: &str, card: &str, amount: u64) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut t = d.terminal(terminal);
        let mut conn = d.connect().await;
        let (_, confirmed) = club_purchase(&mut conn, &mut t, merchant, &d.pan(card), amount).await;
        confirmed.is_some()
    })
}

/// The notices of `kind` the gateway accepted so far.
fn sent_of(accepted: &std::sync::Mutex<Vec<Value>>, kind: &str) -> Vec<Value> {
    accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|n| n["notice"]["kind"] == kind)
        .cloned()
        .collect()
}

/// Waits up to ten seconds for `n` notices of `kind`.
fn wait_sent(accepted: &std::sync::Mutex<Vec<Value>>, kind: &str, n: usize) -> Vec<Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = sent_of(accepted, kind);
        if got.len() >= n {
            return got;
        }
        assert!(std::time::Instant::now() < until, "{kind}: {got:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_merchants_own_template_writes_its_receipts_and_an_anniversary_waits_for_the_morning() {
    // (That greetings then go at 08:00 is the quiet-hours check the
    // campaign test drives across a moved clock.)
    // 01:00 local: receipts go at once, greetings wait for 08:00.
    let (offset, today) = about_one_in_the_morning();
    let (url, accepted) = gateway(Gateway::FailFirst(0));
    let d = Daemon::start_with_top(
        "outreach-templates",
        &format!("utc_offset_secs = {offset}"),
        &format!(
            "[loyalty]\nreceipts = true\ndaily_hour = 23\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n"
        ),
        &[],
    );

    // Cafe Naderi writes its own Persian receipt; a misspelt placeholder is
    // refused with the ones it may use.
    let (ok, _, err) = cli(
        &d,
        &[
            "template",
            "set",
            "receipt",
            "fa",
            "--merchant",
            "MERCHANT0000001",
            "--text",
            "{{ amont }}",
        ],
    );
    assert!(
        !ok && err.contains("name, merchant, amount, points, rrn"),
        "{err}"
    );
    let own = "{{ name }} عزیز، خرید {{ amount }} ریال در {{ merchant }} ثبت شد{% if points %} و {{ points }} امتیاز گرفتید{% endif %}.";
    let (ok, out, err) = cli(
        &d,
        &[
            "template",
            "set",
            "receipt",
            "fa",
            "--merchant",
            "MERCHANT0000001",
            "--text",
            own,
        ],
    );
    assert!(ok, "{err}");
    let kept: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(kept["source"], "merchant", "{kept}");
    assert_eq!(kept["length"]["unicode"], true, "{kept}");
    // Book City keeps the network's words; the list says where each
    // comes from.
    let list = d
        .admin("GET", "/v1/templates?merchant=MERCHANT0000002", None)
        .unwrap();
    let receipt_fa = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["event"] == "receipt" && t["language"] == "fa")
        .unwrap();
    assert_eq!(receipt_fa["source"], "default", "{receipt_fa}");
    assert_eq!(
        list.as_array().unwrap().len(),
        30,
        "15 events in two languages"
    );

    assert!(buy(&d, "TERM0001", "MERCHANT0000001", "sara-club", 100_000));
    assert!(buy(&d, "TERM0003", "MERCHANT0000002", "sara-club", 120_000));
    let receipts = wait_sent(&accepted, "receipt", 2);
    let text_at = |merchant: &str| {
        receipts
            .iter()
            .find(|n| n["notice"]["merchant"] == merchant)
            .unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        text_at("MERCHANT0000001")
            .starts_with("Sara Ahmadi عزیز، خرید ۱۰۰٬۰۰۰ ریال در Cafe Naderi ثبت شد"),
        "{receipts:?}"
    );
    assert!(
        text_at("MERCHANT0000002").starts_with("خرید ۱۲۰٬۰۰۰ ریال در Book City"),
        "{receipts:?}"
    );

    // A member who joined a year ago today, brought over from another club.
    let (y, m, dd) = clubswitch_wire::fields::civil_from_days(today);
    let joined = format!("{:04}-{m:02}-{dd:02}", y - 1);
    let imported = d
        .admin(
            "POST",
            "/v1/imports/members",
            Some(json!({ "members": [{ "name": "Nasrin", "phone": "09127778899", "joined": joined }] })),
        )
        .unwrap();
    let nasrin = imported["ids"][0].as_u64().unwrap();
    let run = d.admin("POST", "/v1/loyalty/daily", None).unwrap();
    assert!(run["anniversaries"].as_u64().unwrap() >= 1, "{run}");
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert!(
        sent_of(&accepted, "anniversary").is_empty(),
        "nothing at 01:00"
    );

    // It waits in the outbox until 08:00 local.
    let waiting = d.admin("GET", "/v1/notices", None).unwrap();
    let held: Vec<&Value> = waiting["first"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["member"] == nasrin && n["notice"]["kind"] == "anniversary")
        .collect();
    assert_eq!(held.len(), 1, "{waiting}");
    let next_at = held[0]["next_at"].as_i64().unwrap();
    assert_eq!(
        (next_at + offset).rem_euclid(86_400),
        8 * 3_600,
        "{waiting}"
    );
    let now = now_ms() as i64 / 1000;
    assert!(
        (6 * 3_600..=8 * 3_600).contains(&(next_at - now)),
        "{waiting}"
    );
    assert_eq!(held[0]["attempts"], 0, "holding back is no attempt");

    // Forgetting the merchant's template brings the default back.
    let (ok, out, _) = cli(
        &d,
        &[
            "template",
            "reset",
            "receipt",
            "fa",
            "--merchant",
            "MERCHANT0000001",
        ],
    );
    assert!(ok);
    let back: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(back["source"], "default", "{back}");
}

#[test]
fn a_number_the_gateway_refuses_is_given_up_and_holds_no_one_else_up() {
    let (url, accepted) = gateway(Gateway::Refuse("09127770010"));
    let d = Daemon::start_configured(
        "outreach-refused",
        &format!(
            "[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n\
             retry_base_secs = 1\nretry_max_secs = 1\nmax_attempts = 3\n"
        ),
        &[],
    );
    for phone in ["09127770010", "09127770011"] {
        d.admin(
            "POST",
            "/v1/members",
            Some(json!({ "name": "Code", "phone": phone })),
        )
        .unwrap();
        // A login code: a notice that goes at any hour.
        d.admin("POST", "/v1/login/code", Some(json!({ "phone": phone })))
            .unwrap();
    }
    // The other member's code goes, whatever the refused one does.
    wait_for(&accepted, |v| v["to"] == "09127770011");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while d.metric("clubswitch_notices_given_up_total") < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused notice was not given up within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(d.metric("clubswitch_notices_failed_total"), 3);
    let waiting = d.admin("GET", "/v1/notices", None).unwrap();
    assert_eq!(waiting["waiting"], 0, "{waiting}");
    assert!(accepted
        .lock()
        .unwrap()
        .iter()
        .all(|v| v["to"] != "09127770010"));
}

#[test]
fn a_campaign_goes_to_the_number_a_member_has_now_and_in_persian_when_written_only_in_persian() {
    let (url, accepted) = gateway(Gateway::FailFirst(0));
    // 03:00 local: quiet, so the campaign waits after it is queued.
    let mut d = Daemon::start_with_top(
        "outreach-campaign-number",
        &format!("utc_offset_secs = {}", offset_for(3 * 3_600)),
        &format!(
            "[loyalty]\ndaily_hour = 23\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n"
        ),
        &[],
    );
    let reader = json!({ "name": "Reader", "phone": "09127770020", "groups": ["n"] });
    let id = d.admin("POST", "/v1/members", Some(reader)).unwrap()["id"]
        .as_u64()
        .unwrap();
    // An English reader, but the campaign has Persian words only.
    let english =
        json!({ "name": "Reader", "phone": "09127770020", "language": "en", "groups": ["n"] });
    d.admin("PUT", &format!("/v1/members/{id}"), Some(english))
        .unwrap();
    let campaign = json!({
        "name": "Persian only",
        "group": "n",
        "text_fa": "{{ name }} عزیز، پیشنهاد امروز {{ today }}",
    });
    let c = d.admin("POST", "/v1/campaigns", Some(campaign)).unwrap();
    let c = c["id"].as_u64().unwrap();
    wait_campaign(&d, c, 60, |c| c["figures"]["queued"] == 1);

    // The member changes number while the campaign waits.
    let moved =
        json!({ "name": "Reader", "phone": "09127770021", "language": "en", "groups": ["n"] });
    d.admin("PUT", &format!("/v1/members/{id}"), Some(moved))
        .unwrap();
    restart_at(&mut d, offset_for(12 * 3_600));
    wait_campaign(&d, c, 60, |c| c["figures"]["sent"] == 1);
    let sent = accepted.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "09127770021");
    let text = sent[0]["text"].as_str().unwrap();
    assert!(
        !text.chars().any(|c| c.is_ascii_digit()),
        "Persian digits in a Persian text: {text}"
    );
}
