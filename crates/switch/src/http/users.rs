//! Admin API for users, their tokens and the action log; and what a
//! caller may ask about itself (`whoami`, the route table's rules).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use clubswitch_engine::{ActionEntry, LogFilter, MemberId, Role, UnixTime, User};
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::{AccessView, Actor};
use super::{bad, blocking, merchant_id, ApiResult, Shared};
use crate::config::parse_date;

/// A user as the API shows it; its token only in the answer that made it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct UserView {
    name: String,
    /// admin, support, finance, merchant, cashier or member.
    role: &'static str,
    #[schema(required = true)]
    merchant: Option<String>,
    #[schema(required = true)]
    member: Option<u64>,
    /// Unix seconds.
    created: i64,
    #[schema(required = true)]
    revoked: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<i64>,
}

fn user_json(u: &User) -> Value {
    serde_json::to_value(UserView {
        name: u.name.clone(),
        role: u.role.name(),
        merchant: u.role.merchant().map(|m| m.as_str().to_owned()),
        member: u.role.member().map(|m| m.0),
        created: u.created.0,
        revoked: u.revoked.map(|r| r.0),
        token: None,
        expires: None,
    })
    .unwrap_or_default()
}

/// Who the caller is.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct WhoAmI {
    name: String,
    /// admin, support, finance, merchant, cashier or member.
    role: &'static str,
    #[schema(required = true)]
    merchant: Option<String>,
    #[schema(required = true)]
    member: Option<u64>,
}

pub(super) async fn whoami(Extension(actor): Extension<Actor>) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: actor.name,
        role: actor.role.name(),
        merchant: actor.role.merchant().map(|m| m.as_str().to_owned()),
        member: actor.role.member().map(|m| m.0),
    })
}

/// The OpenAPI 3.1 description of the admin API.
pub(super) async fn openapi(State(h): Shared) -> ApiResult {
    Ok(Json(h.openapi.clone()))
}

/// Every route and who may call it.
pub(super) async fn access(State(h): Shared) -> Json<Vec<AccessView>> {
    Json(h.rules.view())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct UserIn {
    name: String,
    role: String,
    merchant: Option<String>,
    member: Option<u64>,
    /// The token's lifetime in days (default: until revoked).
    expires_days: Option<u32>,
}

/// The role a request names, with the scope it needs and nothing else.
fn role(u: &UserIn) -> ApiResult<Role> {
    let unscoped = |r: Role| {
        if u.merchant.is_some() || u.member.is_some() {
            Err(bad(format!(
                "the {} role takes no merchant or member",
                r.name()
            )))
        } else {
            Ok(r)
        }
    };
    let merchant = || {
        if u.member.is_some() {
            return Err(bad("this role takes a merchant, not a member"));
        }
        u.merchant
            .as_deref()
            .ok_or_else(|| bad("this role needs a merchant"))
            .and_then(merchant_id)
    };
    match u.role.as_str() {
        "admin" => unscoped(Role::Admin),
        "support" => unscoped(Role::Support),
        "finance" => unscoped(Role::Finance),
        "merchant" => Ok(Role::Merchant {
            merchant: merchant()?,
        }),
        "cashier" => Ok(Role::Cashier {
            merchant: merchant()?,
        }),
        "member" => match (u.member, &u.merchant) {
            (Some(id), None) => Ok(Role::Member {
                member: MemberId(id),
            }),
            _ => Err(bad("the member role needs a member and no merchant")),
        },
        other => Err(bad(format!(
            "unknown role {other:?}: admin, support, finance, merchant, cashier or member"
        ))),
    }
}

fn expiry(days: Option<u32>, now: UnixTime) -> Option<UnixTime> {
    days.map(|d| now.plus(i64::from(d) * 86_400))
}

/// Adds a user; the answer carries its token, shown this once.
pub(super) async fn add_user(State(h): Shared, Json(u): Json<UserIn>) -> ApiResult {
    let role = role(&u)?;
    let now = UnixTime::now();
    let expires = expiry(u.expires_days, now);
    let (user, token) = blocking(&h, move |e| {
        e.access().add_user(&u.name, role, expires, now)
    })
    .await?
    .await?;
    let mut out = user_json(&user);
    out["token"] = json!(token);
    out["expires"] = json!(expires.map(|e| e.0));
    Ok(Json(out))
}

pub(super) async fn list_users(State(h): Shared) -> ApiResult {
    let users = blocking(&h, |e| e.access().users()).await?;
    Ok(Json(Value::Array(users.iter().map(user_json).collect())))
}

/// Revokes a user: all its tokens are refused from the next request on.
pub(super) async fn revoke_user(State(h): Shared, Path(name): Path<String>) -> ApiResult {
    let u = blocking(&h, move |e| e.access().revoke_user(&name, UnixTime::now()))
        .await?
        .await?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(super) struct TokenIn {
    expires_days: Option<u32>,
}

/// A token just made, shown this once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct TokenView {
    /// The user it is for.
    name: String,
    token: String,
    /// Unix seconds; `null`: until the user is revoked.
    #[schema(required = true)]
    expires: Option<i64>,
}

/// Another token for a user, shown this once.
pub(super) async fn new_token(
    State(h): Shared,
    Path(name): Path<String>,
    body: Option<Json<TokenIn>>,
) -> ApiResult<Json<TokenView>> {
    let now = UnixTime::now();
    let expires = expiry(body.unwrap_or_default().0.expires_days, now);
    let user = name.clone();
    let token = blocking(&h, move |e| e.access().new_token(&user, expires, now))
        .await?
        .await?;
    Ok(Json(TokenView {
        name,
        token,
        expires: expires.map(|e| e.0),
    }))
}

/// An action log entry as the API shows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ActionView {
    seq: u64,
    /// Unix seconds.
    at: i64,
    actor: String,
    role: String,
    source: String,
    request_id: String,
    action: String,
    target: String,
    status: u16,
    before: String,
    after: String,
    /// SHA-256 of the entry and the one before it (hex).
    hash: String,
}

fn entry_json(e: &ActionEntry) -> Value {
    let a = &e.action;
    serde_json::to_value(ActionView {
        seq: e.seq,
        at: a.at.0,
        actor: a.actor.clone(),
        role: a.role.clone(),
        source: a.source.clone(),
        request_id: a.request_id.clone(),
        action: a.action.clone(),
        target: a.target.clone(),
        status: a.status,
        before: a.before.clone(),
        after: a.after.clone(),
        hash: hex::encode(e.hash),
    })
    .unwrap_or_default()
}

/// The action log, newest first: `?actor=`, `?target=` (a part of the
/// path), `?from=` and `?to=` (YYYY-MM-DD, UTC, inclusive), `?limit=`.
pub(super) async fn audit_log(
    State(h): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let day = |k: &str| -> ApiResult<Option<i64>> {
        q.get(k)
            .map(|s| parse_date(s).ok_or_else(|| bad(format!("{k} must be YYYY-MM-DD"))))
            .transpose()
    };
    let limit = q
        .get("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| bad("limit must be a number"))
        })
        .transpose()?;
    let f = LogFilter {
        actor: q.get("actor").cloned(),
        target: q.get("target").cloned(),
        from: day("from")?.map(|d| UnixTime(d * 86_400)),
        to: day("to")?.map(|d| UnixTime(d * 86_400 + 86_399)),
        limit,
    };
    let entries = blocking(&h, move |e| e.access().log(&f)).await?;
    Ok(Json(Value::Array(entries.iter().map(entry_json).collect())))
}
