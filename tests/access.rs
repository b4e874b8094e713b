//! Who may do what, on the real binary: the authorization matrix (every
//! route of the admin API against every role, and the scoped roles against
//! their own and another's objects), revocation, and the action log.
//!
//! The expected matrix is written out here on its own, not read from the
//! switch: a route the switch serves that this table does not list fails
//! the test, and so does any cell where the switch disagrees.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use support::*;

/// Everyone a test acts as.
const ROLES: [&str; 6] = [
    "admin", "support", "finance", "merchant", "cashier", "member",
];

/// How a route names the object a scoped caller acts on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Obj {
    /// No object (operator routes) or a list the switch filters.
    No,
    Merchant,
    MerchantQuery,
    /// A body naming the merchant.
    MerchantBody,
    /// A lucky draw of the merchant.
    Draw,
    /// A campaign of the merchant.
    Campaign,
    Terminal,
    Card,
    Member,
}

/// (route as the switch declares it, path to call, roles allowed, object).
/// `{action}` routes appear once per action the test tries.
const MATRIX: &[(&str, &str, &str, Obj)] = &[
    (
        "GET /v1/openapi.json",
        "/v1/openapi.json",
        "public",
        Obj::No,
    ),
    ("POST /v1/login", "/v1/login", "public", Obj::No),
    ("POST /v1/login/code", "/v1/login/code", "public", Obj::No),
    (
        "POST /v1/login/verify",
        "/v1/login/verify",
        "public",
        Obj::No,
    ),
    (
        "POST /v1/logout",
        "/v1/logout",
        "admin support finance merchant cashier member",
        Obj::No,
    ),
    (
        "POST /v1/users/{name}/password",
        "/v1/users/nobody/password",
        "admin",
        Obj::No,
    ),
    (
        "GET /v1/whoami",
        "/v1/whoami",
        "admin support finance merchant cashier member",
        Obj::No,
    ),
    (
        "GET /v1/access",
        "/v1/access",
        "admin support finance merchant cashier member",
        Obj::No,
    ),
    ("GET /v1/users", "/v1/users", "admin", Obj::No),
    ("POST /v1/users", "/v1/users", "admin", Obj::No),
    (
        "POST /v1/users/{name}/revoke",
        "/v1/users/nobody/revoke",
        "admin",
        Obj::No,
    ),
    (
        "POST /v1/users/{name}/tokens",
        "/v1/users/nobody/tokens",
        "admin",
        Obj::No,
    ),
    (
        "GET /v1/audit-log",
        "/v1/audit-log",
        "admin support",
        Obj::No,
    ),
    (
        "GET /v1/audit",
        "/v1/audit",
        "admin support finance",
        Obj::No,
    ),
    ("POST /v1/backup", "/v1/backup", "admin", Obj::No),
    (
        "GET /v1/merchants",
        "/v1/merchants",
        "admin support finance merchant",
        Obj::No,
    ),
    ("POST /v1/merchants", "/v1/merchants", "admin", Obj::No),
    (
        "GET /v1/merchants/{id}/rules",
        "/v1/merchants/{m}/rules",
        "admin support merchant",
        Obj::Merchant,
    ),
    (
        "POST /v1/merchants/{id}/rules",
        "/v1/merchants/{m}/rules",
        "admin merchant",
        Obj::Merchant,
    ),
    (
        "GET /v1/merchants/{id}/program",
        "/v1/merchants/{m}/program",
        "admin support finance merchant",
        Obj::Merchant,
    ),
    (
        "PUT /v1/merchants/{id}/program",
        "/v1/merchants/{m}/program",
        "admin merchant",
        Obj::Merchant,
    ),
    (
        "GET /v1/terminals",
        "/v1/terminals",
        "admin support merchant",
        Obj::No,
    ),
    ("POST /v1/terminals", "/v1/terminals", "admin", Obj::No),
    (
        "POST /v1/terminals/{id}/{action}",
        "/v1/terminals/{t}/unlock",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /v1/terminals/{id}/{action}",
        "/v1/terminals/{t}/block",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /v1/terminals/{id}/{action}",
        "/v1/terminals/{t}/unblock",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /v1/terminals/{id}/{action}",
        "/v1/terminals/{t}/rotate-key",
        "admin",
        Obj::Terminal,
    ),
    (
        "GET /v1/terminals/{id}/history",
        "/v1/terminals/{t}/history",
        "admin support merchant",
        Obj::Terminal,
    ),
    ("POST /v1/members", "/v1/members", "admin support", Obj::No),
    (
        "GET /v1/members/{id}",
        "/v1/members/{b}",
        "admin support member",
        Obj::Member,
    ),
    (
        "PUT /v1/members/{id}",
        "/v1/members/{b}",
        "admin support",
        Obj::Member,
    ),
    (
        "POST /v1/members/{id}/marketing",
        "/v1/members/{b}/marketing",
        "admin support member",
        Obj::Member,
    ),
    (
        "POST /v1/inbound/sms",
        "/v1/inbound/sms",
        "admin support",
        Obj::No,
    ),
    (
        "POST /v1/imports/members",
        "/v1/imports/members",
        "admin support",
        Obj::No,
    ),
    (
        "GET /v1/members/{id}/loyalty",
        "/v1/members/{b}/loyalty",
        "admin support member",
        Obj::Member,
    ),
    (
        "POST /v1/members/{id}/convert",
        "/v1/members/{b}/convert",
        "admin",
        Obj::Member,
    ),
    (
        "POST /v1/members/{id}/referral",
        "/v1/members/{b}/referral",
        "admin support",
        Obj::Member,
    ),
    ("POST /v1/cards", "/v1/cards", "admin", Obj::No),
    ("POST /v1/cards/batch", "/v1/cards/batch", "admin", Obj::No),
    (
        "POST /v1/cards/find",
        "/v1/cards/find",
        "admin support cashier",
        Obj::No,
    ),
    (
        "GET /v1/cards/{hash}",
        "/v1/cards/{c}",
        "admin support member",
        Obj::Card,
    ),
    (
        "GET /v1/cards/{hash}/history",
        "/v1/cards/{c}/history",
        "admin support member",
        Obj::Card,
    ),
    (
        "POST /v1/cards/{hash}/{action}",
        "/v1/cards/{c}/block",
        "admin support",
        Obj::Card,
    ),
    (
        "POST /v1/cards/{hash}/{action}",
        "/v1/cards/{c}/unblock",
        "admin support",
        Obj::Card,
    ),
    (
        "POST /v1/cards/{hash}/{action}",
        "/v1/cards/{c}/top-up",
        "admin",
        Obj::Card,
    ),
    (
        "POST /v1/cards/{hash}/{action}",
        "/v1/cards/{c}/limits",
        "admin",
        Obj::Card,
    ),
    (
        "POST /v1/store-credit",
        "/v1/store-credit",
        "admin",
        Obj::No,
    ),
    (
        "POST /v1/refunds",
        "/v1/refunds",
        "admin cashier",
        Obj::MerchantBody,
    ),
    ("POST /v1/points", "/v1/points", "admin", Obj::No),
    (
        "GET /v1/reports/history",
        "/v1/reports/history",
        "admin support finance merchant",
        Obj::No,
    ),
    ("POST /v1/payouts", "/v1/payouts", "admin finance", Obj::No),
    ("GET /v1/payouts", "/v1/payouts", "admin finance", Obj::No),
    (
        "GET /v1/payouts/{id}",
        "/v1/payouts/1",
        "admin finance",
        Obj::No,
    ),
    (
        "POST /v1/payouts/reconcile",
        "/v1/payouts/reconcile",
        "admin finance",
        Obj::No,
    ),
    (
        "GET /v1/payouts/statement",
        "/v1/payouts/statement?merchant={m}",
        "admin finance merchant",
        Obj::MerchantQuery,
    ),
    (
        "GET /v1/payouts/outstanding",
        "/v1/payouts/outstanding",
        "admin finance merchant",
        Obj::No,
    ),
    // Signed by a payment gateway, not called with a user's credential:
    // every role's token is refused (tests/money.rs signs them).
    (
        "POST /v1/gateways/{name}/top-up",
        "/v1/gateways/testpay/top-up",
        "gateway",
        Obj::No,
    ),
    (
        "GET /v1/settlements",
        "/v1/settlements",
        "admin finance merchant",
        Obj::No,
    ),
    (
        "POST /v1/settlements",
        "/v1/settlements",
        "admin finance",
        Obj::No,
    ),
    (
        "GET /v1/reports",
        "/v1/reports",
        "admin support finance merchant",
        Obj::No,
    ),
    (
        "POST /v1/loyalty/review",
        "/v1/loyalty/review",
        "admin",
        Obj::No,
    ),
    (
        "POST /v1/loyalty/daily",
        "/v1/loyalty/daily",
        "admin",
        Obj::No,
    ),
    (
        "GET /v1/loyalty/report",
        "/v1/loyalty/report",
        "admin support finance",
        Obj::No,
    ),
    (
        "GET /v1/segments",
        "/v1/segments?merchant={m}",
        "admin support merchant",
        Obj::MerchantQuery,
    ),
    (
        "GET /v1/templates",
        "/v1/templates?merchant={m}",
        "admin support merchant",
        Obj::MerchantQuery,
    ),
    (
        "PUT /v1/templates/{event}/{lang}",
        "/v1/templates/receipt/fa?merchant={m}",
        "admin support merchant",
        Obj::MerchantQuery,
    ),
    (
        "GET /v1/campaigns",
        "/v1/campaigns",
        "admin support merchant",
        Obj::No,
    ),
    (
        "POST /v1/campaigns",
        "/v1/campaigns",
        "admin support merchant",
        Obj::MerchantBody,
    ),
    (
        "POST /v1/campaigns/preview",
        "/v1/campaigns/preview",
        "admin support merchant",
        Obj::MerchantBody,
    ),
    (
        "GET /v1/campaigns/{id}",
        "/v1/campaigns/{g}",
        "admin support merchant",
        Obj::Campaign,
    ),
    (
        "POST /v1/campaigns/{id}/cancel",
        "/v1/campaigns/{g}/cancel",
        "admin support merchant",
        Obj::Campaign,
    ),
    (
        "GET /v1/draws",
        "/v1/draws",
        "admin support merchant",
        Obj::No,
    ),
    (
        "POST /v1/draws",
        "/v1/draws",
        "admin merchant",
        Obj::MerchantBody,
    ),
    (
        "GET /v1/draws/{id}/verify",
        "/v1/draws/{d}/verify",
        "admin support merchant",
        Obj::Draw,
    ),
    (
        "GET /v1/coalitions",
        "/v1/coalitions",
        "admin support finance",
        Obj::No,
    ),
    ("PUT /v1/coalitions", "/v1/coalitions", "admin", Obj::No),
    (
        "GET /v1/coalitions/clearing",
        "/v1/coalitions/clearing",
        "admin finance",
        Obj::No,
    ),
    ("GET /v1/notices", "/v1/notices", "admin support", Obj::No),
];

