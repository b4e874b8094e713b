//! The daily pass, once per local day from `daily_hour`: points and store
//! credit past their validity expire (oldest lots first, see [`lots`]),
//! members are warned of what will expire, greeted on their birthday and
//! told when their card is about to expire.
//!
//! Each member's change is its own transaction, so a pass cut short (a
//! crash, an error in a later step) is simply run again: expiry and its
//! warnings are recorded in the lots, and every other notice with a mark of
//! the day it was written for ([`WRITTEN`]), in the transaction that
//! queues it, so none is written twice.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use clubswitch_wire::fields::{civil_from_days, days_from_civil};
use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use super::Loyalty;
use super::Program;
use crate::admin::not_found;
use crate::admin::Admin;
use crate::error::{EngineError, Result};
use crate::ledger;
use crate::model::lots::{self, Lot, Lots, Unit};
use crate::model::{AccountKey, Card, JournalKind, Member, MemberId, Status, UnixTime};
use crate::notice::{self, NoticeKind};
use crate::storage::Durable;
use crate::storage::{abort, Table, Tx, TxError, TxResult};

/// Where the last local day the pass ran is recorded.
const DONE: &[u8] = b"daily_pass";

/// Marks of written notices taken away per transaction.
const FORGET_CHUNK: usize = 1_024;

/// How many missed days a card warning reaches back over.
const CATCH_UP_DAYS: i64 = 31;

/// What one daily pass did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct DailyRun {
    /// The local day it ran for.
    pub day: i64,
    /// Members' lots it looked at, at merchants whose programme expires
    /// points or credit.
    pub lots_checked: usize,
    pub points_expired: u64,
    pub credit_expired: u64,
    pub expiry_warnings: usize,
    pub birthdays: usize,
    pub cards_expiring: usize,
    /// Reminders to come back, anniversaries and tiers at risk written.
    pub repurchase_reminders: usize,
    pub anniversaries: usize,
    pub tiers_at_risk: usize,
}

/// A member's birthday: month and day (the year is not kept).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Birthday {
    pub month: u8,
    pub day: u8,
}

impl FromStr for Birthday {
    type Err = EngineError;
    /// `MM-DD`, or a full `YYYY-MM-DD` of which only the month and day are
    /// kept; or a Jalali date with its year, `1370/05/12` or `1370-05-12`
    /// (any year before 1700 is Jalali), in Latin or Persian digits, kept as
    /// the Gregorian month and day it fell on.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            EngineError::invalid(format!(
                "not a birthday (MM-DD, YYYY-MM-DD or a Jalali YYYY/MM/DD): {s:?}"
            ))
        };
        let ascii: String = s
            .trim()
            .chars()
            .map(|c| crate::model::contact::ascii_digit(c).unwrap_or(c))
            .collect();
        let number = |p: &str| p.parse::<u16>().map_err(|_| bad());
        let parts: Vec<&str> = ascii.split(['-', '/']).collect();
        let (m, d) = match parts.as_slice() {
            [y, m, d] if number(y)? < 1700 => {
                let (y, m, d) = (number(y)?, number(m)?, number(d)?);
                let day = crate::calendar::day_from_jalali(
                    i32::from(y),
                    u8::try_from(m).map_err(|_| bad())?,
                    u8::try_from(d).map_err(|_| bad())?,
                )
                .ok_or_else(bad)?;
                let (_, month, day) = clubswitch_wire::fields::civil_from_days(day);
                return Ok(Birthday { month, day });
            }
            [m, d] | [_, m, d] => (*m, *d),
            _ => return Err(bad()),
        };
        let month: u8 = m.parse().map_err(|_| bad())?;
        let day: u8 = d.parse().map_err(|_| bad())?;
        // A leap year, so 29 February is a birthday.
        let in_month = match month {
            1..=11 => days_from_civil(2024, month + 1, 1) - days_from_civil(2024, month, 1),
            12 => 31,
            _ => return Err(bad()),
        };
        if day == 0 || i64::from(day) > in_month {
            return Err(bad());
        }
        Ok(Birthday { month, day })
    }
}

