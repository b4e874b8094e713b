//! From a request's bytes to its response's bytes: decoding, terminal keys,
//! MAC, DE 7 window, card block, the engine, and the signed response.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use bytes::Bytes;
use clubswitch_engine::{
    Authorize, Confirm, Engine, EngineError, Outcome, Refund, Request, RequestKey, Terminal,
    TerminalChange, TerminalUpdate, Undo, UnixTime,
};
use clubswitch_wire::{
    de, decode_partial, AmountBlocks, CardAad, Currency, FieldError, Message, Mti, NetworkCode,
    ResponseCode, SecurityError, TerminalId, TerminalKeys, Tmk,
};

use crate::batch::Batcher;
use crate::config::Config;
use crate::master::MasterKey;
use crate::metrics::Metrics;

/// Purpose string sealing terminal keys under the master key.
pub const TMK_PURPOSE: &str = "clubswitch terminal key";

/// Fields every response echoes from its request (section 5).
const ECHO: [u8; 9] = [3, 4, 7, 11, 12, 13, 41, 42, 49];

/// Fields a response echoes besides [`ECHO`], by request MTI: the network
/// code (5.1), the approval's RRN and auth id on a confirm (5.5), the
/// original's RRN on an undo (5.6). A refund's answer sets its own RRN
/// (5.7), so it echoes none.
fn echoed_too(mti: Mti) -> &'static [u8] {
    match mti {
        Mti::NETWORK_REQUEST => &[70],
        Mti::CONFIRM_ADVICE => &[37, 38],
        Mti::REVERSAL_REQUEST | Mti::REVERSAL_ADVICE => &[37],
        _ => &[],
    }
}

/// A terminal's working keys, as cached.
struct TermKeys {
    current: TerminalKeys,
    sealed_current: Vec<u8>,
    previous: Option<(TerminalKeys, Vec<u8>, UnixTime)>,
    locked: AtomicBool,
    failures: AtomicU32,
}

/// The running switch: the engine plus what the wire needs.
pub struct Switch {
    pub engine: Engine,
    batcher: Batcher,
    pub master: MasterKey,
    pub cfg: Config,
    pub metrics: Arc<Metrics>,
    keys: Arc<KeyCache>,
}

/// Terminals' working keys, unsealed, by terminal.
type KeyCache = RwLock<HashMap<TerminalId, Arc<TermKeys>>>;

/// Why a request is answered without reaching the engine.
type Refusal = ResponseCode;

fn format_error(_: FieldError) -> Refusal {
    ResponseCode::FormatError
}

/// Which key verified a request, and so signs its response.
enum Verified {
    Current,
    Previous,
}

impl TermKeys {
    /// The keys that verified a request (the current ones when it was not
    /// verified).
    fn signer(&self, verified: Option<&Verified>) -> &TerminalKeys {
        match (verified, &self.previous) {
            (Some(Verified::Previous), Some((previous, _, _))) => previous,
            _ => &self.current,
        }
    }
}

impl Switch {
    pub fn new(engine: Engine, master: MasterKey, cfg: Config) -> Switch {
        let keys: Arc<KeyCache> = Arc::default();
        // A terminal's record changed (here, or on another node sharing
        // the ledger): its cached keys and lock state are stale.
        let cache = Arc::downgrade(&keys);
        engine.on_terminal_change(move |id| {
            if let Some(cache) = cache.upgrade() {
                if let Ok(mut k) = cache.write() {
                    match id {
                        Some(id) => k.remove(&id),
                        None => {
                            k.clear();
                            None
                        }
                    };
                }
            }
        });
        let metrics = Arc::new(Metrics::default());
        Switch {
            batcher: Batcher::start(
                engine.clone(),
                cfg.limits.engine_threads(),
                Arc::clone(&metrics),
            ),
            engine,
            master,
            cfg,
            metrics,
            keys,
        }
    }

    /// Drops a terminal's cached keys (after an operator changed them).
    pub fn forget_terminal(&self, id: &TerminalId) {
        if let Ok(mut k) = self.keys.write() {
            k.remove(id);
        }
    }

