//! The console: web pages for operators, merchants, cashiers and members,
//! served by the switch on the admin listener at `/` (the API stays under
//! `/v1`).
//!
//! What it guarantees:
//! - Every page is a route of the one route table ([`pages`] is part of
//!   [`super::routes::table`]) and passes the same [`super::access::guard`]
//!   as the API: the same roles, the same scopes (another merchant's page
//!   is "not found"), the same action log for every change, the same
//!   CSRF check (a form carries its session's token in a hidden `csrf`
//!   field).
//! - A page shows what the API would answer: its handlers call the API's
//!   own handlers (so a page cannot see more than the API lets the same
//!   caller see) and render the answer with templates embedded in the
//!   binary, escaped by default.
//! - No script, no CDN, no font from elsewhere: the content security
//!   policy of a page allows its own stylesheet and nothing else.
//! - Persian (right to left, Persian digits, Jalali dates) unless the
//!   browser chose English; card numbers never shown but as last four
//!   digits.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::value::Value as JValue;
use minijinja::{Environment, State};
use serde::Serialize;
use serde_json::Value;

use super::access::{Actor, Roles, Route, Rule, Scope};
use super::{ApiError, Http};

mod chart;
pub mod i18n;
mod login;
mod merchant;
mod operator;
mod person;

use i18n::{Lang, LANG_COOKIE};

/// The templates, compiled once at start.
pub struct Console {
    env: Environment<'static>,
}

/// Every template, embedded: name and source.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("pager.html", include_str!("templates/pager.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("merchants.html", include_str!("templates/merchants.html")),
    ("rules.html", include_str!("templates/rules.html")),
    ("program.html", include_str!("templates/program.html")),
    ("draws.html", include_str!("templates/draws.html")),
    ("segments.html", include_str!("templates/segments.html")),
    ("statements.html", include_str!("templates/statements.html")),
    ("terminal.html", include_str!("templates/terminal.html")),
    ("terminals.html", include_str!("templates/terminals.html")),
    ("members.html", include_str!("templates/members.html")),
    ("member.html", include_str!("templates/member.html")),
    (
        "settlements.html",
        include_str!("templates/settlements.html"),
    ),
    ("audit_log.html", include_str!("templates/audit_log.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("notices.html", include_str!("templates/notices.html")),
    ("balance.html", include_str!("templates/balance.html")),
];

/// The stylesheet, served at `/assets/console.css`.
const CSS: &str = include_str!("console.css");

/// The tab icon, served at `/assets/icon.svg`; without one a browser asks
/// for `/favicon.ico` on every page and logs the 404 as an error.
const ICON: &str = include_str!("icon.svg");

impl Console {
    /// The templates, parsed. A template that does not parse is a bug
    /// found by the first test that starts the switch.
    pub fn new() -> Result<Console, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.add_function("t", |state: &State, key: &str| {
            lang_of(state).text(key).to_owned()
        });
        env.add_filter("num", |state: &State, v: JValue| {
            lang_of(state).number(as_i64(&v))
        });
        // A tier's configured name: the default names read in the page's
        // language; a name the operator chose is shown as written.
        env.add_filter("tier", |state: &State, name: &str| {
            let key = format!("tier.{name}");
            match lang_of(state).text(&key) {
                t if t == key => name.to_owned(),
                t => t.to_owned(),
            }
        });
        env.add_filter("digits", |state: &State, v: JValue| {
            let s = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            lang_of(state).digits(&s)
        });
        // Basis points as a percent: 250 → "2.5٪".
        env.add_filter("percent", |state: &State, v: JValue| {
            let bps = u32::try_from(as_i64(&v)).unwrap_or(0);
            format!("{}٪", lang_of(state).digits(&percent_text(bps)))
        });
        // A local day: an ISO date string or a day number.
        env.add_filter("date", |state: &State, v: JValue| {
            let day = v
                .as_str()
                .and_then(crate::config::parse_date)
                .unwrap_or_else(|| as_i64(&v));
            if v.is_none() || v.is_undefined() {
                return String::new();
            }
            lang_of(state).date(day)
        });
        // A moment, in the switch's time zone: Unix seconds (its date and
        // time), or an RFC 3339 string as the API writes them (its local
        // date: the UTC date would put what happened after midnight in
        // Tehran on the day before).
        env.add_filter("time", |state: &State, v: JValue| {
            if v.is_none() || v.is_undefined() {
                return String::new();
            }
            let lang = lang_of(state);
            let offset = state
                .lookup("offset")
                .map_or(0, |o| i64::try_from(o).unwrap_or(0));
            match v.as_str() {
                Some(s) => crate::config::parse_timestamp(s).map_or_else(
                    || s.to_owned(),
                    |t| lang.date((t + offset).div_euclid(86_400)),
                ),
                None => lang.time(as_i64(&v), offset),
            }
        });
        Ok(Console { env })
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

fn lang_of(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().map(Lang::from_code))
        .unwrap_or(Lang::Fa)
}

fn as_i64(v: &JValue) -> i64 {
    i64::try_from(v.clone())
        .ok()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// What every page handler starts from: the switch, the caller (absent on
/// the sign-in pages), the language and the session's CSRF token.
pub(super) struct Page {
    h: Arc<Http>,
    actor: Option<Actor>,
    lang: Lang,
    /// The page's own path and query, for the language switch to come
    /// back to (a GET page; after a form, home).
    back: String,
}

impl FromRequestParts<Arc<Http>> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, h: &Arc<Http>) -> Result<Self, Self::Rejection> {
        let back = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
        } else {
            "/".to_owned()
        };
        Ok(Page {
            back,
            h: Arc::clone(h),
            actor: parts.extensions.get::<Actor>().cloned(),
            lang: Lang::from_code(
                super::access::cookie(&parts.headers, LANG_COOKIE).unwrap_or("fa"),
            ),
        })
    }
}

