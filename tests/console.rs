//! The console in a real browser: Debian's chromium, driven through
//! chromedriver (WebDriver) against the real binary on real sockets.
//!
//! Every role signs in and opens every page of its menu (and the pages
//! reached from them): no browser console error, no failed request, the
//! stylesheet loaded, `lang` and `dir` set, no card number on the page. A
//! screenshot of each page goes to `target/console-shots/`.
//!
//! `.ci/run` installs chromium and chromium-driver and sets
//! `CLUBSWITCH_REQUIRE_BROWSER`, so CI cannot pass by skipping; elsewhere,
//! without chromedriver on the PATH, the tests say so and skip.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clubswitch_wire::{AmountType, Message, ProcessingCode, ResponseCode};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::{club_purchase, free_port, gateway, purchase, Daemon, Gateway, Scratch};

const CAFE: &str = "MERCHANT0000001";
const BOOK_CITY: &str = "MERCHANT0000002";

/// A chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    /// Chromedriver's and chromium's temporary directory, removed after
    /// them: chromium leaves a dozen directories behind in the system's.
    _tmp: Scratch,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromedriver, if the machine has one (CI must).
fn driver() -> Option<Driver> {
    let program = [
        "chromedriver",
        "/usr/bin/chromedriver",
        "/usr/lib/chromium/chromedriver",
    ]
    .into_iter()
    .find(|p| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(program) = program else {
        assert!(
            std::env::var_os("CLUBSWITCH_REQUIRE_BROWSER").is_none(),
            "CLUBSWITCH_REQUIRE_BROWSER is set but there is no chromedriver"
        );
        eprintln!("skipping: no chromedriver (apt install chromium chromium-driver; .ci/run does)");
        return None;
    };
    let port = free_port();
    let tmp = Scratch::new(&format!("chromium-{port}"));
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .env("TMPDIR", &*tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _tmp: tmp,
    })
}

/// A headless chromium of `width` × 1000 pixels that keeps its console
/// log.
async fn browser(d: &Driver, width: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            format!("--window-size={width},1000"),
        ] }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .unwrap()
}

/// Chromedriver's browser log since the last call (its extension command).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// What the browser logged at warning or above since the last call.
async fn complaints(c: &Client) -> Vec<Value> {
    let log = c.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] != "INFO" && e["level"] != "DEBUG")
        .cloned()
        .collect()
}

/// The demo's card numbers, none of which a page may show.
static PANS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// The demo switch, its card numbers noted for [`check_page`].
fn demo(name: &str, config: &str) -> Daemon {
    let d = Daemon::start_configured(name, config, &[]);
    PANS.get_or_init(|| {
        d.demo["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["pan"].as_str().unwrap().to_owned())
            .collect()
    });
    d
}

/// Where the screenshots go.
fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-shots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// ASCII digits for Persian ones.
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '۰'..='۹' => char::from(b'0' + (c as u32 - '۰' as u32) as u8),
            c => c,
        })
        .collect()
}

/// Persian digits for ASCII ones.
fn persian(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32('۰' as u32 + d).unwrap(),
            None => c,
        })
        .collect()
}

/// The shown text of `css`, waiting (ten seconds at most) for it to
/// appear: after a submit, the next page may still be loading.
async fn text(c: &Client, css: &str) -> String {
    read(c, css, |el| async move { el.text().await }).await
}

/// All the text inside `css`, scrolled into view or not (a phone-width
/// table scrolls sideways; `text()` gives only what is shown).
async fn all_text(c: &Client, css: &str) -> String {
    read(c, css, |el| async move {
        Ok(el.prop("textContent").await?.unwrap_or_default())
    })
    .await
}