/// The console's pages, in the same route table and checked the same way:
/// without a credential a page sends the browser to sign in (303); a role
/// not allowed gets 403, another's object 404, as HTML.
const PAGES: &[(&str, &str, &str, Obj)] = &[
    (
        "GET /assets/console.css",
        "/assets/console.css",
        "public",
        Obj::No,
    ),
    (
        "GET /assets/icon.svg",
        "/assets/icon.svg",
        "public",
        Obj::No,
    ),
    ("GET /login", "/login", "public", Obj::No),
    ("POST /login", "/login", "public", Obj::No),
    ("POST /login/code", "/login/code", "public", Obj::No),
    ("POST /login/verify", "/login/verify", "public", Obj::No),
    ("POST /lang", "/lang", "public", Obj::No),
    ("POST /logout", "/logout", ANYONE, Obj::No),
    ("GET /", "/", ANYONE, Obj::No),
    (
        "GET /merchants",
        "/merchants",
        "admin support finance merchant",
        Obj::No,
    ),
    (
        "GET /merchants/{id}",
        "/merchants/{m}",
        "admin support finance merchant",
        Obj::Merchant,
    ),
    (
        "GET /merchants/{id}/rules",
        "/merchants/{m}/rules",
        "admin support merchant",
        Obj::Merchant,
    ),
    (
        "POST /merchants/{id}/rules",
        "/merchants/{m}/rules",
        "admin merchant",
        Obj::Merchant,
    ),
    (
        "GET /merchants/{id}/program",
        "/merchants/{m}/program",
        "admin support finance merchant",
        Obj::Merchant,
    ),
    (
        "GET /merchants/{id}/draws",
        "/merchants/{m}/draws",
        "admin support merchant",
        Obj::Merchant,
    ),
    (
        "GET /merchants/{id}/segments",
        "/merchants/{m}/segments",
        "admin support merchant",
        Obj::Merchant,
    ),
    (
        "GET /merchants/{id}/statements",
        "/merchants/{m}/statements",
        "admin finance merchant",
        Obj::Merchant,
    ),
    (
        "GET /terminals",
        "/terminals",
        "admin support merchant",
        Obj::No,
    ),
    (
        "GET /terminals/{id}",
        "/terminals/{t}",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /terminals/{id}/{action}",
        "/terminals/{t}/unlock",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /terminals/{id}/{action}",
        "/terminals/{t}/block",
        "admin support merchant",
        Obj::Terminal,
    ),
    (
        "POST /terminals/{id}/{action}",
        "/terminals/{t}/unblock",
        "admin support merchant",
        Obj::Terminal,
    ),
    ("GET /members", "/members", "admin support", Obj::No),
    (
        "GET /members/{id}",
        "/members/{b}",
        "admin support member",
        Obj::Member,
    ),
    (
        "POST /members/{id}/marketing",
        "/members/{b}/marketing",
        "admin support member",
        Obj::Member,
    ),
    (
        "POST /cards/{hash}/{action}",
        "/cards/{c}/block",
        "admin support",
        Obj::Card,
    ),
    (
        "POST /cards/{hash}/{action}",
        "/cards/{c}/unblock",
        "admin support",
        Obj::Card,
    ),
    (
        "POST /cards/{hash}/{action}",
        "/cards/{c}/top-up",
        "admin",
        Obj::Card,
    ),
    (
        "GET /settlements",
        "/settlements",
        "admin finance merchant",
        Obj::No,
    ),
    ("GET /audit-log", "/audit-log", "admin support", Obj::No),
    ("GET /audit", "/audit", "admin support finance", Obj::No),
    ("GET /notices", "/notices", "admin support", Obj::No),
    ("GET /balance", "/balance", "admin support cashier", Obj::No),
    (
        "POST /balance",
        "/balance",
        "admin support cashier",
        Obj::No,
    ),
];