/// A page's answer: HTML, a redirect, or an error page in the caller's
/// language.
pub(super) type PageResult = Result<Response, PageError>;

/// Why a page could not be shown: an API error (its status and words)
/// or a template that failed.
pub(super) struct PageError(Lang, StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(self.0, self.1, &self.2)
    }
}

/// The console's layer, outside [`super::access::guard`]: a console page's
/// answer in the caller's language (see `as_page`). API routes pass
/// through untouched.
pub async fn page_answers(
    axum::extract::State(h): axum::extract::State<Arc<Http>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !h.rules.is_page(&req) {
        return next.run(req).await;
    }
    let lang = Lang::from_code(super::access::cookie(req.headers(), LANG_COOKIE).unwrap_or("fa"));
    as_page(next.run(req).await, lang).await
}

/// A console page's answer: the guard's refusals (JSON) become pages, a
/// missing credential a redirect to the sign-in page; and a page may load
/// its own stylesheet and post its own forms, nothing else.
async fn as_page(r: Response, lang: Lang) -> Response {
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = r.status();
    let mut out = if !json {
        r
    } else if status == StatusCode::UNAUTHORIZED {
        let mut to = axum::response::Redirect::to("/login").into_response();
        if let Some(id) = r.headers().get("x-request-id") {
            to.headers_mut().insert("x-request-id", id.clone());
        }
        to
    } else {
        let id = r.headers().get("x-request-id").cloned();
        let body = axum::body::to_bytes(r.into_body(), super::access::MAX_BODY)
            .await
            .unwrap_or_default();
        let msg = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut page = error_page(lang, status, &msg);
        if let Some(id) = id {
            page.headers_mut().insert("x-request-id", id);
        }
        page
    };
    let h = out.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    out
}

