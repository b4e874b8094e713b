//! `clubswitch run`: the daemon. Opens the data directory, binds the
//! terminal, metrics and admin listeners, starts the background jobs, and
//! on SIGTERM or Ctrl-C stops taking connections, lets requests in flight
//! finish within the grace period and flushes the ledger.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use clubswitch_engine::Engine;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::boot::{admin_token, init_logs, master_key, open_engine};
use crate::config::Config;
use crate::error::SwitchError;
use crate::handler::Switch;
use crate::http::{admin_router, metrics_router, Http};
use crate::master::MasterKey;
use crate::tls::{Reloading, TlsListener};

/// Runs the daemon until SIGTERM or Ctrl-C.
pub fn run(cfg: Config, demo: bool) -> Result<(), SwitchError> {
    init_logs(&cfg);
    let master = master_key(&cfg, demo)?;
    let engine = open_engine(&cfg, &master)?;
    if demo {
        // Nodes starting together on one database seed it once.
        let path = engine.exclusive("demo", || {
            crate::demo::seed(&engine, &master, &cfg.data_dir, &cfg.holds)
        })??;
        println!(
            "demo data set ready; terminal keys, card numbers and console logins: {}",
            path.display()
        );
        let scheme = if cfg.admin.tls.is_some() {
            "https"
        } else {
            "http"
        };
        println!("console: {scheme}://{}/", cfg.admin.addr);
    }
    let token = admin_token(&cfg)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.limits.workers(cores))
        .enable_all()
        .thread_name("clubswitch")
        .build()
        .map_err(SwitchError::Runtime)?;
    rt.block_on(serve(cfg, engine, master, token))
}