const ANYONE: &str = "admin support finance merchant cashier member";

/// A request with a bearer token: status and body.
fn call(d: &Daemon, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = ureq::request(method, &format!("http://{}{path}", d.admin))
        .set("Authorization", &format!("Bearer {token}"))
        .set("X-Request-Id", "matrix-test");
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    match resp {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// A console page called with a bearer token, redirects not followed:
/// the status and where a redirect points.
fn call_page(d: &Daemon, token: &str, method: &str, path: &str) -> (u16, Value) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let req = agent
        .request(method, &format!("http://{}{path}", d.admin))
        .set("Authorization", &format!("Bearer {token}"))
        .set("X-Request-Id", "matrix-test");
    let resp = if method == "GET" {
        req.call()
    } else {
        req.send_form(&[("x", "1")])
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    (r.status(), json!({ "location": r.header("location") }))
}

#[test]
fn a_dashboard_shows_a_role_only_what_the_api_would_give_it() {
    let w = world("access-dashboards");
    let merchant = format!("/merchants/{}", w.objects.merchant.0);
    // Members' names and spend: support and the merchant, as /v1/segments.
    for (role, shown) in [("support", true), ("merchant", true), ("finance", false)] {
        let html = w.d.page(&w.tokens[role], &merchant);
        assert_eq!(html.contains("Best customers"), shown, "{role}");
    }
    // What is owed to merchants: finance, as /v1/payouts/outstanding.
    for (role, shown) in [("finance", true), ("admin", true), ("support", false)] {
        let token = if role == "admin" {
            w.d.token.clone()
        } else {
            w.tokens[role].clone()
        };
        let html = w.d.page(&token, "/");
        assert_eq!(html.contains("Settlement due"), shown, "{role}");
    }
}

/// The objects the matrix acts on: the scoped users' own, and another's.
struct Objects {
    merchant: (&'static str, &'static str),
    terminal: (&'static str, &'static str),
    member: (String, String),
    card: (String, String),
    draw: (String, String),
    campaign: (String, String),
}

struct World {
    d: Daemon,
    tokens: BTreeMap<&'static str, String>,
    objects: Objects,
}

fn admin_ok(d: &Daemon, method: &str, path: &str, body: Option<Value>) -> Value {
    d.admin(method, path, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
}

/// The demo switch with one user of each role: the merchant and cashier
/// at MERCHANT0000001, the member who owns `sara-club`.
fn world(name: &str) -> World {
    world_with(name, "", "")
}

/// [`world`] with more `[admin]` settings and more configuration.
fn world_with(name: &str, admin: &str, config: &str) -> World {
    // The matrix reads the whole ledger as admin between calls: far past
    // the default rate a credential gets.
    let d = Daemon::start_configured(
        name,
        &format!("[admin]\nrequests_per_sec = 1000000\n{admin}\n{config}"),
        &[],
    );
    let card = |label: &str| {
        admin_ok(
            &d,
            "POST",
            "/v1/cards/find",
            Some(json!({ "pan": d.pan(label) })),
        )
    };
    let own_card = card("sara-club");
    let other_card = card("reza-club");
    let member = own_card["member"].as_u64().unwrap();
    assert_ne!(Some(member), other_card["member"].as_u64());
    let mut tokens = BTreeMap::from([("admin", d.token.clone())]);
    for (role, extra) in [
        ("support", json!({})),
        ("finance", json!({})),
        ("merchant", json!({ "merchant": "MERCHANT0000001" })),
        ("cashier", json!({ "merchant": "MERCHANT0000001" })),
        ("member", json!({ "member": member })),
    ] {
        let mut body = json!({ "name": format!("{role}-user"), "role": role });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let made = admin_ok(&d, "POST", "/v1/users", Some(body));
        tokens.insert(role, made["token"].as_str().unwrap().to_owned());
    }
    let draws: Vec<String> = ["MERCHANT0000001", "MERCHANT0000002"]
        .iter()
        .map(|m| admin_ok(&d, "POST", "/v1/draws", Some(draw(m)))["id"].to_string())
        .collect();
    let campaigns: Vec<String> = ["MERCHANT0000001", "MERCHANT0000002"]
        .iter()
        .map(|m| admin_ok(&d, "POST", "/v1/campaigns", Some(campaign(m)))["id"].to_string())
        .collect();
    World {
        objects: Objects {
            merchant: ("MERCHANT0000001", "MERCHANT0000002"),
            terminal: ("TERM0001", "TERM0003"),
            member: (
                member.to_string(),
                other_card["member"].as_u64().unwrap().to_string(),
            ),
            card: (
                own_card["hash"].as_str().unwrap().to_owned(),
                other_card["hash"].as_str().unwrap().to_owned(),
            ),
            draw: (draws[0].clone(), draws[1].clone()),
            campaign: (campaigns[0].clone(), campaigns[1].clone()),
        },
        d,
        tokens,
    }
}

/// The path with its placeholders filled with the own (or the other)
/// objects.
fn fill(path: &str, o: &Objects, own: bool) -> String {
    let pick = |pair: (&str, &str)| {
        if own {
            pair.0.to_owned()
        } else {
            pair.1.to_owned()
        }
    };
    path.replace("{m}", &pick(o.merchant))
        .replace("{t}", &pick(o.terminal))
        .replace("{b}", &pick((&o.member.0, &o.member.1)))
        .replace("{c}", &pick((&o.card.0, &o.card.1)))
        .replace("{d}", &pick((&o.draw.0, &o.draw.1)))
        .replace("{g}", &pick((&o.campaign.0, &o.campaign.1)))
}

/// A body each route accepts or refuses as malformed, either way harmless
/// and small.
fn body(method: &str, path: &str, n: usize, merchant: &str) -> Option<Value> {
    if method == "GET" {
        return None;
    }
    Some(if path.ends_with("/v1/draws") {
        draw(merchant)
    } else if path.ends_with("/v1/campaigns") || path.ends_with("/v1/campaigns/preview") {
        campaign(merchant)
    } else if path.contains("/v1/templates/") {
        json!({ "text": "خرید {{ amount }} ریال در {{ merchant }}." })
    } else if path.ends_with("/v1/users") {
        json!({ "name": format!("made-{n}"), "role": "support" })
    } else if path.ends_with("/top-up") {
        json!({ "amount": 1 })
    } else if path.ends_with("/v1/refunds") {
        json!({ "merchant": merchant, "rrn": "000000000001", "amount": 1 })
    } else {
        json!({})
    })
}

/// A lucky draw at `merchant` over the last day, with no prize to move.
fn draw(merchant: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({ "merchant": merchant, "from": now - 86_400, "to": now, "prizes": 1, "prize_points": 0 })
}

/// A campaign to `merchant`'s customers, due in a year: nothing is sent
/// while the test runs.
fn campaign(merchant: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    json!({ "merchant": merchant, "name": "matrix", "text_fa": "سلام {{ name }}", "at": now + 365 * 86_400 })
}

/// What the ledger holds, read as admin: a refused call must leave it
/// exactly so. The action log is left out (refusals are recorded there).
fn fingerprint(w: &World) -> Vec<Value> {
    let o = &w.objects;
    let mut audit = admin_ok(&w.d, "GET", "/v1/audit", None);
    audit.as_object_mut().unwrap().remove("actions");
    let mut out = vec![audit];
    for path in [
        "/v1/merchants".to_owned(),
        "/v1/terminals".to_owned(),
        "/v1/users".to_owned(),
        "/v1/coalitions".to_owned(),
        "/v1/draws".to_owned(),
        "/v1/campaigns".to_owned(),
        "/v1/settlements".to_owned(),
        format!("/v1/merchants/{}/rules", o.merchant.0),
        format!("/v1/merchants/{}/program", o.merchant.0),
        format!("/v1/members/{}", o.member.0),
        format!("/v1/members/{}/loyalty", o.member.0),
        format!("/v1/cards/{}", o.card.0),
        format!("/v1/cards/{}", o.card.1),
    ] {
        out.push(w.d.admin("GET", &path, None).unwrap_or_else(|e| json!(e.0)));
    }
    out
}

#[test]
fn every_route_against_every_role_is_allowed_refused_or_hidden_as_declared() {
    let w = world("access-matrix");

    // The switch serves exactly the routes this table expects.
    let declared: BTreeSet<String> = admin_ok(&w.d, "GET", "/v1/access", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    let expected: BTreeSet<String> = MATRIX.iter().chain(PAGES).map(|r| r.0.to_owned()).collect();
    assert_eq!(
        declared, expected,
        "routes served vs routes in the test's matrix"
    );

    let mut cells = 0;
    let mut n = 0;
    let mut state = fingerprint(&w);
    for &(route, path, allowed, obj) in MATRIX.iter().chain(PAGES) {
        let method = route.split(' ').next().unwrap();
        let page = !path.starts_with("/v1/");
        if allowed == "gateway" {
            for role in ROLES {
                cells += 1;
                let (status, answer) = call(&w.d, &w.tokens[role], method, path, Some(json!({})));
                assert_eq!(status, 401, "{role} {route}: {answer}");
                assert_eq!(state, fingerprint(&w), "{role} {route} changed the ledger");
            }
            continue;
        }
        let public = allowed == "public";
        let allowed: BTreeSet<&str> = if public {
            ROLES.into_iter().collect()
        } else {
            allowed.split(' ').collect()
        };
        // Without a credential, or with a made-up one: 401 (but for the
        // sign-in routes, which need none).
        for token in ["", "cst_0000"] {
            if public {
                break;
            }
            let target = fill(path, &w.objects, true);
            if page {
                let (status, to) = call_page(&w.d, token, method, &target);
                assert_eq!(
                    (status, &to["location"]),
                    (303, &json!("/login")),
                    "{route} with token {token:?}"
                );
            } else {
                let (status, _) = call(&w.d, token, method, &target, None);
                assert_eq!(status, 401, "{route} with token {token:?}");
            }
        }
        for role in ROLES {
            let scoped = matches!(role, "merchant" | "cashier" | "member");
            let sides: &[bool] = if scoped && obj != Obj::No {
                &[true, false]
            } else {
                &[true]
            };
            for &own in sides {
                cells += 1;
                n += 1;
                let target = fill(path, &w.objects, own);
                let (status, answer) = if page {
                    call_page(&w.d, &w.tokens[role], method, &target)
                } else {
                    call(
                        &w.d,
                        &w.tokens[role],
                        method,
                        &target,
                        body(
                            method,
                            path,
                            n,
                            if own {
                                w.objects.merchant.0
                            } else {
                                w.objects.merchant.1
                            },
                        ),
                    )
                };
                // A page has no JSON to tell the guard's 404 from a
                // handler's: for a page, any 404 counts as the guard's.
                let refused_by_guard =
                    answer == json!({ "error": "not found" }) || (page && status == 404);
                let what = format!(
                    "{role} {method} {target} ({}): {status} {answer}",
                    if own { "own" } else { "another's" }
                );
                if !allowed.contains(role) {
                    assert_eq!(status, 403, "{what}: a role not allowed gets 403");
                } else if scoped && !own {
                    assert!(
                        status == 404 && refused_by_guard,
                        "{what}: another's object is hidden"
                    );
                } else {
                    assert!(
                        status != 401 && status != 403 && !refused_by_guard,
                        "{what}: allowed"
                    );
                    state = fingerprint(&w);
                    continue;
                }
                assert_eq!(
                    state,
                    fingerprint(&w),
                    "{what}: a refused call changed the ledger"
                );
            }
        }
    }
    eprintln!(
        "authorization matrix: {} route entries ({} API, {} console) × {} roles = {cells} cells",
        MATRIX.len() + PAGES.len(),
        MATRIX.len(),
        PAGES.len(),
        ROLES.len()
    );
}

#[test]
fn scoped_lists_show_only_the_callers_own() {
    let w = world("access-lists");
    let merchant = &w.tokens["merchant"];
    let (_, merchants) = call(&w.d, merchant, "GET", "/v1/merchants", None);
    let ids: Vec<&str> = merchants
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["MERCHANT0000001"]);
    let (_, terminals) = call(&w.d, merchant, "GET", "/v1/terminals", None);
    assert!(terminals
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["merchant"] == "MERCHANT0000001"));
    assert_eq!(terminals.as_array().unwrap().len(), 2);
    let (_, all) = call(&w.d, &w.tokens["support"], "GET", "/v1/terminals", None);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (_, me) = call(&w.d, &w.tokens["member"], "GET", "/v1/whoami", None);
    assert_eq!(me["role"], "member");
    assert_eq!(me["member"].to_string(), w.objects.member.0);
}

#[test]
fn a_revoked_user_is_refused_from_the_next_request_on() {
    let w = world("access-revoke");
    let support = &w.tokens["support"];
    assert_eq!(call(&w.d, support, "GET", "/v1/terminals", None).0, 200);
    admin_ok(&w.d, "POST", "/v1/users/support-user/revoke", None);
    assert_eq!(call(&w.d, support, "GET", "/v1/terminals", None).0, 401);
    // A new token for a revoked user is refused too.
    let again =
        w.d.admin("POST", "/v1/users/support-user/tokens", Some(json!({})));
    assert!(matches!(again, Err((400, _))), "{again:?}");
    // An expired token: one day is the shortest lifetime, so it is made
    // with zero days and is expired at once.
    let made = admin_ok(
        &w.d,
        "POST",
        "/v1/users",
        Some(json!({ "name": "brief", "role": "finance", "expires_days": 0 })),
    );
    let brief = made["token"].as_str().unwrap();
    assert_eq!(call(&w.d, brief, "GET", "/v1/settlements", None).0, 401);
}

#[test]
fn the_action_log_records_who_did_what_and_never_a_card_number() {
    let w = world("access-log");
    let support = &w.tokens["support"];
    let card = &w.objects.card.0;
    let (status, _) = call(
        &w.d,
        support,
        "POST",
        &format!("/v1/cards/{card}/block"),
        Some(json!({})),
    );
    assert_eq!(status, 200);
    let (status, _) = call(
        &w.d,
        support,
        "POST",
        &format!("/v1/cards/{card}/top-up"),
        Some(json!({ "amount": 1000 })),
    );
    assert_eq!(status, 403);
    let pan = w.d.pan("sara-club");
    call(
        &w.d,
        &w.tokens["cashier"],
        "POST",
        "/v1/cards/find",
        Some(json!({ "pan": pan })),
    );
    // A card number pasted where the hash goes: refused, and logged masked.
    let (status, _) = call(
        &w.d,
        &w.tokens["cashier"],
        "POST",
        &format!("/v1/cards/{pan}/block"),
        Some(json!({})),
    );
    assert!(status >= 400, "{status}");

    let log = admin_ok(&w.d, "GET", "/v1/audit-log?actor=support-user", None);
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    // Newest first: the refused top-up, then the block.
    assert_eq!(entries[0]["status"], 403);
    assert_eq!(entries[0]["action"], "POST /v1/cards/{hash}/{action}");
    assert_eq!(entries[1]["status"], 200);
    assert_eq!(entries[1]["role"], "support");
    assert_eq!(entries[1]["request_id"], "matrix-test");
    assert!(entries[1]["source"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(entries[1]["target"].as_str().unwrap().ends_with("/block"));

    let by_target = admin_ok(
        &w.d,
        "GET",
        &format!("/v1/audit-log?target={}", &card[..16]),
        None,
    );
    assert_eq!(by_target.as_array().unwrap().len(), 2);
    let everything = admin_ok(&w.d, "GET", "/v1/audit-log?limit=1000", None).to_string();
    assert!(
        !everything.contains(&pan),
        "a card number in the action log"
    );
    assert!(!everything.contains("cst_"), "a token in the action log");
    assert!(everything.contains(&format!("****{}", &pan[pan.len() - 4..])));

    // The chain is part of the ledger audit, online and offline.
    let audit = admin_ok(&w.d, "GET", "/v1/audit", None);
    assert!(audit["actions"].as_u64().unwrap() >= 8, "{audit}");
    assert_eq!(audit["violations"], json!([]));
    let mut d = w.d;
    d.terminate();
    let (ok, report) = d.offline_audit();
    assert!(ok, "{report}");
}

#[test]
fn a_credential_past_its_rate_gets_429_and_the_others_are_served() {
    let d = Daemon::start_configured("access-rate", "[admin]\nrequests_per_sec = 20\n", &[]);
    let made = d
        .admin(
            "POST",
            "/v1/users",
            Some(json!({ "name": "busy", "role": "support" })),
        )
        .unwrap();
    let busy = made["token"].as_str().unwrap();
    let statuses: Vec<u16> = (0..60)
        .map(|_| call(&d, busy, "GET", "/v1/terminals", None).0)
        .collect();
    let served = statuses.iter().filter(|&&s| s == 200).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(served + limited, 60, "{statuses:?}");
    assert!(
        limited > 0 && served >= 20,
        "served {served}, limited {limited}"
    );
    // The bootstrap credential has a bucket of its own.
    assert_eq!(call(&d, &d.token, "GET", "/v1/terminals", None).0, 200);
    // Guessing tokens from one address is slowed down the same way.
    let guesses: Vec<u16> = (0..60)
        .map(|n| call(&d, &format!("cst_{n}"), "GET", "/v1/terminals", None).0)
        .collect();
    assert!(
        guesses.contains(&429) && guesses.iter().all(|&s| s == 401 || s == 429),
        "{guesses:?}"
    );
}

/// A request as a browser with a session cookie sends it: status, body,
/// and the Set-Cookie answered.
fn browser(
    d: &Daemon,
    cookie: &str,
    csrf: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = ureq::request(method, &format!("http://{}{path}", d.admin));
    if !cookie.is_empty() {
        req = req.set("Cookie", cookie);
    }
    if let Some(t) = csrf {
        req = req.set("X-CSRF-Token", t);
    }
    let resp = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let (status, r) = match resp {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let set = r.header("set-cookie").unwrap_or("").to_owned();
    (status, r.into_json().unwrap_or(Value::Null), set)
}

/// Signs in with a password: the cookie to send and the CSRF token.
fn sign_in(d: &Daemon, name: &str, password: &str) -> Result<(String, String), (u16, Value)> {
    let (status, body, set) = browser(
        d,
        "",
        None,
        "POST",
        "/v1/login",
        Some(json!({ "name": name, "password": password })),
    );
    if status != 200 {
        return Err((status, body));
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    Ok((cookie, body["csrf"].as_str().unwrap().to_owned()))
}

const PASSWORD: &str = "a long enough passphrase";

#[test]
fn a_new_password_signs_out_every_session_of_the_old_one() {
    let w = world("access-reset");
    let set = |password: &str| {
        admin_ok(
            &w.d,
            "POST",
            "/v1/users/support-user/password",
            Some(json!({ "password": password })),
        )
    };
    set(PASSWORD);
    let (cookie, _) = sign_in(&w.d, "support-user", PASSWORD).unwrap();
    let terminals = |cookie: &str| browser(&w.d, cookie, None, "GET", "/v1/terminals", None).0;
    assert_eq!(terminals(&cookie), 200);
    set("another long enough passphrase");
    assert_eq!(terminals(&cookie), 401, "signed in with the old password");
    let (fresh, _) = sign_in(&w.d, "support-user", "another long enough passphrase").unwrap();
    assert_eq!(terminals(&fresh), 200);
}

/// Posts a console form as a browser does, without following the
/// redirect: the status and every cookie set.
fn form_post(d: &Daemon, cookie: &str, path: &str, fields: &[(&str, &str)]) -> (u16, Vec<String>) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.post(&format!("http://{}{path}", d.admin));
    if !cookie.is_empty() {
        req = req.set("Cookie", cookie);
    }
    let r = match req.send_form(fields) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {path}: {e}"),
    };
    let set = r.all("set-cookie").iter().map(|c| c.to_string()).collect();
    (r.status(), set)
}

#[test]
fn a_language_choice_is_kept_with_the_user_only_with_its_csrf_token_and_logged_as_theirs() {
    let w = world("access-lang");
    admin_ok(
        &w.d,
        "POST",
        "/v1/users/support-user/password",
        Some(json!({ "password": PASSWORD })),
    );
    let (cookie, csrf) = sign_in(&w.d, "support-user", PASSWORD).unwrap();
    let sign_in_cookies = || {
        let (status, set) = form_post(
            &w.d,
            "",
            "/login",
            &[("name", "support-user"), ("password", PASSWORD)],
        );
        assert_eq!(status, 303, "{set:?}");
        set
    };
    let chose_english = |set: &[String]| set.iter().any(|c| c.starts_with("cs_lang=en"));

    // Another site's form carries the cookie but not the token: the
    // browser's choice changes, the user's record does not.
    let (status, set) = form_post(&w.d, &cookie, "/lang", &[("lang", "en"), ("back", "/")]);
    assert_eq!(status, 303);
    assert!(chose_english(&set), "{set:?}");
    assert!(!chose_english(&sign_in_cookies()));

    let fields = [("lang", "en"), ("back", "/"), ("csrf", csrf.as_str())];
    assert_eq!(form_post(&w.d, &cookie, "/lang", &fields).0, 303);
    assert!(
        chose_english(&sign_in_cookies()),
        "kept for the next sign-in"
    );

    let log = admin_ok(&w.d, "GET", "/v1/audit-log?actor=support-user", None);
    let choices = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "POST /lang")
        .count();
    assert_eq!(choices, 2, "{log}");
}

#[test]
fn a_session_changes_nothing_without_its_csrf_token_and_ends_at_sign_out() {
    let w = world("access-session");
    admin_ok(
        &w.d,
        "POST",
        "/v1/users/support-user/password",
        Some(json!({ "password": PASSWORD })),
    );
    let (_, _, set) = browser(
        &w.d,
        "",
        None,
        "POST",
        "/v1/login",
        Some(json!({ "name": "support-user", "password": PASSWORD })),
    );
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "Secure without TLS: {set}");
    let (cookie, csrf) = sign_in(&w.d, "support-user", PASSWORD).unwrap();

    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/terminals", None).0,
        200
    );
    let card = &w.objects.card.0;
    let block = format!("/v1/cards/{card}/block");
    let (status, _, _) = browser(&w.d, &cookie, None, "POST", &block, Some(json!({})));
    assert_eq!(status, 403, "a change without the CSRF token");
    let (status, _, _) = browser(
        &w.d,
        &cookie,
        Some("wrong"),
        "POST",
        &block,
        Some(json!({})),
    );
    assert_eq!(status, 403, "a change with a wrong CSRF token");
    assert_eq!(
        admin_ok(&w.d, "GET", &format!("/v1/cards/{card}"), None)["status"],
        "active"
    );
    let (status, _, _) = browser(&w.d, &cookie, Some(&csrf), "POST", &block, Some(json!({})));
    assert_eq!(status, 200);
    assert_eq!(
        admin_ok(&w.d, "GET", &format!("/v1/cards/{card}"), None)["status"],
        "blocked"
    );
    // The session acts as its user, and the log says so.
    let log = admin_ok(&w.d, "GET", "/v1/audit-log?actor=support-user", None);
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[1]["status"], 403);

    let (status, _, cleared) = browser(
        &w.d,
        &cookie,
        Some(&csrf),
        "POST",
        "/v1/logout",
        Some(json!({})),
    );
    assert_eq!(status, 200);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/terminals", None).0,
        401
    );
    // Nor does a password ever reach the log.
    let everything = admin_ok(&w.d, "GET", "/v1/audit-log?limit=1000", None).to_string();
    assert!(!everything.contains(PASSWORD) && !everything.contains(&csrf));
}