/// The error page for `status`, drawn without the templates' context (so
/// it cannot fail itself).
pub fn error_page(lang: Lang, status: StatusCode, detail: &str) -> Response {
    let key = match status {
        StatusCode::NOT_FOUND => "err.not_found",
        StatusCode::FORBIDDEN => "err.forbidden",
        StatusCode::UNAUTHORIZED => "err.wrong_login",
        _ => "err.bad_request",
    };
    let body = format!(
        "<!doctype html><html lang=\"{}\" dir=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <link rel=\"icon\" href=\"/assets/icon.svg\"><title>{}</title></head>\
         <body><main class=\"error\"><h1>{}</h1><p>{}</p><p><a href=\"/\">{}</a></p></main></body></html>",
        lang.code(),
        lang.dir(),
        lang.text(key),
        lang.text(key),
        escape(detail),
        lang.text("nav.dashboard"),
    );
    (status, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Page {
    fn actor(&self) -> Result<&Actor, PageError> {
        self.actor
            .as_ref()
            .ok_or_else(|| PageError(self.lang, StatusCode::UNAUTHORIZED, String::new()))
    }

    /// `err` as this page's error.
    fn fail(&self, err: ApiError) -> PageError {
        PageError(self.lang, err.0, err.1)
    }

    /// An API handler's answer as plain JSON, or this page's error.
    fn json<T: Serialize>(&self, r: Result<axum::Json<T>, ApiError>) -> Result<Value, PageError> {
        let v = r.map_err(|e| self.fail(e))?;
        Ok(serde_json::to_value(v.0).unwrap_or_default())
    }

    /// A handler's answer that is a whole response (JSON, or CSV when
    /// asked): its JSON, or this page's error.
    async fn body(&self, r: Result<Response, ApiError>) -> Result<Value, PageError> {
        let r = r.map_err(|e| self.fail(e))?;
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if !status.is_success() {
            let msg = v["error"].as_str().unwrap_or_default().to_owned();
            return Err(PageError(self.lang, status, msg));
        }
        Ok(v)
    }

    /// Renders `template` with `ctx` and what every page has: language,
    /// direction, the caller, its CSRF token, its menu.
    fn render(&self, template: &str, mut ctx: Value) -> PageResult {
        ctx["lang"] = self.lang.code().into();
        ctx["dir"] = self.lang.dir().into();
        ctx["offset"] = self.h.switch.cfg.utc_offset_secs.into();
        ctx["back"] = self.back.clone().into();
        if let Some(a) = &self.actor {
            ctx["me"] = serde_json::json!({
                "name": a.name,
                "role": a.role.name(),
                "merchant": a.role.merchant().map(|m| m.as_str().to_owned()),
                "member": a.role.member().map(|m| m.0),
            });
            ctx["csrf"] = a.csrf.clone().unwrap_or_default().into();
            ctx["nav"] = menu(a).into();
        }
        let html = self.h.console.render(template, &ctx).map_err(|e| {
            tracing::error!(template, error = %e, "console template failed");
            PageError(
                self.lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                "page failed".into(),
            )
        })?;
        Ok(Html(html).into_response())
    }
}

/// The menu of a role: (link, text key). Only pages the role may open.
fn menu(a: &Actor) -> Vec<Value> {
    use clubswitch_engine::Role;
    let item = |href: String, key: &str| serde_json::json!({ "href": href, "key": key });
    match &a.role {
        Role::Admin | Role::Support | Role::Finance => {
            let mut m = vec![item("/".into(), "nav.dashboard")];
            let r = &a.role;
            let may = |roles: Roles| roles.allows(r);
            if may(Roles::SUPPORT.or(Roles::FINANCE)) {
                m.push(item("/merchants".into(), "nav.merchants"));
            }
            if may(Roles::SUPPORT) {
                m.push(item("/terminals".into(), "nav.terminals"));
                m.push(item("/members".into(), "nav.members"));
            }
            if may(Roles::FINANCE) {
                m.push(item("/settlements".into(), "nav.settlements"));
            }
            if may(Roles::SUPPORT) {
                m.push(item("/audit-log".into(), "nav.audit_log"));
                m.push(item("/notices".into(), "nav.notices"));
            }
            if may(Roles::SUPPORT.or(Roles::FINANCE)) {
                m.push(item("/audit".into(), "nav.audit"));
            }
            m
        }
        Role::Merchant { merchant } => {
            let id = merchant.as_str();
            vec![
                item(format!("/merchants/{id}"), "nav.dashboard"),
                item("/terminals".into(), "nav.terminals"),
                item(format!("/merchants/{id}/rules"), "nav.rules"),
                item(format!("/merchants/{id}/program"), "nav.program"),
                item(format!("/merchants/{id}/draws"), "nav.draws"),
                item(format!("/merchants/{id}/segments"), "nav.segments"),
                item(format!("/merchants/{id}/statements"), "merchant.statements"),
            ]
        }
        Role::Cashier { .. } => vec![item("/balance".into(), "nav.dashboard")],
        Role::Member { member } => vec![item(format!("/members/{}", member.0), "nav.dashboard")],
    }
}

/// A redirect after a form (303: the browser follows with GET).
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The stylesheet.
async fn css() -> Response {
    asset("text/css", CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

/// An embedded asset: the binary is the only thing an operator deploys.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Every page of the console, with who may open it. Part of the one route
/// table: the guard checks a page as it checks an API route.
pub fn pages() -> Vec<Route> {
    use super::access::{CARD_ACTIONS, TERMINAL_ACTIONS};
    use Scope::*;
    const SUPPORT: Roles = Roles::SUPPORT;
    const FINANCE: Roles = Roles::FINANCE;
    const MERCHANT: Roles = Roles::MERCHANT;
    const CASHIER: Roles = Roles::CASHIER;
    const MEMBER: Roles = Roles::MEMBER;
    let fixed = Rule::Fixed;
    vec![
        Route::get("/assets/console.css", Rule::Public, css).doc("The console's stylesheet"),
        Route::get("/assets/icon.svg", Rule::Public, icon).doc("The console's tab icon"),
        Route::get("/login", Rule::Public, login::form).doc("Sign-in page"),
        Route::post("/login", Rule::SignIn, login::password).doc("Sign in with a password"),
        Route::post("/login/code", Rule::SignIn, login::send_code)
            .doc("Send a member a one-time code"),
        Route::post("/login/verify", Rule::SignIn, login::verify)
            .doc("Sign a member in with its code"),
        Route::post("/lang", Rule::Public, login::language).doc("Choose the console's language"),
        Route::post("/logout", fixed(Roles::ANYONE, Own), login::logout).doc("Sign out"),
        Route::get("/", fixed(Roles::ANYONE, Own), operator::home)
            .doc("Dashboard (a merchant, cashier or member: its own home)"),
        Route::get(
            "/merchants",
            fixed(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            operator::merchants,
        )
        .doc("Merchants"),
        Route::get(
            "/merchants/{id}",
            fixed(SUPPORT.or(FINANCE).or(MERCHANT), MerchantPath),
            merchant::dashboard,
        )
        .doc("A merchant's dashboard"),
        Route::get(
            "/merchants/{id}/rules",
            fixed(SUPPORT.or(MERCHANT), MerchantPath),
            merchant::rules,
        )
        .doc("A merchant's discounts and campaigns, with a preview"),
        Route::post(
            "/merchants/{id}/rules",
            fixed(MERCHANT, MerchantPath),
            merchant::add_rule,
        )
        .doc("Create a discount or campaign"),
        Route::get(
            "/merchants/{id}/program",
            fixed(SUPPORT.or(FINANCE).or(MERCHANT), MerchantPath),
            merchant::program,
        )
        .doc("A merchant's loyalty programme"),
        Route::get(
            "/merchants/{id}/draws",
            fixed(SUPPORT.or(MERCHANT), MerchantPath),
            merchant::draws,
        )
        .doc("A merchant's lucky draws"),
        Route::get(
            "/merchants/{id}/segments",
            fixed(SUPPORT.or(MERCHANT), MerchantPath),
            merchant::segments,
        )
        .doc("A merchant's RFM segments"),
        Route::get(
            "/merchants/{id}/statements",
            fixed(FINANCE.or(MERCHANT), MerchantPath),
            merchant::statements,
        )
        .doc("A merchant's settlement statement"),
        Route::get(
            "/terminals",
            fixed(SUPPORT.or(MERCHANT), Own),
            operator::terminals,
        )
        .doc("Terminals"),
        Route::get(
            "/terminals/{id}",
            fixed(SUPPORT.or(MERCHANT), TerminalPath),
            operator::terminal,
        )
        .doc("A terminal: its state and its transactions"),
        Route::post(
            "/terminals/{id}/{action}",
            Rule::ByAction(TERMINAL_ACTIONS, TerminalPath),
            operator::terminal_action,
        )
        .doc("Block, unblock or unlock a terminal"),
        Route::get("/members", fixed(SUPPORT, None), operator::members)
            .doc("Members, searched by phone, name or last four card digits"),
        Route::get(
            "/members/{id}",
            fixed(SUPPORT.or(MEMBER), MemberPath),
            person::member,
        )
        .doc("A member: balances, points, tier, history, referral code"),
        Route::post(
            "/members/{id}/marketing",
            fixed(SUPPORT.or(MEMBER), MemberPath),
            person::marketing,
        )
        .doc("Stop or restart a member's marketing messages"),
        Route::post(
            "/cards/{hash}/{action}",
            Rule::ByAction(CARD_ACTIONS, None),
            person::card_action,
        )
        .keyed()
        .doc("Block, unblock or top up a card"),
        Route::get(
            "/settlements",
            fixed(FINANCE.or(MERCHANT), Own),
            operator::settlements,
        )
        .doc("Settlement batches"),
        Route::get("/audit-log", fixed(SUPPORT, None), operator::audit_log).doc("The action log"),
        Route::get("/audit", fixed(SUPPORT.or(FINANCE), None), operator::audit)
            .doc("The ledger audit"),
        Route::get("/notices", fixed(SUPPORT, None), operator::notices)
            .doc("Notices waiting for delivery"),
        Route::get("/balance", fixed(SUPPORT.or(CASHIER), Own), person::balance)
            .doc("A cashier's balance look-up"),
        Route::post("/balance", fixed(SUPPORT.or(CASHIER), Own), person::look_up)
            .doc("Look up a card's balance by its number"),
    ]
    .into_iter()
    .map(Route::page)
    .collect()
}

/// The number of a page (`?page=`, from 1) and the slice of `items` it
/// shows, `per` at a time, with the links either side.
fn paginate(items: Vec<Value>, q: &std::collections::HashMap<String, String>, per: usize) -> Value {
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let total = items.len();
    let shown: Vec<Value> = items.into_iter().skip((page - 1) * per).take(per).collect();
    serde_json::json!({
        "items": shown,
        "page": page,
        "total": total,
        "pages": total.div_ceil(per).max(1),
        "prev": (page > 1).then(|| page - 1),
        "next": (page * per < total).then_some(page + 1),
    })
}

/// The `?q=` of a list, as typed.
fn query_of(q: &std::collections::HashMap<String, String>) -> String {
    q.get("q").map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Digits typed in Persian or Arabic-Indic as ASCII, separators dropped:
/// what a merchant types on a Persian keyboard is a number too.
/// Basis points as a percent, with the decimals it needs: 200 → "2",
/// 250 → "2.5", 25 → "0.25".
pub(super) fn percent_text(bps: u32) -> String {
    let pct = format!("{}.{:02}", bps / 100, bps % 100);
    pct.trim_end_matches('0').trim_end_matches('.').to_owned()
}

pub(super) fn ascii_number(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ',' | '\u{066C}' | ' ' | '_'))
        .map(|c| match c {
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            '\u{066B}' => '.',
            c => c,
        })
        .collect()
}