/// Serves terminals and the HTTP listeners until a shutdown signal, then
/// shuts down gracefully.
async fn serve(
    cfg: Config,
    engine: Engine,
    master: MasterKey,
    token: String,
) -> Result<(), SwitchError> {
    ignore_file_size_limit();
    // Listened for before anything is bound: a stop that comes as soon as
    // the switch says it is up is graceful too.
    let shutdown = shutdown_signal();
    let switch = Arc::new(Switch::new(engine, master, cfg.clone()));
    let gateways = crate::http::gateway::Gateways::load(&cfg.admin.gateways)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let http = Arc::new(Http::new(
        Arc::clone(&switch),
        token,
        gateways,
        stop_rx.clone(),
    )?);
    // The terminal connections and the HTTP servers run on this tracker;
    // a server ends after a stop once its connections have (axum waits
    // for them), so a stop waits for the requests in flight on all of
    // them, up to the grace period.
    let tracker = TaskTracker::new();

    let servers = listen_for_terminals(&switch, &tracker, &stop_rx).await?;
    // The admin API starts last: the tests (and operators) take its line
    // on standard output to mean the switch is up.
    let admin_tls = cfg.admin.tls.as_ref().map(Reloading::open).transpose()?;
    for (addr, router, what, tls) in [
        (
            cfg.metrics.addr,
            metrics_router(Arc::clone(&http)),
            "metrics",
            None,
        ),
        (
            cfg.admin.addr,
            admin_router(Arc::clone(&http)),
            "admin API",
            admin_tls,
        ),
    ] {
        listen_http(addr, router, what, tls, &tracker, stop_rx.clone()).await?;
    }
    let jobs = crate::jobs::start(&switch, &stop_rx)?;
    http.ready.store(true, Ordering::Relaxed);

    shutdown.await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    http.ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    tracker.close();
    // One deadline for both: the connections (terminal and HTTP) finish
    // their requests while the jobs end their rounds (settlement within a
    // step, as a settlement the admin API runs), so a stop takes at most
    // the grace period before the last flush, which covers what both
    // wrote.
    let grace = Duration::from_secs(cfg.limits.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    let (connections, rounds) = tokio::join!(
        tokio::time::timeout_at(deadline, tracker.wait()),
        tokio::time::timeout_at(deadline, jobs.wait()),
    );
    if connections.is_err() {
        tracing::warn!("some connections did not finish within {grace:?}");
    }
    if rounds.is_err() {
        tracing::warn!("a background job did not finish its round within {grace:?}");
    }
    switch.engine.close().map_err(SwitchError::FinalFlush)?;
    tracing::info!("stopped");
    Ok(())
}

/// Binds every configured terminal listener and starts accepting on each;
/// connections share one limit and one tracker, so shutdown can wait for
/// them all.
async fn listen_for_terminals(
    switch: &Arc<Switch>,
    tracker: &TaskTracker,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, SwitchError> {
    let slots = Arc::new(Semaphore::new(switch.cfg.limits.max_connections));
    let mut servers = Vec::new();
    for l in &switch.cfg.listeners {
        let listening = |source| SwitchError::Listen {
            addr: l.addr,
            source,
        };
        let tls = l.tls.as_ref().map(Reloading::open).transpose()?;
        if let Some(t) = &tls {
            t.watch();
        }
        let listener = TcpListener::bind(l.addr).await.map_err(listening)?;
        let addr = listener.local_addr().map_err(listening)?;
        tracing::info!(%addr, header = ?l.header, tls = tls.is_some(), "terminal listener");
        let with = if tls.is_some() { " (TLS)" } else { "" };
        println!("listening for terminals on {addr}{with}");
        servers.push(tokio::spawn(crate::server::serve(
            Arc::clone(switch),
            listener,
            l.header,
            tls,
            Arc::clone(&slots),
            tracker.clone(),
            stop.clone(),
        )));
    }
    Ok(servers)
}

/// Binds `addr` and serves `router` on it (over TLS with `tls`) until
/// `stop` turns true. Handlers see the peer's address (`ConnectInfo`).
/// The server runs on `tracker` and ends, after a stop, once its requests
/// in flight are answered (hyper closes idle HTTP/1.1 connections at
/// once, and answers a request in flight with `Connection: close`).
async fn listen_http(
    addr: std::net::SocketAddr,
    router: Router,
    what: &'static str,
    tls: Option<Arc<Reloading>>,
    tracker: &TaskTracker,
    mut stop: watch::Receiver<bool>,
) -> Result<(), SwitchError> {
    use axum::serve::ListenerExt;
    let listening = |source| SwitchError::HttpListen { what, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listening)?;
    let bound = listener.local_addr().map_err(listening)?;
    tracing::info!(addr = %bound, tls = tls.is_some(), "{what} listener");
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let stopped = async move {
        let _ = stop.changed().await;
    };
    match tls {
        None => {
            println!("{what} on http://{bound}");
            tracker.spawn(async move {
                let _ = axum::serve(listener, service)
                    .with_graceful_shutdown(stopped)
                    .await;
            });
        }
        Some(tls) => {
            println!("{what} on https://{bound}");
            tls.watch();
            // `tap_io` makes the listener one axum gives `ConnectInfo` for.
            let listener = TlsListener::new(listener, tls)
                .map_err(listening)?
                .tap_io(|_| {});
            tracker.spawn(async move {
                let _ = axum::serve(listener, service)
                    .with_graceful_shutdown(stopped)
                    .await;
            });
        }
    }
    Ok(())
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

/// Starts listening for SIGTERM and SIGINT (Ctrl-C) now, and resolves
/// when one comes. The handlers are installed by this call, not when the
/// future is first polled: until then either signal would kill the
/// process by its default action, skipping the graceful stop.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            (Ok(mut one), Err(e)) | (Err(e), Ok(mut one)) => {
                tracing::warn!("cannot catch SIGTERM or SIGINT: {e}; the other stops the switch");
                one.recv().await;
            }
            (Err(e), Err(_)) => {
                // Not a stop: run until killed rather than exit at once.
                tracing::error!(
                    "cannot catch SIGTERM nor SIGINT: {e}; only SIGKILL stops the switch"
                );
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Resolves on Ctrl-C (registered at the first poll here: the switch is
/// built and run on Unix).
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
