//! Signing in to the console: a user's name and password, or a member's
//! phone and a one-time code; either gives a session cookie (HttpOnly,
//! SameSite=Strict, Secure when the admin API speaks TLS) and the CSRF
//! token its changing requests must carry in `X-CSRF-Token`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use clubswitch_engine::{Session, SignIn, UnixTime};
use serde::Deserialize;

use super::access::{Actor, SESSION_COOKIE};
use super::{bad, blocking, ApiError, ApiResult, Http, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PasswordIn {
    pub(super) name: String,
    pub(super) password: String,
}

/// The answer to a sign-in: the session's cookie and CSRF token, or why
/// not.
fn signed_in(h: &Http, outcome: SignIn) -> Result<Response, ApiError> {
    match outcome {
        SignIn::Session(id, s) => Ok(session_response(h, &id, &s)),
        SignIn::Refused => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong name, password or code".into(),
        )),
        SignIn::Locked(until) => Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many wrong passwords: signing in is locked for {} more seconds",
                (until.0 - UnixTime::now().0).max(1)
            ),
        )),
    }
}

/// A session just begun (its id goes in the cookie, not here).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SessionView {
    actor: String,
    role: &'static str,
    /// To send as `X-CSRF-Token` with every request other than GET.
    csrf: String,
    /// Unix seconds.
    expires: i64,
    #[schema(required = true)]
    merchant: Option<String>,
    #[schema(required = true)]
    member: Option<u64>,
}

fn session_response(h: &Http, id: &str, s: &Session) -> Response {
    let secure = if h.switch.cfg.admin.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let max_age = (s.expires.0 - s.created.0).max(0);
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    let body = Json(SessionView {
        actor: s.actor.clone(),
        role: s.role.name(),
        csrf: s.csrf.clone(),
        expires: s.expires.0,
        merchant: s.role.merchant().map(|m| m.as_str().to_owned()),
        member: s.role.member().map(|m| m.0),
    });
    let mut r = body.into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Signs a user in with its password.
pub(super) async fn sign_in(
    State(h): Shared,
    Json(p): Json<PasswordIn>,
) -> Result<Response, ApiError> {
    let policy = h.switch.cfg.admin.login_policy();
    let outcome = blocking(&h, move |e| {
        e.access()
            .sign_in(&p.name, &p.password, UnixTime::now(), &policy)
    })
    .await?
    .await?;
    signed_in(&h, outcome)
}

/// The answer to signing out.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SignedOut {
    /// Always `true`: the session is over and its cookie cleared.
    signed_out: bool,
}

/// Ends the caller's session and clears its cookie.
pub(super) async fn sign_out(
    State(h): Shared,
    Extension(actor): Extension<Actor>,
) -> Result<Response, ApiError> {
    let Some(id) = actor.session else {
        return Err(bad(
            "not signed in with a session (a token is revoked, not signed out)",
        ));
    };
    blocking(&h, move |e| e.access().sign_out(&id))
        .await?
        .await?;
    let mut r = Json(SignedOut { signed_out: true }).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cs_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(r)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PhoneIn {
    pub(super) phone: String,
}

/// The answer to asking for a code: the same whether or not a member has
/// the phone, so it tells nothing of who is a member.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct CodeSent {
    /// What happens next, in words.
    sent: &'static str,
}

/// Sends a one-time code to the member with this phone. The answer is the
/// same whether or not a member has it.
pub(super) async fn send_code(
    State(h): Shared,
    Json(p): Json<PhoneIn>,
) -> ApiResult<Json<CodeSent>> {
    blocking(&h, move |e| e.access().send_code(&p.phone, UnixTime::now()))
        .await?
        .await?;
    Ok(Json(CodeSent {
        sent: "if a member has this phone, a code is on its way; it works once, for five minutes",
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct CodeIn {
    pub(super) phone: String,
    pub(super) otp: String,
}

/// Signs a member in with the code sent to its phone.
pub(super) async fn sign_in_with_code(
    State(h): Shared,
    Json(c): Json<CodeIn>,
) -> Result<Response, ApiError> {
    let policy = h.switch.cfg.admin.login_policy();
    let outcome = blocking(&h, move |e| {
        e.access()
            .sign_in_with_code(&c.phone, &c.otp, UnixTime::now(), &policy)
    })
    .await?
    .await?;
    signed_in(&h, outcome)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct NewPasswordIn {
    password: String,
}

/// The answer to setting a password (which it never shows).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PasswordSet {
    name: String,
    /// Always `set`.
    password: &'static str,
}

/// Sets a user's console password.
pub(super) async fn set_password(
    State(h): Shared,
    Path(name): Path<String>,
    Json(p): Json<NewPasswordIn>,
) -> ApiResult<Json<PasswordSet>> {
    let user = name.clone();
    blocking(&h, move |e| e.access().set_password(&user, &p.password))
        .await?
        .await?;
    Ok(Json(PasswordSet {
        name,
        password: "set",
    }))
}
