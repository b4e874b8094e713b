//! Who may call what: the types of the route table ([`super::routes`]),
//! the one check every admin request passes, and the action log entry it
//! leaves.
//!
//! A route is declared with its [`Rule`]: the roles that may call it and,
//! for roles bound to a merchant or a member, how the object it acts on is
//! found ([`Scope`]). [`guard`] runs for every matched route, before its
//! handler:
//! - no valid credential: 401;
//! - a role the route does not name: 403;
//! - a scoped caller reaching for an object outside its scope: 404, the
//!   answer a missing object gets, so nothing leaks whether it exists.
//!
//! Each credential may make [`Limiter`]'s number of requests a second
//! (429 past it), and failed sign-ins are limited likewise per source
//! address. A refused request never reaches its handler, so it changes
//! nothing.
//! Every request that may change something (anything but GET) and every
//! refused request is appended to the ledger's action log with its actor,
//! role, source address, request id, route, target, status and a summary of
//! what was asked and answered, with card numbers and secrets removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{
    ConnectInfo, FromRequestParts, MatchedPath, Query, RawPathParams, Request, State,
};
use axum::handler::Handler;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use clubswitch_engine::access::constant_time_eq;
use clubswitch_engine::{CardHash, Idempotency, NewAction, Role, UnixTime};
use clubswitch_wire::{MerchantId, TerminalId};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{ApiError, Http};

/// A set of roles. Admin is in every set: it may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles(u8);

impl Roles {
    pub const ADMIN: Roles = Roles(1);
    pub const SUPPORT: Roles = Roles(1 | 2);
    pub const FINANCE: Roles = Roles(1 | 4);
    pub const MERCHANT: Roles = Roles(1 | 8);
    pub const CASHIER: Roles = Roles(1 | 16);
    pub const MEMBER: Roles = Roles(1 | 32);
    pub const ANYONE: Roles = Roles(63);

    pub const fn or(self, other: Roles) -> Roles {
        Roles(self.0 | other.0)
    }

    fn bit(role: &Role) -> u8 {
        match role {
            Role::Admin => 1,
            Role::Support => 2,
            Role::Finance => 4,
            Role::Merchant { .. } => 8,
            Role::Cashier { .. } => 16,
            Role::Member { .. } => 32,
        }
    }

    pub fn allows(self, role: &Role) -> bool {
        self.0 & Self::bit(role) != 0
    }

    /// The role names in the set.
    pub fn names(self) -> Vec<&'static str> {
        [
            "admin", "support", "finance", "merchant", "cashier", "member",
        ]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| self.0 & (1 << i) != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

/// How a route finds the object a merchant, cashier or member acts on.
/// Operator roles are not scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// No object: only operator roles may be allowed.
    None,
    /// The handler shows a scoped caller only its own (a list).
    Own,
    /// `{id}` is the caller's merchant.
    MerchantPath,
    /// `?merchant=` is the caller's merchant.
    MerchantQuery,
    /// The JSON body's `merchant` is the caller's merchant.
    MerchantBody,
    /// `{id}` is a lucky draw of the caller's merchant.
    DrawPath,
    /// `{id}` is a campaign of the caller's merchant.
    CampaignPath,
    /// `{id}` is a terminal of the caller's merchant.
    TerminalPath,
    /// `{hash}` is a card of the calling member.
    CardPath,
    /// `{id}` is the calling member.
    MemberPath,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Anyone, without a credential: the sign-in page, the console's
    /// assets, the language choice. Limited by address.
    Public,
    /// Anyone, without a credential: a sign-in try (a password, a login
    /// code asked for or given). Limited by address, and by the tighter
    /// `admin.sign_ins_per_minute`, as a password costs a hash.
    SignIn,
    /// A payment gateway, by the signature of its callback (see
    /// `gateway`); no user credential. Limited per gateway.
    Gateway,
    Fixed(Roles, Scope),
    /// Per value of the path's `{action}`; an action not listed is for
    /// admin (whose handler then answers 404 for an unknown one).
    ByAction(&'static [(&'static str, Roles)], Scope),
}

