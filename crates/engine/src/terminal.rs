//! The terminal path inside the engine: each request is one atomic
//! transaction (or one of a batch committed together) that checks the
//! terminal, answers a retransmission as the original was answered, checks
//! the merchant and runs the request's flow.

use clubswitch_wire::{
    Amount, AuthId, Currency, MerchantId, OriginalData, ProcessingCode, ResponseCode, Rrn,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::core::Core;
use crate::cx::Cx;
use crate::error::Result;
use crate::flows::{self, Flow};
use crate::model::{CardHash, Merchant, Outcome, RequestRecord, Status, Terminal, UnixTime};
use crate::request::{Reply, Request, Undo};
use crate::requests;
use crate::storage::{Table, Tx, TxResult};

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

/// What idempotency compares of a financial request; `None` for a
/// terminal update, which has no request key.
fn fingerprint(req: &Request, card: Option<CardHash>) -> Option<[u8; 32]> {
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
        Request::Undo(r) => undo_content(r),
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
        Request::Terminal(_) => return None,
    };
    Some(digest(&c))
}

/// An undo's fingerprint as releases before the MTI and DE 4 were part of
/// it wrote it (kind 3, for 0400 and 0420 alike). A record of those
/// releases still answers its retransmission within its keep; no record
/// this release writes can hold it, as no undo's content is kind 3 now.
fn earlier_undo_fingerprint(r: &Undo) -> [u8; 32] {
    digest(&Content {
        kind: 3,
        amount: None,
        ..undo_content(r)
    })
}

/// An undo's content: its MTI (as the kind), DE 3, 4, 37, 42 and 90.
fn undo_content(r: &Undo) -> Content<'_> {
    Content {
        kind: if r.advice { 6 } else { 5 },
        code: r.code,
        amount: r.amount,
        currency: None,
        merchant: &r.merchant,
        rrn: r.rrn,
        auth_id: None,
        original: r.original,
        card: None,
    }
}

/// Whether `rec` is the record of `req` repeated: the same content.
fn same_content(rec: &RequestRecord, req: &Request, fingerprint: &[u8; 32]) -> bool {
    rec.fingerprint == *fingerprint
        || matches!(req, Request::Undo(u) if rec.fingerprint == earlier_undo_fingerprint(u))
}

fn digest(c: &Content<'_>) -> [u8; 32] {
    // Fixed-width bincode whatever the record format: request records
    // keep this fingerprint, so it must not change with the format.
    let bytes = bincode::serialize(c).unwrap_or_default();
    Sha256::digest(&bytes).into()
}

/// What one request did inside the transaction.
struct Applied {
    outcome: Outcome,
    /// The terminal as a terminal update left it.
    terminal: Option<Terminal>,
    /// Whether the answer must wait for a flush.
    durable: bool,
}

impl Applied {
    fn decline(code: ResponseCode) -> Applied {
        Applied {
            outcome: Outcome::decline(code),
            terminal: None,
            durable: false,
        }
    }
}

/// The terminal path over the engine's core.
pub(crate) struct Terminals<'a> {
    pub(crate) core: &'a Core,
}