/// Finds `css` (ten seconds at most) and reads it with `get`. A page that
/// is still loading may replace the element between the find and the
/// read (a stale element reference): the element is then found again.
async fn read<F, Fut>(c: &Client, css: &str, get: F) -> String
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<String, fantoccini::error::CmdError>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let el = c
            .wait()
            .at_most(deadline.saturating_duration_since(Instant::now()))
            .for_element(Locator::Css(css))
            .await
            .unwrap();
        match get(el).await {
            Ok(text) => return text,
            Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => panic!("reading {css}: {e}"),
        }
    }
}

/// Waits (ten seconds at most) for the browser to arrive at `path`: a
/// click that submits a form returns before the next page has loaded.
async fn arrive(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = c.current_url().await.unwrap();
        if now.path() == path
            && c.execute("return document.readyState", vec![])
                .await
                .unwrap()
                == "complete"
        {
            return;
        }
        assert!(Instant::now() < deadline, "still at {now}, not {path}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens `path` and checks what every page must be; a screenshot named
/// `shot` is kept.
async fn visit(c: &Client, base: &str, path: &str, shot: &str) {
    c.goto(&format!("{base}{path}")).await.unwrap();
    check_page(c, path, shot).await;
}

async fn check_page(c: &Client, path: &str, shot: &str) {
    let facts = c
        .execute(
            "const s = document.styleSheets;
             return [document.documentElement.lang, document.documentElement.dir,
                     s.length === 1 ? s[0].cssRules.length : 0, document.body.innerText,
                     document.querySelector('h1') ? document.querySelector('h1').innerText : ''];",
            vec![],
        )
        .await
        .unwrap();
    let (lang, dir, rules, body) = (&facts[0], &facts[1], &facts[2], facts[3].as_str().unwrap());
    assert!(
        (lang == "fa" && dir == "rtl") || (lang == "en" && dir == "ltr"),
        "{path}: lang {lang} dir {dir}"
    );
    assert!(
        rules.as_u64().unwrap() > 10,
        "{path}: the stylesheet did not load"
    );
    assert!(
        !ascii(body).contains("not found") && !body.contains("پیدا نشد"),
        "{path}: {}",
        facts[4]
    );
    let digits: String = ascii(body).chars().filter(char::is_ascii_digit).collect();
    for pan in PANS.get().into_iter().flatten() {
        assert!(
            !ascii(body).contains(pan.as_str()) && !digits.contains(pan.as_str()),
            "{path}: a card number in clear on the page"
        );
    }
    let bad = complaints(c).await;
    assert!(bad.is_empty(), "{path}: the browser complained: {bad:?}");
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{shot}.png")), png).unwrap();
}

/// Signs in through the sign-in page with a demo user's password.
async fn sign_in(c: &Client, base: &str, d: &Daemon, name: &str) {
    let password = d.demo["console"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    c.goto(&format!("{base}/login")).await.unwrap();
    let form = c.form(Locator::Css("#staff-login")).await.unwrap();
    form.set_by_name("name", name).await.unwrap();
    form.set_by_name("password", &password).await.unwrap();
    form.submit().await.unwrap();
    assert!(
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#sign-out"))
            .await
            .is_ok(),
        "{name} is not signed in: {}",
        c.current_url().await.unwrap()
    );
}

/// The menu's links of the page shown.
async fn menu(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for a in c.find_all(Locator::Css("header nav a")).await.unwrap() {
        let href = a.attr("href").await.unwrap().unwrap();
        out.push(href);
    }
    out
}

fn slug(path: &str) -> String {
    path.trim_matches('/')
        .replace(['/', '?', '=', '&'], "_")
        .chars()
        .take(60)
        .collect::<String>()
        .trim_matches('_')
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_signs_in_and_every_page_loads_clean_in_persian_and_english() {
    let Some(drv) = driver() else { return };
    let mut d = demo("console-walk", "");
    // Two months of history, so the dashboards draw their charts.
    d.kill();
    let made = std::process::Command::new(support::BIN)
        .args(["demo-history", "--days", "60", "--per-day", "3", "-c"])
        .arg(d.dir.join("switch.toml"))
        .arg("--data-dir")
        .arg(&d.dir)
        .args(d.store_url())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    d.restart();
    // A payout of the settled batches, so the settlements page lists one
    // with its bank files.
    let paid = ureq::post(&format!("http://{}/v1/payouts", d.admin))
        .set("Authorization", &format!("Bearer {}", d.token))
        .set("Idempotency-Key", "console-walk-payout")
        .send_json(json!({}));
    assert!(paid.is_ok(), "{paid:?}");
    let base = format!("http://{}", d.admin);
    let sara = d.demo["console"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "sara")
        .unwrap()["member"]
        .as_u64()
        .unwrap();
    // Pages a role reaches from its menu's pages, opened too.
    let extra: &[(&str, Vec<String>)] = &[
        (
            "operator",
            vec![
                "/?days=1".into(),
                "/?days=30".into(),
                "/?days=365".into(),
                format!("/members/{sara}"),
                "/members?q=0912".into(),
                format!("/merchants/{CAFE}"),
                "/terminals/TERM0001".into(),
                format!("/merchants/{BOOK_CITY}/rules"),
                format!("/merchants/{BOOK_CITY}/program"),
                format!("/merchants/{BOOK_CITY}/draws"),
                format!("/merchants/{BOOK_CITY}/segments"),
                format!("/merchants/{BOOK_CITY}/statements"),
            ],
        ),
        ("support", vec![format!("/members/{sara}")]),
        ("finance", vec![format!("/merchants/{CAFE}/statements")]),
        ("cafe-naderi", vec!["/terminals/TERM0001".into()]),
        ("book-city", vec!["/?days=365".into()]),
        ("cafe-cashier", vec![]),
        ("sara", vec![]),
    ];
    let mut pages = 0;
    for (role, more) in extra {
        // Members use the console on their phones.
        let width = if *role == "sara" { 390 } else { 1280 };
        let c = browser(&drv, width).await;
        sign_in(&c, &base, &d, role).await;
        check_page(&c, "/", &format!("{role}-fa-home")).await;
        let mut paths = menu(&c).await;
        paths.extend(more.iter().cloned());
        for p in &paths {
            visit(&c, &base, p, &format!("{role}-fa-{}", slug(p))).await;
            pages += 1;
            if p == "/settlements" {
                // Operators get the payouts' bank files; a merchant not.
                let files = c
                    .find_all(Locator::Css("#payouts a[download]"))
                    .await
                    .unwrap()
                    .len();
                let operator = matches!(*role, "operator" | "finance");
                assert_eq!(files >= 2, operator, "{role}: {files} payout files");
                // Every settled batch counts the purchases it settles.
                let first = cell(&c, "table tr:nth-child(2) td:nth-child(4)").await;
                assert!(
                    !matches!(first.as_str(), "۰" | "0"),
                    "{role}: count {first}"
                );
                if operator {
                    // And every payout the transfers it makes.
                    let transfers = cell(&c, "#payouts tr:nth-child(2) td:nth-child(3)").await;
                    assert!(
                        !matches!(transfers.as_str(), "۰" | "0"),
                        "{role}: transfers {transfers}"
                    );
                }
            }
            if p.ends_with("/statements") {
                // A statement lists the merchant's batches of the month,
                // each with its count of items.
                let count = cell(&c, "table tr:nth-child(2) td:nth-child(3)").await;
                assert!(
                    !count.is_empty() && !matches!(count.as_str(), "۰" | "0"),
                    "{role} {p}: count {count:?}"
                );
            }
        }
        // The same menu in English.
        c.find(Locator::Css("#switch-lang"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The switch is a form post: wait for its answer, or the next
        // visit can cancel it before the choice is saved.
        let deadline = Instant::now() + Duration::from_secs(10);
        while c
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap()
            != "en"
        {
            assert!(Instant::now() < deadline, "{role}: still not in English");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for p in &paths {
            visit(&c, &base, p, &format!("{role}-en-{}", slug(p))).await;
            pages += 1;
        }
        c.find(Locator::Css("#sign-out"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        arrive(&c, "/login").await;
        // Signed out, a page sends the browser to sign in again.
        c.goto(&format!("{base}/merchants")).await.unwrap();
        assert_eq!(c.current_url().await.unwrap().path(), "/login");
        c.close().await.unwrap();
        // The choice is the user's: signing in from another browser (no
        // language cookie) opens the console in English.
        let other = browser(&drv, width).await;
        sign_in(&other, &base, &d, role).await;
        let lang = other
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap();
        assert_eq!(lang, "en", "{role}: the language chosen was not kept");
        other.close().await.unwrap();
    }
    eprintln!("console: {pages} pages opened by 7 roles, screenshots in target/console-shots/");
}

/// The discount of a bank-card lookup's answer.
fn discount(m: &Message) -> u64 {
    m.additional_amounts()
        .unwrap()
        .iter()
        .find(|b| b.amount_type == AmountType::Discount)
        .map_or(0, |b| b.amount.value())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_creates_a_campaign_and_the_next_discount_lookup_gets_it() {
    let Some(drv) = driver() else { return };
    let d = demo("console-campaign", "");
    let base = format!("http://{}", d.admin);
    let mut t = d.terminal("TERM0001");
    let mut conn = d.connect().await;
    let pan = d.pan("reza-bank");
    let (before, _) = purchase(
        &mut conn,
        &mut t,
        ProcessingCode::BankDiscount,
        CAFE,
        &pan,
        1_000_000,
    )
    .await;
    assert_eq!(before.response_code().unwrap(), ResponseCode::Approved);
    assert!(discount(&before) < 300_000, "{}", discount(&before));

    let c = browser(&drv, 1280).await;
    sign_in(&c, &base, &d, "cafe-naderi").await;
    visit(
        &c,
        &base,
        &format!("/merchants/{CAFE}/rules"),
        "campaign-1-form",
    )
    .await;
    // A mistake first: the form says what is wrong, in Persian, and
    // nothing is made.
    let form = c.form(Locator::Css("#rule-form")).await.unwrap();
    form.set_by_name("name", "Yalda night").await.unwrap();
    form.set_by_name("percent", "سی").await.unwrap();
    form.submit_with(Locator::Css("#save")).await.unwrap();
    assert_eq!(
        text(&c, "span.field-error[data-field=percent]").await,
        "باید عدد باشد"
    );
    check_page_after_error(&c, "campaign-2-error").await;
    // Thirty percent, typed with Persian digits, for today (Jalali), and
    // a preview of a 1,000,000-rial purchase.
    let today = clubswitch_engine::UnixTime::now().local_day(12_600);
    let (y, m, dd) = clubswitch_engine::calendar::jalali_of_day(today).unwrap();
    let jalali = persian(&format!("{y}/{m:02}/{dd:02}"));
    let form = c.form(Locator::Css("#rule-form")).await.unwrap();
    form.set_by_name("percent", "۳۰").await.unwrap();
    form.set_by_name("from", &jalali).await.unwrap();
    form.set_by_name("to", &jalali).await.unwrap();
    form.set_by_name("sample", "1000000").await.unwrap();
    form.submit_with(Locator::Css("#preview")).await.unwrap();
    assert_eq!(text(&c, "#preview-discount").await, "۳۰۰٬۰۰۰");
    check_page(&c, "preview", "campaign-3-preview").await;
    let form = c.form(Locator::Css("#rule-form")).await.unwrap();
    form.submit_with(Locator::Css("#save")).await.unwrap();
    assert!(text(&c, "#rules").await.contains("Yalda night"));
    check_page(&c, "saved", "campaign-4-saved").await;

    let (after, _) = purchase(
        &mut conn,
        &mut t,
        ProcessingCode::BankDiscount,
        CAFE,
        &pan,
        1_000_000,
    )
    .await;
    assert_eq!(after.response_code().unwrap(), ResponseCode::Approved);
    assert_eq!(
        discount(&after),
        300_000,
        "the campaign made in the console applies on the wire"
    );
    // Who made it is in the action log.
    let log = d
        .admin("GET", "/v1/audit-log?actor=cafe-naderi", None)
        .unwrap();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "POST /merchants/{id}/rules" && e["status"] == 303),
        "{log}"
    );
    c.close().await.unwrap();
}

/// A form answered 422 on purpose: the page itself must be clean, but
/// the browser logs the 422 of the document.
async fn check_page_after_error(c: &Client, shot: &str) {
    let bad = complaints(c).await;
    assert!(
        bad.iter()
            .all(|e| e["message"].as_str().unwrap_or_default().contains("422")),
        "{bad:?}"
    );
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{shot}.png")), png).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_replaces_a_card_typed_in_persian_digits_and_sees_only_its_last_four() {
    let Some(drv) = driver() else { return };
    let d = demo("console-renew", "");
    let base = format!("http://{}", d.admin);
    let sara = d.demo["console"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "sara")
        .unwrap()["member"]
        .as_u64()
        .unwrap();
    let c = browser(&drv, 1280).await;
    sign_in(&c, &base, &d, "operator").await;
    let page = format!("/members/{sara}");
    visit(&c, &base, &page, "renew-1-member").await;
    let fresh = luhn("603799004242424");
    let form = c.form(Locator::Css("form.renew")).await.unwrap();
    form.set_by_name("pan", &persian(&fresh)).await.unwrap();
    form.set_by_name("expiry", "۳۰۱۲").await.unwrap();
    form.submit().await.unwrap();
    arrive(&c, &page).await;
    check_page(&c, &page, "renew-2-replaced").await;
    let shown = all_text(&c, "main").await;
    assert!(shown.contains(&persian(&fresh[12..])), "{shown}");
    assert!(
        !ascii(&shown).contains(&fresh),
        "the new card number in clear"
    );
    // The action log has the replacement, by the operator, without the
    // card's number.
    let log = d
        .admin("GET", "/v1/audit-log?actor=operator", None)
        .unwrap()
        .to_string();
    assert!(log.contains("/renew"), "{log}");
    assert!(!log.contains(&fresh), "a card number in the action log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_in_with_a_code_and_sees_a_purchase_made_a_moment_before() {
    let Some(drv) = driver() else { return };
    let (url, kept) = gateway(Gateway::FailFirst(0));
    let d = demo(
        "console-member",
        &format!("[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n"),
    );
    let base = format!("http://{}", d.admin);
    let mut t = d.terminal("TERM0003");
    let mut conn = d.connect().await;
    let (resp, confirmed) =
        club_purchase(&mut conn, &mut t, BOOK_CITY, &d.pan("sara-club"), 123_000).await;
    assert_eq!(resp.response_code().unwrap(), ResponseCode::Approved);
    assert_eq!(
        confirmed.unwrap().response_code().unwrap(),
        ResponseCode::Approved
    );
    let rrn = resp.rrn().unwrap().as_str().to_owned();

    let c = browser(&drv, 390).await;
    visit(&c, &base, "/login", "member-1-login").await;
    let form = c.form(Locator::Css("#member-login")).await.unwrap();
    form.set_by_name("phone", "۰۹۱۲۰۰۰۰۰۰۱").await.unwrap();
    form.submit().await.unwrap();
    check_page(&c, "code sent", "member-2-code").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        let found = kept.lock().unwrap().iter().find_map(|n| {
            (n["notice"]["kind"] == "login_code")
                .then(|| n["notice"]["code"].as_str().unwrap().to_owned())
        });
        if let Some(code) = found {
            break code;
        }
        assert!(Instant::now() < deadline, "no login code was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let form = c.form(Locator::Css("#member-verify")).await.unwrap();
    form.set_by_name("otp", &code).await.unwrap();
    form.submit().await.unwrap();
    check_page(&c, "member home", "member-3-home").await;
    let history = all_text(&c, "#history").await;
    assert!(history.contains(&persian(&rrn)), "{history}");
    assert!(history.contains("۱۲۳٬۰۰۰"), "{history}");
    // The member stops offers from their own page; receipts still come.
    assert_eq!(
        text(&c, "#marketing").await,
        "پیام‌های تبلیغاتی، تبریک‌ها و یادآوری‌ها را دریافت می‌کند"
    );
    c.find(Locator::Css("#consent button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    check_page(&c, "member home", "member-4-opted-out").await;
    assert!(
        text(&c, "#marketing")
            .await
            .starts_with("پیام‌های تبلیغاتی لغو شده است"),
        "the page says so"
    );
    let card = d
        .admin(
            "POST",
            "/v1/cards/find",
            Some(json!({ "pan": d.pan("sara-club") })),
        )
        .unwrap();
    let member = d
        .admin("GET", &format!("/v1/members/{}", card["member"]), None)
        .unwrap();
    assert_eq!(member["marketing"], false, "{member}");
    // A code works once: signing out and using it again fails.
    c.find(Locator::Css("#sign-out"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_merchants_page_is_not_found_and_dates_are_jalali_in_persian() {
    let Some(drv) = driver() else { return };
    let d = demo("console-scope", "");
    let base = format!("http://{}", d.admin);
    let c = browser(&drv, 1280).await;
    sign_in(&c, &base, &d, "cafe-naderi").await;
    for path in [
        format!("/merchants/{BOOK_CITY}"),
        format!("/merchants/{BOOK_CITY}/rules"),
        format!("/merchants/{BOOK_CITY}/segments"),
        "/terminals/TERM0003".into(),
    ] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        assert_eq!(text(&c, "h1").await, "پیدا نشد", "{path}");
    }
    let _ = complaints(&c).await;
    // The action log (an operator's) shows times as Jalali dates in
    // Persian, Gregorian in English; the page is right to left, then
    // left to right.
    let c2 = browser(&drv, 1280).await;
    sign_in(&c2, &base, &d, "operator").await;
    visit(&c2, &base, "/audit-log", "scope-audit-log-fa").await;
    let today = clubswitch_engine::UnixTime::now().local_day(12_600);
    let (y, m, dd) = clubswitch_engine::calendar::jalali_of_day(today).unwrap();
    let body = text(&c2, "main").await;
    assert!(
        body.contains(&persian(&format!("{y}/{m:02}/{dd:02}"))),
        "{body}"
    );
    c2.find(Locator::Css("#switch-lang"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    check_page(&c2, "/audit-log", "scope-audit-log-en").await;
    let dir = c2
        .execute("return document.documentElement.dir", vec![])
        .await
        .unwrap();
    assert_eq!(dir, "ltr");
    let body = text(&c2, "main").await;
    assert!(body.contains(&clubswitch_engine::iso_date(today)), "{body}");
    c.close().await.unwrap();
    c2.close().await.unwrap();
}

/// The text of the first element `css` finds on the page.
async fn cell(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[test]
fn searches_find_ids_typed_in_lower_case_and_a_cards_last_four_in_persian_digits() {
    let d = demo("console-search", "");
    for path in [
        "/merchants?q=merchant0000001",
        "/terminals?q=merchant0000001",
    ] {
        assert!(d.page(&d.token, path).contains("MERCHANT0000001"), "{path}");
    }
    let pan = d.pan("sara-club");
    let last4 = &pan[pan.len() - 4..];
    let found = |q: &str| {
        let html = d.page(&d.token, &format!("/members?q={q}"));
        html.contains("href=\"/members/")
    };
    assert!(found(last4));
    let typed: String = persian(last4)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    assert!(found(&typed), "{last4} in Persian digits");
    assert!(!found("zzzz-no-such-member"));
}
