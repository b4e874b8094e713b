//! The daemon's background work: periodic rounds on the blocking pool,
//! one at a time each, that keep the ledger tidy and deliver what the
//! engine queued. Housekeeping expires holds and runs the loyalty review
//! and the daily pass; the daily settlement is a job of its own, so a long
//! run never holds up hold expiry; the archiver keeps the live ledger
//! bounded; the notifier drains the outbox of member notices.

use std::sync::Arc;
use std::time::Duration;

use clubswitch_engine::UnixTime;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::campaign;
use crate::config::parse_hhmm;
use crate::error::SwitchError;
use crate::handler::Switch;
use crate::layout::archive_dir;
use crate::notify::{self, Channel};
use crate::settlement;

/// Starts every periodic job of the daemon; each stops when `stop` turns
/// true, once its round in progress (if any) has ended. The tracker they
/// run on is closed: the daemon waits on it before its last flush, so no
/// round writes after it.
pub fn start(
    switch: &Arc<Switch>,
    stop: &watch::Receiver<bool>,
) -> Result<TaskTracker, SwitchError> {
    let jobs = TaskTracker::new();
    jobs.spawn(housekeeping(Arc::clone(switch), stop.clone()));
    jobs.spawn(daily_settlement(Arc::clone(switch), stop.clone()));
    jobs.spawn(health_probe(Arc::clone(switch), stop.clone()));
    jobs.spawn(archiver(Arc::clone(switch), stop.clone()));
    let channel: Arc<dyn Channel> = Arc::from(notify::channel(&switch.cfg.notices)?);
    warn_if_a_send_outlasts_the_grace(&switch.cfg);
    jobs.spawn(notifier(
        Arc::clone(switch),
        Arc::clone(&channel),
        stop.clone(),
    ));
    jobs.spawn(campaigns(Arc::clone(switch), channel, stop.clone()));
    jobs.close();
    Ok(jobs)
}

/// A stop lets the notice and campaign rounds finish the message they are
/// sending, then record what they sent, before the last flush. A gateway
/// timeout over half the grace period can make that record come too late
/// (and the next start send the round's messages again): said once, at
/// start, rather than refused, as the switch works otherwise. The
/// defaults (5 s, 10 s) pass.
fn warn_if_a_send_outlasts_the_grace(cfg: &crate::config::Config) {
    let grace_ms = cfg.limits.shutdown_grace_secs.saturating_mul(1_000);
    let timeout_ms = cfg.notices.webhook_timeout_ms;
    if cfg.notices.channel == crate::config::NoticeChannel::Webhook
        && timeout_ms.saturating_mul(2) > grace_ms
    {
        tracing::warn!(
            timeout_ms,
            grace_ms,
            "notices.webhook_timeout_ms is over half of limits.shutdown_grace_secs: a message being sent at a stop can outlast the grace, and its round's messages are then sent again at the next start"
        );
    }
}

/// Runs a blocking round every `period` until shutdown, one at a time, on
/// the node that holds the job's lease: on a ledger several nodes share,
/// each job runs on one of them and moves when that one stops. The round
/// is made on the async side by `round` (which may keep state from one to
/// the next) and runs on the blocking pool; its errors are logged under
/// `what`, the job's name.
async fn every<R>(
    switch: &Arc<Switch>,
    period: Duration,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut round: impl FnMut(UnixTime) -> R,
) where
    R: FnOnce() -> Result<(), SwitchError> + Send + 'static,
{
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The stop first, and checked again: a round that outlasted the
        // period leaves the tick ready, and no round starts after a stop.
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            _ = tick.tick() => {},
        }
        if *stop.borrow() {
            return;
        }
        let this = round(UnixTime::now());
        let s = Arc::clone(switch);
        let ran = tokio::task::spawn_blocking(move || {
            // A lease that cannot be checked (the database is away) is not
            // held: the gauge says so rather than keep its last value.
            let leader = s
                .engine
                .lease(what)
                .inspect_err(|_| s.metrics.leader(what, false))?;
            s.metrics.leader(what, leader);
            if leader {
                this()?;
            }
            Ok::<_, SwitchError>(())
        })
        .await;
        match ran {
            Ok(Err(e)) => tracing::error!("{what}: {e}"),
            Err(e) => tracing::error!("{what} task: {e}"),
            Ok(Ok(())) => {}
        }
    }
}

