//! `clubswitch run`: the daemon.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use clubswitch_engine::durable_file;
use clubswitch_engine::{CardHasher, Engine, Store, StoreConfig, UnixTime};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_util::task::TaskTracker;

use crate::config::{Config, LogFormat, ADMIN_TOKEN_ENV};
use crate::handler::Switch;
use crate::http::{admin_router, metrics_router, Http};
use crate::layout::{admin_token_file, archive_dir, ledger_dir, master_key_file};
use crate::master::{write_key_file, MasterKey};

const CARD_KEY: &[u8] = b"card_hash_key";
const CARD_KEY_PURPOSE: &str = "clubswitch card hash key";

pub fn init_logs(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLUBSWITCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Opens the data directory and the engine: the master key unseals the
/// card-hash key (created on first start).
pub fn open_engine(cfg: &Config, master: &MasterKey) -> Result<Engine, String> {
    durable_file::create_dir_all(&cfg.data_dir)
        .map_err(|e| format!("creating {}: {e}", cfg.data_dir.display()))?;
    let store = Store::open(
        &ledger_dir(&cfg.data_dir),
        &StoreConfig {
            cache_bytes: cfg.storage.cache_mb * 1024 * 1024,
            fdatasync: std::env::var_os(crate::config::NO_FDATASYNC_ENV).is_none(),
            ..StoreConfig::default()
        },
    )
    .map_err(|e| format!("opening the ledger in {}: {e}", cfg.data_dir.display()))?;
    let meta = clubswitch_engine::store::Table::Meta;
    let sealed: Option<Vec<u8>> = store.get(meta, CARD_KEY).map_err(|e| e.to_string())?;
    let card_key = match sealed {
        Some(s) => master
            .unseal32(CARD_KEY_PURPOSE, &s)
            .map_err(|e| e.to_string())?,
        None => {
            let k: [u8; 32] = rand::random();
            store
                .put(meta, CARD_KEY, &master.seal(CARD_KEY_PURPOSE, &k))
                .map_err(|e| e.to_string())?;
            store.durable().wait().map_err(|e| e.to_string())?;
            k
        }
    };
    let engine_cfg = cfg.engine().map_err(|e| e.to_string())?;
    Ok(Engine::new(store, CardHasher::new(&card_key), engine_cfg))
}

/// The master key from the environment or the configured file; with
/// `create`, a missing key file is created (demo mode).
pub fn master_key(cfg: &Config, create: bool) -> Result<MasterKey, String> {
    let file = master_key_file(cfg);
    if create && std::env::var_os(crate::config::MASTER_KEY_ENV).is_none() && !file.exists() {
        durable_file::create_dir_all(&cfg.data_dir).map_err(|e| e.to_string())?;
        write_key_file(&file, &MasterKey::generate_hex())
            .map_err(|e| format!("creating {}: {e}", file.display()))?;
        tracing::warn!(file = %file.display(), "created a master key for the demo; back it up: losing it loses every terminal key");
    }
    MasterKey::load(Some(&file)).map_err(|e| e.to_string())
}

/// The admin token from the environment or file, created on first start.
fn admin_token(cfg: &Config) -> Result<String, String> {
    if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV) {
        return Ok(t.trim().to_owned());
    }
    let file = admin_token_file(cfg);
    if !file.exists() {
        let token = hex::encode(rand::random::<[u8; 24]>());
        write_key_file(&file, &token).map_err(|e| format!("creating {}: {e}", file.display()))?;
        tracing::info!(file = %file.display(), "created the admin API token");
    }
    std::fs::read_to_string(&file)
        .map(|t| t.trim().to_owned())
        .map_err(|e| format!("reading {}: {e}", file.display()))
}

