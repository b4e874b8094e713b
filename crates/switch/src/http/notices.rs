//! Admin API for the notice outbox: what waits to be sent to members.

use axum::extract::State;
use axum::Json;
use clubswitch_engine::UnixTime;
use serde::Serialize;

use super::{blocking, ApiResult, Shared};
use crate::gateway::NoticeDetail;

/// The notices waiting in the outbox: how many, and the first of them.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct NoticesView {
    /// Notices in the outbox.
    waiting: usize,
    /// The first 100 due, soonest first.
    first: Vec<NoticeView>,
}

/// A notice waiting for delivery.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct NoticeView {
    id: u64,
    member: u64,
    /// The member's phone, masked: `0912***4567`.
    to: String,
    /// Unix seconds: when it was written, and when it is tried next.
    at: i64,
    notice: NoticeDetail,
    attempts: u32,
    next_at: i64,
    /// Why the last attempt failed (`null`: not tried yet, or no error).
    #[schema(required = true)]
    last_error: Option<String>,
}

/// The first notices waiting in the outbox (phone numbers masked, login
/// codes withheld).
pub(super) async fn notices(State(h): Shared) -> ApiResult<Json<NoticesView>> {
    let (waiting, total) = blocking(&h, |e| {
        Ok((
            e.outbox().due(UnixTime(i64::MAX), 100, 100)?,
            e.outbox().len(),
        ))
    })
    .await?;
    let first = waiting
        .iter()
        .map(|n| NoticeView {
            id: n.id,
            member: n.member.0,
            to: crate::notify::mask_phone(&n.phone),
            at: n.at.0,
            notice: NoticeDetail::withheld(&n.kind),
            attempts: n.attempts,
            next_at: n.next_at.0,
            last_error: n.last_error.clone(),
        })
        .collect();
    Ok(Json(NoticesView {
        waiting: total,
        first,
    }))
}
