//! Admin API for members: enrolment, their record and their birthday.

use axum::extract::{Path, State};
use axum::Json;
use clubswitch_engine::{
    Birthday, Durable, Engine, EngineError, Language, Member, MemberId, Status, Tier, UnixTime,
};
use serde::Deserialize;

use super::{bad, blocking, not_found, ApiError, ApiResult, Http, Shared};

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
    /// "MM-DD", "YYYY-MM-DD", or a Jalali "1370/05/12" (Persian digits
    /// too; only the month and day are kept); left out: unchanged; "":
    /// forgotten.
    #[serde(default)]
    birthday: Option<String>,
    /// The language the member's messages are written in: "fa" or "en";
    /// left out: unchanged; "": the switch's default.
    #[serde(default)]
    #[schema(example = "fa")]
    language: Option<String>,
    /// Whether the member takes marketing messages (campaigns,
    /// greetings): false opts out; left out: unchanged. Receipts and
    /// notices of expiry always go.
    #[serde(default)]
    marketing: Option<bool>,
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

/// A language as the API names it.
pub(super) fn language_code(l: Language) -> &'static str {
    match l {
        Language::Persian => "fa",
        Language::English => "en",
    }
}

/// "fa", "en", or "" for none chosen.
pub(super) fn parse_language(s: &str) -> Result<Option<Language>, ApiError> {
    match s.trim() {
        "" => Ok(None),
        "fa" => Ok(Some(Language::Persian)),
        "en" => Ok(Some(Language::English)),
        other => Err(bad(format!("language is \"fa\" or \"en\", not {other:?}"))),
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
    /// "fa" or "en"; null: the switch's default.
    #[schema(required = true, example = "fa")]
    language: Option<&'static str>,
    /// Whether marketing messages reach the member.
    marketing: bool,
    /// When the member opted out of marketing (RFC 3339), if they did.
    #[schema(required = true)]
    opted_out: Option<String>,
    /// When the member joined (RFC 3339); unknown for members enrolled
    /// before the switch kept it.
    #[schema(required = true)]
    joined: Option<String>,
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
        language: m.language.map(language_code),
        marketing: m.opted_out.is_none(),
        opted_out: m.opted_out.map(|t| t.to_rfc3339()),
        joined: m.joined.map(|t| t.to_rfc3339()),
    };
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}