impl Rule {
    fn roles(&self, action: Option<&str>) -> Roles {
        match self {
            Rule::Public | Rule::SignIn | Rule::Gateway => Roles::ANYONE,
            Rule::Fixed(r, _) => *r,
            Rule::ByAction(list, _) => action
                .and_then(|a| list.iter().find(|(n, _)| *n == a))
                .map_or(Roles::ADMIN, |(_, r)| *r),
        }
    }

    fn scope(&self) -> Scope {
        match self {
            Rule::Public | Rule::SignIn | Rule::Gateway => Scope::Own,
            Rule::Fixed(_, s) | Rule::ByAction(_, s) => *s,
        }
    }

    /// The rule as `GET /v1/access` shows it.
    fn view(&self) -> RuleView {
        let (roles, actions, scope) = match self {
            Rule::Public | Rule::SignIn => (vec!["public"], None, Scope::Own),
            Rule::Gateway => (vec!["gateway"], None, Scope::Own),
            Rule::Fixed(r, s) => (r.names(), None, *s),
            Rule::ByAction(list, s) => {
                let actions = list.iter().map(|(a, r)| (*a, r.names())).collect();
                (vec!["admin"], Some(actions), *s)
            }
        };
        RuleView {
            roles,
            actions,
            scope,
        }
    }
}

/// Who may call a route, as `GET /v1/access` and the OpenAPI description
/// (`x-roles`, `x-actions`) show it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// The roles that may call it: admin, support, finance, merchant,
    /// cashier, member; or `public` (no credential: the sign-in routes),
    /// or `gateway` (a payment gateway's signature).
    roles: Vec<&'static str>,
    /// Where the roles differ per value of the path's `{action}`: the roles
    /// of each action (an action not listed is admin's).
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<BTreeMap<&'static str, Vec<&'static str>>>,
    scope: Scope,
}

/// One route of `GET /v1/access`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessView {
    #[serde(flatten)]
    rule: RuleView,
    /// GET, POST or PUT.
    method: String,
    /// The route's path, with its `{parameters}`.
    path: &'static str,
    /// A console page (HTML), not part of the API.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    page: bool,
}

/// A body's or answer's schema (derived with utoipa): its name and JSON
/// Schema first, then every schema it refers to by name, at any depth.
pub type Schema = fn() -> Vec<(String, Value)>;

fn schema_of<T: utoipa::ToSchema>() -> Vec<(String, Value)> {
    let mut refs = Vec::new();
    T::schemas(&mut refs);
    std::iter::once((T::name().into_owned(), T::schema()))
        .chain(refs)
        .map(|(name, s)| (name, serde_json::to_value(s).unwrap_or_default()))
        .collect()
}

/// How a route's answer holds its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One `T`.
    One,
    /// A list of `T`.
    List,
    /// One `T`, or `null` when there is nothing to tell.
    OrNull,
}

/// One route of the admin API: method, path, who may call it, handler,
/// and the schemas of its request and answer where they are typed.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
    pub(super) handler: MethodRouter<Arc<Http>>,
    pub body: Option<Schema>,
    /// The 200 answer's JSON schema, and how the answer holds it.
    pub answer: Option<(Schema, Shape)>,
    /// What the route does, for the OpenAPI description.
    pub summary: &'static str,
    /// It moves money and takes an `Idempotency-Key`.
    pub keyed: bool,
    /// A console page (HTML), not an API route: not
    /// in the OpenAPI description; refusals are pages, a missing
    /// credential a redirect to the sign-in page, and a form may carry
    /// the CSRF token in its `csrf` field.
    pub page: bool,
}

