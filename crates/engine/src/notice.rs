//! The outbox of member notices.
//!
//! A notice is written in the same transaction as the event it tells of (a
//! purchase, a tier change), so it exists exactly when the event does, and
//! is delivered at least once by whoever drains the outbox (the daemon's
//! notifier): a delivered notice is removed, a failed one waits with
//! exponential backoff and is tried again. Nothing here waits for a
//! gateway, so a slow or dead one never delays a terminal.

use clubswitch_wire::{MerchantId, Rrn};
use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::Result;
use crate::model::{Language, Member, MemberId, Tier, UnixTime};
use crate::storage::{Table, Tx, TxResult};

/// The outbox of member notices: what is due, and what became of each
/// delivery.
pub struct Outbox<'a> {
    core: &'a Core,
}

impl<'a> Outbox<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Outbox { core }
    }
}

/// What a notice tells.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A confirmed purchase.
    Receipt {
        rrn: Rrn,
        merchant: MerchantId,
        amount: u64,
        points: u64,
    },
    /// The club balance fell below the configured threshold.
    LowBalance { available: i64 },
    /// The member's tier changed.
    TierChange { from: Tier, to: Tier },
    /// The member became VIP, through the month before `until` (a month
    /// index).
    Vip { until: i64 },
    /// Points turned into store credit.
    PointsConverted {
        merchant: MerchantId,
        points: u64,
        credit: u64,
    },
    /// A referral bonus was paid.
    ReferralBonus { merchant: MerchantId, points: u64 },
    /// The member won a lucky draw.
    DrawWon {
        draw: u64,
        merchant: MerchantId,
        points: u64,
    },
    /// Store credit or points came back after a refund or reversal.
    Returned {
        rrn: Rrn,
        merchant: MerchantId,
        points: u64,
        credit: u64,
    },
    /// Points or store credit at a merchant will expire: this much by the
    /// end of local day `by` (the first day any of it is no longer valid
    /// is `by + 1`).
    ExpiryWarning {
        merchant: MerchantId,
        points: u64,
        credit: u64,
        by: i64,
    },
    /// Points or store credit at a merchant expired.
    Expired {
        merchant: MerchantId,
        points: u64,
        credit: u64,
    },
    /// Greetings on the member's birthday.
    Birthday,
    /// The member's card (by its last four digits) is valid through the
    /// end of local day `through`.
    CardExpiring { last4: String, through: i64 },
    /// A one-time code to sign in to the console with.
    LoginCode { code: String },
    /// A campaign's message (its text is the campaign's, written for the
    /// member when it goes). Only in the marketing lane (see `campaign`).
    Campaign { campaign: u64 },
    /// The member last bought at a merchant `days` days ago (the
    /// merchant's programme asks for this reminder).
    Repurchase { merchant: MerchantId, days: u32 },
    /// The member joined the club `years` years ago today.
    Anniversary { years: u32 },
    /// The member will fall from `tier` at the review on local day `by`
    /// unless they spend `short` rials more before it.
    TierAtRisk { tier: Tier, short: u64, by: i64 },
}

/// One notice in the outbox.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Notice {
    pub id: u64,
    pub member: MemberId,
    /// Where to send it (the member's phone number when it was written).
    pub phone: String,
    pub at: UnixTime,
    pub kind: NoticeKind,
    pub attempts: u32,
    /// Not before this time.
    pub next_at: UnixTime,
    pub last_error: Option<String>,
    /// The language to write it in (the member's when it was written;
    /// none chosen: the switch's default). Format version 5.
    pub language: Option<Language>,
}

/// Queues a notice to `member` inside the running transaction, unless the
/// member has no number to send it to; whether it did.
pub(crate) fn enqueue(
    tx: &Tx<'_>,
    now: UnixTime,
    member: &Member,
    kind: NoticeKind,
) -> TxResult<bool> {
    if member.phone.trim().is_empty() {
        return Ok(false);
    }
    let id = tx.next_id()?;
    let notice = Notice {
        id,
        member: member.id,
        phone: member.phone.clone(),
        at: now,
        kind,
        attempts: 0,
        next_at: now,
        last_error: None,
        language: member.language,
    };
    tx.put(Table::Outbox, &id.to_be_bytes(), &notice)?;
    Ok(true)
}

/// Notices in `table` due at `now`, in key order, at most `max`, looking
/// at no more than `scan` records (the outbox and the marketing lane).
pub(crate) fn due_in(
    store: &crate::storage::Store,
    table: Table,
    now: UnixTime,
    max: usize,
    scan: usize,
) -> Result<Vec<Notice>> {
    let mut due = Vec::new();
    for item in store.scan::<Notice>(table, b"").take(scan) {
        let (_, n) = item?;
        if n.next_at <= now {
            due.push(n);
            if due.len() == max {
                break;
            }
        }
    }
    Ok(due)
}

/// Delay before attempt `attempts + 1`: `base` doubling, at most `max`.
pub fn backoff(attempts: u32, base_secs: i64, max_secs: i64) -> i64 {
    let factor = 1i64.checked_shl(attempts.min(30)).unwrap_or(i64::MAX);
    base_secs.saturating_mul(factor).min(max_secs).max(1)
}

impl Outbox<'_> {
    /// Notices due at `now`, oldest first, at most `max` of them, looking at
    /// no more than `scan` records.
    pub fn due(&self, now: UnixTime, max: usize, scan: usize) -> Result<Vec<Notice>> {
        due_in(&self.core.store, Table::Outbox, now, max, scan)
    }

    /// Notices waiting, delivered or not yet.
    pub fn len(&self) -> usize {
        self.core.store.len(Table::Outbox)
    }

    /// Whether no notice awaits delivery.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes delivered notices, all in one transaction (a delivery round
    /// removes what it sent at once rather than one at a time).
    pub fn delivered(&self, ids: &[u64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.core.store.transaction(|tx| {
            ids.iter()
                .try_for_each(|id| tx.remove(Table::Outbox, &id.to_be_bytes()))
        })
    }

    /// Holds notices back until `until` (marketing in quiet hours), all in
    /// one transaction; their attempts are not counted.
    pub fn postpone(&self, ids: &[u64], until: UnixTime) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.core.store.transaction(|tx| {
            for id in ids {
                let key = id.to_be_bytes();
                if let Some(mut n) = tx.get::<Notice>(Table::Outbox, &key)? {
                    n.next_at = n.next_at.max(until);
                    tx.put(Table::Outbox, &key, &n)?;
                }
            }
            Ok(())
        })
    }

    /// Records a failed attempt; the notice is tried again after
    /// `retry_in_secs`.
    pub fn failed(&self, id: u64, now: UnixTime, error: &str, retry_in_secs: i64) -> Result<()> {
        self.core.store.transaction(|tx| {
            let key = id.to_be_bytes();
            let Some(mut n) = tx.get::<Notice>(Table::Outbox, &key)? else {
                return Ok(());
            };
            n.attempts = n.attempts.saturating_add(1);
            n.next_at = now.plus(retry_in_secs);
            n.last_error = Some(error.chars().take(200).collect());
            tx.put(Table::Outbox, &key, &n)
        })
    }
}

impl crate::codec::Record for Notice {
    fn upgrade(version: u8, body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1..=4 => crate::codec::with_tail(body, &None::<Language>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_ceiling() {
        assert_eq!(backoff(0, 5, 3600), 5);
        assert_eq!(backoff(3, 5, 3600), 40);
        assert_eq!(backoff(20, 5, 3600), 3600);
        assert_eq!(backoff(u32::MAX, 5, 3600), 3600);
    }
}
