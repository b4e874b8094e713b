//! Prometheus metrics: counters and histograms in atomics, so recording on
//! the hot path takes no lock and allocates nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use clubswitch_wire::{Mti, ResponseCode};

const MTIS: [&str; 7] = ["0100", "0200", "0220", "0400", "0420", "0800", "other"];
const BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, us: u64) {
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, c) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += c.load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{}}} {}",
            labels.trim_end_matches(','),
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "{name}_count{{{}}} {count}",
            labels.trim_end_matches(',')
        );
    }
}

pub struct Metrics {
    messages: [[AtomicU64; ResponseCode::ALL.len()]; MTIS.len()],
    latency: [Histogram; MTIS.len()],
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub framing_errors: AtomicU64,
    pub security_failures: AtomicU64,
    /// Transactions committed for terminal requests (on the engine
    /// threads or inline), and the requests in them: their ratio is the
    /// mean batch.
    pub engine_batches: AtomicU64,
    pub engine_batched: AtomicU64,
    /// Of those, requests run inline on a connection worker (one per
    /// transaction) because nothing else was in the engine.
    pub engine_inline: AtomicU64,
    archived_transactions: AtomicU64,
    archived_journal_entries: AtomicU64,
    purged_requests: AtomicU64,
    pub notices_sent: AtomicU64,
    pub notices_failed: AtomicU64,
    pub notices_given_up: AtomicU64,
    pub campaign_sent: AtomicU64,
    pub campaign_failed: AtomicU64,
    /// Admin actions done but not written to the action log.
    actions_not_logged: AtomicU64,
    /// When a settlement run last finished (Unix seconds; 0: not since
    /// start).
    settled_at: AtomicU64,
    /// The background jobs this node runs, and whether it holds each one's
    /// lease.
    leaders: std::sync::Mutex<std::collections::BTreeMap<&'static str, bool>>,
}

fn mti_index(mti: Mti) -> usize {
    MTIS.iter()
        .position(|m| m.as_bytes() == mti.as_bytes())
        .unwrap_or(MTIS.len() - 1)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            messages: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: std::array::from_fn(|_| Histogram::new()),
            connections_open: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            engine_batches: AtomicU64::new(0),
            engine_batched: AtomicU64::new(0),
            engine_inline: AtomicU64::new(0),
            framing_errors: AtomicU64::new(0),
            security_failures: AtomicU64::new(0),
            archived_transactions: AtomicU64::new(0),
            archived_journal_entries: AtomicU64::new(0),
            purged_requests: AtomicU64::new(0),
            notices_sent: AtomicU64::new(0),
            notices_failed: AtomicU64::new(0),
            notices_given_up: AtomicU64::new(0),
            campaign_sent: AtomicU64::new(0),
            campaign_failed: AtomicU64::new(0),
            actions_not_logged: AtomicU64::new(0),
            settled_at: AtomicU64::new(0),
            leaders: Default::default(),
        }
    }
}