impl Route {
    pub fn get<H: Handler<T, Arc<Http>>, T: 'static>(
        path: &'static str,
        rule: Rule,
        h: H,
    ) -> Route {
        let handler = axum::routing::get(h);
        Route::new(Method::GET, path, rule, handler)
    }

    pub fn post<H: Handler<T, Arc<Http>>, T: 'static>(
        path: &'static str,
        rule: Rule,
        h: H,
    ) -> Route {
        let handler = axum::routing::post(h);
        Route::new(Method::POST, path, rule, handler)
    }

    pub fn put<H: Handler<T, Arc<Http>>, T: 'static>(
        path: &'static str,
        rule: Rule,
        h: H,
    ) -> Route {
        let handler = axum::routing::put(h);
        Route::new(Method::PUT, path, rule, handler)
    }

    fn new(
        method: Method,
        path: &'static str,
        rule: Rule,
        handler: MethodRouter<Arc<Http>>,
    ) -> Route {
        Route {
            method,
            path,
            rule,
            handler,
            body: None,
            answer: None,
            summary: "",
            keyed: false,
            page: false,
        }
    }

    /// It moves money: it takes an `Idempotency-Key` header, and a repeat
    /// with the same key and body answers as the first and moves nothing
    /// (see `clubswitch_engine::idempotency`).
    pub fn keyed(mut self) -> Route {
        self.keyed = true;
        self
    }

    /// It is a console page.
    pub fn page(mut self) -> Route {
        self.page = true;
        self
    }

    /// The request body is a `T`.
    pub fn body<T: utoipa::ToSchema>(mut self) -> Route {
        self.body = Some(schema_of::<T>);
        self
    }

    /// The answer is a `T`.
    pub fn answers<T: utoipa::ToSchema>(mut self) -> Route {
        self.answer = Some((schema_of::<T>, Shape::One));
        self
    }

    /// The answer is a list of `T`.
    pub fn answers_list<T: utoipa::ToSchema>(mut self) -> Route {
        self.answer = Some((schema_of::<T>, Shape::List));
        self
    }

    /// The answer is a `T`, or `null`.
    pub fn answers_or_null<T: utoipa::ToSchema>(mut self) -> Route {
        self.answer = Some((schema_of::<T>, Shape::OrNull));
        self
    }

    pub fn doc(mut self, summary: &'static str) -> Route {
        self.summary = summary;
        self
    }

    /// The roles allowed, and per action where they differ.
    pub fn rule_view(&self) -> Value {
        serde_json::to_value(self.rule.view()).unwrap_or_default()
    }
}

