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
use super::super::{blocking, login as api, Shared};
use super::i18n::Lang;
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
/// A user who chose a language before reads in it from this sign-in on,
/// in any browser.
fn signed_in(
    page: &Page,
    r: Result<Response, super::ApiError>,
    phone: Option<&str>,
    chosen: Option<Lang>,
) -> PageResult {
    match r {
        Ok(ok) => {
            let mut to = see_other("/");
            if let Some(c) = ok.headers().get(header::SET_COOKIE) {
                to.headers_mut().insert(header::SET_COOKIE, c.clone());
            }
            if let Some(v) = chosen.and_then(|l| HeaderValue::from_str(&l.cookie()).ok()) {
                to.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(to)
        }
        Err(e) => {
            let status = e.0;
            let key = if status == StatusCode::TOO_MANY_REQUESTS {
                "err.locked_out"
            } else {
                "err.wrong_login"
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
    let name = f.name.clone();
    let r = api::sign_in(
        State(h.clone()),
        Json(api::PasswordIn {
            name: f.name,
            password: f.password,
        }),
    )
    .await;
    let chosen = match r {
        Ok(_) => blocking(&h, move |e| e.access().user(&name))
            .await
            .ok()
            .flatten()
            .and_then(|u| u.language)
            .map(Lang::of),
        Err(_) => None,
    };
    signed_in(&page, r, None, chosen)
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
    signed_in(&page, r, Some(&phone), None)
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

/// Whether `back` is a path on this console, safe to send the browser to:
/// it starts with one `/`, and holds no backslash, whitespace or control
/// character (a browser drops tabs and newlines from a URL, so `/\t/evil`
/// would go to `//evil`, another site).
fn is_local_path(back: &str) -> bool {
    back.starts_with('/')
        && !back.starts_with("//")
        && !back
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
}

/// Keeps the browser's language choice for a year, and goes back; a
/// signed-in user's choice is kept with the user too, for its next sign-in
/// anywhere. A member signed in by code has no user record: its choice
/// stays with the browser.
pub(in super::super) async fn language(
    State(h): Shared,
    actor: Option<Extension<Actor>>,
    Form(f): Form<LangForm>,
) -> Response {
    let lang = Lang::from_code(&f.lang);
    let back = if is_local_path(&f.back) {
        f.back.as_str()
    } else {
        "/"
    };
    // The guard gives the actor only to a request that carried its
    // session's CSRF token: another site's form changes no user.
    if let Some(Extension(actor)) = actor {
        let name = actor.name.clone();
        let kept = blocking(&h, move |e| {
            let user = e.access().user(&name)?;
            Ok(user.map(|_| e.access().set_language(&name, lang.language())))
        })
        .await;
        match kept {
            Ok(Some(Ok(durable))) => {
                if let Err(e) = durable.await {
                    tracing::warn!(user = %actor.name, error = %e, "language choice not kept");
                }
            }
            Ok(None) => {}
            Ok(Some(Err(e))) => {
                tracing::warn!(user = %actor.name, error = %e, "language choice not kept");
            }
            Err(e) => {
                tracing::warn!(user = %actor.name, error = %e.1, "language choice not kept");
            }
        }
    }
    let mut r = see_other(back);
    if let Ok(v) = HeaderValue::from_str(&lang.cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.into_response()
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_a_path_on_this_console_is_gone_back_to() {
        for ok in ["/", "/members/7?page=2", "/merchants/MERCHANT0000001/rules"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil.example",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
