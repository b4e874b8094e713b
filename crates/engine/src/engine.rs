//! The engine: typed requests in, outcomes out, each request one atomic
//! transaction on the store.

use clubswitch_wire::{
    Amount, AuthId, CardData, Currency, MerchantId, OriginalData, ProcessingCode, ResponseCode, Rrn,
};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::calendar::Calendar;
use crate::durability::FlushTicket;
use crate::error::Result;
use crate::flows::{self, Flow};
use crate::keys::CardHasher;
use crate::loyalty::LoyaltyConfig;
use crate::model::{
    CardHash, Merchant, Outcome, RequestKey, RequestRecord, Status, Terminal, UnixTime,
};
use crate::store::{Store, Table, Tx, TxResult};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a hold lives unconfirmed.
    pub hold_ttl_secs: i64,
    /// Currencies accepted in DE 49.
    pub currencies: Vec<Currency>,
    /// The switch's time zone, seconds east of UTC (days, hours, daily
    /// limits, settlement dates). Default: Iran, +03:30.
    pub utc_offset_secs: i64,
    /// Working days for settlement.
    pub calendar: Calendar,
    /// Tiers, VIP and member notices.
    pub loyalty: LoyaltyConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            hold_ttl_secs: 15 * 60,
            currencies: vec![Currency::IRR],
            utc_offset_secs: 3 * 3600 + 1800,
            calendar: Calendar::default(),
            loyalty: LoyaltyConfig::default(),
        }
    }
}

/// Phase 1: authorize and hold (DE 3 purchases), or a balance inquiry.
#[derive(Debug, Clone)]
pub struct Authorize {
    pub key: RequestKey,
    pub merchant: MerchantId,
    pub code: ProcessingCode,
    pub amount: Option<Amount>,
    pub currency: Currency,
    pub card: CardData,
}

/// Phase 2: make an approval final, for at most the held amount.
#[derive(Debug, Clone)]
pub struct Confirm {
    pub key: RequestKey,
    pub merchant: MerchantId,
    pub code: ProcessingCode,
    pub amount: Amount,
    pub currency: Currency,
    pub rrn: Rrn,
    pub auth_id: AuthId,
    pub original: OriginalData,
}

/// Undo (0400 / 0420): void a hold, reverse a confirmed purchase or a refund.
#[derive(Debug, Clone)]
pub struct Undo {
    pub key: RequestKey,
    pub merchant: MerchantId,
    pub code: Option<ProcessingCode>,
    pub rrn: Option<Rrn>,
    pub original: Option<OriginalData>,
}

/// Refund (0200) of a confirmed purchase.
#[derive(Debug, Clone)]
pub struct Refund {
    pub key: RequestKey,
    pub merchant: MerchantId,
    pub code: ProcessingCode,
    pub amount: Amount,
    pub currency: Currency,
    pub rrn: Rrn,
}

/// A terminal request the engine handles.
#[derive(Debug, Clone)]
pub enum Request {
    Authorize(Authorize),
    Confirm(Confirm),
    Undo(Undo),
    Refund(Refund),
}

impl Request {
    pub fn key(&self) -> &RequestKey {
        match self {
            Request::Authorize(r) => &r.key,
            Request::Confirm(r) => &r.key,
            Request::Undo(r) => &r.key,
            Request::Refund(r) => &r.key,
        }
    }

    fn merchant(&self) -> &MerchantId {
        match self {
            Request::Authorize(r) => &r.merchant,
            Request::Confirm(r) => &r.merchant,
            Request::Undo(r) => &r.merchant,
            Request::Refund(r) => &r.merchant,
        }
    }
}

/// The engine's answer: the outcome, and for operations that moved value, a
/// ticket that resolves once they are on disk. The caller must not report an
/// approval before the ticket resolves.
pub struct Reply {
    pub outcome: Outcome,
    pub durable: Option<FlushTicket>,
}

impl Reply {
    /// Waits for durability (blocking) and returns the outcome; a failed
    /// flush turns the answer into 96.
    pub fn wait(self) -> Outcome {
        match self.durable.map(FlushTicket::wait) {
            Some(Err(_)) => Outcome::decline(ResponseCode::SystemMalfunction),
            _ => self.outcome,
        }
    }
}

/// The authorization engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) hasher: CardHasher,
    pub(crate) cfg: EngineConfig,
    /// Pending holds counted by the last sweep (for metrics).
    pub(crate) pending: Arc<AtomicUsize>,
    /// Held by the archive run in progress.
    pub(crate) archiving: Arc<Mutex<()>>,
}

/// The content of a request that idempotency compares.
#[derive(Serialize)]
struct Content<'a> {
    kind: u8,
    code: Option<ProcessingCode>,
    amount: Option<Amount>,
    currency: Option<Currency>,
    merchant: &'a MerchantId,
    rrn: Option<Rrn>,
    auth_id: Option<AuthId>,
    original: Option<OriginalData>,
    card: Option<CardHash>,
}