impl fmt::Display for Birthday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

fn by_date(b: Birthday) -> Vec<u8> {
    vec![b'B', b.month, b.day]
}

/// `daily` keys: a notice a pass wrote, `W` ‖ day ‖ member ‖ the notice,
/// where the day is the first the pass covers (the day after the last
/// pass that finished). Put in the transaction that queues it, so a pass
/// run again before one finishes (after an error in a later step: the
/// housekeeping job retries every few seconds; or after a crash), that
/// day or a later one, covers the same first day and writes none twice.
/// A pass takes away the marks of days before its first
/// ([`Loyalty::forget_written`]).
const WRITTEN: u8 = b'W';

fn written_key(day: i64, member: MemberId, kind: &NoticeKind) -> TxResult<Vec<u8>> {
    let mut k = vec![WRITTEN];
    k.extend_from_slice(&day.to_be_bytes());
    k.extend_from_slice(&member.0.to_be_bytes());
    let what = bincode::serialize(kind)
        .map_err(|e| TxError::Abort(EngineError::invalid(format!("notice key: {e}"))))?;
    k.extend_from_slice(&what);
    Ok(k)
}

/// Queues `kind` to `m` unless a pass whose first day is `day` already
/// did; whether it did now.
pub(super) fn enqueue_once(
    tx: &Tx<'_>,
    now: UnixTime,
    day: i64,
    m: &Member,
    kind: NoticeKind,
) -> TxResult<bool> {
    let key = written_key(day, m.id, &kind)?;
    if tx.contains(Table::Daily, &key)? {
        return Ok(false);
    }
    tx.put(Table::Daily, &key, &())?;
    notice::enqueue(tx, now, m, kind)
}

fn by_member(member: MemberId) -> Vec<u8> {
    let mut k = vec![b'b'];
    k.extend_from_slice(&member.0.to_be_bytes());
    k
}