/// Once a second while the ledger is unhealthy, tries it: on a database
/// health is what the last statement found, and a node without traffic or
/// leases would otherwise stay unready after the database came back.
async fn health_probe(switch: Arc<Switch>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stop.changed() => return,
        }
        if !switch.engine.healthy() {
            let engine = switch.engine.clone();
            let _ = tokio::task::spawn_blocking(move || engine.probe()).await;
        }
    }
}

/// Expires holds, runs the monthly loyalty review and the daily pass
/// (expiry of points and credit, birthdays, cards expiring).
async fn housekeeping(switch: Arc<Switch>, stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(switch.cfg.holds.sweep_interval_secs);
    let me = Arc::clone(&switch);
    let mut forgot_at = 0;
    every(&me, period, stop, "housekeeping", move |now| {
        // Expired sessions and codes are looked for once a minute.
        let forget = now.0 - forgot_at >= 60;
        if forget {
            forgot_at = now.0;
        }
        let s = Arc::clone(&switch);
        move || {
            let n = s.engine.sweeper().expire_holds(now, 10_000)?;
            if n > 0 {
                tracing::info!(expired = n, "holds expired");
            }
            if forget {
                let n = s.engine.access().forget_expired(now)?;
                if n > 0 {
                    tracing::debug!(forgotten = n, "expired sessions and login codes");
                }
            }
            if let Some(r) = s
                .engine
                .loyalty()
                .review_standing(now)
                .map_err(SwitchError::LoyaltyReview)?
            {
                tracing::info!(
                    members = r.members,
                    upgraded = r.upgraded,
                    downgraded = r.downgraded,
                    new_vip = r.new_vip,
                    "monthly loyalty review"
                );
            }
            if let Some(r) = s
                .engine
                .loyalty()
                .daily_pass(now)
                .map_err(SwitchError::DailyPass)?
            {
                tracing::info!(
                    lots = r.lots_checked,
                    points_expired = r.points_expired,
                    credit_expired = r.credit_expired,
                    expiry_warnings = r.expiry_warnings,
                    birthdays = r.birthdays,
                    cards_expiring = r.cards_expiring,
                    repurchase_reminders = r.repurchase_reminders,
                    anniversaries = r.anniversaries,
                    tiers_at_risk = r.tiers_at_risk,
                    "daily pass"
                );
            }
            Ok(())
        }
    })
    .await;
}

/// Runs the daily settlement from `settlement.daily_at` on, when today's
/// has not run. Whether it ran is in the ledger, so the node holding this
/// job (whichever it is, after a restart or a failover) runs it once, and
/// again after a failed or stopped run.
///
/// A stop ends the run between two steps: its batches get their files,
/// the day is not marked, and the next start settles the rest (a stop
/// therefore waits for one step, not for the whole run).
async fn daily_settlement(switch: Arc<Switch>, stop: watch::Receiver<bool>) {
    let Some((h, m)) = switch
        .cfg
        .settlement
        .daily_at
        .as_deref()
        .and_then(parse_hhmm)
    else {
        return;
    };
    let at_minute = i64::from(h) * 60 + i64::from(m);
    let period = Duration::from_secs(switch.cfg.holds.sweep_interval_secs);
    let me = Arc::clone(&switch);
    let stopping = stop.clone();
    every(&me, period, stop, "settlement", move |now| {
        let local = now.0 + switch.cfg.utc_offset_secs;
        let day = local.div_euclid(86_400);
        let due = local.rem_euclid(86_400) / 60 >= at_minute;
        let s = Arc::clone(&switch);
        let stopping = stopping.clone();
        move || {
            if !due || s.engine.settlement().daily_done()? >= Some(day) {
                return Ok(());
            }
            let run = s
                .engine
                .settlement()
                .run_until(now, now, &|| *stopping.borrow())?
                .wait()?;
            let files = settlement::file_unfiled(&s.cfg, &s.engine)?;
            let batches = run.batches.len();
            if !run.complete {
                tracing::warn!(
                    batches,
                    ?files,
                    "daily settlement stopped by the shutdown; the rest is settled by the next run (this node's next start, or another node's round)"
                );
                return Ok(());
            }
            s.metrics.settled(now);
            s.engine.settlement().mark_daily_done(day)?.wait()?;
            tracing::info!(batches, ?files, "daily settlement");
            Ok(())
        }
    })
    .await;
}

