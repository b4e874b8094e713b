//! Admin API for lucky draws: running one (and crediting its prizes),
//! listing them, and running a recorded one again from its seed.

use axum::extract::{Path, State};
use axum::Json;
use clubswitch_engine::loyalty::{Draw, DrawSpec};
use clubswitch_engine::UnixTime;
use serde::{Deserialize, Serialize};

use super::{blocking, merchant_id, ApiResult, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DrawIn {
    merchant: String,
    /// Unix times; purchases in [from, to) make a member eligible.
    from: i64,
    to: i64,
    prizes: u32,
    prize_points: u64,
    /// Default 2500 (25%).
    min_chance_bps: Option<u32>,
    /// Default: a fresh random seed, recorded with the draw.
    seed: Option<u64>,
}

/// A lucky draw as run and recorded.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DrawView {
    id: u64,
    /// Unix seconds: when it ran.
    at: i64,
    merchant: String,
    /// Unix seconds; purchases in [from, to) made a member eligible.
    from: i64,
    to: i64,
    prizes: u32,
    prize_points: u64,
    /// Smallest chance of winning, in basis points.
    min_chance_bps: u32,
    /// The seed its published algorithm shuffled with (SplitMix64).
    seed: u64,
    /// Member ids, in member-id order.
    eligible: Vec<u64>,
    winners: Vec<u64>,
    /// The published chance of each eligible member, in basis points.
    odds_bps: u32,
}

fn draw_view(d: &Draw) -> DrawView {
    DrawView {
        id: d.id,
        at: d.at.0,
        merchant: d.spec.merchant.as_str().to_owned(),
        from: d.spec.from.0,
        to: d.spec.to.0,
        prizes: d.spec.prizes,
        prize_points: d.spec.prize_points,
        min_chance_bps: d.spec.min_chance_bps,
        seed: d.spec.seed,
        eligible: d.eligible.iter().map(|m| m.0).collect(),
        winners: d.winners.iter().map(|m| m.0).collect(),
        odds_bps: d.odds_bps,
    }
}

/// Runs a lucky draw now and credits its prizes.
pub(super) async fn run_draw(
    State(h): Shared,
    k: super::Key,
    Json(d): Json<DrawIn>,
) -> ApiResult<Json<DrawView>> {
    let spec = DrawSpec {
        merchant: merchant_id(&d.merchant)?,
        from: UnixTime(d.from),
        to: UnixTime(d.to),
        prizes: d.prizes,
        prize_points: d.prize_points,
        min_chance_bps: d.min_chance_bps.unwrap_or(2_500),
        seed: d.seed.unwrap_or_else(rand::random),
    };
    let draw = blocking(&h, move |e| k.loyalty(e).run_draw(&spec, UnixTime::now()))
        .await?
        .await?;
    Ok(Json(draw_view(&draw)))
}

/// Lucky draws (a merchant's user: its own).
pub(super) async fn list_draws(
    State(h): Shared,
    axum::Extension(actor): axum::Extension<super::access::Actor>,
) -> ApiResult<Json<Vec<DrawView>>> {
    let draws = blocking(&h, |e| e.loyalty().draws()).await?;
    Ok(Json(
        draws
            .iter()
            .filter(|d| actor.merchant().is_none_or(|own| *own == d.spec.merchant))
            .map(draw_view)
            .collect(),
    ))
}

/// Whether a draw's winners came out again.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct DrawVerified {
    draw: u64,
    /// The published algorithm, run again from the recorded seed, chose
    /// the recorded winners.
    reproduced: bool,
}

/// Runs a recorded draw's published algorithm again from its seed.
pub(super) async fn verify_draw(
    State(h): Shared,
    Path(id): Path<u64>,
) -> ApiResult<Json<DrawVerified>> {
    let ok = blocking(&h, move |e| e.loyalty().verify_draw(id)).await?;
    Ok(Json(DrawVerified {
        draw: id,
        reproduced: ok,
    }))
}
