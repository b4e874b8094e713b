//! The metrics listener: Prometheus metrics, liveness (`/health`) and
//! readiness (`/ready`), without a token.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use clubswitch_engine::Engine;

use super::{Http, Shared};

pub fn metrics_router(http: Arc<Http>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(http)
}

async fn metrics(State(h): Shared) -> impl IntoResponse {
    // Some figures are read from the ledger (a count, a query): off the
    // workers that serve connections.
    let engine = h.switch.engine.clone();
    let figures = tokio::task::spawn_blocking(move || ledger_figures(&engine))
        .await
        .unwrap_or_default();
    let extra: Vec<(&str, &str, f64)> = figures.iter().map(|(n, h, v)| (*n, *h, *v)).collect();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        h.switch.metrics.render(&extra),
    )
}

/// The gauges read from the engine and the ledger.
fn ledger_figures(engine: &Engine) -> Vec<(&'static str, &'static str, f64)> {
    let flush = engine.flush_stats();
    let healthy = if engine.healthy() { 1.0 } else { 0.0 };
    let locked = engine
        .admin()
        .terminals()
        .map_or(0, |ts| ts.iter().filter(|t| t.locked).count());
    let mut out = vec![
        (
            "clubswitch_pending_holds",
            "Holds past their expiry that the last sweep left for the next (its backlog).",
            engine.sweeper().pending_holds() as f64,
        ),
        (
            "clubswitch_flushes_total",
            "Group-commit flushes.",
            flush.flushes as f64,
        ),
        (
            "clubswitch_flush_tickets_total",
            "Durable operations served by flushes.",
            flush.tickets as f64,
        ),
        (
            "clubswitch_flush_last_batch",
            "Operations served by the last flush.",
            flush.last_batch as f64,
        ),
        (
            "clubswitch_flush_last_seconds",
            "Duration of the last flush.",
            flush.last_flush.as_secs_f64(),
        ),
        (
            "clubswitch_flush_seconds_total",
            "Time spent flushing.",
            flush.total_flush.as_secs_f64(),
        ),
        (
            "clubswitch_flush_failures_total",
            "Flushes that failed.",
            flush.failures as f64,
        ),
        (
            "clubswitch_notices_waiting",
            "Member notices in the outbox, due or backing off.",
            engine.outbox().len() as f64,
        ),
        (
            "clubswitch_storage_healthy",
            "1 while the ledger accepts writes; 0 after a storage failure until it is reopened.",
            healthy,
        ),
        (
            "clubswitch_storage_primary_up",
            "1 while a writable primary answers (the embedded ledger: while it accepts writes).",
            healthy,
        ),
        (
            "clubswitch_terminals_locked",
            "Terminals locked after security failures.",
            locked as f64,
        ),
    ];
    // What the ledger takes on disk. The embedded ledger's log does not
    // shrink as archiving removes records (runbook, Storage): alert on its
    // growth against the disk, not on the live records.
    match engine.size_on_disk() {
        Ok(bytes) => out.push((
            "clubswitch_ledger_bytes",
            "The ledger's size on disk (embedded: sled's log; PostgreSQL: the ledger table with its indexes).",
            bytes as f64,
        )),
        Err(e) => tracing::debug!("the ledger's size on disk: {e}"),
    }
    if let Some(lag) = engine.replication_lag() {
        out.push((
            "clubswitch_storage_replication_lag_seconds",
            "The largest replay lag of the database's standbys.",
            lag,
        ));
    }
    out
}

async fn ready(State(h): Shared) -> impl IntoResponse {
    if !h.ready.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    } else if !h.switch.engine.healthy() {
        let why = if h.switch.engine.shared() {
            "storage unavailable: no writable primary database reached\n"
        } else {
            "storage failure: reopening the ledger\n"
        };
        (StatusCode::SERVICE_UNAVAILABLE, why)
    } else {
        (StatusCode::OK, "ready\n")
    }
}