/// The rules by method and path, as the guard looks them up.
pub struct Rules(
    HashMap<(Method, &'static str), Rule>,
    /// The routes that take an `Idempotency-Key`.
    HashSet<(Method, &'static str)>,
    /// The console's pages.
    HashSet<(Method, &'static str)>,
);

impl Rules {
    pub fn new(routes: &[Route]) -> Rules {
        Rules(
            routes
                .iter()
                .map(|r| ((r.method.clone(), r.path), r.rule))
                .collect(),
            routes
                .iter()
                .filter(|r| r.keyed)
                .map(|r| (r.method.clone(), r.path))
                .collect(),
            routes
                .iter()
                .filter(|r| r.page)
                .map(|r| (r.method.clone(), r.path))
                .collect(),
        )
    }

    /// Whether `req` matched a console page (the guard and the console's
    /// layer both ask; a request no route matched is no page).
    pub fn is_page(&self, req: &Request) -> bool {
        req.extensions()
            .get::<MatchedPath>()
            .is_some_and(|m| self.2.contains(&(req.method().clone(), m.as_str())))
    }

    /// The table as `GET /v1/access` serves it, by path and method.
    pub fn view(&self) -> Vec<AccessView> {
        let mut rows: Vec<_> = self.0.iter().collect();
        rows.sort_by(|a, b| (a.0 .1, a.0 .0.as_str()).cmp(&(b.0 .1, b.0 .0.as_str())));
        rows.into_iter()
            .map(|((m, p), rule)| AccessView {
                rule: rule.view(),
                method: m.as_str().to_owned(),
                path: p,
                page: self.2.contains(&(m.clone(), *p)),
            })
            .collect()
    }
}

/// Token buckets by credential (user name) and by address (failed
/// sign-ins): `rate` a second, up to `burst` at once.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Buckets kept before full ones (idle callers) are dropped.
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    /// `rate` a second, up to a second's worth at once.
    pub fn new(rate: u32) -> Limiter {
        let rate = f64::from(rate.max(1));
        Limiter {
            rate,
            burst: rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `n` a minute, up to a minute's worth at once.
    pub fn per_minute(n: u32) -> Limiter {
        let burst = f64::from(n.max(1));
        Limiter {
            rate: burst / 60.0,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; false when it is empty.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The caller of an admin request, as handlers see it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub role: Role,
    /// The session id, when signed in with a session cookie.
    pub session: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
}

impl Actor {
    /// The merchant a merchant or cashier is bound to: what a listing
    /// handler keeps ([`Scope::Own`]). `None` for everyone else.
    pub fn merchant(&self) -> Option<&MerchantId> {
        self.role.merchant()
    }
}

/// The name the bootstrap credential (`admin.token`) acts under, which no
/// user may take.
pub const BOOTSTRAP: &str = clubswitch_engine::access::RESERVED_NAMES[0];

/// What support may do to a card (the route table's and the console's
/// rule for card actions); the rest (expiry, limits, link, renew,
/// top-up) is admin's.
pub const CARD_ACTIONS: &[(&str, Roles)] =
    &[("block", Roles::SUPPORT), ("unblock", Roles::SUPPORT)];

/// Support and a terminal's own merchant may block, unblock and unlock it;
/// key rotation is admin's.
pub const TERMINAL_ACTIONS: &[(&str, Roles)] = &[
    ("block", Roles::SUPPORT.or(Roles::MERCHANT)),
    ("unblock", Roles::SUPPORT.or(Roles::MERCHANT)),
    ("unlock", Roles::SUPPORT.or(Roles::MERCHANT)),
];

/// The largest request body the admin API reads.
pub(super) const MAX_BODY: usize = 4 << 20;

/// How much of a request or answer the action log keeps.
const SUMMARY: usize = 1024;

/// Why a request was refused: the answer and what the log says.
struct Refusal(StatusCode, String);

fn refuse(status: StatusCode, msg: &str) -> Refusal {
    Refusal(status, msg.to_owned())
}

/// The check every admin request and console page passes; see the module
/// docs. A console page's refusal is still JSON here: the console's own
/// layer, outside this one, turns it into a page.
pub async fn guard(State(h): State<Arc<Http>>, req: Request, next: Next) -> Response {
    let page = h.rules.is_page(&req);
    check(&h, req, next, page).await
}

/// The guard's check of one request (`page`: a console page).
async fn check(h: &Arc<Http>, req: Request, next: Next, page: bool) -> Response {
    let h = Arc::clone(h);
    let request_id = request_id(req.headers());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |c| c.0.to_string());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let target = req.uri().path().to_owned();
    let query: HashMap<String, String> = Query::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default();

    let mut entry = NewAction {
        at: UnixTime::now(),
        actor: "-".into(),
        role: "-".into(),
        source,
        request_id: request_id.clone(),
        action: format!("{method} {route}"),
        // A card number pasted where a hash or id goes stays out of the
        // log as it does in a body.
        target: mask_card_segments(&target),
        ..NewAction::default()
    };

    let (mut parts, body) = req.into_parts();
    // The route's parameters ({id}, {hash}, {action}), decoded.
    let params: HashMap<String, String> = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let r = Refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large".into(),
            );
            return finish(&h, entry, r.0, r.1, &request_id).await;
        }
    };
    let form = page && is_form(&parts.headers);
    entry.before = if form {
        summary(&form_as_json(&bytes))
    } else {
        summary(&bytes)
    };

    let Some(rule) = h.rules.0.get(&(method.clone(), route.as_str())).copied() else {
        // Unreachable: the router is built from the same table. Fail closed.
        let r = refuse(StatusCode::FORBIDDEN, "route without declared access");
        return finish(&h, entry, r.0, r.1, &request_id).await;
    };
    let address = entry
        .source
        .rsplit_once(':')
        .map_or("-", |(ip, _)| ip)
        .to_owned();

    if matches!(rule, Rule::Public | Rule::SignIn) {
        // No credential yet, so limited by address.
        if !h.limiter.allow(&format!("address {address}")) {
            return too_many(&request_id);
        }
        if matches!(rule, Rule::SignIn) && !h.sign_ins.allow(&address) {
            let r = refuse(StatusCode::TOO_MANY_REQUESTS, "too many sign-ins");
            return finish(&h, entry, r.0, r.1, &request_id).await;
        }
        // A public route a signed-in user calls (the language choice,
        // kept with the user) is recorded as that user's. Its handler acts
        // as the user only with the session's CSRF token: without it, the
        // request is served as anyone's (signing in again with a stale
        // session's cookie carries no token, and must not be refused).
        if let Ok(Some(actor)) = authenticate(&h, &parts.headers).await {
            entry.actor = actor.name.clone();
            entry.role = actor.role.label();
            if csrf_sent(&actor, form, &bytes, &parts.headers) {
                parts.extensions.insert(actor);
            }
        }
    } else if matches!(rule, Rule::Gateway) {
        let name = params.get("name").map(String::as_str).unwrap_or_default();
        match h
            .gateways
            .verify(name, &parts.headers, &bytes, UnixTime::now())
        {
            Ok(idem) => {
                entry.actor = format!("gateway:{name}");
                entry.role = "gateway".into();
                if !h.limiter.allow(&entry.actor) {
                    return too_many(&request_id);
                }
                parts.extensions.insert(idem);
            }
            Err(why) => {
                let status = match why {
                    super::gateway::Refused::Reference => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNAUTHORIZED,
                };
                let r = refuse(status, why.message());
                return finish(&h, entry, r.0, r.1, &request_id).await;
            }
        }
    } else {
        let actor = match authenticate(&h, &parts.headers).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                let r = if h.limiter.allow(&format!("address {address}")) {
                    refuse(StatusCode::UNAUTHORIZED, "missing or wrong credential")
                } else {
                    refuse(StatusCode::TOO_MANY_REQUESTS, "too many failed sign-ins")
                };
                return finish(&h, entry, r.0, r.1, &request_id).await;
            }
            Err(e) => return with_headers(e.into_response(), &request_id),
        };
        entry.actor = actor.name.clone();
        entry.role = actor.role.label();
        if !h.limiter.allow(&actor.name) {
            // Not recorded: a flood would fill the log with itself.
            return too_many(&request_id);
        }
        if method != Method::GET && !csrf_sent(&actor, form, &bytes, &parts.headers) {
            let r = refuse(StatusCode::FORBIDDEN, "missing or wrong CSRF token");
            return finish(&h, entry, r.0, r.1, &request_id).await;
        }
        if let Err(r) = permitted(&h, &actor, rule, &params, &query, &bytes).await {
            return finish(&h, entry, r.0, r.1, &request_id).await;
        }
        let keyed = h.rules.1.contains(&(method.clone(), route.as_str()));
        // A console form names its money move in a hidden field (a page
        // cannot set a header): the same key, the same guarantee.
        if let Some(key) = form
            .then(|| form_field(&bytes, "idempotency_key"))
            .flatten()
        {
            if let Ok(v) = HeaderValue::from_str(&key) {
                parts.headers.insert(IDEMPOTENCY_KEY, v);
            }
        }
        match idempotency(&parts.headers, keyed, &actor.name, &method, &target, &bytes) {
            Ok(Some(idem)) => {
                parts.extensions.insert(idem);
            }
            Ok(None) => {}
            Err(r) => return finish(&h, entry, r.0, r.1, &request_id).await,
        }
        parts.extensions.insert(actor);
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if method == Method::GET && !failed {
        return with_headers(response, &request_id);
    }
    let (mut rparts, rbody) = response.into_parts();
    let mut rbytes = to_bytes(rbody, usize::MAX).await.unwrap_or_default();
    let json = rparts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if failed && !json && !page {
        // Extractors refuse a body in plain text (a missing field, not
        // JSON at all): every error has the one shape `{"error": …}`.
        let text = String::from_utf8_lossy(&rbytes).trim().to_owned();
        rbytes = serde_json::to_vec(&serde_json::json!({ "error": text }))
            .unwrap_or_default()
            .into();
        rparts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        rparts.headers.remove(header::CONTENT_LENGTH);
    }
    if method == Method::GET {
        return with_headers(
            Response::from_parts(rparts, Body::from(rbytes)),
            &request_id,
        );
    }
    entry.status = rparts.status.as_u16();
    entry.after = summary(&rbytes);
    record(&h, entry).await;
    with_headers(
        Response::from_parts(rparts, Body::from(rbytes)),
        &request_id,
    )
}

/// The header that names a money move, so a retry moves nothing.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The caller's idempotency key, scoped to `caller` and fingerprinted by
/// what is asked (method, path, body), when the request carries one. A key
/// on a route that moves no money is refused rather than ignored: the
/// caller would believe itself protected.
fn idempotency(
    headers: &HeaderMap,
    keyed: bool,
    caller: &str,
    method: &Method,
    target: &str,
    body: &[u8],
) -> Result<Option<Idempotency>, Refusal> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    if !keyed {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "this route moves no money and takes no Idempotency-Key",
        ));
    }
    let key = raw
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key: 1 to 255 visible ASCII characters",
            )
        })?;
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update(b" ");
    h.update(target);
    h.update(b"\n");
    h.update(body);
    Ok(Some(Idempotency::new(caller, key, h.finalize().into())))
}

