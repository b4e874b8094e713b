//! The engine's threads: requests from every connection queue here and are
//! committed together, as many as are waiting (up to a bound) in one
//! transaction. Under light load a batch is one request; under heavy load
//! the storage's per-commit cost is shared by the whole batch.
//!
//! One engine thread is the default: its batches are serial and never
//! conflict, and on the embedded ledger its flusher syncs for many of them
//! at once. On PostgreSQL an operator may start several (`[limits]
//! engine_threads`): a batch's time is mostly round trips and the commit's
//! wait for the disk, and other batches can run meanwhile; the database
//! serializes those that touch the same rows, and the loser retries.
//!
//! On the embedded ledger, while the load is light (the last batch was a
//! single request), a request that finds nothing else in the engine (no
//! other request submitted and unanswered, no batch running, no background
//! job's transaction holding the ledger) runs at once on the connection's
//! own worker: the trip to an engine thread and back
//! (two thread wake-ups) is a large part of a quiet request's time, and
//! its transaction is tens of microseconds. Under load requests queue and
//! share transactions, and the engine thread keeps that work off the
//! connection workers: run inline, each would pay a commit of its own
//! (about 13% more CPU per message at 64 connections, in one run). The engine's
//! turn ([`Lane::turn`]) keeps every transaction serial all the same.
//! Never on a database, whose round trips would hold a worker.

use clubswitch_engine::{Engine, EngineError, Reply, Request, UnixTime};
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, TryLockError};

use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

/// Most requests committed together.
const MAX_BATCH: usize = 64;

/// Where a request's answer goes.
type Waiter = oneshot::Sender<Result<Reply, EngineError>>;

struct Job {
    req: Request,
    now: UnixTime,
    reply: Waiter,
}

/// What the engine threads and inline runs share.
#[derive(Default)]
struct Lane {
    /// Held while a batch runs: on an engine thread, or inline on a worker.
    turn: Mutex<()>,
    /// Whether the last batch was a single request: the load is light.
    light: AtomicBool,
}

/// A handle for submitting requests to the engine thread.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    /// What runs a request inline when the engine is idle; `None` on a
    /// shared ledger (a database).
    inline: Option<Inline>,
}

#[derive(Clone)]
struct Inline {
    engine: Engine,
    lane: Arc<Lane>,
    metrics: Arc<Metrics>,
    /// Requests submitted and not yet answered, inline or queued.
    busy: Arc<AtomicUsize>,
}

/// One request counted in [`Inline::busy`] until it is answered (or its
/// connection gives up on it).
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

impl Batcher {
    /// Starts `threads` engine threads (at least one), counting their
    /// batches in `metrics`. They stop when every handle is dropped.
    pub fn start(engine: Engine, threads: usize, metrics: Arc<Metrics>) -> Batcher {
        let (tx, rx) = mpsc::channel::<Job>(4 * MAX_BATCH);
        let rx = Arc::new(Mutex::new(rx));
        // Only where requests may run inline: on a database the engine
        // threads' batches overlap (see above).
        let lane = (!engine.shared()).then(|| Arc::new(Lane::default()));
        for _ in 0..threads.max(1) {
            let (engine, rx, lane, metrics) = (
                engine.clone(),
                Arc::clone(&rx),
                lane.clone(),
                Arc::clone(&metrics),
            );
            let spawned = std::thread::Builder::new()
                .name("clubswitch-engine".into())
                .spawn(move || run(engine, &rx, lane.as_deref(), &metrics));
            if let Err(e) = spawned {
                tracing::error!("starting an engine thread: {e}");
            }
        }
        let inline = lane.map(|lane| Inline {
            engine,
            lane,
            metrics,
            busy: Arc::default(),
        });
        Batcher { tx, inline }
    }

    /// Handles `req` with the others waiting now, or at once if there are
    /// none and the engine is idle.
    pub async fn submit(&self, req: Request, now: UnixTime) -> Result<Reply, EngineError> {
        let _busy = match &self.inline {
            Some(inline) => {
                let others = inline.busy.fetch_add(1, AcqRel);
                let busy = Busy(&inline.busy);
                if others == 0 && inline.lane.light.load(Relaxed) {
                    if let Some(handled) = inline.try_run(&req, now) {
                        return handled;
                    }
                }
                Some(busy)
            }
            None => None,
        };
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { req, now, reply })
            .await
            .map_err(|_| EngineError::Invalid("the engine thread has stopped".into()))?;
        rx.await
            .map_err(|_| EngineError::Invalid("the engine thread dropped a request".into()))?
    }
}

