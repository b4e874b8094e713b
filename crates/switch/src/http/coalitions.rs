//! Admin API for coalitions: merchants that honour one another's store
//! credit, and the clearing report of who owes whom for it.

use axum::extract::State;
use axum::Json;
use clubswitch_engine::loyalty::{Coalition, Owed};
use serde::{Deserialize, Serialize};

use super::{blocking, merchant_id, ApiResult, Shared};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CoalitionIn {
    name: String,
    merchants: Vec<String>,
}

/// Merchants that honour one another's store credit.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct CoalitionView {
    name: String,
    merchants: Vec<String>,
}

fn coalition_view(c: &Coalition) -> CoalitionView {
    CoalitionView {
        name: c.name.clone(),
        merchants: c.merchants.iter().map(|m| m.as_str().to_owned()).collect(),
    }
}

/// Creates or replaces a coalition of merchants that honour one another's
/// store credit.
pub(super) async fn put_coalition(
    State(h): Shared,
    Json(c): Json<CoalitionIn>,
) -> ApiResult<Json<CoalitionView>> {
    let merchants = c
        .merchants
        .iter()
        .map(|m| merchant_id(m))
        .collect::<ApiResult<Vec<_>>>()?;
    let coalition = Coalition {
        name: c.name,
        merchants,
    };
    let stored = coalition.clone();
    blocking(&h, move |e| e.loyalty().put_coalition(&stored))
        .await?
        .await?;
    Ok(Json(coalition_view(&coalition)))
}

pub(super) async fn list_coalitions(State(h): Shared) -> ApiResult<Json<Vec<CoalitionView>>> {
    let list = blocking(&h, |e| e.loyalty().coalitions()).await?;
    Ok(Json(list.iter().map(coalition_view).collect()))
}

/// The inter-merchant clearing report: who owes whom for coalition credit.
pub(super) async fn clearing(State(h): Shared) -> ApiResult<Json<Vec<Owed>>> {
    let owed = blocking(&h, |e| e.loyalty().clearing()).await?;
    Ok(Json(owed))
}