/// Whether `actor` may call a route with `rule` on these parameters.
async fn permitted(
    h: &Arc<Http>,
    actor: &Actor,
    rule: Rule,
    params: &HashMap<String, String>,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<(), Refusal> {
    let roles = rule.roles(params.get("action").map(String::as_str));
    if !roles.allows(&actor.role) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &format!("the {} role may not do this", actor.role.name()),
        ));
    }
    let role = actor.role;
    if !matches!(
        role,
        Role::Merchant { .. } | Role::Cashier { .. } | Role::Member { .. }
    ) {
        return Ok(());
    }
    let hidden = || refuse(StatusCode::NOT_FOUND, "not found");
    let param = |k: &str| params.get(k).cloned().unwrap_or_default();
    let mine = match rule.scope() {
        Scope::Own => true,
        // A declaration error; refused rather than trusted.
        Scope::None => false,
        Scope::MerchantPath => role.merchant().is_some_and(|m| m.as_str() == param("id")),
        Scope::MerchantQuery => match query.get("merchant") {
            None => {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    "name your merchant: ?merchant=",
                ))
            }
            Some(a) => role.merchant().is_some_and(|m| m.as_str() == a),
        },
        Scope::MerchantBody => {
            let named = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("merchant").and_then(Value::as_str).map(str::to_owned));
            match named {
                None => {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        "name your merchant in the body's \"merchant\"",
                    ))
                }
                Some(n) => role.merchant().is_some_and(|m| m.as_str() == n),
            }
        }
        Scope::DrawPath => {
            let (Some(merchant), Ok(id)) = (role.merchant().copied(), param("id").parse::<u64>())
            else {
                return Err(hidden());
            };
            lookup(h, move |e| {
                Ok(e.loyalty()
                    .draws()?
                    .iter()
                    .any(|d| d.id == id && d.spec.merchant == merchant))
            })
            .await?
        }
        Scope::CampaignPath => {
            let (Some(merchant), Ok(id)) = (role.merchant().copied(), param("id").parse::<u64>())
            else {
                return Err(hidden());
            };
            lookup(h, move |e| {
                Ok(e.campaigns()
                    .get(id)?
                    .is_some_and(|c| c.audience.merchant == Some(merchant)))
            })
            .await?
        }
        Scope::MemberPath => role
            .member()
            .is_some_and(|m| m.0.to_string() == param("id")),
        Scope::TerminalPath => {
            let (Some(merchant), Ok(id)) = (role.merchant().copied(), param("id").parse()) else {
                return Err(hidden());
            };
            let id: TerminalId = id;
            lookup(h, move |e| {
                Ok(e.admin()
                    .terminal(&id)?
                    .is_some_and(|t| t.merchant == merchant))
            })
            .await?
        }
        Scope::CardPath => {
            let (Some(member), Some(hash)) = (role.member(), CardHash::from_hex(&param("hash")))
            else {
                return Err(hidden());
            };
            lookup(h, move |e| {
                Ok(e.admin()
                    .card(&hash)?
                    .is_some_and(|c| c.member == Some(member)))
            })
            .await?
        }
    };
    if mine {
        Ok(())
    } else {
        Err(hidden())
    }
}

