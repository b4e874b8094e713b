//! Loyalty administration and the period review: programmes, conversion
//! on request, referrals, and the monthly pass that applies downgrades
//! and VIP status.

use std::fmt;
use std::str::FromStr;

use clubswitch_wire::MerchantId;
use serde::Serialize;

use super::Loyalty;
use super::{earn, month_of_day, Program, Standing};
use crate::admin::not_found;
use crate::admin::Admin;
use crate::error::{EngineError, Result};
use crate::ledger;
use crate::model::{Account, AccountKey, JournalKind, Member, MemberId, UnixTime};
use crate::notice::{self, NoticeKind};
use crate::storage::Durable;
use crate::storage::{abort, Table, Tx, TxResult};

/// Where the last period review is recorded (a month index).
const REVIEWED: &[u8] = b"loyalty_reviewed";

/// What a period review changed.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Review {
    /// The month it reviewed up to (exclusive), as a month index.
    pub month: i64,
    pub members: usize,
    pub upgraded: usize,
    pub downgraded: usize,
    pub new_vip: usize,
}

/// A member's referral code: `R`, the member id in base 36, and a check
/// character, so a mistyped code is refused rather than crediting someone
/// else.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReferralCode(pub MemberId);

const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn check_char(body: &[u8]) -> u8 {
    let sum = body.iter().enumerate().fold(0usize, |s, (i, c)| {
        let v = DIGITS.iter().position(|d| d == c).unwrap_or(0);
        s + v * (i + 1)
    });
    DIGITS[sum % 36]
}

impl fmt::Display for ReferralCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.0 .0;
        let mut body = Vec::new();
        loop {
            body.push(DIGITS[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        body.reverse();
        let check = check_char(&body);
        body.push(check);
        write!(f, "R{}", String::from_utf8_lossy(&body))
    }
}

impl FromStr for ReferralCode {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || EngineError::invalid("not a referral code");
        let body = s.trim().to_ascii_uppercase();
        let body = body.strip_prefix('R').ok_or_else(bad)?.as_bytes();
        let (check, digits) = body.split_last().ok_or_else(bad)?;
        if digits.is_empty() || digits.len() > 13 || check_char(digits) != *check {
            return Err(bad());
        }
        let mut n: u64 = 0;
        for c in digits {
            let v = DIGITS.iter().position(|d| d == c).ok_or_else(bad)?;
            n = n
                .checked_mul(36)
                .and_then(|n| n.checked_add(v as u64))
                .ok_or_else(bad)?;
        }
        Ok(ReferralCode(MemberId(n)))
    }
}