/// Local day of the last day of the month a card expires in.
fn card_through(e: clubswitch_wire::Expiry) -> i64 {
    let year = 2000 + i64::from(e.year);
    if e.month >= 12 {
        days_from_civil(year + 1, 1, 1) - 1
    } else {
        days_from_civil(year, e.month + 1, 1) - 1
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

impl Loyalty<'_> {
    /// Records (or with `None` forgets) a member's birthday.
    pub fn set_birthday(
        &self,
        member: MemberId,
        birthday: Option<Birthday>,
    ) -> Result<Durable<()>> {
        self.core.store.transaction_durable(|tx| {
            if !tx.contains(Table::Members, &member.0.to_be_bytes())? {
                return abort(not_found("member", member.0));
            }
            if let Some(old) = tx.get::<Birthday>(Table::Daily, &by_member(member))? {
                let mut k = by_date(old);
                k.extend_from_slice(&member.0.to_be_bytes());
                tx.remove(Table::Daily, &k)?;
                tx.remove(Table::Daily, &by_member(member))?;
            }
            if let Some(b) = birthday {
                let mut k = by_date(b);
                k.extend_from_slice(&member.0.to_be_bytes());
                tx.put(Table::Daily, &k, &())?;
                tx.put(Table::Daily, &by_member(member), &b)?;
            }
            Ok(())
        })
    }

    pub fn birthday(&self, member: MemberId) -> Result<Option<Birthday>> {
        self.core.store.get(Table::Daily, &by_member(member))
    }

    /// Members born in `month` (1–12), from the birthdays-by-date index.
    pub fn born_in(&self, month: u8) -> Result<Vec<MemberId>> {
        let prefix = [b'B', month];
        self.core
            .store
            .scan_keys(Table::Daily, &prefix)
            .map(|k| {
                let k = k?;
                // `B` ‖ month ‖ day ‖ member
                Ok(k.get(3..)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| MemberId(u64::from_be_bytes(b))))
            })
            .filter_map(Result::transpose)
            .collect()
    }

    /// A member's lots of points and store credit at a merchant, cut to
    /// what the balances hold.
    pub fn lots(&self, member: MemberId, merchant: &MerchantId) -> Result<Lots> {
        let mut legacy: Lots = self
            .core
            .store
            .get(Table::Daily, &lots::legacy_key(member, merchant))?
            .unwrap_or_default();
        let mut view = Lots {
            warned_through: legacy.warned_through,
            ..Lots::default()
        };
        for unit in [Unit::Points, Unit::Credit] {
            let mut acc = Admin::new(self.core).account(&unit_account(unit, member, *merchant))?;
            let balance = acc.balance.max(0).unsigned_abs();
            acc.grants.take_older(&mut legacy, unit);
            lots::cut(&mut acc.grants.lots, balance);
            *view.unit_mut(unit) = acc.grants.lots;
            view.warned_through = view.warned_through.max(acc.grants.warned_through);
        }
        Ok(view)
    }

    /// What of a member's points and store credit at a merchant will
    /// expire, and the last day each part is valid, soonest first.
    pub fn expiring(&self, member: MemberId, merchant: &MerchantId) -> Result<Vec<Expiring>> {
        let Some(p) = self.program(merchant)? else {
            return Ok(Vec::new());
        };
        let lots = self.lots(member, merchant)?;
        let offset = self.core.cfg.utc_offset_secs;
        let mut out = Vec::new();
        let units = [
            (Unit::Points, p.points_valid_days),
            (Unit::Credit, p.credit_valid_days),
        ];
        for (unit, valid) in units {
            let Some(valid) = valid else { continue };
            for l in lots.unit(unit) {
                let valid_through = l.at.local_day(offset) + i64::from(valid);
                match out.last_mut() {
                    Some(Expiring {
                        unit: u,
                        valid_through: d,
                        amount,
                    }) if *u == unit && *d == valid_through => *amount += l.amount,
                    _ => out.push(Expiring {
                        unit,
                        valid_through,
                        amount: l.amount,
                    }),
                }
            }
        }
        out.sort_by_key(|e| e.valid_through);
        Ok(out)
    }

    /// The daily pass for the local day of `now`, once that day's
    /// `daily_hour` has come; `None` if it is not time or the day's pass
    /// is done.
    pub fn daily_pass(&self, now: UnixTime) -> Result<Option<DailyRun>> {
        let local = now.0 + self.core.cfg.utc_offset_secs;
        if local.rem_euclid(86_400) / 3_600 < i64::from(self.core.cfg.loyalty.daily_hour) {
            return Ok(None);
        }
        self.daily_pass_now(now)
    }

    /// The daily pass for the local day of `now`, even before its
    /// `daily_hour` (an operator's request); `None` if the day's pass is
    /// done.
    pub fn daily_pass_now(&self, now: UnixTime) -> Result<Option<DailyRun>> {
        let cfg = &self.core.cfg.loyalty;
        let today = now.local_day(self.core.cfg.utc_offset_secs);
        let done: Option<i64> = self.core.store.get(Table::Meta, DONE)?;
        if done.is_some_and(|d| d >= today) {
            return Ok(None);
        }
        let since = done.map_or(today - 1, |d| d.max(today - CATCH_UP_DAYS));
        // The first day this pass covers: what its notices are marked by.
        let first = since + 1;
        self.forget_written(first)?;
        let mut run = DailyRun {
            day: today,
            ..DailyRun::default()
        };
        self.expire_lots(now, today, &mut run)?;
        if cfg.birthdays {
            self.birthdays(now, first, today, &mut run)?;
        }
        if cfg.card_expiry_warn_days > 0 {
            self.cards_expiring(now, since, today, &mut run)?;
        }
        let reminded = self.reminders(now, since, today)?;
        run.repurchase_reminders = reminded.repurchase;
        run.anniversaries = reminded.anniversaries;
        run.tiers_at_risk = reminded.tiers_at_risk;
        self.core.store.put(Table::Meta, DONE, &today)?;
        Ok(Some(run))
    }

    /// Takes away the marks of notices written by passes whose first day
    /// is before `first` ([`WRITTEN`]), a chunk per transaction.
    fn forget_written(&self, first: i64) -> Result<()> {
        let mut keep_from = vec![WRITTEN];
        keep_from.extend_from_slice(&first.to_be_bytes());
        loop {
            let old: Vec<Vec<u8>> = self
                .core
                .store
                .scan_keys(Table::Daily, &[WRITTEN])
                .take(FORGET_CHUNK)
                .filter(|k| k.as_ref().map_or(true, |k| *k < keep_from))
                .collect::<Result<_>>()?;
            if old.is_empty() {
                return Ok(());
            }
            self.core.store.transaction(|tx| {
                for k in &old {
                    tx.remove(Table::Daily, k)?;
                }
                Ok(())
            })?;
        }
    }

    fn expire_lots(&self, now: UnixTime, today: i64, run: &mut DailyRun) -> Result<()> {
        // Only merchants whose programme sets a validity have anything to
        // expire or warn of.
        let mut expiring: BTreeMap<MerchantId, Program> = BTreeMap::new();
        for item in self.core.store.scan::<Program>(Table::Programs, b"") {
            let (key, p) = item?;
            if p.points_valid_days.is_some() || p.credit_valid_days.is_some() {
                if let Ok(m) = MerchantId::from_bytes(&key) {
                    expiring.insert(m, p);
                }
            }
        }
        if expiring.is_empty() {
            return Ok(());
        }
        // Every member and merchant with points or store credit there (and
        // lots format version 1 kept apart).
        let mut owners: BTreeSet<(MemberId, MerchantId)> = BTreeSet::new();
        for (table, tag) in [
            (Table::Accounts, b"Q"),
            (Table::Accounts, b"S"),
            (Table::Daily, b"L"),
        ] {
            for item in self.core.store.scan_keys(table, tag) {
                let key = item?;
                let (Some(member), Ok(merchant)) = (
                    key.get(1..9)
                        .and_then(|b| b.try_into().ok())
                        .map(|b| MemberId(u64::from_be_bytes(b))),
                    MerchantId::from_bytes(key.get(9..).unwrap_or_default()),
                ) else {
                    continue;
                };
                if expiring.contains_key(&merchant) {
                    owners.insert((member, merchant));
                }
            }
        }
        for (member, merchant) in owners {
            let Some(program) = expiring.get(&merchant) else {
                continue;
            };
            run.lots_checked += 1;
            let owner = (member, merchant);
            let done = self
                .core
                .store
                .transaction(|tx| self.expire_one(tx, now, today, owner, program))?;
            run.points_expired += done.expired[0];
            run.credit_expired += done.expired[1];
            run.expiry_warnings += usize::from(done.warned);
        }
        Ok(())
    }

    /// Expires and warns of one member's lots at one merchant.
    fn expire_one(
        &self,
        tx: &Tx<'_>,
        now: UnixTime,
        today: i64,
        (member, merchant): (MemberId, MerchantId),
        p: &Program,
    ) -> TxResult<Expired> {
        // Lots format version 1 kept apart move into their accounts.
        let legacy_key = lots::legacy_key(member, &merchant);
        let mut legacy = tx.get::<Lots>(Table::Daily, &legacy_key)?;
        if legacy.is_some() {
            tx.remove(Table::Daily, &legacy_key)?;
        }
        let offset = self.core.cfg.utc_offset_secs;
        let horizon = today + i64::from(p.expiry_warn_days);
        let mut out = Expired::default();
        let mut warn = [0u64; 2];
        let mut first_day: Option<i64> = None;
        let units = [
            (Unit::Points, p.points_valid_days),
            (Unit::Credit, p.credit_valid_days),
        ];
        for (i, (unit, valid)) in units.into_iter().enumerate() {
            let account = unit_account(unit, member, merchant);
            let mut acc = ledger::account(tx, &account)?;
            if let Some(l) = legacy.as_mut() {
                acc.grants.take_older(l, unit);
                lots::cut(&mut acc.grants.lots, acc.balance.max(0).unsigned_abs());
                if !acc.grants.lots.is_empty() {
                    tx.put(Table::Accounts, &account.to_key(), &acc)?;
                }
            }
            let Some(valid) = valid else { continue };
            if acc.grants.lots.is_empty() {
                continue;
            }
            let last_day = |l: &Lot| l.at.local_day(offset) + i64::from(valid);
            let balance = acc.balance.max(0).unsigned_abs();
            let available = acc.available().max(0).unsigned_abs();
            let due = lots::held_of(&acc.grants.lots, balance, last_day, i64::MIN, today - 1)
                .min(available);
            if due > 0 {
                let v = ledger::signed(due)?;
                let issued = match unit {
                    Unit::Points => AccountKey::PointsIssued(merchant),
                    Unit::Credit => AccountKey::StoreIssued(merchant),
                };
                ledger::post(
                    tx,
                    now,
                    JournalKind::Expiry,
                    None,
                    vec![(account.clone(), -v), (issued, v)],
                )?;
                out.expired[i] = due;
                acc = ledger::account(tx, &account)?;
            }
            // Every posting cut the lots to what the balance holds.
            let warned = acc.grants.warned_through.max(today - 1);
            for l in &acc.grants.lots {
                let d = last_day(l);
                if warned < d && d <= horizon {
                    warn[i] += l.amount;
                    first_day = Some(first_day.map_or(d, |f| f.min(d)));
                }
            }
            acc.grants.warned_through = acc.grants.warned_through.max(horizon);
            tx.put(Table::Accounts, &account.to_key(), &acc)?;
        }
        crate::rollup::expired(
            tx,
            &self.core.cfg,
            &merchant,
            today,
            out.expired[0],
            out.expired[1],
        )?;
        let Some(m) = tx.get::<Member>(Table::Members, &member.0.to_be_bytes())? else {
            return Ok(out);
        };
        if out.expired != [0, 0] {
            let [points, credit] = out.expired;
            let kind = NoticeKind::Expired {
                merchant,
                points,
                credit,
            };
            notice::enqueue(tx, now, &m, kind)?;
        }
        if let Some(by) = first_day {
            let [points, credit] = warn;
            let kind = NoticeKind::ExpiryWarning {
                merchant,
                points,
                credit,
                by,
            };
            notice::enqueue(tx, now, &m, kind)?;
            out.warned = true;
        }
        Ok(out)
    }

    fn birthdays(&self, now: UnixTime, first: i64, today: i64, run: &mut DailyRun) -> Result<()> {
        let (year, month, day) = civil_from_days(today);
        let mut dates = vec![Birthday { month, day }];
        if (month, day) == (2, 28) && !is_leap(year) {
            dates.push(Birthday { month: 2, day: 29 });
        }
        for date in dates {
            let prefix = by_date(date);
            for item in self.core.store.scan_keys(Table::Daily, &prefix) {
                let key = item?;
                let Some(id) = key
                    .get(prefix.len()..)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| MemberId(u64::from_be_bytes(b)))
                else {
                    continue;
                };
                let sent = self.core.store.transaction(|tx| {
                    let Some(m) = tx.get::<Member>(Table::Members, &id.0.to_be_bytes())? else {
                        return Ok(false);
                    };
                    // A greeting is marketing: not to a member who
                    // opted out of it.
                    if m.status != Status::Active || m.opted_out.is_some() {
                        return Ok(false);
                    }
                    enqueue_once(tx, now, first, &m, NoticeKind::Birthday)
                })?;
                run.birthdays += usize::from(sent);
            }
        }
        Ok(())
    }

    /// Warns of cards whose warning day fell in `(since, today]`.
    fn cards_expiring(
        &self,
        now: UnixTime,
        since: i64,
        today: i64,
        run: &mut DailyRun,
    ) -> Result<()> {
        let warn = i64::from(self.core.cfg.loyalty.card_expiry_warn_days);
        for item in self.core.store.scan::<Card>(Table::Cards, b"") {
            let (_, card) = item?;
            let (Some(member), Some(expiry)) = (card.member, card.expiry) else {
                continue;
            };
            let through = card_through(expiry);
            let due = through - warn;
            if card.status != Status::Active
                || card.replaced_by.is_some()
                || !(since < due && due <= today)
            {
                continue;
            }
            let last4 = String::from_utf8_lossy(&card.last4).into_owned();
            let sent = self.core.store.transaction(|tx| {
                let Some(m) = tx.get::<Member>(Table::Members, &member.0.to_be_bytes())? else {
                    return Ok(false);
                };
                let kind = NoticeKind::CardExpiring {
                    last4: last4.clone(),
                    through,
                };
                enqueue_once(tx, now, since + 1, &m, kind)
            })?;
            run.cards_expiring += usize::from(sent);
        }
        Ok(())
    }
}