#[test]
fn wrong_passwords_lock_the_user_out_even_with_the_right_one() {
    let w = world("access-lockout");
    admin_ok(
        &w.d,
        "POST",
        "/v1/users/finance-user/password",
        Some(json!({ "password": PASSWORD })),
    );
    let short = w.d.admin(
        "POST",
        "/v1/users/finance-user/password",
        Some(json!({ "password": "short" })),
    );
    assert!(matches!(short, Err((400, _))), "{short:?}");
    for name in ["finance-user", "nobody"] {
        for _ in 0..5 {
            assert!(matches!(
                sign_in(&w.d, name, "not the password"),
                Err((401, _))
            ));
        }
        // A name no user has locks alike: the answer tells no one which
        // names are users'.
        let locked = sign_in(&w.d, name, PASSWORD);
        assert!(matches!(locked, Err((429, _))), "{name}: {locked:?}");
    }
    // Setting a new password (an operator's act) lifts the lock.
    admin_ok(
        &w.d,
        "POST",
        "/v1/users/finance-user/password",
        Some(json!({ "password": PASSWORD })),
    );
    assert!(sign_in(&w.d, "finance-user", PASSWORD).is_ok());
    // A revoked user's session ends with it.
    let (cookie, _) = sign_in(&w.d, "finance-user", PASSWORD).unwrap();
    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/settlements", None).0,
        200
    );
    admin_ok(&w.d, "POST", "/v1/users/finance-user/revoke", None);
    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/settlements", None).0,
        401
    );
}

