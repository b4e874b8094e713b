//! Admin API for members: enrolment, their record and their birthday.

use axum::extract::{Path, State};
use axum::Json;
use clubswitch_engine::{Birthday, Durable, Engine, EngineError, Member, MemberId, Status, Tier};
use serde::Deserialize;

use super::{blocking, not_found, ApiError, ApiResult, Http, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct MemberIn {
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    #[schema(value_type = String, example = "silver")]
    tier: Tier,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "active")]
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

/// A member as the API shows it, with its birthday.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct MemberView {
    id: u64,
    name: String,
    phone: String,
    #[schema(value_type = String, example = "silver")]
    tier: Tier,
    groups: Vec<String>,
    #[schema(value_type = String, example = "active")]
    status: Status,
    /// "MM-DD", if known.
    #[schema(required = true)]
    birthday: Option<String>,
}

/// A member as JSON, with their birthday.
async fn member_json(h: &Http, m: &Member) -> ApiResult {
    let id = m.id;
    let birthday = blocking(h, move |e| e.loyalty().birthday(id))
        .await?
        .map(|b| b.to_string());
    let view = MemberView {
        id: m.id.0,
        name: m.name.clone(),
        phone: m.phone.clone(),
        tier: m.tier,
        groups: m.groups.clone(),
        status: m.status,
        birthday,
    };
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}

pub(super) async fn add_member(State(h): Shared, Json(m): Json<MemberIn>) -> ApiResult {
    let birthday = m.birthday()?;
    let rec = blocking(&h, move |e| {
        let added = e.admin().add_member(&m.name, &m.phone, m.tier, m.groups)?;
        with_birthday(e, added, birthday)
    })
    .await?
    .await?;
    member_json(&h, &rec).await
}

pub(super) async fn get_member(State(h): Shared, Path(id): Path<u64>) -> ApiResult {
    let m = blocking(&h, move |e| e.admin().member(MemberId(id)))
        .await?
        .ok_or_else(|| not_found("member"))?;
    member_json(&h, &m).await
}

pub(super) async fn update_member(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(m): Json<MemberIn>,
) -> ApiResult {
    let old = blocking(&h, move |e| e.admin().member(MemberId(id)))
        .await?
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
    let rec = blocking(&h, move |e| {
        let stored = e.admin().put_member(&rec)?.map(|()| rec);
        with_birthday(e, stored, birthday)
    })
    .await?
    .await?;
    member_json(&h, &rec).await
}

/// A member just written, and its birthday written after it when the
/// request set one (`Some(None)` clears it). The first write is waited
/// for before the second: a flush failing between them must not leave the
/// second reported durable and the first lost.
fn with_birthday(
    e: &Engine,
    member: Durable<Member>,
    birthday: Option<Option<Birthday>>,
) -> Result<Durable<Member>, EngineError> {
    match birthday {
        Some(b) => {
            let m = member.wait()?;
            Ok(e.loyalty().set_birthday(m.id, b)?.map(|()| m))
        }
        None => Ok(member),
    }
}
