//! Group commit: many operations share one flush to disk.
//!
//! An operation that must be durable commits its transaction, then asks
//! for a [`FlushTicket`]. A single flusher thread repeatedly takes every ticket
//! requested so far and flushes once for all of them; a ticket requested while
//! a flush runs waits for the next one, because that flush may have started
//! before its transaction committed. The ticket is both a blocking waiter and
//! a `Future`, so an async server can await it without a blocking thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A flush that covered a ticket failed: what was committed may not be on
/// disk, so the operation must not be reported as done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("flush to disk failed: {0}")]
pub struct FlushError(pub String);

/// Figures about the flusher, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Flushes done.
    pub flushes: u64,
    /// Tickets served by all flushes.
    pub tickets: u64,
    /// Tickets served by the last flush.
    pub last_batch: u64,
    /// Duration of the last flush.
    pub last_flush: Duration,
    /// Total time spent flushing.
    pub total_flush: Duration,
    /// Flushes that failed.
    pub failures: u64,
}

#[derive(Default)]
struct State {
    requested: u64,
    completed: u64,
    last_ok: Option<String>,
    wakers: Vec<Waker>,
    stop: bool,
    /// The flusher has ended (or never started): a ticket it did not serve
    /// never will be, and fails rather than wait forever.
    ended: bool,
    /// The flusher is parked waiting for tickets.
    idle: bool,
    /// Threads blocked in `FlushTicket::wait`.
    blocked: usize,
    stats: FlushStats,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// Flushes that failed, outside the lock: every request reads it for
    /// its mark.
    failures: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a flusher panicked while holding it; the state
        // is plain counters, still meaningful.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the flusher calls to make committed data durable.
pub trait Flush: Send + 'static {
    fn flush(&self) -> Result<(), String>;
}

