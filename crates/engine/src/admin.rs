//! Operator actions: merchants, terminals, members, cards, rules, top-up and
//! store credit. Each is one atomic transaction; a refused action changes
//! nothing.

use clubswitch_wire::{
    Amount, CardNumber, Expiry, MerchantId, ProcessingCode, Rrn, Stan, TerminalId, TransmissionTime,
};

use crate::archive::Archive;
use crate::core::Core;
use crate::cx::Cx;
use crate::error::{EngineError, Result};
use crate::idempotency::{Caller, Idempotency};
use crate::ledger::{self, signed};
use crate::model::contact;
use crate::model::RequestKey;
use crate::model::{
    keys, Account, AccountKey, Card, CardHash, CardKind, JournalKind, Member, MemberId, Merchant,
    Status, Terminal, Txn, UnixTime,
};
use crate::request::Refund;
use crate::rules::{DiscountRule, RuleRecord};
use crate::storage::{abort, Durable, Table, Tx, TxResult};

/// The most renewals a top-up follows from the card it names to the card
/// that holds the account now (a card renewed every month for five years
/// is sixty).
const MAX_RENEWALS: usize = 64;

/// Operator actions on the ledger: merchants, terminals, members, cards,
/// rules, top-up and store credit, and what they look up.
pub struct Admin<'a> {
    core: &'a Core,
    /// On whose behalf and under which key its money moves run.
    caller: Caller,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Admin {
            core,
            caller: Caller::default(),
        }
    }

    /// These calls under the caller's idempotency key: a call that moves
    /// money ([`Admin::top_up`], [`Admin::grant_store_credit`]) does so at
    /// most once per key and answers a repeat as the first (see
    /// [`crate::idempotency`]).
    pub fn keyed(mut self, idem: Option<Idempotency>) -> Self {
        self.caller.idem = idem;
        self
    }

    /// These calls on behalf of `actor` (a user, a cashier, a payment
    /// gateway): the journal entries of the money they move name it.
    pub fn by(mut self, actor: Option<String>) -> Self {
        self.caller.actor = actor;
        self
    }
}

/// A new card.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub pan: CardNumber,
    pub kind: CardKind,
    pub member: Option<MemberId>,
    pub expiry: Option<Expiry>,
    pub max_amount: Option<Amount>,
    pub daily_limit: Option<Amount>,
}

pub(crate) fn not_found(what: &'static str, key: impl ToString) -> EngineError {
    EngineError::NotFound {
        what,
        key: key.to_string(),
    }
}