impl Terminals<'_> {
    /// Handles one terminal request at time `now`, atomically.
    pub(crate) fn handle(&self, req: &Request, now: UnixTime) -> Result<Reply> {
        let mut replies = self.handle_batch(std::slice::from_ref(req), now)?;
        replies
            .pop()
            .ok_or_else(|| crate::EngineError::invalid("a request got no reply"))
    }

    /// Handles `reqs` in one transaction, in order (see
    /// [`crate::Engine::handle_batch`]).
    pub(crate) fn handle_batch(&self, reqs: &[Request], now: UnixTime) -> Result<Vec<Reply>> {
        let prepared: Vec<Prepared> = reqs.iter().map(|r| self.prepare(r, now)).collect();
        let store = &self.core.store;
        let mark = store.mark();
        let results = store.transaction(|tx| {
            reqs.iter()
                .zip(&prepared)
                .map(|(r, p)| self.apply(tx, r, p, now))
                .collect::<TxResult<Vec<_>>>()
        })?;
        // Tickets taken after the commit all resolve with the same flush.
        Ok(results
            .into_iter()
            .map(|a| Reply {
                outcome: a.outcome,
                terminal: a.terminal,
                durable: a.durable.then(|| store.durable_since(mark)),
            })
            .collect())
    }

    /// What can be computed before the transaction: the card hash, the
    /// request's fingerprint and the key its record is stored under.
    fn prepare(&self, req: &Request, now: UnixTime) -> Prepared {
        let card = match req {
            Request::Authorize(a) => Some(self.core.hasher.hash(&a.card.pan)),
            _ => None,
        };
        Prepared {
            card,
            fingerprint: fingerprint(req, card),
            stored: req.key().map(|k| k.to_key(now)),
        }
    }

    /// One request inside a transaction: terminal, idempotency, merchant,
    /// the flow, and the request record; or a terminal update.
    fn apply(&self, tx: &Tx<'_>, req: &Request, p: &Prepared, now: UnixTime) -> TxResult<Applied> {
        let tid = req.terminal();
        let Some(mut term) = tx.get::<Terminal>(Table::Terminals, tid.as_bytes())? else {
            return Ok(Applied::decline(ResponseCode::NotPermittedToTerminal));
        };
        let (Some(key), Some(stored), Some(fingerprint), Some(merchant_id)) =
            (req.key(), &p.stored, p.fingerprint, req.merchant())
        else {
            // Only a terminal update has no request key.
            let Request::Terminal(update) = req else {
                return Ok(Applied::decline(ResponseCode::FormatError));
            };
            let durable = update.change.apply(&mut term);
            tx.put(Table::Terminals, tid.as_bytes(), &term)?;
            return Ok(Applied {
                outcome: Outcome::decline(ResponseCode::Approved),
                terminal: Some(term),
                durable,
            });
        };
        let first_layout = self.core.first_layout.left();
        if let Some(rec) = requests::find(tx, key, stored, first_layout)? {
            if same_content(&rec, req, &fingerprint) {
                return Ok(Applied {
                    outcome: rec.outcome,
                    terminal: None,
                    durable: rec.durable,
                });
            }
            return Ok(Applied::decline(ResponseCode::DuplicateTransmission));
        }
        let merchant = tx.get::<Merchant>(Table::Merchants, term.merchant.as_bytes())?;
        let flow = match merchant {
            _ if term.status != Status::Active || term.locked => {
                Flow::decline(ResponseCode::NotPermittedToTerminal)
            }
            Some(m) if m.status == Status::Active && m.id == *merchant_id => {
                let cx = Cx {
                    cfg: &self.core.cfg,
                    tx,
                    now,
                    merchant: &m,
                    first_layout,
                };
                match req {
                    Request::Authorize(a) => flows::authorize::run(&cx, a, p.card)?,
                    Request::Confirm(c) => flows::confirm::run(&cx, c)?,
                    Request::Undo(u) => flows::undo::run(&cx, u)?,
                    Request::Refund(r) => flows::refund::run(&cx, r)?,
                    Request::Terminal(_) => Flow::decline(ResponseCode::FormatError),
                }
            }
            _ => Flow::decline(ResponseCode::InvalidMerchant),
        };
        let record = RequestRecord {
            fingerprint,
            at: now,
            outcome: flow.outcome.clone(),
            rrn: flow.rrn,
            durable: flow.durable,
        };
        tx.put(Table::Requests, stored, &record)?;
        Ok(Applied {
            outcome: flow.outcome,
            terminal: None,
            durable: flow.durable,
        })
    }
}

/// A request's precomputed parts (no fingerprint or record key for a
/// terminal update).
struct Prepared {
    card: Option<CardHash>,
    fingerprint: Option<[u8; 32]>,
    /// The key its record is stored under
    /// ([`crate::model::RequestKey::to_key`]).
    stored: Option<[u8; 32]>,
}