/// The account that holds a member's `unit` at a merchant.
fn unit_account(unit: Unit, member: MemberId, merchant: MerchantId) -> AccountKey {
    match unit {
        Unit::Points => AccountKey::Points { member, merchant },
        Unit::Credit => AccountKey::Store { member, merchant },
    }
}

/// A part of a member's points or credit and the last local day it is
/// valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiring {
    pub unit: Unit,
    pub valid_through: i64,
    pub amount: u64,
}

/// What expiring one member's lots did: points and credit expired, and
/// whether a warning went out.
#[derive(Default)]
struct Expired {
    expired: [u64; 2],
    warned: bool,
}

impl crate::codec::Record for Birthday {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jalali_birthdays_keep_the_gregorian_day_they_fell_on() {
        // 12 Mordad 1370 was 3 August 1991; 1 Farvardin 1379, 20 March
        // 2000; 30 Esfand 1375 (a leap year) was 20 March 1997.
        for (typed, kept) in [
            ("1370/05/12", "08-03"),
            ("۱۳۷۰/۰۵/۱۲", "08-03"),
            ("1379-01-01", "03-20"),
            ("1375/12/30", "03-20"),
        ] {
            assert_eq!(
                typed.parse::<Birthday>().unwrap().to_string(),
                kept,
                "{typed}"
            );
        }
        // 30 Esfand 1376 does not exist; month 13 neither.
        assert!("1376/12/30".parse::<Birthday>().is_err());
        assert!("1370/13/01".parse::<Birthday>().is_err());
        assert_eq!(
            "1991/08/03".parse::<Birthday>().unwrap().to_string(),
            "08-03"
        );
    }

    #[test]
    fn birthdays_parse_with_or_without_a_year_and_refuse_impossible_dates() {
        let b: Birthday = "1990-02-29".parse().unwrap();
        assert_eq!(b, Birthday { month: 2, day: 29 });
        assert_eq!(b.to_string(), "02-29");
        assert_eq!("12-31".parse::<Birthday>().ok().map(|b| b.day), Some(31));
        for bad in ["04-31", "13-01", "00-10", "02-30", "x", "1-2-3-4", "12-00"] {
            assert!(bad.parse::<Birthday>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_card_is_valid_through_the_last_day_of_its_month() {
        let e = |year, month| clubswitch_wire::Expiry { year, month };
        assert_eq!(card_through(e(27, 2)), days_from_civil(2027, 2, 28));
        assert_eq!(card_through(e(28, 2)), days_from_civil(2028, 2, 29));
        assert_eq!(card_through(e(27, 12)), days_from_civil(2027, 12, 31));
    }
}