/// A ledger look-up for a scope check, off the connection workers.
async fn lookup(
    h: &Arc<Http>,
    f: impl FnOnce(&clubswitch_engine::Engine) -> Result<bool, clubswitch_engine::EngineError>
        + Send
        + 'static,
) -> Result<bool, Refusal> {
    super::blocking(h, f).await.map_err(|e| Refusal(e.0, e.1))
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cs_session";

/// Whether a request's body is an HTML form's.
fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    })
}

/// The value of a form's field `name`, decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A form's fields as a JSON object, so the action log keeps (and
/// redacts) a form as it does a JSON body.
fn form_as_json(body: &[u8]) -> Vec<u8> {
    let fields: serde_json::Map<String, Value> =
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
    serde_json::to_vec(&fields).unwrap_or_default()
}

/// The value of cookie `name` in a request's headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The actor a request's credential stands for: a bearer token (the
/// bootstrap token, or a user's from the ledger), or else a session
/// cookie.
pub(super) async fn authenticate(
    h: &Arc<Http>,
    headers: &HeaderMap,
) -> Result<Option<Actor>, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        if constant_time_eq(given.as_bytes(), h.token.as_bytes()) {
            return Ok(Some(Actor {
                name: BOOTSTRAP.to_owned(),
                role: Role::Admin,
                session: None,
                csrf: None,
            }));
        }
        if !given.starts_with("cst_") || given.len() > 128 {
            return Ok(None);
        }
        let token = given.to_owned();
        let user =
            super::blocking(h, move |e| e.access().authenticate(&token, UnixTime::now())).await?;
        return Ok(user.map(|u| Actor {
            name: u.name,
            role: u.role,
            session: None,
            csrf: None,
        }));
    }
    let Some(id) =
        cookie(headers, SESSION_COOKIE).filter(|c| c.starts_with("css_") && c.len() <= 128)
    else {
        return Ok(None);
    };
    let id = id.to_owned();
    let key = id.clone();
    let session = super::blocking(h, move |e| e.access().session(&key, UnixTime::now())).await?;
    Ok(session.map(|s| Actor {
        name: s.actor,
        role: s.role,
        session: Some(id),
        csrf: Some(s.csrf),
    }))
}

