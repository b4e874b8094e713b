//! What the terminal path asks of the engine and what it answers: the
//! typed requests the switch builds from the wire crate's fields, and the
//! reply with its durability.

use clubswitch_wire::{
    Amount, AuthId, CardData, Currency, MerchantId, OriginalData, ProcessingCode, ResponseCode,
    Rrn, TerminalId,
};

use crate::model::{Outcome, RequestKey, Terminal, UnixTime};
use crate::storage::durability::FlushTicket;

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
    /// Whether it came as a reversal advice (0420) rather than a reversal
    /// (0400). The undo is the same; the MTI is part of the content a
    /// retransmission must repeat (section 8).
    pub advice: bool,
    pub code: Option<ProcessingCode>,
    /// DE 4, if sent: compared as content, never used to undo a part.
    pub amount: Option<Amount>,
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

/// A change to a terminal's own record that the wire layer saw. It goes
/// down the terminal path like the terminal's requests, so it is ordered
/// with them and written by the same thread.
#[derive(Debug, Clone)]
pub struct TerminalUpdate {
    pub terminal: TerminalId,
    pub change: TerminalChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalChange {
    /// A request failed its MAC or its card block: one more consecutive
    /// failure; at `lock_after` of them (0: never) the terminal locks
    /// until an operator unlocks it.
    SecurityFailure { lock_after: u32 },
    /// A request passed its MAC: consecutive failures count from 0 again.
    Verified,
    /// The terminal used the key a key change gave it: the old key ends.
    NewKeyUsed,
    /// A key change (0800): the new key, sealed, and the key it replaces,
    /// still valid until `until` so a terminal that never saw the answer
    /// can retry. Durable before it is answered: a terminal must never
    /// hold a key the switch could lose.
    KeyChanged {
        sealed: Vec<u8>,
        previous: Vec<u8>,
        until: UnixTime,
    },
}

/// What the terminal path hands the engine.
#[derive(Debug, Clone)]
pub enum Request {
    Authorize(Authorize),
    Confirm(Confirm),
    Undo(Undo),
    Refund(Refund),
    Terminal(TerminalUpdate),
}

impl Request {
    /// The idempotency key of a terminal's financial request.
    pub fn key(&self) -> Option<&RequestKey> {
        match self {
            Request::Authorize(r) => Some(&r.key),
            Request::Confirm(r) => Some(&r.key),
            Request::Undo(r) => Some(&r.key),
            Request::Refund(r) => Some(&r.key),
            Request::Terminal(_) => None,
        }
    }

    /// The terminal it comes from.
    pub fn terminal(&self) -> TerminalId {
        match self {
            Request::Authorize(r) => r.key.terminal,
            Request::Confirm(r) => r.key.terminal,
            Request::Undo(r) => r.key.terminal,
            Request::Refund(r) => r.key.terminal,
            Request::Terminal(u) => u.terminal,
        }
    }

    /// The merchant a financial request names.
    pub(crate) fn merchant(&self) -> Option<&MerchantId> {
        match self {
            Request::Authorize(r) => Some(&r.merchant),
            Request::Confirm(r) => Some(&r.merchant),
            Request::Undo(r) => Some(&r.merchant),
            Request::Refund(r) => Some(&r.merchant),
            Request::Terminal(_) => None,
        }
    }
}

/// The engine's answer: the outcome; for a [`Request::Terminal`], the
/// terminal as it left it; and for operations that moved value (or changed
/// a key), a ticket that resolves once they are durable. The caller must
/// not report an approval before the ticket resolves.
pub struct Reply {
    pub outcome: Outcome,
    pub terminal: Option<Terminal>,
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

impl TerminalChange {
    /// Makes the change to `t`; returns whether it must be durable before
    /// it is answered.
    pub(crate) fn apply(&self, t: &mut Terminal) -> bool {
        match self {
            TerminalChange::SecurityFailure { lock_after } => {
                t.security_failures = t.security_failures.saturating_add(1);
                if *lock_after > 0 && t.security_failures >= *lock_after {
                    t.locked = true;
                }
                false
            }
            TerminalChange::Verified => {
                t.security_failures = 0;
                false
            }
            TerminalChange::NewKeyUsed => {
                t.previous_tmk = None;
                false
            }
            TerminalChange::KeyChanged {
                sealed,
                previous,
                until,
            } => {
                t.previous_tmk = Some((previous.clone(), *until));
                t.sealed_tmk = sealed.clone();
                true
            }
        }
    }
}