/// A write past the file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, whose
/// default action kills the process. Listening for it turns the write into
/// an I/O error, which the ledger handles like a full disk: requests are
/// answered 96 until the ledger can be reopened.
fn ignore_file_size_limit() {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)) {
        Ok(mut s) => {
            tokio::spawn(async move {
                while s.recv().await.is_some() {
                    tracing::error!("a write went past the file-size limit (SIGXFSZ)");
                }
            });
        }
        Err(e) => tracing::warn!("cannot catch SIGXFSZ: {e}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs the daemon until SIGTERM or Ctrl-C.
pub fn run(cfg: Config, demo: bool) -> Result<(), String> {
    init_logs(&cfg);
    let master = master_key(&cfg, demo)?;
    let engine = open_engine(&cfg, &master)?;
    if demo {
        let path = crate::demo::seed(&engine, &master, &cfg.data_dir)?;
        println!(
            "demo data set ready; terminal keys and card numbers: {}",
            path.display()
        );
    }
    let token = admin_token(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clubswitch")
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(serve(cfg, engine, master, token))
}

async fn serve(
    cfg: Config,
    engine: Engine,
    master: MasterKey,
    token: String,
) -> Result<(), String> {
    ignore_file_size_limit();
    let switch = Arc::new(Switch::new(engine, master, cfg.clone()));
    let http = Arc::new(Http {
        switch: Arc::clone(&switch),
        token,
        ready: false.into(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(cfg.limits.max_connections));

    let mut servers = Vec::new();
    for l in &cfg.listeners {
        let listener = TcpListener::bind(l.addr)
            .await
            .map_err(|e| format!("listening on {}: {e}", l.addr))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%addr, header = ?l.header, "terminal listener");
        println!("listening for terminals on {addr}");
        servers.push(tokio::spawn(crate::server::serve(
            Arc::clone(&switch),
            listener,
            l.header,
            Arc::clone(&slots),
            tracker.clone(),
            stop_rx.clone(),
        )));
    }
    for (addr, router, what) in [
        (
            cfg.metrics.addr,
            metrics_router(Arc::clone(&http)),
            "metrics",
        ),
        (cfg.admin.addr, admin_router(Arc::clone(&http)), "admin API"),
    ] {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("{what} on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(addr = %bound, "{what} listener");
        println!("{what} on http://{bound}");
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        });
    }
    tokio::spawn(housekeeping(Arc::clone(&switch), stop_rx.clone()));
    tokio::spawn(archiver(Arc::clone(&switch), stop_rx.clone()));
    let channel = crate::notify::channel(&switch.cfg.notices)?;
    tokio::spawn(notifier(Arc::clone(&switch), channel, stop_rx.clone()));
    http.ready.store(true, Ordering::Relaxed);

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    http.ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    tracker.close();
    let grace = Duration::from_secs(cfg.limits.shutdown_grace_secs);
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("some connections did not finish within {grace:?}");
    }
    switch
        .engine
        .store()
        .close()
        .map_err(|e| format!("final flush: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

/// Runs a blocking round every `period` until shutdown, one at a time. The
/// round is made on the async side by `round` (which may keep state from
/// one to the next) and runs on the blocking pool; its errors are logged
/// under `what`.
async fn every<R>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut round: impl FnMut(UnixTime) -> R,
) where
    R: FnOnce() -> Result<(), String> + Send + 'static,
{
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {},
            _ = stop.changed() => return,
        }
        match tokio::task::spawn_blocking(round(UnixTime::now())).await {
            Ok(Err(e)) => tracing::error!("{what}: {e}"),
            Err(e) => tracing::error!("{what} task: {e}"),
            Ok(Ok(())) => {}
        }
    }
}

/// Expires holds, runs the monthly loyalty review, the daily pass
/// (expiry of points and credit, birthdays, cards expiring) and the daily
/// settlement when configured.
async fn housekeeping(switch: Arc<Switch>, stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(switch.cfg.holds.sweep_interval_secs);
    let daily = switch
        .cfg
        .settlement
        .daily_at
        .as_deref()
        .and_then(crate::config::parse_hhmm);
    let mut last_settled_day = None;
    every(period, stop, "housekeeping", move |now| {
        let local = now.0 + switch.cfg.utc_offset_secs;
        let day = local.div_euclid(86_400);
        let minute = local.rem_euclid(86_400) / 60;
        let settle_now = daily.is_some_and(|(h, m)| {
            minute >= i64::from(h) * 60 + i64::from(m) && last_settled_day != Some(day)
        });
        if settle_now {
            last_settled_day = Some(day);
        }
        let s = Arc::clone(&switch);
        move || {
            let n = s
                .engine
                .expire_holds(now, 10_000)
                .map_err(|e| e.to_string())?;
            if n > 0 {
                tracing::info!(expired = n, "holds expired");
            }
            if let Some(r) = s
                .engine
                .review_standing(now)
                .map_err(|e| format!("loyalty review: {e}"))?
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
                .daily_pass(now)
                .map_err(|e| format!("daily pass: {e}"))?
            {
                tracing::info!(
                    lots = r.lots_checked,
                    points_expired = r.points_expired,
                    credit_expired = r.credit_expired,
                    expiry_warnings = r.expiry_warnings,
                    birthdays = r.birthdays,
                    cards_expiring = r.cards_expiring,
                    "daily pass"
                );
            }
            if settle_now {
                let batches = s.engine.settle(now, now).map_err(|e| e.to_string())?;
                let files = crate::settlement::write_files(&s.cfg, &batches, now)?;
                tracing::info!(batches = batches.len(), ?files, "daily settlement");
            }
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
    every(period, stop, "archiver", move |now| {
        let s = Arc::clone(&switch);
        let dir = dir.clone();
        move || {
            let started = std::time::Instant::now();
            let purge = s
                .engine
                .purge_requests(now.plus(-keep), PURGE_SCAN_PER_ROUND)
                .map_err(|e| format!("purging request records: {e}"))?;
            let run = s
                .engine
                .archive(now.plus(-s.cfg.archive.after_secs), &dir)
                .map_err(|e| format!("archiving: {e}"))?;
            s.metrics.archived(&run, purge.removed);
            if run.transactions + run.journal_entries + purge.removed > 0 {
                tracing::info!(
                    transactions = run.transactions,
                    journal_entries = run.journal_entries,
                    request_records = purge.removed,
                    counters = run.counters,
                    files = run.files.len(),
                    waiting_on = ?run.waiting_on,
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
async fn notifier(
    switch: Arc<Switch>,
    channel: Box<dyn crate::notify::Channel>,
    stop: watch::Receiver<bool>,
) {
    let period = Duration::from_millis(switch.cfg.notices.interval_ms);
    let channel: Arc<dyn crate::notify::Channel> = Arc::from(channel);
    every(period, stop, "notices", move |now| {
        let s = Arc::clone(&switch);
        let channel = Arc::clone(&channel);
        move || {
            let names = &s.engine.config().loyalty.tier_names;
            crate::notify::round(&s.engine, &*channel, &s.cfg.notices, names, &s.metrics, now)
        }
    })
    .await;
}

/// `config check`: parse, check, and say what would run.
pub fn check_config(path: &Path) -> Result<(), String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    println!("{}: ok", path.display());
    for l in &cfg.listeners {
        println!("  terminals on {} ({:?} length header)", l.addr, l.header);
    }
    println!(
        "  admin API on {}, metrics on {}",
        cfg.admin.addr, cfg.metrics.addr
    );
    println!("  data in {}", cfg.data_dir.display());
    Ok(())
}