impl Loyalty<'_> {
    /// Sets (or replaces) a merchant's loyalty programme.
    pub fn put_program(&self, merchant: &MerchantId, p: &Program) -> Result<Durable<()>> {
        p.validate().map_err(EngineError::invalid)?;
        self.core.store.transaction_durable(|tx| {
            if !tx.contains(Table::Merchants, merchant.as_bytes())? {
                return abort(not_found("merchant", merchant));
            }
            tx.put(Table::Programs, merchant.as_bytes(), p)
        })
    }

    pub fn program(&self, merchant: &MerchantId) -> Result<Option<Program>> {
        self.core.store.get(Table::Programs, merchant.as_bytes())
    }

    pub fn standing(&self, member: MemberId) -> Result<Option<Standing>> {
        self.core
            .store
            .get(Table::Standing, &member.0.to_be_bytes())
    }

    /// A member's points and store credit, by merchant: (merchant, points,
    /// store credit), merchants in id order.
    pub fn member_balances(&self, member: MemberId) -> Result<Vec<(MerchantId, Account, Account)>> {
        let mut out: std::collections::BTreeMap<MerchantId, (Account, Account)> =
            std::collections::BTreeMap::new();
        for (tag, points) in [(b'Q', true), (b'S', false)] {
            let mut prefix = vec![tag];
            prefix.extend_from_slice(&member.0.to_be_bytes());
            for item in self.core.store.scan::<Account>(Table::Accounts, &prefix) {
                let (key, acc) = item?;
                let Ok(m) = MerchantId::from_bytes(&key[prefix.len()..]) else {
                    continue;
                };
                let slot = out.entry(m).or_default();
                if points {
                    slot.0 = acc;
                } else {
                    slot.1 = acc;
                }
            }
        }
        Ok(out.into_iter().map(|(m, (p, c))| (m, p, c)).collect())
    }

    /// A member's points at a merchant.
    pub fn points(&self, member: MemberId, merchant: &MerchantId) -> Result<Account> {
        Admin::new(self.core).account(&AccountKey::Points {
            member,
            merchant: *merchant,
        })
    }

    /// Turns a member's points at a merchant into store credit there, at
    /// the programme's rate: `points` of them, or all. Returns the points
    /// converted and the credit they became.
    pub fn convert_points(
        &self,
        member: MemberId,
        merchant: &MerchantId,
        points: Option<u64>,
        now: UnixTime,
    ) -> Result<Durable<(u64, u64)>> {
        self.caller.moves(&self.core.store, now, |tx| {
            self.convert_in(tx, member, merchant, points, now)
        })
    }

    fn convert_in(
        &self,
        tx: &Tx<'_>,
        member: MemberId,
        merchant: &MerchantId,
        points: Option<u64>,
        now: UnixTime,
    ) -> TxResult<(u64, u64)> {
        let Some(m) = tx.get::<Member>(Table::Members, &member.0.to_be_bytes())? else {
            return abort(not_found("member", member.0));
        };
        let Some(p) = earn::program(tx, merchant)? else {
            return abort(EngineError::invalid(format!(
                "merchant {merchant} has no active loyalty programme"
            )));
        };
        if p.credit_per_point == 0 {
            return abort(EngineError::invalid(format!(
                "merchant {merchant} does not convert points"
            )));
        }
        let key = AccountKey::Points {
            member,
            merchant: *merchant,
        };
        let have = u64::try_from(ledger::account(tx, &key)?.available()).unwrap_or(0);
        let n = points.unwrap_or(have);
        if n == 0 || n > have {
            return abort(EngineError::invalid(format!(
                "cannot convert {n} points: {have} available"
            )));
        }
        let credit = earn::convert(tx, now, &m, *merchant, &p, n)?;
        Ok((n, credit))
    }

    /// Grants a member `points` at a merchant (a goodwill grant, a
    /// correction), or takes them back when negative (at most what is
    /// available). Granted points are a lot of their own and expire as
    /// earned ones do. Returns the points account after.
    pub fn grant_points(
        &self,
        member: MemberId,
        merchant: &MerchantId,
        points: i64,
        now: UnixTime,
    ) -> Result<Durable<Account>> {
        if points == 0 || points.unsigned_abs() > super::MAX_POINTS_MOVED {
            return Err(EngineError::invalid(format!(
                "points must be between 1 and {} either way",
                super::MAX_POINTS_MOVED
            )));
        }
        self.caller.moves(&self.core.store, now, |tx| {
            if !tx.contains(Table::Members, &member.0.to_be_bytes())? {
                return abort(not_found("member", member.0));
            }
            if !tx.contains(Table::Merchants, merchant.as_bytes())? {
                return abort(not_found("merchant", merchant));
            }
            let key = AccountKey::Points {
                member,
                merchant: *merchant,
            };
            if points < 0 && ledger::account(tx, &key)?.available() < -points {
                return abort(EngineError::invalid(format!(
                    "cannot take back {} points: {} available",
                    -points,
                    ledger::account(tx, &key)?.available()
                )));
            }
            ledger::post(
                tx,
                now,
                JournalKind::PointsGrant,
                None,
                vec![
                    (AccountKey::PointsIssued(*merchant), -points),
                    (key.clone(), points),
                ],
            )?;
            ledger::account(tx, &key)
        })
    }

    /// Records that `newcomer` was referred by the holder of `code`. Only
    /// before the newcomer's first purchase, once, and not by themself.
    pub fn refer(&self, newcomer: MemberId, code: ReferralCode) -> Result<Durable<()>> {
        let referrer = code.0;
        if referrer == newcomer {
            return Err(EngineError::invalid("a member cannot refer themself"));
        }
        self.core.store.transaction_durable(|tx| {
            if !tx.contains(Table::Members, &newcomer.0.to_be_bytes())? {
                return abort(not_found("member", newcomer.0));
            }
            if !tx.contains(Table::Members, &referrer.0.to_be_bytes())? {
                return abort(not_found("referral code", code));
            }
            let key = newcomer.0.to_be_bytes();
            let mut s: Standing = tx.get(Table::Standing, &key)?.unwrap_or_default();
            if s.purchases > 0 {
                return abort(EngineError::invalid(
                    "a referral must be recorded before the first purchase",
                ));
            }
            if s.referred_by.is_some() {
                return abort(EngineError::invalid("the member was already referred"));
            }
            s.referred_by = Some(referrer);
            tx.put(Table::Standing, &key, &s)
        })
    }

    /// The period review, once per local month (a no-op once done for the
    /// month of `now`, and on a new ledger, whose first period starts
    /// then): each member's tier is set from the rolling window
    /// of the months before this one (the downgrades purchases never make),
    /// and members who kept the VIP commitment through the last complete
    /// months become VIP. Returns what it changed, or `None` if this
    /// month's review was already done.
    pub fn review_standing(&self, now: UnixTime) -> Result<Option<Review>> {
        let cfg = &self.core.cfg.loyalty;
        let month = month_of_day(now.local_day(self.core.cfg.utc_offset_secs));
        let done: Option<i64> = self.core.store.get(Table::Meta, REVIEWED)?;
        match done {
            Some(d) if d >= month => return Ok(None),
            Some(_) => {}
            None => {
                // A new ledger: the first period starts now, so tiers set
                // by an operator (members imported from another club) hold
                // until it ends.
                self.core.store.put(Table::Meta, REVIEWED, &month)?;
                return Ok(None);
            }
        }
        let mut r = Review {
            month,
            ..Review::default()
        };
        let last = month - 1;
        for item in self.core.store.scan::<Standing>(Table::Standing, b"") {
            let (key, _) = item?;
            r.members += 1;
            // What changed is counted from the transaction's result, as it
            // may run more than once.
            let (moved, vip) = self.core.store.transaction(|tx| {
                let Some(mut s) = tx.get::<Standing>(Table::Standing, &key)? else {
                    return Ok((None, false));
                };
                let Some(mut member) = tx.get::<Member>(Table::Members, &key)? else {
                    return Ok((None, false));
                };
                // The completed period decides; what this month already
                // holds (if the review runs late) counts as an upgrade
                // at once would have.
                let tier = cfg
                    .tier_for(s.rolling(cfg, last))
                    .max(cfg.tier_for(s.rolling(cfg, month)));
                let moved = (tier != member.tier).then(|| tier > member.tier);
                if moved.is_some() {
                    earn::set_tier(tx, now, &mut member, tier)?;
                }
                let kept = cfg.vip_min_monthly > 0
                    && !s.vip(month)
                    && (0..i64::from(cfg.vip_months)).all(|back| {
                        s.months
                            .iter()
                            .any(|m| m.month == last - back && m.spend >= cfg.vip_min_monthly)
                    });
                if kept {
                    let until = month + i64::from(cfg.vip_lasts_months);
                    s.vip_until = Some(until);
                    notice::enqueue(tx, now, &member, NoticeKind::Vip { until })?;
                }
                s.trim(cfg, month);
                tx.put(Table::Standing, &key, &s)?;
                Ok((moved, kept))
            })?;
            match moved {
                Some(true) => r.upgraded += 1,
                Some(false) => r.downgraded += 1,
                None => {}
            }
            r.new_vip += usize::from(vip);
        }
        self.core.store.put(Table::Meta, REVIEWED, &month)?;
        Ok(Some(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_codes_round_trip_and_refuse_a_mistyped_character() {
        for id in [1u64, 35, 36, 123_456_789, u64::MAX] {
            let code = ReferralCode(MemberId(id)).to_string();
            assert_eq!(
                code.parse::<ReferralCode>().ok(),
                Some(ReferralCode(MemberId(id)))
            );
        }
        let code = ReferralCode(MemberId(123_456)).to_string();
        let mut typo = code.clone().into_bytes();
        typo[2] = if typo[2] == b'7' { b'8' } else { b'7' };
        assert!(String::from_utf8_lossy(&typo)
            .parse::<ReferralCode>()
            .is_err());
        assert!("X12".parse::<ReferralCode>().is_err());
        assert!("R".parse::<ReferralCode>().is_err());
    }
}
