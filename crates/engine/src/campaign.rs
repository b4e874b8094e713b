//! Campaign messages: one text to a chosen audience of members.
//!
//! A campaign is written scheduled; when its time comes the queuer
//! ([`Campaigns::queue_due`]) chooses its audience and writes one marketing
//! notice per member into a lane of its own ([`Table::Marketing`], keyed
//! by campaign and member), a thousand members to a transaction. The
//! campaign's cursor (the last member queued) moves in the same
//! transaction as the notices, so a queuer stopped half-way resumes after
//! it: no member is queued twice, whatever crashes.
//!
//! The marketing lane is not the outbox of receipts: a campaign of a
//! hundred thousand members never stands in front of the receipt of the
//! purchase made a moment ago. Whoever drains it reports each notice's
//! outcome through [`Campaigns::settle`], which removes what is finished
//! and counts it on its campaign in one transaction: every queued message
//! ends as sent, failed (after its last attempt), opted out or inactive
//! (the member opted out, or was blocked, before it went) or cancelled,
//! exactly once.
//!
//! Opted-out members are never queued, and one who opts out after the
//! queuing is caught when the message is about to go.

use std::collections::BTreeMap;

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use crate::admin::not_found;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::model::{Member, MemberId, Status, Tier, UnixTime};
use crate::notice::{Notice, NoticeKind};
use crate::storage::{abort, Table};

/// Members queued per transaction.
const QUEUE_CHUNK: usize = 1_000;

/// Who a campaign goes to: every condition given must hold.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Audience {
    /// Customers of this merchant (bought there in the last twelve
    /// months); a merchant's campaign always has its own here.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub merchant: Option<MerchantId>,
    /// An RFM segment: champions, loyal, new, at_risk, lost or regular.
    pub segment: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tier: Option<Tier>,
    /// Members in this group (a tag).
    pub group: Option<String>,
    /// No purchase for at least this many days (members who never bought
    /// count as inactive, except for a merchant's campaign, which reaches
    /// only its customers).
    pub inactive_days: Option<u32>,
    /// Members born in this month (1–12, Gregorian).
    pub birthday_month: Option<u8>,
}

/// The RFM segments an audience may name.
pub const SEGMENTS: [&str; 6] = ["champions", "loyal", "new", "at_risk", "lost", "regular"];

impl Audience {
    /// Checks the conditions can be met at all.
    pub fn check(&self) -> Result<()> {
        if let Some(s) = &self.segment {
            if !SEGMENTS.contains(&s.as_str()) {
                return Err(EngineError::invalid(format!(
                    "segment is one of {}, not {s:?}",
                    SEGMENTS.join(", ")
                )));
            }
        }
        if let Some(m) = self.birthday_month {
            if !(1..=12).contains(&m) {
                return Err(EngineError::invalid(format!(
                    "birthday_month is 1 to 12, not {m}"
                )));
            }
        }
        if self.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
            return Err(EngineError::invalid("group must not be empty"));
        }
        Ok(())
    }
}

/// Where a campaign is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CampaignState {
    /// Waiting for its time; queuing has not finished.
    Scheduled,
    /// Queued; messages are going out.
    Sending,
    /// Every message sent, failed or dropped.
    Done,
    /// Stopped: what was not sent was dropped.
    Cancelled,
}

/// What became of a campaign's messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Members the audience matched when it was queued.
    pub matched: u64,
    /// Messages queued (matched, less those opted out or with no phone).
    pub queued: u64,
    /// Matched members who had opted out of marketing: not queued.
    pub opted_out: u64,
    /// Matched members with no phone number: not queued.
    pub no_phone: u64,
    /// Messages the gateway accepted.
    pub sent: u64,
    /// Messages given up on after their last attempt.
    pub failed: u64,
    /// Queued messages dropped because the member opted out before theirs
    /// went.
    pub opted_out_later: u64,
    /// Queued messages dropped because the member was blocked or removed
    /// before theirs went.
    pub inactive: u64,
    /// Messages dropped when the campaign was cancelled.
    pub cancelled: u64,
    /// SMS parts of the messages sent (what a gateway charges by).
    pub parts: u64,
}

impl Figures {
    /// Queued messages still waiting to go.
    pub fn waiting(&self) -> u64 {
        self.queued.saturating_sub(
            self.sent + self.failed + self.opted_out_later + self.inactive + self.cancelled,
        )
    }
}

/// A campaign as asked for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewCampaign {
    pub name: String,
    pub audience: Audience,
    /// The text in Persian (a template: see the switch's notifier).
    pub text_fa: String,
    /// The text in English; empty: the Persian text goes to everyone.
    pub text_en: String,
    /// Not before this time.
    pub at: UnixTime,
}