#[test]
fn sign_in_tries_past_the_per_address_limit_get_429_even_with_the_right_password() {
    let d = Daemon::start_configured("access-sign-ins", "[admin]\nsign_ins_per_minute = 3\n", &[]);
    d.admin(
        "POST",
        "/v1/users",
        Some(json!({ "name": "slow", "role": "support" })),
    )
    .unwrap();
    d.admin(
        "POST",
        "/v1/users/slow/password",
        Some(json!({ "password": PASSWORD })),
    )
    .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            sign_in(&d, "slow", "not the password"),
            Err((401, _))
        ));
    }
    assert!(sign_in(&d, "slow", PASSWORD).is_ok());
    // The fourth try in the minute, whatever it is, costs no hash.
    let past = sign_in(&d, "slow", PASSWORD);
    assert!(matches!(past, Err((429, _))), "{past:?}");
    let code = browser(
        &d,
        "",
        None,
        "POST",
        "/v1/login/code",
        Some(json!({ "phone": "09120000001" })),
    );
    assert_eq!(code.0, 429, "{code:?}");
    // The rest of the API is served as before.
    assert_eq!(call(&d, &d.token, "GET", "/v1/terminals", None).0, 200);
}

#[test]
fn a_session_expires() {
    let w = world_with("access-expiry", "session_secs = 2", "");
    admin_ok(
        &w.d,
        "POST",
        "/v1/users/support-user/password",
        Some(json!({ "password": PASSWORD })),
    );
    let (cookie, _) = sign_in(&w.d, "support-user", PASSWORD).unwrap();
    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/terminals", None).0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(
        browser(&w.d, &cookie, None, "GET", "/v1/terminals", None).0,
        401
    );
}