    /// A terminal's keys: from the cache, or read from the ledger on the
    /// blocking pool (never on a worker that serves connections) and cached.
    async fn terminal_keys(&self, id: &TerminalId) -> Result<Option<Arc<TermKeys>>, Refusal> {
        if let Some(k) = self.keys.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(Some(k));
        }
        let (engine, tid) = (self.engine.clone(), *id);
        let read = tokio::task::spawn_blocking(move || engine.admin().terminal(&tid)).await;
        let Some(t) = read
            .map_err(|_| ResponseCode::SystemMalfunction)?
            .map_err(|_| ResponseCode::SystemMalfunction)?
        else {
            return Ok(None);
        };
        let keys = Arc::new(self.keys_of(&t)?);
        if let Ok(mut m) = self.keys.write() {
            m.insert(*id, Arc::clone(&keys));
        }
        Ok(Some(keys))
    }

    /// A terminal's working keys, unsealed from its record.
    fn keys_of(&self, t: &Terminal) -> Result<TermKeys, Refusal> {
        let unseal = |sealed: &[u8]| {
            self.master
                .unseal32(TMK_PURPOSE, sealed)
                .map(|k| TerminalKeys::derive(&Tmk::from_bytes(k)))
        };
        let current = unseal(&t.sealed_tmk).map_err(|e| {
            tracing::error!(terminal = %t.id, "{e}");
            ResponseCode::SystemMalfunction
        })?;
        let previous = match &t.previous_tmk {
            Some((sealed, until)) => unseal(sealed).ok().map(|k| (k, sealed.clone(), *until)),
            None => None,
        };
        Ok(TermKeys {
            current,
            sealed_current: t.sealed_tmk.clone(),
            previous,
            locked: AtomicBool::new(t.locked),
            failures: AtomicU32::new(t.security_failures),
        })
    }

    /// Changes a terminal's own record on the engine thread, in order with
    /// its requests, and waits until the change is durable if it must be
    /// (a key change). Returns the terminal as changed.
    async fn update_terminal(
        &self,
        tid: &TerminalId,
        change: TerminalChange,
        now: UnixTime,
    ) -> Result<Terminal, EngineError> {
        let update = Request::Terminal(TerminalUpdate {
            terminal: *tid,
            change,
        });
        let reply = self.batcher.submit(update, now).await?;
        if let Some(ticket) = reply.durable {
            ticket
                .await
                .map_err(|e| EngineError::NotDurable(e.to_string()))?;
        }
        reply.terminal.ok_or_else(|| EngineError::NotFound {
            what: "terminal",
            key: tid.to_string(),
        })
    }

    /// Handles one frame. `None`: the message could not be read as far as
    /// its MTI and DE 41, or was itself a response; it is logged and dropped.
    pub async fn handle(&self, raw: Bytes) -> Option<Bytes> {
        let started = Instant::now();
        let (msg, decode_error) = decode_partial(&raw);
        let Some(msg) = msg else {
            self.drop_frame("MTI unreadable", decode_error.map(|e| e.to_string()));
            return None;
        };
        let Some(resp_mti) = msg.mti().response() else {
            self.drop_frame("a response MTI sent to the switch", None);
            return None;
        };
        let Ok(tid) = msg.terminal_id() else {
            self.drop_frame("DE 41 unreadable", decode_error.map(|e| e.to_string()));
            return None;
        };
        let now = UnixTime::now();
        let mut resp = Message::new(resp_mti);
        for &n in ECHO.iter().chain(echoed_too(msg.mti())) {
            if let Some(v) = msg.get_bytes(n) {
                let _ = resp.set(n, v.clone());
            }
        }

        let keys = match self.terminal_keys(&tid).await {
            Ok(Some(k)) => k,
            Ok(None) => {
                tracing::info!(terminal = %tid, mti = %msg.mti(), "unknown terminal");
                return Some(self.finish(
                    resp,
                    msg.mti(),
                    &Outcome::decline(ResponseCode::NotPermittedToTerminal),
                    None,
                    started,
                ));
            }
            Err(rc) => {
                return Some(self.finish(resp, msg.mti(), &Outcome::decline(rc), None, started))
            }
        };

        // A refusal after the MAC verified is signed with the key that
        // verified it (an old key in its grace period included): the
        // terminal can check it (4.5).
        let (outcome, verified) = match self
            .verify(&msg, &raw, decode_error.is_some(), &tid, &keys, now)
            .await
        {
            Ok(v) => {
                let served = self.serve(&msg, &tid, &keys, &v, now, &mut resp).await;
                (served.unwrap_or_else(Outcome::decline), Some(v))
            }
            Err(rc) => (Outcome::decline(rc), None),
        };
        let signer = keys.signer(verified.as_ref());
        Some(self.finish(resp, msg.mti(), &outcome, Some(signer), started))
    }

    fn drop_frame(&self, why: &str, detail: Option<String>) {
        self.metrics.frames_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            detail = detail.as_deref().unwrap_or(""),
            "dropped a message: {why}"
        );
    }

    fn finish(
        &self,
        mut resp: Message,
        req_mti: Mti,
        o: &Outcome,
        keys: Option<&TerminalKeys>,
        started: Instant,
    ) -> Bytes {
        if let Some(rrn) = o.rrn {
            resp.set_rrn(rrn);
        }
        if let Some(a) = o.auth_id {
            resp.set_auth_id(a);
        }
        resp.set_response_code(o.code);
        let mut blocks = AmountBlocks::new();
        for b in &o.amounts {
            blocks.push(*b);
        }
        resp.set_additional_amounts(&blocks);
        let out = match keys {
            Some(k) => k.sign(&mut resp),
            None => clubswitch_wire::encode(&resp).freeze(),
        };
        self.metrics.record(req_mti, o.code, started.elapsed());
        out
    }

    /// Counts a security failure; locks the terminal at the threshold.
    async fn security_failure(
        &self,
        tid: &TerminalId,
        keys: &TermKeys,
        what: &str,
        now: UnixTime,
    ) -> Refusal {
        self.metrics
            .security_failures
            .fetch_add(1, Ordering::Relaxed);
        keys.failures.fetch_add(1, Ordering::Relaxed);
        let lock_after = self.cfg.security.lockout_after;
        let change = TerminalChange::SecurityFailure { lock_after };
        match self.update_terminal(tid, change, now).await {
            Ok(t) if t.locked => {
                keys.locked.store(true, Ordering::Relaxed);
                tracing::warn!(terminal = %tid, "{what}; terminal locked until an operator unlocks it");
            }
            Ok(_) => tracing::warn!(terminal = %tid, "{what}"),
            Err(e) => tracing::error!(terminal = %tid, "recording a security failure: {e}"),
        }
        ResponseCode::SecurityViolation
    }

    /// The terminal's lock, the message's form and its MAC: which key
    /// verified it.
    async fn verify(
        &self,
        msg: &Message,
        raw: &[u8],
        malformed: bool,
        tid: &TerminalId,
        keys: &Arc<TermKeys>,
        now: UnixTime,
    ) -> Result<Verified, Refusal> {
        if keys.locked.load(Ordering::Relaxed) {
            return Err(ResponseCode::NotPermittedToTerminal);
        }
        if malformed {
            return Err(ResponseCode::FormatError);
        }
        let verified = if keys.current.verify(raw, msg).is_ok() {
            if keys.previous.is_some() {
                // The terminal uses its new key: the old one ends now.
                if let Err(e) = self
                    .update_terminal(tid, TerminalChange::NewKeyUsed, now)
                    .await
                {
                    tracing::error!(terminal = %tid, "ending the old key: {e}");
                }
                self.forget_terminal(tid);
            }
            Verified::Current
        } else if keys
            .previous
            .as_ref()
            .is_some_and(|(k, _, until)| now < *until && k.verify(raw, msg).is_ok())
        {
            Verified::Previous
        } else {
            return Err(self.security_failure(tid, keys, "bad MAC", now).await);
        };
        Ok(verified)
    }

    /// Ends a run of security failures: the request passed every check
    /// (MAC, DE 7 window, card block), so the next five failures, not
    /// fewer, lock the terminal (4.5).
    async fn passed(&self, tid: &TerminalId, keys: &TermKeys, now: UnixTime) {
        if keys.failures.swap(0, Ordering::Relaxed) > 0 {
            if let Err(e) = self
                .update_terminal(tid, TerminalChange::Verified, now)
                .await
            {
                tracing::error!(terminal = %tid, "resetting the security failures: {e}");
            }
        }
    }

    /// A verified message: its DE 7 window, its fields, its card block,
    /// and the engine.
    async fn serve(
        &self,
        msg: &Message,
        tid: &TerminalId,
        keys: &Arc<TermKeys>,
        verified: &Verified,
        now: UnixTime,
        resp: &mut Message,
    ) -> Result<Outcome, Refusal> {
        let transmitted = msg.transmission_time().map_err(format_error)?;
        if transmitted.skew(now.0) > self.cfg.security.replay_window_secs {
            // A genuine message replayed late: refused, but not counted
            // towards the lockout, or anyone who captured a terminal's
            // traffic could lock it by replaying it.
            self.metrics
                .security_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(terminal = %tid, "DE 7 outside the replay window");
            return Err(ResponseCode::SecurityViolation);
        }
        if msg.carries_clear_card_data() {
            tracing::warn!(terminal = %tid, "card number sent in clear (DE 2, 35 or 45); refused");
            return Err(ResponseCode::FormatError);
        }
        let signer = keys.signer(Some(verified));
        let key = RequestKey {
            terminal: *tid,
            stan: msg.stan().map_err(format_error)?,
            transmitted,
        };

        if msg.mti() == Mti::NETWORK_REQUEST {
            self.passed(tid, keys, now).await;
            self.network(msg, tid, keys, verified, now, resp).await?;
            return Ok(Outcome::decline(ResponseCode::Approved));
        }

        let merchant = msg.merchant_id().map_err(format_error)?;
        let currency = match msg.get(de::CURRENCY) {
            Some(_) => msg.currency().map_err(format_error)?,
            None => Currency::IRR,
        };
        // DE 3: mandatory, but on an undo (5.6), where it may be left out
        // and, when present, must match the original's.
        let code = match msg.get(de::PROCESSING_CODE) {
            Some(_) => Some(
                msg.processing_code()
                    .map_err(format_error)?
                    .ok_or(ResponseCode::InvalidTransaction)?,
            ),
            None => None,
        };
        let required = || code.ok_or(ResponseCode::FormatError);
        let request = match msg.mti() {
            Mti::AUTH_REQUEST => {
                let code = required()?;
                if code.is_refund() {
                    return Err(ResponseCode::InvalidTransaction);
                }
                let amount = match msg.get(de::AMOUNT) {
                    Some(_) => Some(msg.amount().map_err(format_error)?),
                    None if code.is_purchase() => return Err(ResponseCode::FormatError),
                    None => None,
                };
                let block = msg.get(de::CARD_BLOCK).ok_or(ResponseCode::FormatError)?;
                let aad = CardAad::of(msg).map_err(format_error)?;
                let card = match signer.open_card(block, &aad) {
                    Ok(card) => card,
                    // Opened, and digits, but not as many as a card
                    // number has: not a security failure (7).
                    Err(SecurityError::CardNumberLength) => {
                        self.passed(tid, keys, now).await;
                        return Err(ResponseCode::InvalidCardNumber);
                    }
                    Err(e) => {
                        let what = format!("card block: {e}");
                        return Err(self.security_failure(tid, keys, &what, now).await);
                    }
                };
                Request::Authorize(Authorize {
                    key,
                    merchant,
                    code,
                    amount,
                    currency,
                    card,
                })
            }
            Mti::CONFIRM_ADVICE => Request::Confirm(Confirm {
                key,
                merchant,
                code: required()?,
                amount: msg.amount().map_err(format_error)?,
                currency,
                rrn: msg.rrn().map_err(format_error)?,
                auth_id: msg.auth_id().map_err(format_error)?,
                original: msg.original_data().map_err(format_error)?,
            }),
            Mti::REVERSAL_REQUEST | Mti::REVERSAL_ADVICE => {
                let rrn = msg
                    .get(de::RRN)
                    .map(|_| msg.rrn())
                    .transpose()
                    .map_err(format_error)?;
                let original = msg
                    .get(de::ORIGINAL_DATA)
                    .map(|_| msg.original_data())
                    .transpose()
                    .map_err(format_error)?;
                if rrn.is_none() && original.is_none() {
                    return Err(ResponseCode::FormatError);
                }
                let amount = msg
                    .get(de::AMOUNT)
                    .map(|_| msg.amount())
                    .transpose()
                    .map_err(format_error)?;
                Request::Undo(Undo {
                    key,
                    merchant,
                    advice: msg.mti() == Mti::REVERSAL_ADVICE,
                    code,
                    amount,
                    rrn,
                    original,
                })
            }
            Mti::FINANCIAL_REQUEST => {
                let code = required()?;
                if !code.is_refund() {
                    return Err(ResponseCode::InvalidTransaction);
                }
                Request::Refund(Refund {
                    key,
                    merchant,
                    code,
                    amount: msg.amount().map_err(format_error)?,
                    currency,
                    rrn: msg.rrn().map_err(format_error)?,
                })
            }
            _ => return Err(ResponseCode::InvalidTransaction),
        };
        self.passed(tid, keys, now).await;
        let reply = self.batcher.submit(request, now).await.map_err(|e| {
            match e {
                // The store logs the failure and the recovery once; a line
                // per refused request would flood the log.
                EngineError::Unavailable => tracing::debug!(terminal = %tid, "engine: {e}"),
                _ => tracing::error!(terminal = %tid, "engine: {e}"),
            }
            ResponseCode::SystemMalfunction
        })?;
        if let Some(ticket) = reply.durable {
            ticket.await.map_err(|e| {
                // Counted in clubswitch_flush_failures_total; the storage
                // failure itself is logged where it happens.
                tracing::debug!("{e}; answering 96");
                ResponseCode::SystemMalfunction
            })?;
        }
        Ok(reply.outcome)
    }

    /// 0800: sign-on, sign-off, echo, key change. A key change is answered
    /// only once durable: the terminal must never hold a key the switch
    /// could lose.
    async fn network(
        &self,
        msg: &Message,
        tid: &TerminalId,
        keys: &TermKeys,
        verified: &Verified,
        now: UnixTime,
        resp: &mut Message,
    ) -> Result<(), Refusal> {
        let code = msg
            .network_code()
            .map_err(format_error)?
            .ok_or(ResponseCode::InvalidTransaction)?;
        if code != NetworkCode::KeyChange {
            return Ok(());
        }
        // The key that verified this request stays valid for the grace
        // period, so a terminal that never saw this 0810 can retry.
        let (old, old_sealed) = match verified {
            Verified::Previous => keys
                .previous
                .as_ref()
                .map(|p| (&p.0, p.1.clone()))
                .ok_or(ResponseCode::SystemMalfunction)?,
            Verified::Current => (&keys.current, keys.sealed_current.clone()),
        };
        let aad = CardAad::of(msg).map_err(format_error)?;
        let new = Tmk::generate();
        let change = TerminalChange::KeyChanged {
            sealed: self.master.seal(TMK_PURPOSE, new.as_bytes()),
            previous: old_sealed,
            until: now.plus(self.cfg.security.old_key_grace_secs),
        };
        let changed = self.update_terminal(tid, change, now).await;
        self.forget_terminal(tid);
        if let Err(e) = changed {
            tracing::error!(terminal = %tid, "{e}; key change answered 96");
            return Err(ResponseCode::SystemMalfunction);
        }
        let _ = resp.set(de::CARD_BLOCK, old.wrap_key(&new, &aad).into_bytes());
        tracing::info!(terminal = %tid, "key changed; the old key stays valid until the new one is used");
        Ok(())
    }
}
