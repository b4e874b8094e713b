//! Signing in and out of the console, and choosing its language. The
//! sign-in itself is the API's (`super::super::login`): the same lockout,
//! the same session cookie (HttpOnly, SameSite=Strict, Secure under TLS),
//! the same one-time codes.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::super::access::Actor;
use super::super::{login as api, Shared};
use super::i18n::LANG_COOKIE;
use super::{see_other, Page, PageResult};

/// The sign-in page: staff by name and password, members by phone.
pub(in super::super) async fn form(page: Page) -> PageResult {
    page.render("login.html", json!({ "title": "title.login" }))
}

#[derive(Deserialize)]
pub(in super::super) struct PasswordForm {
    name: String,
    password: String,
}

/// The answer to a sign-in: the API's cookie on a redirect home, or the
/// sign-in page again with why not.
fn signed_in(page: &Page, r: Result<Response, super::ApiError>, phone: Option<&str>) -> PageResult {
    match r {
        Ok(ok) => {
            let mut to = see_other("/");
            if let Some(c) = ok.headers().get(header::SET_COOKIE) {
                to.headers_mut().insert(header::SET_COOKIE, c.clone());
            }
            Ok(to)
        }
        Err(e) => {
            let status = e.0;
            let key = if status == StatusCode::TOO_MANY_REQUESTS {
                None
            } else {
                Some("err.wrong_login")
            };
            let mut r = page.render(
                "login.html",
                json!({
                    "title": "title.login", "error_key": key, "error": e.1,
                    "phone": phone, "code_sent": phone.is_some(),
                }),
            )?;
            *r.status_mut() = status;
            Ok(r)
        }
    }
}

pub(in super::super) async fn password(
    State(h): Shared,
    page: Page,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    let r = api::sign_in(
        State(h),
        Json(api::PasswordIn {
            name: f.name,
            password: f.password,
        }),
    )
    .await;
    signed_in(&page, r, None)
}

#[derive(Deserialize)]
pub(in super::super) struct PhoneForm {
    phone: String,
}

/// Sends a member its code, and shows the form to type it in (the same
/// page whether or not a member has that phone).
pub(in super::super) async fn send_code(
    State(h): Shared,
    page: Page,
    Form(f): Form<PhoneForm>,
) -> PageResult {
    let phone = f.phone.clone();
    page.json(api::send_code(State(h), Json(api::PhoneIn { phone: f.phone })).await)?;
    page.render(
        "login.html",
        json!({ "title": "title.login", "code_sent": true, "phone": phone }),
    )
}

#[derive(Deserialize)]
pub(in super::super) struct CodeForm {
    phone: String,
    otp: String,
}

pub(in super::super) async fn verify(
    State(h): Shared,
    page: Page,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let phone = f.phone.clone();
    let r = api::sign_in_with_code(
        State(h),
        Json(api::CodeIn {
            phone: f.phone,
            otp: f.otp,
        }),
    )
    .await;
    signed_in(&page, r, Some(&phone))
}

/// Ends the session, and back to the sign-in page.
pub(in super::super) async fn logout(
    State(h): Shared,
    page: Page,
    actor: Extension<Actor>,
) -> PageResult {
    let r = api::sign_out(State(h), actor)
        .await
        .map_err(|e| page.fail(e))?;
    let mut to = see_other("/login");
    if let Some(c) = r.headers().get(header::SET_COOKIE) {
        to.headers_mut().insert(header::SET_COOKIE, c.clone());
    }
    Ok(to)
}

#[derive(Deserialize)]
pub(in super::super) struct LangForm {
    lang: String,
    /// The page to go back to (a path on this console only).
    #[serde(default)]
    back: String,
}

/// Keeps the browser's language choice for a year, and goes back.
pub(in super::super) async fn language(Form(f): Form<LangForm>) -> Response {
    let lang = super::i18n::Lang::from_code(&f.lang);
    let back = if f.back.starts_with('/') && !f.back.starts_with("//") && !f.back.contains('\\') {
        f.back.as_str()
    } else {
        "/"
    };
    let mut r = see_other(back);
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000",
        lang.code()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.into_response()
}
