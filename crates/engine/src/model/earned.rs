//! What a confirmed purchase earned (points, cashback, a tier upgrade),
//! kept on the purchase so a reversal or refund can take it back.

use serde::{Deserialize, Serialize};

use super::{MemberId, Tier};
use crate::codec::Record;

/// What one confirmed purchase earned, and what has been taken back
/// (kept only for purchases that earned points or cashback or raised the
/// member's tier).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Earned {
    pub member: MemberId,
    pub points: u64,
    pub cashback: u64,
    /// Store credit one point was converted at (for taking back converted
    /// points); 0 if the programme does not convert.
    pub credit_per_point: u64,
    /// Taken back so far (owed, whether recovered or written off).
    pub returned_points: u64,
    pub returned_cashback: u64,
    /// What could not be recovered: points already spent (as converted
    /// credit) and cashback already spent.
    pub written_off_points: u64,
    pub written_off_cashback: u64,
    /// The tier this purchase upgraded the member from.
    pub upgraded_from: Option<Tier>,
    /// For a refund: what it recovered (points, credit, cashback), which
    /// reversing the refund gives back.
    pub refund: Option<Recovered>,
}

/// What a take-back recovered.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Recovered {
    pub points: u64,
    /// Store credit taken in place of converted points.
    pub credit_for_points: u64,
    pub cashback: u64,
    /// The owed shares this take-back counted against the purchase.
    pub owed_points: u64,
    pub owed_cashback: u64,
}

impl Record for Earned {}