impl Inline {
    /// Runs `req` on this thread if no batch is running (one may still be
    /// finishing after its requests were answered). `None`: one is, so
    /// `req` goes to the queue.
    fn try_run(&self, req: &Request, now: UnixTime) -> Option<Result<Reply, EngineError>> {
        // A background job's transaction (a settlement or archiving step,
        // tens of milliseconds) would hold up this worker and every
        // connection on it: the engine thread waits for it instead.
        if self.engine.ledger_in_use() {
            return None;
        }
        let _turn = match self.lane.turn.try_lock() {
            Ok(turn) => turn,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        self.metrics.engine_batches.fetch_add(1, Relaxed);
        self.metrics.engine_batched.fetch_add(1, Relaxed);
        self.metrics.engine_inline.fetch_add(1, Relaxed);
        Some(handle_one(&self.engine, req, now))
    }
}

/// One request as a batch of its own would answer it: a panic costs its
/// answer (96), and a failed ledger refuses it as unavailable.
fn handle_one(engine: &Engine, req: &Request, now: UnixTime) -> Result<Reply, EngineError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.handle(req, now)))
        .unwrap_or_else(|_| {
            tracing::error!("the engine panicked; answering 96");
            Err(EngineError::Unavailable)
        })
        .map_err(|e| match e {
            EngineError::Storage(_) => EngineError::Unavailable,
            e => e,
        })
}

/// Takes the next batch: waits for one request, then takes whatever else
/// is waiting, up to the bound. One thread at a time takes from the queue.
fn next_batch(
    rx: &Mutex<mpsc::Receiver<Job>>,
    reqs: &mut Vec<Request>,
    waiters: &mut Vec<(UnixTime, Waiter)>,
) -> bool {
    let mut rx = rx.lock().unwrap_or_else(|p| p.into_inner());
    let mut next = rx.blocking_recv();
    if next.is_none() {
        return false;
    }
    while let Some(job) = next.take() {
        reqs.push(job.req);
        waiters.push((job.now, job.reply));
        if reqs.len() < MAX_BATCH {
            next = rx.try_recv().ok();
        }
    }
    true
}

/// An engine thread: takes batches and runs them, holding the lane's turn
/// (if requests may run inline) while one runs.
fn run(engine: Engine, rx: &Mutex<mpsc::Receiver<Job>>, lane: Option<&Lane>, metrics: &Metrics) {
    // Requests and their reply channels are kept apart so the batch can be
    // handed to the engine as a slice without copying a request.
    let mut reqs: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut waiters: Vec<(UnixTime, Waiter)> = Vec::with_capacity(MAX_BATCH);
    while next_batch(rx, &mut reqs, &mut waiters) {
        let _turn = lane.map(|lane| {
            lane.light.store(reqs.len() == 1, Relaxed);
            lane.turn.lock().unwrap_or_else(|p| p.into_inner())
        });
        metrics.engine_batches.fetch_add(1, Relaxed);
        metrics.engine_batched.fetch_add(reqs.len() as u64, Relaxed);
        // Every request of a batch carries the same clock reading: the latest.
        let now = waiters
            .iter()
            .map(|(now, _)| *now)
            .max()
            .unwrap_or_else(UnixTime::now);
        // A panic in the engine is a bug, but it must cost only this
        // batch's answers (96), never the engine thread.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.handle_batch(&reqs, now)
        }))
        .unwrap_or_else(|_| {
            tracing::error!("the engine panicked; answering the batch 96");
            Err(EngineError::Unavailable)
        });
        match handled {
            Ok(replies) => {
                for ((_, waiter), reply) in waiters.drain(..).zip(replies) {
                    let _ = waiter.send(Ok(reply));
                }
                reqs.clear();
            }
            Err(e @ (EngineError::Unavailable | EngineError::Storage(_))) => {
                // The ledger failed (and is being reopened): nothing in the
                // batch can succeed now.
                tracing::debug!("batch refused: {e}");
                for (_, waiter) in waiters.drain(..) {
                    let _ = waiter.send(Err(EngineError::Unavailable));
                }
                reqs.clear();
            }
            Err(e) => {
                // An error of one request (a record that cannot be read)
                // must not fail its neighbours: retry each alone, so only
                // the one that fails gets the error.
                tracing::warn!(
                    batch = reqs.len(),
                    "batch failed ({e}); retrying one by one"
                );
                for (req, (now, waiter)) in reqs.drain(..).zip(waiters.drain(..)) {
                    let _ = waiter.send(handle_one(&engine, &req, now));
                }
            }
        }
    }
}