/// A campaign and what became of it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Campaign {
    pub id: u64,
    pub name: String,
    pub audience: Audience,
    pub text_fa: String,
    pub text_en: String,
    pub at: UnixTime,
    pub created: UnixTime,
    pub created_by: Option<String>,
    pub state: CampaignState,
    /// The last member queued (queuing resumes after it).
    pub cursor: Option<MemberId>,
    pub figures: Figures,
}

impl crate::codec::Record for Campaign {}

/// What became of one marketing notice when its turn came.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The gateway accepted it, in this many SMS parts.
    Sent { parts: u32 },
    /// The member opted out since it was queued: dropped.
    OptedOut,
    /// The member was blocked or removed since it was queued: dropped.
    Inactive,
    /// Not accepted: tried again after `retry_in_secs`, or (none) given
    /// up on.
    Failed {
        error: String,
        retry_in_secs: Option<i64>,
    },
}

/// Campaigns and their lane of marketing notices.
pub struct Campaigns<'a> {
    core: &'a Core,
}

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// A marketing notice's key: campaign ‖ member.
fn notice_key(campaign: u64, member: MemberId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&campaign.to_be_bytes());
    k[8..].copy_from_slice(&member.0.to_be_bytes());
    k
}

impl<'a> Campaigns<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Campaigns { core }
    }

    /// Records a campaign, scheduled for `new.at`; `actor` is who asked.
    pub fn create(
        &self,
        new: NewCampaign,
        actor: Option<String>,
        now: UnixTime,
    ) -> Result<crate::Durable<Campaign>> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 80 {
            return Err(EngineError::invalid(
                "a campaign's name is 1 to 80 characters",
            ));
        }
        if new.text_fa.trim().is_empty() {
            return Err(EngineError::invalid("a campaign needs a text"));
        }
        new.audience.check()?;
        self.core.store.transaction_durable(|tx| {
            let id = tx.next_id()?;
            let c = Campaign {
                id,
                name: name.clone(),
                audience: new.audience.clone(),
                text_fa: new.text_fa.clone(),
                text_en: new.text_en.clone(),
                at: new.at,
                created: now,
                created_by: actor.clone(),
                state: CampaignState::Scheduled,
                cursor: None,
                figures: Figures::default(),
            };
            tx.put(Table::Campaigns, &key(id), &c)?;
            Ok(c)
        })
    }

    pub fn get(&self, id: u64) -> Result<Option<Campaign>> {
        self.core.store.get(Table::Campaigns, &key(id))
    }

    /// Every campaign, newest first.
    pub fn list(&self) -> Result<Vec<Campaign>> {
        let mut all = self.core.store.values::<Campaign>(Table::Campaigns, b"")?;
        all.reverse();
        Ok(all)
    }

    /// Stops a campaign: nothing more of it is queued or sent. Its
    /// waiting messages are dropped by whoever sends ([`Self::purge`]), so
    /// a message going out as it is cancelled is counted sent, not
    /// cancelled. A finished campaign stays as it is.
    pub fn cancel(&self, id: u64) -> Result<crate::Durable<Campaign>> {
        self.core.store.transaction_durable(|tx| {
            let Some(mut c) = tx.get::<Campaign>(Table::Campaigns, &key(id))? else {
                return abort(not_found("campaign", id));
            };
            if matches!(c.state, CampaignState::Scheduled | CampaignState::Sending) {
                c.state = CampaignState::Cancelled;
                tx.put(Table::Campaigns, &key(id), &c)?;
            }
            Ok(c)
        })
    }

    /// Drops the waiting messages of every cancelled campaign, a thousand
    /// to a transaction, each counted cancelled as it goes; how many. Run
    /// by the sender, between rounds, so no message is both sent and
    /// dropped.
    pub fn purge(&self) -> Result<u64> {
        self.purge_until(&|| false)
    }

    /// [`Campaigns::purge`] that ends before its next transaction once
    /// `stop` says so (the daemon is stopping); the next call drops the
    /// rest.
    pub fn purge_until(&self, stop: &dyn Fn() -> bool) -> Result<u64> {
        let mut dropped = 0;
        for c in self.list()? {
            if c.state != CampaignState::Cancelled || c.figures.waiting() == 0 {
                continue;
            }
            loop {
                if stop() {
                    return Ok(dropped);
                }
                let chunk: Vec<Vec<u8>> = self
                    .core
                    .store
                    .scan_keys(Table::Marketing, &key(c.id))
                    .take(QUEUE_CHUNK)
                    .collect::<Result<_>>()?;
                if chunk.is_empty() {
                    break;
                }
                dropped += self.core.store.transaction(|tx| {
                    let Some(mut cur) = tx.get::<Campaign>(Table::Campaigns, &key(c.id))? else {
                        return Ok(0);
                    };
                    let mut n = 0;
                    for k in &chunk {
                        if tx.contains(Table::Marketing, k)? {
                            tx.remove(Table::Marketing, k)?;
                            n += 1;
                        }
                    }
                    cur.figures.cancelled += n;
                    tx.put(Table::Campaigns, &key(c.id), &cur)?;
                    Ok(n)
                })?;
            }
        }
        Ok(dropped)
    }

    /// The members `audience` matches at `now`, in member-id order:
    /// active members only.
    pub fn audience(&self, audience: &Audience, now: UnixTime) -> Result<Vec<Member>> {
        audience.check()?;
        let needs_figures = audience.merchant.is_some()
            || audience.segment.is_some()
            || audience.inactive_days.is_some();
        // member → (segment, days since the last purchase)
        let figures: BTreeMap<MemberId, (&'static str, i64)> = if needs_figures {
            crate::loyalty::Loyalty::new(self.core)
                .segments(audience.merchant.as_ref(), audience.group.as_deref(), now)?
                .into_iter()
                .map(|s| (MemberId(s.member), (s.segment, s.recency_days)))
                .collect()
        } else {
            BTreeMap::new()
        };
        let born: Option<std::collections::BTreeSet<MemberId>> = match audience.birthday_month {
            Some(m) => Some(
                crate::loyalty::Loyalty::new(self.core)
                    .born_in(m)?
                    .into_iter()
                    .collect(),
            ),
            None => None,
        };
        let keep = |m: &Member| {
            if m.status != Status::Active {
                return false;
            }
            if audience.tier.is_some_and(|t| t != m.tier) {
                return false;
            }
            if let Some(g) = &audience.group {
                if !m.groups.iter().any(|x| x == g) {
                    return false;
                }
            }
            if born.as_ref().is_some_and(|b| !b.contains(&m.id)) {
                return false;
            }
            let fig = figures.get(&m.id);
            if audience.merchant.is_some() && fig.is_none() {
                return false;
            }
            if let Some(s) = &audience.segment {
                if fig.is_none_or(|f| f.0 != s.as_str()) {
                    return false;
                }
            }
            if let Some(days) = audience.inactive_days {
                if fig.is_some_and(|f| f.1 < i64::from(days)) {
                    return false;
                }
            }
            true
        };
        let mut out = Vec::new();
        for item in self.core.store.scan::<Member>(Table::Members, b"") {
            let (_, m) = item?;
            if keep(&m) {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Queues every scheduled campaign whose time has come; how many
    /// messages it queued.
    pub fn queue_due(&self, now: UnixTime) -> Result<u64> {
        self.queue_due_until(now, &|| false)
    }

    /// [`Campaigns::queue_due`] that ends before its next transaction once
    /// `stop` says so (the daemon is stopping). A campaign left part-queued
    /// stays scheduled with its cursor, and the next call queues the rest,
    /// each member once. A stop that comes while a campaign's audience is
    /// being chosen (one pass over the members) waits for that pass.
    pub fn queue_due_until(&self, now: UnixTime, stop: &dyn Fn() -> bool) -> Result<u64> {
        let mut queued = 0;
        for c in self.list()? {
            if stop() {
                break;
            }
            if c.state == CampaignState::Scheduled && c.at <= now {
                queued += self.queue(c, now, stop)?;
            }
        }
        Ok(queued)
    }

    /// Queues one campaign's messages from after its cursor on, up to a
    /// stop.
    fn queue(&self, c: Campaign, now: UnixTime, stop: &dyn Fn() -> bool) -> Result<u64> {
        let members = self.audience(&c.audience, now)?;
        let from = members.partition_point(|m| c.cursor.is_some_and(|cur| m.id <= cur));
        let mut queued = 0;
        for chunk in members[from..].chunks(QUEUE_CHUNK) {
            if stop() {
                return Ok(queued);
            }
            queued += self.core.store.transaction(|tx| {
                let Some(mut cur) = tx.get::<Campaign>(Table::Campaigns, &key(c.id))? else {
                    return Ok(0);
                };
                // Cancelled (or queued by another node) meanwhile.
                if cur.state != CampaignState::Scheduled {
                    return Ok(0);
                }
                let mut n = 0;
                for m in chunk {
                    if cur.cursor.is_some_and(|x| m.id <= x) {
                        continue;
                    }
                    cur.cursor = Some(m.id);
                    cur.figures.matched += 1;
                    if m.opted_out.is_some() {
                        cur.figures.opted_out += 1;
                    } else if m.phone.is_empty() {
                        cur.figures.no_phone += 1;
                    } else {
                        let notice = Notice {
                            id: tx.next_id()?,
                            member: m.id,
                            phone: m.phone.clone(),
                            at: now,
                            kind: NoticeKind::Campaign { campaign: c.id },
                            attempts: 0,
                            next_at: now,
                            last_error: None,
                            language: m.language,
                        };
                        tx.put(Table::Marketing, &notice_key(c.id, m.id), &notice)?;
                        cur.figures.queued += 1;
                        n += 1;
                    }
                }
                tx.put(Table::Campaigns, &key(c.id), &cur)?;
                Ok(n)
            })?;
        }
        // Everything is queued: sending (or, with nothing to send, done).
        self.core.store.transaction(|tx| {
            let Some(mut cur) = tx.get::<Campaign>(Table::Campaigns, &key(c.id))? else {
                return Ok(());
            };
            if cur.state == CampaignState::Scheduled {
                cur.state = if cur.figures.queued == 0 {
                    CampaignState::Done
                } else {
                    CampaignState::Sending
                };
                tx.put(Table::Campaigns, &key(c.id), &cur)?;
            }
            Ok(())
        })?;
        Ok(queued)
    }

    /// Marketing notices due at `now`, campaign by campaign, at most `max`,
    /// looking at no more than `scan` records.
    pub fn due(&self, now: UnixTime, max: usize, scan: usize) -> Result<Vec<Notice>> {
        crate::notice::due_in(&self.core.store, Table::Marketing, now, max, scan)
    }

    /// Marketing notices waiting.
    pub fn waiting(&self) -> usize {
        self.core.store.len(Table::Marketing)
    }

    /// Records what became of marketing notices, all in one transaction:
    /// sent, opted-out and given-up ones leave the lane and are counted on
    /// their campaign; the others wait `retry_in_secs`. A campaign with
    /// nothing left waiting is done.
    pub fn settle(&self, outcomes: &[(Notice, Outcome)], now: UnixTime) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.core.store.transaction(|tx| {
            let mut touched: BTreeMap<u64, Campaign> = BTreeMap::new();
            for (n, outcome) in outcomes {
                let NoticeKind::Campaign { campaign } = n.kind else {
                    continue;
                };
                let k = notice_key(campaign, n.member);
                // Gone already (the campaign was cancelled meanwhile).
                let Some(mut stored) = tx.get::<Notice>(Table::Marketing, &k)? else {
                    continue;
                };
                let c = match touched.entry(campaign) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        match tx.get::<Campaign>(Table::Campaigns, &key(campaign))? {
                            Some(c) => e.insert(c),
                            None => continue,
                        }
                    }
                };
                match outcome {
                    Outcome::Sent { parts } => {
                        c.figures.sent += 1;
                        c.figures.parts += u64::from(*parts);
                        tx.remove(Table::Marketing, &k)?;
                    }
                    Outcome::OptedOut => {
                        c.figures.opted_out_later += 1;
                        tx.remove(Table::Marketing, &k)?;
                    }
                    Outcome::Inactive => {
                        c.figures.inactive += 1;
                        tx.remove(Table::Marketing, &k)?;
                    }
                    Outcome::Failed {
                        retry_in_secs: None,
                        ..
                    } => {
                        c.figures.failed += 1;
                        tx.remove(Table::Marketing, &k)?;
                    }
                    Outcome::Failed {
                        error,
                        retry_in_secs: Some(wait),
                    } => {
                        stored.attempts = stored.attempts.saturating_add(1);
                        stored.next_at = now.plus(*wait);
                        stored.last_error = Some(error.chars().take(200).collect());
                        tx.put(Table::Marketing, &k, &stored)?;
                    }
                }
            }
            for (id, mut c) in touched {
                if c.state == CampaignState::Sending && c.figures.waiting() == 0 {
                    c.state = CampaignState::Done;
                }
                tx.put(Table::Campaigns, &key(id), &c)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_counts_what_is_neither_finished_nor_dropped() {
        let f = Figures {
            matched: 10,
            queued: 7,
            opted_out: 2,
            no_phone: 1,
            sent: 4,
            failed: 1,
            opted_out_later: 0,
            inactive: 0,
            cancelled: 0,
            parts: 4,
        };
        assert_eq!(f.waiting(), 2);
        let f = Figures {
            opted_out_later: 1,
            ..f
        };
        assert_eq!(f.waiting(), 1);
    }

    #[test]
    fn an_audience_names_only_known_segments_and_months() {
        let bad = Audience {
            segment: Some("whales".into()),
            ..Audience::default()
        };
        assert!(bad.check().is_err());
        let bad = Audience {
            birthday_month: Some(13),
            ..Audience::default()
        };
        assert!(bad.check().is_err());
        let good = Audience {
            segment: Some("at_risk".into()),
            birthday_month: Some(12),
            ..Audience::default()
        };
        assert!(good.check().is_ok());
    }
}
