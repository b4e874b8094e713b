//! Admin API for members: enrolment, their record and their birthday.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use clubswitch_engine::{Birthday, Member, MemberId, Status, Tier};
use serde::Deserialize;
use serde_json::json;

use super::{not_found, ApiError, ApiResult, Http, Shared};

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/v1/members", post(add_member))
        .route("/v1/members/{id}", get(get_member).put(update_member))
}

#[derive(Deserialize)]
struct MemberIn {
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    tier: Tier,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    status: Option<Status>,
    /// "MM-DD" or "YYYY-MM-DD" (only the month and day are kept); left
    /// out: unchanged; "": forgotten.
    #[serde(default)]
    birthday: Option<String>,
}

impl MemberIn {
    /// The birthday to record, if the request says one: `Some(None)`
    /// forgets it.
    fn birthday(&self) -> Result<Option<Option<Birthday>>, ApiError> {
        match self.birthday.as_deref().map(str::trim) {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(s) => Ok(Some(Some(s.parse()?))),
        }
    }
}

/// A member as JSON, with their birthday.
fn member_json(h: &Http, m: &Member) -> ApiResult {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    let birthday = h.switch.engine.birthday(m.id)?.map(|b| b.to_string());
    v["birthday"] = json!(birthday);
    Ok(Json(v))
}

async fn add_member(State(h): Shared, Json(m): Json<MemberIn>) -> ApiResult {
    let birthday = m.birthday()?;
    let engine = &h.switch.engine;
    let rec = engine.add_member(&m.name, &m.phone, m.tier, m.groups)?;
    if let Some(b) = birthday {
        engine.set_birthday(rec.id, b)?;
    }
    member_json(&h, &rec)
}

async fn get_member(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    let m = h
        .switch
        .engine
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    member_json(&h, &m)
}

async fn update_member(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(m): Json<MemberIn>,
) -> ApiResult {
    let old = h
        .switch
        .engine
        .member(MemberId(id))?
        .ok_or_else(|| not_found("member"))?;
    let birthday = m.birthday()?;
    let rec = Member {
        id: old.id,
        name: m.name,
        phone: m.phone,
        tier: m.tier,
        groups: m.groups,
        status: m.status.unwrap_or(old.status),
    };
    h.switch.engine.put_member(&rec)?;
    if let Some(b) = birthday {
        h.switch.engine.set_birthday(rec.id, b)?;
    }
    member_json(&h, &rec)
}
