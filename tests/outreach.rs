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
            "[loyalty]\ndaily_hour = 23\n[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n"
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
        got["text"], "Happy birthday from your club!",
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