impl Engine {
    pub fn new(store: Store, hasher: CardHasher, cfg: EngineConfig) -> Engine {
        Engine {
            store,
            hasher,
            cfg,
            pending: Arc::new(AtomicUsize::new(0)),
            archiving: Arc::new(Mutex::new(())),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    pub fn card_hash(&self, pan: &clubswitch_wire::CardNumber) -> CardHash {
        self.hasher.hash(pan)
    }

    fn fingerprint(&self, req: &Request, card: Option<CardHash>) -> [u8; 32] {
        let c = match req {
            Request::Authorize(r) => Content {
                kind: 1,
                code: Some(r.code),
                amount: r.amount,
                currency: Some(r.currency),
                merchant: &r.merchant,
                rrn: None,
                auth_id: None,
                original: None,
                card,
            },
            Request::Confirm(r) => Content {
                kind: 2,
                code: Some(r.code),
                amount: Some(r.amount),
                currency: Some(r.currency),
                merchant: &r.merchant,
                rrn: Some(r.rrn),
                auth_id: Some(r.auth_id),
                original: Some(r.original),
                card: None,
            },
            Request::Undo(r) => Content {
                kind: 3,
                code: r.code,
                amount: None,
                currency: None,
                merchant: &r.merchant,
                rrn: r.rrn,
                auth_id: None,
                original: r.original,
                card: None,
            },
            Request::Refund(r) => Content {
                kind: 4,
                code: Some(r.code),
                amount: Some(r.amount),
                currency: Some(r.currency),
                merchant: &r.merchant,
                rrn: Some(r.rrn),
                auth_id: None,
                original: None,
                card: None,
            },
        };
        let bytes = bincode::serialize(&c).unwrap_or_default();
        Sha256::digest(&bytes).into()
    }

    /// Handles one terminal request at time `now`, atomically.
    pub fn handle(&self, req: &Request, now: UnixTime) -> Result<Reply> {
        let prepared = self.prepare(req);
        let mark = self.store.mark();
        let (outcome, durable) = self
            .store
            .transaction(|tx| self.apply(tx, req, &prepared, now))?;
        Ok(Reply {
            outcome,
            durable: durable.then(|| self.store.durable_since(mark)),
        })
    }

    /// Handles several requests in one transaction, in order, each exactly
    /// as [`Engine::handle`] would (a later request sees what an earlier one
    /// wrote). A decline is an outcome like any other; only a storage
    /// failure fails the batch, and then none of it is applied. Committing
    /// many requests at once spares the storage's per-commit cost, which
    /// dominates a single request's.
    pub fn handle_batch(&self, reqs: &[Request], now: UnixTime) -> Result<Vec<Reply>> {
        let prepared: Vec<Prepared> = reqs.iter().map(|r| self.prepare(r)).collect();
        let mark = self.store.mark();
        let results = self.store.transaction(|tx| {
            reqs.iter()
                .zip(&prepared)
                .map(|(r, p)| self.apply(tx, r, p, now))
                .collect::<TxResult<Vec<_>>>()
        })?;
        // Tickets taken after the commit all resolve with the same flush.
        Ok(results
            .into_iter()
            .map(|(outcome, durable)| Reply {
                outcome,
                durable: durable.then(|| self.store.durable_since(mark)),
            })
            .collect())
    }

    /// What can be computed before the transaction: the card hash and the
    /// request's fingerprint.
    fn prepare(&self, req: &Request) -> Prepared {
        let card = match req {
            Request::Authorize(a) => Some(self.hasher.hash(&a.card.pan)),
            _ => None,
        };
        Prepared {
            card,
            fingerprint: self.fingerprint(req, card),
            key: req.key().to_key(),
        }
    }

    /// One request inside a transaction: terminal, idempotency, merchant,
    /// the flow, and the request record.
    fn apply(
        &self,
        tx: &Tx<'_>,
        req: &Request,
        p: &Prepared,
        now: UnixTime,
    ) -> TxResult<(Outcome, bool)> {
        let tid = req.key().terminal;
        let Some(term) = tx.get::<Terminal>(Table::Terminals, tid.as_bytes())? else {
            return Ok((
                Outcome::decline(ResponseCode::NotPermittedToTerminal),
                false,
            ));
        };
        if let Some(rec) = tx.get::<RequestRecord>(Table::Requests, &p.key)? {
            if rec.fingerprint == p.fingerprint {
                return Ok((rec.outcome, rec.durable));
            }
            return Ok((Outcome::decline(ResponseCode::DuplicateTransmission), false));
        }
        let merchant = tx.get::<Merchant>(Table::Merchants, term.merchant.as_bytes())?;
        let flow = match merchant {
            _ if term.status != Status::Active || term.locked => {
                Flow::decline(ResponseCode::NotPermittedToTerminal)
            }
            Some(m) if m.status == Status::Active && m.id == *req.merchant() => {
                let cx = flows::Cx {
                    engine: self,
                    tx,
                    now,
                    merchant: &m,
                };
                match req {
                    Request::Authorize(a) => flows::authorize::run(&cx, a, p.card)?,
                    Request::Confirm(c) => flows::confirm::run(&cx, c)?,
                    Request::Undo(u) => flows::undo::run(&cx, u)?,
                    Request::Refund(r) => flows::refund::run(&cx, r)?,
                }
            }
            _ => Flow::decline(ResponseCode::InvalidMerchant),
        };
        let record = RequestRecord {
            fingerprint: p.fingerprint,
            at: now,
            outcome: flow.outcome.clone(),
            rrn: flow.rrn,
            durable: flow.durable,
        };
        tx.put(Table::Requests, &p.key, &record)?;
        Ok((flow.outcome, flow.durable))
    }
}

/// A request's precomputed parts.
struct Prepared {
    card: Option<CardHash>,
    fingerprint: [u8; 32],
    key: [u8; 24],
}