/// Request records one archiver round looks at (a few hundred
/// milliseconds of work), so a large backlog is worked off over rounds.
const PURGE_SCAN_PER_ROUND: usize = 1_000_000;

/// Keeps the live ledger bounded: forgets old request records and moves
/// finished history into archive files, every `archive.interval_secs`.
async fn archiver(switch: Arc<Switch>, stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(switch.cfg.archive.interval_secs);
    let keep = switch
        .cfg
        .archive
        .request_keep_secs(&switch.cfg.holds, &switch.cfg.security);
    let dir = archive_dir(&switch.cfg.data_dir);
    let me = Arc::clone(&switch);
    let stopping = stop.clone();
    every(&me, period, stop, "archiver", move |now| {
        let s = Arc::clone(&switch);
        let dir = dir.clone();
        let stopping = stopping.clone();
        move || {
            let started = std::time::Instant::now();
            let purge = s
                .engine
                .sweeper()
                .purge_requests(now.plus(-keep), PURGE_SCAN_PER_ROUND)
                .map_err(SwitchError::PurgeRequests)?;
            // A ledger several nodes share keeps its history: archive
            // files would be on one node's disk only. Its past days' spend
            // counters go all the same.
            let run = if s.engine.shared() {
                let horizon = now.plus(-s.cfg.archive.after_secs);
                clubswitch_engine::ArchiveRun {
                    counters: s
                        .engine
                        .archive()
                        .prune_counters(horizon)
                        .map_err(SwitchError::Archive)?,
                    complete: true,
                    ..Default::default()
                }
            } else {
                // A stop ends a large backlog's run between two files.
                s.engine
                    .archive()
                    .run_until(now.plus(-s.cfg.archive.after_secs), &dir, &|| {
                        *stopping.borrow()
                    })
                    .map_err(SwitchError::Archive)?
            };
            s.metrics.archived(&run, purge.removed);
            if run.transactions + run.journal_entries + run.batch_lists + purge.removed > 0 {
                tracing::info!(
                    transactions = run.transactions,
                    journal_entries = run.journal_entries,
                    batch_lists = run.batch_lists,
                    request_records = purge.removed,
                    counters = run.counters,
                    files = run.files.len(),
                    waiting_on = ?run.waiting_on,
                    complete = run.complete,
                    took_ms = started.elapsed().as_millis() as u64,
                    "archived"
                );
            }
            Ok(())
        }
    })
    .await;
}

/// Drains the outbox of member notices through `channel`.
async fn notifier(switch: Arc<Switch>, channel: Arc<dyn Channel>, stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(switch.cfg.notices.interval_ms);
    let me = Arc::clone(&switch);
    let stopping = stop.clone();
    every(&me, period, stop, "notices", move |now| {
        let s = Arc::clone(&switch);
        let channel = Arc::clone(&channel);
        let stopping = stopping.clone();
        move || {
            let names = &s.engine.config().loyalty.tier_names;
            notify::round(
                &s.engine,
                &*channel,
                &s.cfg.notices,
                names,
                &s.metrics,
                now,
                &|| *stopping.borrow(),
            )
        }
    })
    .await;
}

/// Queues and sends campaign messages through `channel`, apart from the
/// notifier: a campaign being queued or sent never holds up a receipt.
async fn campaigns(switch: Arc<Switch>, channel: Arc<dyn Channel>, stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(switch.cfg.notices.interval_ms);
    let pacer = Arc::new(std::sync::Mutex::new(campaign::Pacer::new()));
    let me = Arc::clone(&switch);
    let stopping = stop.clone();
    every(&me, period, stop, "campaigns", move |now| {
        let s = Arc::clone(&switch);
        let channel = Arc::clone(&channel);
        let pacer = Arc::clone(&pacer);
        let stopping = stopping.clone();
        move || {
            let names = &s.engine.config().loyalty.tier_names;
            let mut pacer = pacer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            campaign::round(
                &s.engine,
                &*channel,
                &s.cfg.notices,
                names,
                &s.metrics,
                &mut pacer,
                now,
                &|| *stopping.borrow(),
            )
        }
    })
    .await;
}