impl Metrics {
    pub fn record(&self, request: Mti, rc: ResponseCode, took: Duration) {
        let m = mti_index(request);
        let r = ResponseCode::ALL.iter().position(|c| *c == rc).unwrap_or(0);
        self.messages[m][r].fetch_add(1, Relaxed);
        self.latency[m].observe(took.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Counts what an archiver round took out of the live ledger.
    pub fn archived(&self, run: &clubswitch_engine::ArchiveRun, purged_requests: usize) {
        self.archived_transactions
            .fetch_add(run.transactions as u64, Relaxed);
        self.archived_journal_entries
            .fetch_add(run.journal_entries as u64, Relaxed);
        self.purged_requests
            .fetch_add(purged_requests as u64, Relaxed);
    }

    /// Whether this node holds the lease of background job `job` now.
    pub fn leader(&self, job: &'static str, holds: bool) {
        self.leaders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job, holds);
    }

    /// An admin action was done but the action log refused its entry.
    pub fn action_not_logged(&self) {
        self.actions_not_logged.fetch_add(1, Relaxed);
    }

    /// A settlement run finished at `at`.
    pub fn settled(&self, at: clubswitch_engine::UnixTime) {
        self.settled_at
            .store(u64::try_from(at.0).unwrap_or(0), Relaxed);
    }

    /// Requests answered since start by response code, over every MTI:
    /// (code, count), codes never answered left out.
    pub fn by_response_code(&self) -> Vec<(String, u64)> {
        ResponseCode::ALL
            .iter()
            .enumerate()
            .map(|(i, rc)| {
                let n: u64 = self.messages.iter().map(|row| row[i].load(Relaxed)).sum();
                (rc.to_string(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// The Prometheus text format; `extra` appends gauges owned elsewhere.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str("# HELP clubswitch_messages_total Requests answered, by request MTI and response code.\n# TYPE clubswitch_messages_total counter\n");
        for (m, row) in MTIS.iter().zip(&self.messages) {
            for (rc, c) in ResponseCode::ALL.iter().zip(row) {
                let v = c.load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "clubswitch_messages_total{{mti=\"{m}\",rc=\"{rc}\"}} {v}"
                    );
                }
            }
        }
        out.push_str("# HELP clubswitch_request_seconds Time from a request's frame to its response, by request MTI.\n# TYPE clubswitch_request_seconds histogram\n");
        for (m, h) in MTIS.iter().zip(&self.latency) {
            if h.count.load(Relaxed) > 0 {
                h.render(
                    &mut out,
                    "clubswitch_request_seconds",
                    &format!("mti=\"{m}\","),
                );
            }
        }
        let gauges = [
            (
                "clubswitch_connections_open",
                "Terminal connections open.",
                self.connections_open.load(Relaxed),
            ),
            (
                "clubswitch_connections_total",
                "Terminal connections accepted.",
                self.connections_total.load(Relaxed),
            ),
            (
                "clubswitch_connections_refused_total",
                "Connections refused over the limit.",
                self.connections_refused.load(Relaxed),
            ),
            (
                "clubswitch_frames_dropped_total",
                "Messages dropped because MTI or DE 41 could not be read.",
                self.frames_dropped.load(Relaxed),
            ),
            (
                "clubswitch_framing_errors_total",
                "Connections closed for a framing error.",
                self.framing_errors.load(Relaxed),
            ),
            (
                "clubswitch_security_failures_total",
                "Bad MACs, card blocks and DE 7 outside the window.",
                self.security_failures.load(Relaxed),
            ),
            (
                "clubswitch_engine_batches_total",
                "Transactions committed for terminal requests (batches, on the engine threads or inline).",
                self.engine_batches.load(Relaxed),
            ),
            (
                "clubswitch_engine_batched_requests_total",
                "Terminal requests committed in those batches.",
                self.engine_batched.load(Relaxed),
            ),
            (
                "clubswitch_engine_inline_requests_total",
                "Of those, requests run at once on their connection's worker: nothing else was in the engine.",
                self.engine_inline.load(Relaxed),
            ),
            (
                "clubswitch_archived_transactions_total",
                "Finished transactions moved to archive files since start.",
                self.archived_transactions.load(Relaxed),
            ),
            (
                "clubswitch_archived_journal_entries_total",
                "Journal entries moved to archive files since start.",
                self.archived_journal_entries.load(Relaxed),
            ),
            (
                "clubswitch_request_records_purged_total",
                "Request records forgotten past the DE 7 window since start.",
                self.purged_requests.load(Relaxed),
            ),
            (
                "clubswitch_notices_sent_total",
                "Member notices the channel accepted since start.",
                self.notices_sent.load(Relaxed),
            ),
            (
                "clubswitch_notices_failed_total",
                "Member notice deliveries that failed (each is retried) since start.",
                self.notices_failed.load(Relaxed),
            ),
            (
                "clubswitch_notices_given_up_total",
                "Member notices given up since start: refused notices.max_attempts times, or with no number to go to.",
                self.notices_given_up.load(Relaxed),
            ),
            (
                "clubswitch_campaign_messages_sent_total",
                "Campaign messages the channel accepted since start.",
                self.campaign_sent.load(Relaxed),
            ),
            (
                "clubswitch_campaign_messages_failed_total",
                "Campaign message deliveries that failed (retried up to notices.campaign_max_attempts) since start.",
                self.campaign_failed.load(Relaxed),
            ),
            (
                "clubswitch_actions_not_logged_total",
                "Admin actions done whose action log entry could not be written.",
                self.actions_not_logged.load(Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            let kind = kind(name);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        for (name, help, v) in extra {
            let kind = kind(name);
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let settled = self.settled_at.load(Relaxed);
        if settled > 0 {
            let name = "clubswitch_settlement_last_success_timestamp_seconds";
            let _ = writeln!(
                out,
                "# HELP {name} When a settlement run last finished on this node.\n# TYPE {name} gauge\n{name} {settled}"
            );
        }
        let leaders = self.leaders.lock().unwrap_or_else(|p| p.into_inner());
        if !leaders.is_empty() {
            out.push_str("# HELP clubswitch_leader 1 on the node that runs a background task.\n# TYPE clubswitch_leader gauge\n");
            // `task`, not `job`: Prometheus sets `job` to the scrape job.
            for (task, holds) in leaders.iter() {
                let _ = writeln!(
                    out,
                    "clubswitch_leader{{task=\"{task}\"}} {}",
                    u8::from(*holds)
                );
            }
        }
        out
    }
}

/// The metric type by the naming convention: a `_total` only ever grows
/// (since start), so rate() and increase() apply; the rest are gauges.
fn kind(name: &str) -> &'static str {
    if name.ends_with("_total") {
        "counter"
    } else {
        "gauge"
    }
}