pub(super) async fn add_member(State(h): Shared, Json(m): Json<MemberIn>) -> ApiResult {
    let birthday = m.birthday()?;
    let language = m.language.as_deref().map(parse_language).transpose()?;
    let opt_out = m.marketing == Some(false);
    let rec = blocking(&h, move |e| {
        let added = e.admin().add_member(&m.name, &m.phone, m.tier, m.groups)?;
        // Language and consent chosen at enrolment: written with the
        // record's second write, after the first is durable.
        let added = match (language.flatten(), opt_out) {
            (None, false) => added,
            (language, opt_out) => {
                let m = added.wait()?;
                e.admin().put_member(&Member {
                    language,
                    opted_out: opt_out.then(UnixTime::now),
                    ..m
                })?
            }
        };
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
    let birthday = m.birthday()?;
    let language = m.language.as_deref().map(parse_language).transpose()?;
    // Applied to the member as stored, inside the write: a STOP texted
    // meanwhile is kept unless this request says otherwise.
    let edit = move |old: &Member| Member {
        id: old.id,
        name: m.name.clone(),
        phone: m.phone.clone(),
        tier: m.tier,
        groups: m.groups.clone(),
        status: m.status.unwrap_or(old.status),
        language: language.unwrap_or(old.language),
        opted_out: match m.marketing {
            Some(marketing) => opted_out(marketing, old.opted_out),
            None => old.opted_out,
        },
        joined: old.joined,
    };
    let rec = blocking(&h, move |e| {
        let stored = e.admin().edit_member(MemberId(id), edit)?;
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

/// A member's consent to marketing messages.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct MarketingIn {
    /// false: no campaigns or greetings; true: take them again.
    marketing: bool,
}

impl From<bool> for MarketingIn {
    fn from(marketing: bool) -> Self {
        MarketingIn { marketing }
    }
}

/// When a member who takes marketing or not (`marketing`) opted out: an
/// opt-out already recorded keeps its time.
fn opted_out(marketing: bool, since: Option<UnixTime>) -> Option<UnixTime> {
    match marketing {
        true => None,
        false => since.or_else(|| Some(UnixTime::now())),
    }
}

/// A member (or support for them) opts out of marketing, or back in.
pub(super) async fn set_marketing(
    State(h): Shared,
    Path(id): Path<u64>,
    Json(m): Json<MarketingIn>,
) -> ApiResult {
    let rec = blocking(&h, move |e| {
        e.admin().edit_member(MemberId(id), |old| Member {
            opted_out: opted_out(m.marketing, old.opted_out),
            ..old.clone()
        })
    })
    .await?
    .await?;
    member_json(&h, &rec).await
}

/// A text a member sent to the club's number, as the SMS gateway forwards
/// it.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct InboundSms {
    /// The sender's number, in any form the gateway writes it.
    from: String,
    text: String,
}

/// What an inbound text did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct InboundDone {
    /// "opted_out", "opted_in" or "ignored" (no keyword, or no member
    /// with that number).
    #[schema(example = "opted_out")]
    action: &'static str,
    /// Members whose consent changed.
    members: Vec<u64>,
}

/// The gateway's inbound webhook: an opt-out keyword stops marketing to
/// every member with the sender's number, an opt-in keyword restarts it,
/// and any other text is acknowledged and ignored (the gateway must not
/// retry it).
pub(super) async fn inbound_sms(State(h): Shared, Json(m): Json<InboundSms>) -> ApiResult {
    let asked = h.switch.cfg.notices.opt_out_asked(&m.text);
    let Some(opt_out) = asked else {
        return done("ignored", Vec::new());
    };
    let now = UnixTime::now();
    let changed = blocking(&h, move |e| {
        e.admin().opt_out_by_phone(&m.from, opt_out, now)
    })
    .await?
    .await?;
    let members = changed.iter().map(|m| m.0).collect::<Vec<_>>();
    match (members.is_empty(), opt_out) {
        (true, _) => done("ignored", members),
        (false, true) => done("opted_out", members),
        (false, false) => done("opted_in", members),
    }
}

fn done(action: &'static str, members: Vec<u64>) -> ApiResult {
    Ok(Json(
        serde_json::to_value(InboundDone { action, members }).unwrap_or_default(),
    ))
}

/// Members to enrol at once: at most [`IMPORT_MAX`] per call.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ImportIn {
    members: Vec<ImportedMember>,
}

/// One member of an import.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ImportedMember {
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    #[schema(value_type = String, example = "bronze")]
    tier: Tier,
    #[serde(default)]
    groups: Vec<String>,
    /// "fa", "en" or "" (the switch's default).
    #[serde(default)]
    language: String,
    /// False: enrolled opted out of marketing.
    #[serde(default = "yes")]
    marketing: bool,
    /// When they joined the club they come from (YYYY-MM-DD, local), for
    /// their anniversaries; left out: today.
    #[serde(default)]
    joined: Option<String>,
}

fn yes() -> bool {
    true
}

/// Members enrolled by an import.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Imported {
    /// Their ids, in the order given.
    ids: Vec<u64>,
}

/// Members per import call.
pub(super) const IMPORT_MAX: usize = 10_000;

/// Enrols many members at once, all or none: every name and phone number
/// is checked first and the first bad one named.
pub(super) async fn import_members(
    State(h): Shared,
    Json(m): Json<ImportIn>,
) -> ApiResult<Json<Imported>> {
    if m.members.is_empty() || m.members.len() > IMPORT_MAX {
        return Err(bad(format!(
            "an import holds 1 to {IMPORT_MAX} members, not {}",
            m.members.len()
        )));
    }
    let now = UnixTime::now();
    let offset = h.switch.engine.config().utc_offset_secs;
    let records = m
        .members
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let joined = match m.joined.as_deref().map(str::trim) {
                None | Some("") => now,
                // YYYY-MM-DD exactly: a four-digit year keeps the
                // arithmetic below far from overflow.
                Some(d) => Some(d)
                    .filter(|d| d.len() == 10)
                    .and_then(crate::config::parse_date)
                    .map(|day| UnixTime(day * 86_400 - offset))
                    .filter(|t| *t <= now)
                    .ok_or_else(|| {
                        bad(format!(
                            "member {i}: joined is a past YYYY-MM-DD, not {d:?}"
                        ))
                    })?,
            };
            Ok(Member {
                joined: Some(joined),
                id: MemberId(0),
                name: m.name,
                phone: m.phone,
                tier: m.tier,
                groups: m.groups,
                status: Status::Active,
                language: parse_language(&m.language)
                    .map_err(|e| bad(format!("member {i}: {}", e.1)))?,
                opted_out: (!m.marketing).then_some(now),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let ids = blocking(&h, move |e| e.admin().import_members(&records))
        .await?
        .await?;
    Ok(Json(Imported {
        ids: ids.into_iter().map(|id| id.0).collect(),
    }))
}