impl Admin<'_> {
    /// Creates or updates a merchant.
    pub fn put_merchant(&self, m: &Merchant) -> Result<Durable<()>> {
        self.core
            .store
            .transaction_durable(|tx| tx.put(Table::Merchants, m.id.as_bytes(), m))
    }

    pub fn merchant(&self, id: &MerchantId) -> Result<Option<Merchant>> {
        self.core.store.get(Table::Merchants, id.as_bytes())
    }

    pub fn merchants(&self) -> Result<Vec<Merchant>> {
        self.core.store.values(Table::Merchants, b"")
    }

    /// Registers a terminal of an existing merchant.
    pub fn add_terminal(&self, t: &Terminal) -> Result<Durable<()>> {
        self.core.store.transaction_durable(|tx| {
            if !tx.contains(Table::Merchants, t.merchant.as_bytes())? {
                return abort(not_found("merchant", t.merchant));
            }
            if tx.contains(Table::Terminals, t.id.as_bytes())? {
                return abort(EngineError::Exists {
                    what: "terminal",
                    key: t.id.to_string(),
                });
            }
            tx.put(Table::Terminals, t.id.as_bytes(), t)
        })
    }

    pub fn terminal(&self, id: &TerminalId) -> Result<Option<Terminal>> {
        self.core.store.get(Table::Terminals, id.as_bytes())
    }

    pub fn terminals(&self) -> Result<Vec<Terminal>> {
        self.core.store.values(Table::Terminals, b"")
    }

    /// Changes a terminal record in one transaction; returns it as changed.
    pub fn update_terminal(
        &self,
        id: &TerminalId,
        f: impl Fn(&mut Terminal),
    ) -> Result<Durable<Terminal>> {
        self.core.store.transaction_durable(|tx| {
            let Some(mut t) = tx.get::<Terminal>(Table::Terminals, id.as_bytes())? else {
                return abort(not_found("terminal", id));
            };
            f(&mut t);
            tx.put(Table::Terminals, id.as_bytes(), &t)?;
            Ok(t)
        })
    }

    pub fn add_member(
        &self,
        name: &str,
        phone: &str,
        tier: crate::model::Tier,
        groups: Vec<String>,
    ) -> Result<Durable<Member>> {
        let name = contact::person_name(name)?;
        let phone = contact::optional_mobile(phone)?;
        let id = MemberId(self.core.store.next_id()? + 1);
        let m = Member {
            id,
            name,
            phone,
            tier,
            groups,
            status: Status::Active,
            language: None,
            opted_out: None,
            joined: Some(UnixTime::now()),
        };
        let stored = self
            .core
            .store
            .transaction_durable(|tx| tx.put(Table::Members, &id.0.to_be_bytes(), &m))?;
        Ok(stored.map(|()| m))
    }

    /// Enrols many members at once (a club moving its customer list to
    /// the switch): every record is checked first, and all are written in
    /// one transaction or none (the error names the first bad one, counted
    /// from 0). Their ids, in the order given.
    pub fn import_members(&self, members: &[Member]) -> Result<Durable<Vec<MemberId>>> {
        let checked = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let fail = |e: EngineError| EngineError::invalid(format!("member {i}: {e}"));
                Ok(Member {
                    name: contact::person_name(&m.name).map_err(fail)?,
                    phone: contact::optional_mobile(&m.phone).map_err(fail)?,
                    ..m.clone()
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.core.store.transaction_durable(|tx| {
            let mut ids = Vec::with_capacity(checked.len());
            for m in &checked {
                let id = MemberId(tx.next_id()? + 1);
                let m = Member { id, ..m.clone() };
                tx.put(Table::Members, &id.0.to_be_bytes(), &m)?;
                ids.push(id);
            }
            Ok(ids)
        })
    }

    /// Writes a member's record as given, its name and phone number
    /// checked and put in their one form first ([`contact`]).
    pub fn put_member(&self, m: &Member) -> Result<Durable<Member>> {
        let m = Member {
            name: contact::person_name(&m.name)?,
            phone: contact::optional_mobile(&m.phone)?,
            ..m.clone()
        };
        self.core
            .store
            .transaction_durable(|tx| tx.put(Table::Members, &m.id.0.to_be_bytes(), &m))
            .map(|stored| stored.map(|()| m))
    }

    /// Changes member `id` to what `edit` makes of the record as stored, in
    /// one transaction: a change written meanwhile (an opt-out by text
    /// message) is what `edit` starts from, never overwritten by a copy
    /// read before it. Name and phone are checked as [`Admin::put_member`]
    /// checks them; the id stays.
    pub fn edit_member(
        &self,
        id: MemberId,
        edit: impl Fn(&Member) -> Member,
    ) -> Result<Durable<Member>> {
        self.core.store.transaction_durable(|tx| {
            let Some(old) = tx.get::<Member>(Table::Members, &id.0.to_be_bytes())? else {
                return abort(not_found("member", id.0));
            };
            let new = edit(&old);
            let (name, phone) = match (
                contact::person_name(&new.name),
                contact::optional_mobile(&new.phone),
            ) {
                (Ok(name), Ok(phone)) => (name, phone),
                (Err(e), _) | (_, Err(e)) => return abort(e),
            };
            let m = Member {
                id,
                name,
                phone,
                ..new
            };
            tx.put(Table::Members, &id.0.to_be_bytes(), &m)?;
            Ok(m)
        })
    }

    /// Records that the members with phone number `phone` (typed in any
    /// form) opted out of marketing at `now` (with `opt_out` false: back
    /// in); how many records changed. A number no member has changes
    /// nothing: a gateway forwards every `STOP` it receives.
    pub fn opt_out_by_phone(
        &self,
        phone: &str,
        opt_out: bool,
        now: UnixTime,
    ) -> Result<Durable<Vec<MemberId>>> {
        let phone = contact::mobile(phone)?;
        // Who has the number is found outside the transaction (a read of
        // every member, as rare as a STOP); each is read again inside it, so
        // an edit in between is neither lost nor undone.
        let holders: Vec<MemberId> = self
            .core
            .store
            .values::<Member>(Table::Members, b"")?
            .into_iter()
            .filter(|m| m.phone == phone)
            .map(|m| m.id)
            .collect();
        self.core.store.transaction_durable(|tx| {
            let mut changed = Vec::new();
            for id in &holders {
                let key = id.0.to_be_bytes();
                let Some(mut m) = tx.get::<Member>(Table::Members, &key)? else {
                    continue;
                };
                if m.phone == phone && m.opted_out.is_some() != opt_out {
                    m.opted_out = opt_out.then_some(now);
                    tx.put(Table::Members, &key, &m)?;
                    changed.push(m.id);
                }
            }
            Ok(changed)
        })
    }

    pub fn member(&self, id: MemberId) -> Result<Option<Member>> {
        self.core.store.get(Table::Members, &id.0.to_be_bytes())
    }

    /// Members matching `query`, at most `limit`, by id: a phone number in
    /// any of its forms (see [`contact::normal_phone`]), a part of a
    /// name (any case), or the last four digits of one of their cards.
    /// An empty query matches everyone. This reads every member (and, for
    /// four digits, every card): a search desk's look-up, not a hot path.
    pub fn find_members(&self, query: &str, limit: usize) -> Result<Vec<Member>> {
        let query = query.trim();
        let phone = contact::normal_phone(query);
        let name = query.to_lowercase();
        let by_card: Vec<MemberId> = match query.as_bytes() {
            q @ [_, _, _, _] if q.iter().all(u8::is_ascii_digit) => self
                .core
                .store
                .values::<Card>(Table::Cards, b"")?
                .into_iter()
                .filter(|c| c.last4 == q)
                .filter_map(|c| c.member)
                .collect(),
            _ => Vec::new(),
        };
        let mut found: Vec<Member> = self
            .core
            .store
            .values::<Member>(Table::Members, b"")?
            .into_iter()
            .filter(|m| {
                query.is_empty()
                    || by_card.contains(&m.id)
                    || (phone.len() >= 4 && contact::normal_phone(&m.phone).contains(&phone))
                    || m.name.to_lowercase().contains(&name)
            })
            .collect();
        found.sort_by_key(|m| m.id.0);
        found.truncate(limit);
        Ok(found)
    }

    /// A member's cards, club and bank, as stored (hash and last four
    /// digits only). Reads every card.
    pub fn cards_of(&self, member: MemberId) -> Result<Vec<Card>> {
        Ok(self
            .core
            .store
            .values::<Card>(Table::Cards, b"")?
            .into_iter()
            .filter(|c| c.member == Some(member))
            .collect())
    }

    /// Issues a club card or enrols a bank card. Only the keyed hash and the
    /// last four digits are stored.
    pub fn issue_card(&self, new: &NewCard) -> Result<Durable<Card>> {
        let hash = self.core.hasher.hash(&new.pan);
        let account = match new.kind {
            CardKind::Club => Some(self.core.store.next_id()? + 1),
            CardKind::Bank => None,
        };
        let card = Card {
            hash,
            last4: new.pan.last4(),
            kind: new.kind,
            member: new.member,
            account,
            status: Status::Active,
            expiry: new.expiry,
            max_amount: new.max_amount,
            daily_limit: new.daily_limit,
            replaced_by: None,
        };
        self.core
            .store
            .transaction_durable(|tx| {
                if tx.contains(Table::Cards, &hash.0)? {
                    return abort(EngineError::Exists {
                        what: "card",
                        key: new.pan.masked(),
                    });
                }
                if let Some(m) = new.member {
                    if !tx.contains(Table::Members, &m.0.to_be_bytes())? {
                        return abort(not_found("member", m.0));
                    }
                }
                tx.put(Table::Cards, &hash.0, &card)
            })
            .map(|issued| issued.map(|()| card))
    }

    /// Issues a batch of club cards, each with a new member, in one
    /// transaction: either every card is issued or none is.
    pub fn issue_batch(
        &self,
        cards: &[(String, CardNumber, Option<Expiry>)],
    ) -> Result<Durable<Vec<(Member, Card)>>> {
        let mut planned = Vec::with_capacity(cards.len());
        for (name, pan, expiry) in cards {
            let member = Member {
                id: MemberId(self.core.store.next_id()? + 1),
                // A batch printed without names (gift cards, cards handed
                // out at the till) issues to members who have none yet.
                name: match name.trim() {
                    "" => String::new(),
                    named => contact::person_name(named)?,
                },
                phone: String::new(),
                tier: crate::model::Tier::Bronze,
                groups: Vec::new(),
                status: Status::Active,
                language: None,
                opted_out: None,
                joined: Some(UnixTime::now()),
            };
            let card = Card {
                hash: self.core.hasher.hash(pan),
                last4: pan.last4(),
                kind: CardKind::Club,
                member: Some(member.id),
                account: Some(self.core.store.next_id()? + 1),
                status: Status::Active,
                expiry: *expiry,
                max_amount: None,
                daily_limit: None,
                replaced_by: None,
            };
            planned.push((member, card, pan.masked()));
        }
        self.core
            .store
            .transaction_durable(|tx| {
                for (member, card, masked) in &planned {
                    if tx.contains(Table::Cards, &card.hash.0)? {
                        return abort(EngineError::Exists {
                            what: "card",
                            key: masked.clone(),
                        });
                    }
                    tx.put(Table::Members, &member.id.0.to_be_bytes(), member)?;
                    tx.put(Table::Cards, &card.hash.0, card)?;
                }
                Ok(())
            })
            .map(|issued| issued.map(|()| planned.into_iter().map(|(m, c, _)| (m, c)).collect()))
    }

    pub fn card(&self, hash: &CardHash) -> Result<Option<Card>> {
        self.core.store.get(Table::Cards, &hash.0)
    }

    /// Changes a card record in one transaction. A renewed card stays
    /// blocked whatever the change: its account went to its replacement,
    /// and unblocked it would spend that account beside the new card (a
    /// lost card, back to life).
    pub fn update_card(&self, hash: &CardHash, f: impl Fn(&mut Card)) -> Result<Durable<Card>> {
        self.core.store.transaction_durable(|tx| {
            let Some(mut c) = tx.get::<Card>(Table::Cards, &hash.0)? else {
                return abort(not_found("card", hex::encode(&hash.0[..6])));
            };
            f(&mut c);
            if c.replaced_by.is_some() && c.status != Status::Blocked {
                return abort(EngineError::invalid(
                    "a renewed card stays blocked: its account is its replacement's",
                ));
            }
            tx.put(Table::Cards, &hash.0, &c)?;
            Ok(c)
        })
    }

    /// Renews a club card onto a new card number: the club account (and so
    /// its balance and holds) moves to the new card; the old one is blocked.
    pub fn renew_card(
        &self,
        old: &CardHash,
        pan: &CardNumber,
        expiry: Option<Expiry>,
    ) -> Result<Durable<Card>> {
        let hash = self.core.hasher.hash(pan);
        self.core.store.transaction_durable(|tx| {
            let Some(mut prev) = tx.get::<Card>(Table::Cards, &old.0)? else {
                return abort(not_found("card", hex::encode(&old.0[..6])));
            };
            if prev.replaced_by.is_some() {
                return abort(EngineError::invalid("card was already renewed"));
            }
            if tx.contains(Table::Cards, &hash.0)? {
                return abort(EngineError::Exists {
                    what: "card",
                    key: pan.masked(),
                });
            }
            let next = Card {
                hash,
                last4: pan.last4(),
                expiry,
                status: Status::Active,
                replaced_by: None,
                ..prev.clone()
            };
            prev.status = Status::Blocked;
            prev.replaced_by = Some(hash);
            tx.put(Table::Cards, &old.0, &prev)?;
            tx.put(Table::Cards, &hash.0, &next)?;
            Ok(next)
        })
    }

    /// A member charging a club card: money in from outside.
    pub fn top_up(
        &self,
        card: &CardHash,
        amount: Amount,
        now: UnixTime,
    ) -> Result<Durable<Account>> {
        if amount.is_zero() {
            return Err(EngineError::invalid("top-up amount must be positive"));
        }
        self.caller.moves(&self.core.store, now, |tx| {
            self.top_up_in(tx, card, amount, now)
        })
    }

    fn top_up_in(
        &self,
        tx: &Tx<'_>,
        card: &CardHash,
        amount: Amount,
        now: UnixTime,
    ) -> TxResult<Account> {
        let Some(c) = tx.get::<Card>(Table::Cards, &card.0)? else {
            return abort(not_found("card", hex::encode(&card.0[..6])));
        };
        let Some(id) = c.account else {
            return abort(EngineError::invalid("only club cards can be topped up"));
        };
        // A card renewed since (lost, a payment begun before): its account
        // went to the new card, so the money goes there as long as the
        // card at the end of the renewals may take it.
        let mut now_card = c;
        for _ in 0..MAX_RENEWALS {
            let Some(next) = now_card
                .replaced_by
                .filter(|_| now_card.status != Status::Active)
            else {
                break;
            };
            let Some(n) = tx.get::<Card>(Table::Cards, &next.0)? else {
                break;
            };
            now_card = n;
        }
        if now_card.status != Status::Active || now_card.account != Some(id) {
            return abort(EngineError::invalid("card is blocked"));
        }
        let key = AccountKey::Club(id);
        let v = signed(amount.value())?;
        ledger::post(
            tx,
            now,
            JournalKind::TopUp,
            None,
            vec![(AccountKey::ClubFunding, -v), (key.clone(), v)],
        )?;
        ledger::account(tx, &key)
    }

    /// A merchant granting store credit (gift, cashback) to a member.
    pub fn grant_store_credit(
        &self,
        member: MemberId,
        merchant: &MerchantId,
        amount: Amount,
        now: UnixTime,
    ) -> Result<Durable<Account>> {
        if amount.is_zero() {
            return Err(EngineError::invalid("credit amount must be positive"));
        }
        self.caller.moves(&self.core.store, now, |tx| {
            self.grant_store_credit_in(tx, member, merchant, amount, now)
        })
    }

    fn grant_store_credit_in(
        &self,
        tx: &Tx<'_>,
        member: MemberId,
        merchant: &MerchantId,
        amount: Amount,
        now: UnixTime,
    ) -> TxResult<Account> {
        if !tx.contains(Table::Members, &member.0.to_be_bytes())? {
            return abort(not_found("member", member.0));
        }
        if !tx.contains(Table::Merchants, merchant.as_bytes())? {
            return abort(not_found("merchant", merchant));
        }
        let key = AccountKey::Store {
            member,
            merchant: *merchant,
        };
        let v = signed(amount.value())?;
        ledger::post(
            tx,
            now,
            JournalKind::StoreGrant,
            None,
            vec![(AccountKey::StoreIssued(*merchant), -v), (key.clone(), v)],
        )?;
        ledger::account(tx, &key)
    }

    /// Adds a discount rule to a merchant; returns its id.
    pub fn add_rule(&self, merchant: &MerchantId, rule: DiscountRule) -> Result<Durable<u64>> {
        let id = self.core.store.next_id()? + 1;
        let added = self.core.store.transaction_durable(|tx| {
            if !tx.contains(Table::Merchants, merchant.as_bytes())? {
                return abort(not_found("merchant", merchant));
            }
            let mut ids: Vec<u64> = tx
                .get(Table::Rules, merchant.as_bytes())?
                .unwrap_or_default();
            ids.push(id);
            tx.put(Table::Rules, merchant.as_bytes(), &ids)?;
            let rec = RuleRecord {
                rule: DiscountRule { id, ..rule.clone() },
                spent: 0,
                held: 0,
            };
            tx.put(Table::Rules, &keys::rule(merchant, id), &rec)
        })?;
        Ok(added.map(|()| id))
    }

    /// Replaces rule `id` of a merchant by what `edit` makes of it as
    /// stored (its id kept), in one transaction: an edit that changes some
    /// fields keeps the rest as they are at the commit, and what the rule
    /// has given (`spent`) and holds (`held`) stay with it, so a budget
    /// counts what the rule gave before the edit.
    pub fn update_rule(
        &self,
        merchant: &MerchantId,
        id: u64,
        edit: impl Fn(&DiscountRule) -> DiscountRule,
    ) -> Result<Durable<RuleRecord>> {
        self.core.store.transaction_durable(|tx| {
            let key = keys::rule(merchant, id);
            let Some(mut rec) = tx.get::<RuleRecord>(Table::Rules, &key)? else {
                return abort(not_found("rule", id));
            };
            rec.rule = DiscountRule {
                id,
                ..edit(&rec.rule)
            };
            tx.put(Table::Rules, &key, &rec)?;
            Ok(rec)
        })
    }

    /// A merchant's discount rules; not found for a merchant that is not.
    pub fn rules(&self, merchant: &MerchantId) -> Result<Vec<RuleRecord>> {
        if self.merchant(merchant)?.is_none() {
            return Err(not_found("merchant", merchant));
        }
        let ids: Vec<u64> = self
            .core
            .store
            .get(Table::Rules, merchant.as_bytes())?
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            if let Some(r) = self
                .core
                .store
                .get(Table::Rules, &keys::rule(merchant, id))?
            {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// An account's balance. Customer accounts are stored; the others are
    /// summed from the journal (an operator's query, not the hot path).
    pub fn account(&self, key: &AccountKey) -> Result<Account> {
        if key.is_customer() {
            return Ok(self
                .core
                .store
                .get(Table::Accounts, &key.to_key())?
                .unwrap_or_default());
        }
        let mut balance = Archive::new(self.core).archived_sum(key)?;
        for item in self
            .core
            .store
            .scan::<crate::model::JournalEntry>(Table::Journal, b"")
        {
            let (_, e) = item?;
            for (k, v) in &e.postings {
                if k == key {
                    balance = balance
                        .checked_add(*v)
                        .ok_or(EngineError::Overflow("balance"))?;
                }
            }
        }
        Ok(Account {
            balance,
            ..Account::default()
        })
    }

    pub fn txn(&self, rrn: &Rrn) -> Result<Option<Txn>> {
        self.core.store.get(Table::Txns, rrn.as_bytes())
    }

    /// A card's transactions still in the live ledger (see `archive`),
    /// oldest first.
    pub fn card_history(&self, card: &CardHash) -> Result<Vec<Txn>> {
        if self.card(card)?.is_none() {
            return Err(not_found("card", hex::encode(&card.0[..6])));
        }
        self.transactions(|t| t.card.as_ref() == Some(card))
    }

    /// A terminal's transactions, oldest first; not found for a terminal
    /// that is not.
    pub fn terminal_history(&self, terminal: &TerminalId) -> Result<Vec<Txn>> {
        if self.terminal(terminal)?.is_none() {
            return Err(not_found("terminal", terminal));
        }
        self.transactions(|t| t.request.terminal == *terminal)
    }

    /// Transactions matching `keep`, oldest first (RRN order). Reports and
    /// histories read the transaction table rather than indexes the
    /// authorize path would have to write.
    pub fn transactions(&self, keep: impl Fn(&Txn) -> bool) -> Result<Vec<Txn>> {
        let mut out = Vec::new();
        for item in self.core.store.scan::<Txn>(Table::Txns, b"") {
            let (_, t) = item?;
            if keep(&t) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Today's club spend of a card (for limits and support).
    pub fn daily_spend(&self, card: &CardHash, now: UnixTime) -> Result<u64> {
        let day = now.local_day(self.core.cfg.utc_offset_secs);
        Ok(self
            .core
            .store
            .get(Table::DailySpend, &keys::daily(card, day))?
            .unwrap_or(0))
    }
}

/// A refund made through the admin API (a cashier at the merchant's desk,
/// an operator), as it went through.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct AdminRefund {
    /// The refund's own RRN.
    pub rrn: Rrn,
    /// The purchase it refunds.
    pub purchase: Rrn,
    pub amount: u64,
    /// What is left to refund of the purchase.
    pub refundable: u64,
}

impl crate::codec::Record for AdminRefund {}

/// Why an admin refund was refused: the response code a terminal would
/// have got, and what it means.
fn refused(code: clubswitch_wire::ResponseCode) -> EngineError {
    use clubswitch_wire::ResponseCode as Rc;
    match code {
        Rc::OriginalNotFound => EngineError::NotFound {
            what: "purchase",
            key: "(or outside the refund window)".into(),
        },
        Rc::InvalidAmount => {
            EngineError::invalid("amount: more than is left to refund, zero, or another currency")
        }
        Rc::InsufficientFunds => EngineError::invalid("not enough value left to take back"),
        other => EngineError::invalid(format!(
            "the purchase cannot be refunded (response code {})",
            String::from_utf8_lossy(other.code())
        )),
    }
}

impl Admin<'_> {
    /// Refunds `amount` of the confirmed purchase `rrn` at `merchant`, as a
    /// 0200 from its terminal would (club, store credit or points; in
    /// proportion; within the refund window), under the caller's
    /// idempotency key. Another merchant's purchase is not found.
    pub fn refund(
        &self,
        merchant: &MerchantId,
        rrn: &Rrn,
        amount: Amount,
        now: UnixTime,
    ) -> Result<Durable<AdminRefund>> {
        self.caller.moves(&self.core.store, now, |tx| {
            let hidden = || abort(not_found("purchase", rrn.as_str()));
            let Some(purchase) = tx.get::<Txn>(Table::Txns, rrn.as_bytes())? else {
                return hidden();
            };
            if purchase.merchant != *merchant {
                return hidden();
            }
            let Some(code) = [
                ProcessingCode::ClubRefund,
                ProcessingCode::StoreRefund,
                ProcessingCode::PointsRefund,
            ]
            .into_iter()
            .find(|c| c.refunds() == Some(purchase.code)) else {
                return abort(EngineError::invalid(
                    "only club, store-credit and points purchases are refunded",
                ));
            };
            let Some(m) = tx.get::<Merchant>(Table::Merchants, merchant.as_bytes())? else {
                return hidden();
            };
            // The refund is the purchase terminal's, as if it had sent
            // it; its request key is the ledger's own (no terminal sent
            // it, so no retransmission can meet it).
            let stan = Stan::new((tx.next_id()? % 999_999 + 1) as u32)
                .map_or_else(|| abort(EngineError::invalid("stan")), Ok)?;
            let req = Refund {
                key: RequestKey {
                    terminal: purchase.request.terminal,
                    stan,
                    transmitted: TransmissionTime::from_unix(now.0),
                },
                merchant: *merchant,
                code,
                amount,
                currency: purchase.currency,
                rrn: *rrn,
            };
            let cx = Cx {
                cfg: &self.core.cfg,
                tx,
                now,
                merchant: &m,
                first_layout: self.core.first_layout.left(),
            };
            let flow = crate::flows::refund::run(&cx, &req)?;
            let (Some(refund_rrn), true) = (flow.rrn, flow.outcome.approved()) else {
                return abort(refused(flow.outcome.code));
            };
            let left = tx
                .get::<Txn>(Table::Txns, rrn.as_bytes())?
                .map_or(0, |p| p.final_amount - p.refunded.min(p.final_amount));
            Ok(AdminRefund {
                rrn: refund_rrn,
                purchase: *rrn,
                amount: amount.value(),
                refundable: left,
            })
        })
    }
}