/// The caller's `X-Request-Id` if it is short and printable, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                format!("{:08x}-{n}", std::process::id())
            },
            str::to_owned,
        )
}

/// 429, with when to try again.
fn too_many(request_id: &str) -> Response {
    let r = ApiError(StatusCode::TOO_MANY_REQUESTS, "too many requests".into());
    let mut resp = with_headers(r.into_response(), request_id);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// A refusal answered and recorded.
async fn finish(
    h: &Arc<Http>,
    mut entry: NewAction,
    status: StatusCode,
    msg: String,
    request_id: &str,
) -> Response {
    entry.status = status.as_u16();
    entry.after = msg.clone();
    record(h, entry).await;
    with_headers(ApiError(status, msg).into_response(), request_id)
}

/// Appends an entry to the action log and waits until it is durable. The
/// action itself is already done: a failure here is logged loudly, the
/// answer stands (turning it into an error would invite a retry of a
/// money move that happened).
async fn record(h: &Arc<Http>, entry: NewAction) {
    let done = super::blocking(h, move |e| e.access().record(&entry)).await;
    let durable = match done {
        Ok(d) => d.await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = durable {
        h.switch.metrics.action_not_logged();
        tracing::error!(error = %e.1, "an admin action could not be written to the action log");
    }
}

/// Headers every admin answer carries: the request id, and what a browser
/// must not do with a JSON API (sniff it, frame it, cache it, send a
/// referrer). No CORS headers: other origins are not served.
fn with_headers(mut r: Response, request_id: &str) -> Response {
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    let fixed = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (k, v) in fixed {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

/// What the log keeps of a body: JSON with card numbers reduced to their
/// last four digits and secrets removed, cut to [`SUMMARY`] bytes.
fn summary(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let mut text = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            redact(&mut v);
            v.to_string()
        }
        // Not JSON (a CSV, a malformed body): its size only, since it
        // could hold anything.
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    };
    if text.len() > SUMMARY {
        let mut cut = SUMMARY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Removes what the action log must never hold: card numbers (kept as
/// their last four digits), keys, tokens, passwords and secrets.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                let key = k.to_ascii_lowercase();
                if ["pan", "card_number", "pans"].contains(&key.as_str()) {
                    mask_cards(val);
                } else if ["token", "tmk", "key", "password", "secret", "otp", "csrf"]
                    .iter()
                    .any(|s| key.contains(s))
                {
                    *val = Value::from("[redacted]");
                } else {
                    redact(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if looks_like_card(s) => *s = mask(s),
        _ => {}
    }
}

fn mask_cards(v: &mut Value) {
    match v {
        Value::String(s) => *s = mask(s),
        Value::Array(items) => items.iter_mut().for_each(mask_cards),
        other => *other = Value::from("[redacted]"),
    }
}

/// Twelve or more digits in a row: treated as a card number wherever it
/// appears.
fn looks_like_card(s: &str) -> bool {
    let mut run = 0;
    for b in s.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 12 {
            return true;
        }
    }
    false
}

/// Whether a request may change something as `actor`: always with a
/// bearer token; with a session, only carrying the CSRF token only the
/// session's own pages know (a form's `csrf` field, or the
/// `X-CSRF-Token` header), since its cookie goes with every request the
/// browser makes, whoever's page asks.
fn csrf_sent(actor: &Actor, form: bool, body: &[u8], headers: &HeaderMap) -> bool {
    let Some(csrf) = &actor.csrf else {
        return true;
    };
    let field = if form { form_field(body, "csrf") } else { None };
    let sent = match &field {
        Some(f) => f.as_bytes(),
        None => headers
            .get("x-csrf-token")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default(),
    };
    constant_time_eq(sent, csrf.as_bytes())
}

/// A path with each segment that is all digits, twelve to nineteen of
/// them (a card number's length), masked to its last four. Only whole
/// segments: a card's hash is hex, and one in fourteen has twelve digits
/// in a row somewhere, which must stay as they are for the log to find it.
fn mask_card_segments(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if (12..=19).contains(&seg.len()) && seg.bytes().all(|b| b.is_ascii_digit()) {
                mask(seg)
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn mask(s: &str) -> String {
    let digits: Vec<char> = s.chars().filter(char::is_ascii_digit).collect();
    let last4: String = digits[digits.len().saturating_sub(4)..].iter().collect();
    format!("****{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_never_keeps_a_card_number_or_a_secret() {
        let body = br#"{"pan":"6037991234567890","amount":5000,"tmk":"00112233",
            "note":"card 6037991234567890 paid","token":"cst_abc","pans":["5022291111111111"]}"#;
        let s = summary(body);
        assert!(!s.contains("6037991234567890"), "{s}");
        assert!(!s.contains("5022291111111111"), "{s}");
        assert!(!s.contains("00112233") && !s.contains("cst_abc"), "{s}");
        assert!(s.contains("****7890") && s.contains("5000"), "{s}");
    }

    #[test]
    fn a_card_number_in_a_path_is_masked_and_the_rest_kept() {
        assert_eq!(
            mask_card_segments("/v1/cards/6037991234567890/block"),
            "/v1/cards/****7890/block"
        );
        assert_eq!(
            mask_card_segments("/v1/members/123456789012345"),
            "/v1/members/****2345"
        );
        for kept in [
            "/v1/merchants/MERCHANT0000001/rules/12",
            "/v1/members/12345678901",
            "/v1/cards/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            // A hash with fourteen digits in a row.
            "/v1/cards/a12345678901234b659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0",
        ] {
            assert_eq!(mask_card_segments(kept), kept);
        }
    }

    #[test]
    fn a_credential_gets_its_rate_and_no_more_and_others_keep_theirs() {
        let l = Limiter::new(5);
        let allowed = (0..20).filter(|_| l.allow("a")).count();
        assert_eq!(allowed, 5);
        assert!(l.allow("b"));
    }

    #[test]
    fn admin_is_in_every_set_and_scoped_roles_only_where_named() {
        let m = Role::Merchant {
            merchant: "MER000000000001".parse().unwrap(),
        };
        assert!(Roles::SUPPORT.allows(&Role::Admin));
        assert!(!Roles::SUPPORT.allows(&m));
        assert!(Roles::SUPPORT.or(Roles::MERCHANT).allows(&m));
        assert_eq!(Roles::FINANCE.names(), vec!["admin", "finance"]);
    }
}