/// The group-commit flusher.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub fn start(target: impl Flush) -> GroupCommit {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            failures: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("clubswitch-flush".into())
            .spawn(move || flusher(&worker, &target))
            .ok();
        if thread.is_none() {
            shared.lock().ended = true;
        }
        GroupCommit {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// The flush failures so far: taken before a transaction, it lets the
    /// ticket taken after it fail if any flush failed in between, since a
    /// failed flush may have lost the transaction's writes even when a
    /// later flush succeeds (a reopened database).
    pub fn mark(&self) -> FlushMark {
        FlushMark(self.shared.failures.load(Ordering::SeqCst))
    }

    /// Declares everything committed so far lost (the database was
    /// replaced): every ticket marked before now fails.
    pub fn lost(&self) {
        self.shared.failures.fetch_add(1, Ordering::SeqCst);
    }

    /// A ticket for everything committed before this call.
    pub fn ticket(&self) -> FlushTicket {
        let mark = self.mark();
        self.ticket_since(mark)
    }

    /// A ticket for everything committed before this call, which fails if
    /// any flush failed since `mark`.
    pub fn ticket_since(&self, mark: FlushMark) -> FlushTicket {
        let mut st = self.shared.lock();
        st.requested += 1;
        let epoch = st.requested;
        // Wake the flusher only when it is parked: while it flushes, it
        // takes every ticket requested meanwhile on its next round anyway.
        let wake = st.idle;
        drop(st);
        if wake {
            self.shared.cv.notify_all();
        }
        FlushTicket {
            shared: Arc::clone(&self.shared),
            epoch,
            mark,
        }
    }

    pub fn stats(&self) -> FlushStats {
        FlushStats {
            failures: self.shared.failures.load(Ordering::SeqCst),
            ..self.shared.lock().stats
        }
    }

    /// Serves the tickets still pending, then stops the flusher.
    pub fn shutdown(&self) {
        self.shared.lock().stop = true;
        // Both the flusher and blocked waiters must see `stop`.
        self.shared.cv.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn flusher(shared: &Shared, target: &dyn Flush) {
    loop {
        let mut st = shared.lock();
        while st.requested <= st.completed && !st.stop {
            st.idle = true;
            st = shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
            st.idle = false;
        }
        if st.requested <= st.completed && st.stop {
            // Tickets taken from now on (an operation that ran past the
            // close) fail: nothing will flush them.
            st.ended = true;
            let wakers = std::mem::take(&mut st.wakers);
            drop(st);
            shared.cv.notify_all();
            for w in wakers {
                w.wake();
            }
            return;
        }
        let upto = st.requested;
        let batch = upto - st.completed;
        drop(st);

        let started = Instant::now();
        let result = target.flush();
        let took = started.elapsed();

        let mut st = shared.lock();
        st.completed = upto;
        st.stats.flushes += 1;
        st.stats.tickets += batch;
        st.stats.last_batch = batch;
        st.stats.last_flush = took;
        st.stats.total_flush += took;
        if result.is_err() {
            shared.failures.fetch_add(1, Ordering::SeqCst);
        }
        st.last_ok = result.err();
        let wakers = std::mem::take(&mut st.wakers);
        let blocked = st.blocked > 0;
        drop(st);
        if blocked {
            shared.cv.notify_all();
        }
        for w in wakers {
            w.wake();
        }
    }
}

/// A result that is only final once durable: the answer of an operation
/// that wrote to the ledger, with the ticket of the flush that covers it.
/// Nothing may be reported done before [`Durable::wait`] (or `.await`)
/// says so.
#[must_use = "an operation's result is not final until it is durable"]
pub struct Durable<T> {
    value: T,
    ticket: FlushTicket,
}

impl<T> Durable<T> {
    pub(crate) fn new(value: T, ticket: FlushTicket) -> Durable<T> {
        Durable { value, ticket }
    }

    /// Blocks until the result is durable; fails if the flush that covered
    /// it did.
    pub fn wait(self) -> Result<T, crate::EngineError> {
        self.ticket
            .wait()
            .map_err(|e| crate::EngineError::NotDurable(e.to_string()))?;
        Ok(self.value)
    }

    /// The same durability for another value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Durable<U> {
        Durable {
            value: f(self.value),
            ticket: self.ticket,
        }
    }
}

impl<T: Unpin> std::future::IntoFuture for Durable<T> {
    type Output = Result<T, crate::EngineError>;
    type IntoFuture = DurableFuture<T>;

    fn into_future(self) -> DurableFuture<T> {
        DurableFuture(Some(self))
    }
}

/// Awaits a [`Durable`] without blocking a thread.
pub struct DurableFuture<T>(Option<Durable<T>>);

impl<T: Unpin> Future for DurableFuture<T> {
    type Output = Result<T, crate::EngineError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ready = match self.0.as_mut() {
            Some(durable) => Pin::new(&mut durable.ticket).poll(cx),
            None => {
                return Poll::Ready(Err(crate::EngineError::invalid(
                    "a durable result was awaited again after it was ready",
                )))
            }
        };
        match (ready, self.0.take()) {
            (Poll::Pending, durable) => {
                self.0 = durable;
                Poll::Pending
            }
            (Poll::Ready(Err(e)), _) => {
                Poll::Ready(Err(crate::EngineError::NotDurable(e.to_string())))
            }
            (Poll::Ready(Ok(())), Some(d)) => Poll::Ready(Ok(d.value)),
            (Poll::Ready(Ok(())), None) => Poll::Pending,
        }
    }
}

/// The flush failures counted at some moment; see [`GroupCommit::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushMark(u64);

/// A claim on a future flush. Resolves when a flush that started after the
/// ticket was taken has finished: `Ok` only if no flush failed since the
/// ticket's mark.
pub struct FlushTicket {
    shared: Arc<Shared>,
    epoch: u64,
    mark: FlushMark,
}