/// The next login code the gateway is sent, within ten seconds.
fn next_code(kept: &std::sync::Mutex<Vec<Value>>, seen: &mut usize) -> String {
    let start = std::time::Instant::now();
    loop {
        let codes: Vec<String> = kept
            .lock()
            .unwrap()
            .iter()
            .filter(|n| n["notice"]["kind"] == "login_code")
            .map(|n| n["notice"]["code"].as_str().unwrap().to_owned())
            .collect();
        if codes.len() > *seen {
            *seen += 1;
            return codes[*seen - 1].clone();
        }
        assert!(start.elapsed().as_secs() < 10, "no login code was sent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_login_code_signs_a_member_in_once_and_a_guessed_one_never() {
    let (url, kept) = gateway(Gateway::FailFirst(0));
    let w = world_with(
        "access-code",
        "",
        &format!("[notices]\nchannel = \"webhook\"\nwebhook_url = \"{url}\"\ninterval_ms = 100\n"),
    );
    let member = admin_ok(
        &w.d,
        "GET",
        &format!("/v1/members/{}", w.objects.member.0),
        None,
    );
    let phone = member["phone"].as_str().unwrap().to_owned();
    let ask = |p: &str| {
        browser(
            &w.d,
            "",
            None,
            "POST",
            "/v1/login/code",
            Some(json!({ "phone": p })),
        )
    };
    let verify = |p: &str, c: &str| {
        browser(
            &w.d,
            "",
            None,
            "POST",
            "/v1/login/verify",
            Some(json!({ "phone": p, "otp": c })),
        )
    };
    let mut seen = 0;

    // A phone no member has gets the same answer, and nothing is sent.
    let (status, unknown, _) = ask("09990000000");
    let (_, known, _) = ask(&phone);
    assert_eq!(status, 200);
    assert_eq!(unknown, known);
    let code = next_code(&kept, &mut seen);
    assert!(kept
        .lock()
        .unwrap()
        .iter()
        .all(|n| n["to"] == phone.as_str()));

    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(verify(&phone, wrong).0, 401);
    let (status, session, set) = verify(&phone, &code);
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["role"], "member");
    let cookie = set.split(';').next().unwrap().to_owned();
    let own = format!("/v1/members/{}", w.objects.member.0);
    let other = format!("/v1/members/{}", w.objects.member.1);
    assert_eq!(browser(&w.d, &cookie, None, "GET", &own, None).0, 200);
    assert_eq!(browser(&w.d, &cookie, None, "GET", &other, None).0, 404);
    // Used once: not again.
    assert_eq!(verify(&phone, &code).0, 401);
    // A member blocked since signing in is signed out.
    let with_status = |status: &str| {
        let m = json!({
            "name": member["name"], "phone": phone, "tier": member["tier"],
            "groups": member["groups"], "status": status,
        });
        admin_ok(&w.d, "PUT", &own, Some(m));
    };
    with_status("blocked");
    assert_eq!(browser(&w.d, &cookie, None, "GET", &own, None).0, 401);
    with_status("active");

    // Five wrong guesses void a code, the right one included.
    ask(&phone);
    let code = next_code(&kept, &mut seen);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        assert_eq!(verify(&phone, wrong).0, 401);
    }
    assert_eq!(verify(&phone, &code).0, 401);

    // Three codes a phone in fifteen minutes: the fourth is refused.
    assert_eq!(ask(&phone).0, 200);
    assert_eq!(ask(&phone).0, 429);
    // The same for a number no member has (asked once above): the limit
    // tells no one which numbers are members'.
    assert_eq!(ask("09990000000").0, 200);
    assert_eq!(ask("09990000000").0, 200);
    assert_eq!(ask("09990000000").0, 429);
    // The code never reaches the action log.
    let everything = admin_ok(&w.d, "GET", "/v1/audit-log?limit=1000", None).to_string();
    assert!(!everything.contains(&format!("\"{code}\"")), "{everything}");
}