impl FlushTicket {
    fn result(&self, st: &State) -> Result<(), FlushError> {
        if st.completed < self.epoch {
            return Err(FlushError(
                "the ledger was closed before this operation was flushed".into(),
            ));
        }
        match &st.last_ok {
            Some(e) => Err(FlushError(e.clone())),
            None if self.shared.failures.load(Ordering::SeqCst) != self.mark.0 => Err(FlushError(
                "a flush failed after this operation committed".into(),
            )),
            None => Ok(()),
        }
    }

    /// Blocks until the flush is done.
    pub fn wait(self) -> Result<(), FlushError> {
        let mut st = self.shared.lock();
        st.blocked += 1;
        while st.completed < self.epoch && !st.ended {
            st = self.shared.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.blocked -= 1;
        self.result(&st)
    }
}

impl Future for FlushTicket {
    type Output = Result<(), FlushError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.shared.lock();
        if st.completed >= self.epoch || st.ended {
            return Poll::Ready(self.result(&st));
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Counting(Arc<AtomicU64>, Duration);
    impl Flush for Counting {
        fn flush(&self) -> Result<(), String> {
            std::thread::sleep(self.1);
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn many_waiters_share_few_flushes() {
        let n = Arc::new(AtomicU64::new(0));
        let gc = Arc::new(GroupCommit::start(Counting(
            Arc::clone(&n),
            Duration::from_millis(5),
        )));
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let gc = Arc::clone(&gc);
                std::thread::spawn(move || gc.ticket().wait())
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let flushes = n.load(Ordering::SeqCst);
        assert!(
            (1..64).contains(&flushes),
            "{flushes} flushes for 64 tickets"
        );
        assert_eq!(gc.stats().tickets, 64);
    }

    #[test]
    fn ticket_waits_for_a_flush_that_started_after_it() {
        let n = Arc::new(AtomicU64::new(0));
        let gc = GroupCommit::start(Counting(Arc::clone(&n), Duration::from_millis(1)));
        for i in 1..=5 {
            gc.ticket().wait().unwrap();
            assert!(n.load(Ordering::SeqCst) >= i);
        }
    }

    #[test]
    fn a_ticket_taken_after_the_shutdown_fails_instead_of_waiting_forever() {
        let n = Arc::new(AtomicU64::new(0));
        let gc = GroupCommit::start(Counting(Arc::clone(&n), Duration::from_millis(1)));
        let before = gc.ticket();
        gc.shutdown();
        assert_eq!(before.wait(), Ok(()), "served before the flusher ended");
        let after = gc.ticket();
        assert_eq!(
            after.wait(),
            Err(FlushError(
                "the ledger was closed before this operation was flushed".into()
            ))
        );
        let mut awaited = std::pin::pin!(gc.ticket());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(
            matches!(awaited.as_mut().poll(&mut cx), Poll::Ready(Err(_))),
            "awaited as well"
        );
    }

    struct Failing;
    impl Flush for Failing {
        fn flush(&self) -> Result<(), String> {
            Err("disk full".into())
        }
    }

    #[test]
    fn failed_flush_fails_its_tickets() {
        let gc = GroupCommit::start(Failing);
        assert_eq!(gc.ticket().wait(), Err(FlushError("disk full".into())));
        assert_eq!(gc.stats().failures, 1);
    }

    /// Fails its first flush only, as a database that failed and was
    /// reopened.
    struct FailsOnce(AtomicU64);
    impl Flush for FailsOnce {
        fn flush(&self) -> Result<(), String> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => Err("disk full".into()),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn a_failed_flush_after_the_mark_fails_a_later_ticket() {
        let gc = GroupCommit::start(FailsOnce(AtomicU64::new(0)));
        let before = gc.mark();
        // What committed before the failure is not made durable by the
        // next, successful flush.
        assert!(gc.ticket().wait().is_err());
        assert!(gc.ticket_since(before).wait().is_err());
        // Work that started after the failure is.
        let after = gc.mark();
        assert_eq!(gc.ticket_since(after).wait(), Ok(()));
        assert_eq!(gc.ticket().wait(), Ok(()));
    }
}
