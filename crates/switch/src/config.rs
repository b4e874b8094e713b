//! The TOML configuration file, its defaults and its checks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clubswitch_engine::{Calendar, EngineConfig, LoyaltyConfig};
use clubswitch_wire::{Currency, LengthHeader};
use serde::{Deserialize, Serialize};

use crate::lang::Lang;

/// Where the master key comes from.
pub const MASTER_KEY_ENV: &str = "CLUBSWITCH_MASTER_KEY";
/// The admin API's bearer token.
pub const ADMIN_TOKEN_ENV: &str = "CLUBSWITCH_ADMIN_TOKEN";
/// Set (to anything), the ledger's flushes skip `fdatasync`, and a power
/// cut can lose what the switch answered as done. For the power-loss test
/// only, which shows with it that it catches such a loss; never set it in
/// production.
pub const NO_FDATASYNC_ENV: &str = "CLUBSWITCH_TEST_UNSAFE_NO_FDATASYNC";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Master key file (64 hex digits). `CLUBSWITCH_MASTER_KEY` wins over it.
    pub master_key_file: Option<PathBuf>,
    pub listeners: Vec<Listener>,
    pub limits: Limits,
    pub security: Security,
    pub holds: Holds,
    pub settlement: Settlement,
    pub currencies: Vec<u16>,
    /// Seconds east of UTC for days, hours and settlement dates.
    pub utc_offset_secs: i64,
    pub log: Log,
    pub admin: Admin,
    pub metrics: Metrics,
    pub storage: Storage,
    pub archive: Archive,
    /// Network-wide loyalty settings (each merchant's programme is set
    /// through the admin API).
    pub loyalty: LoyaltyConfig,
    pub notices: Notices,
}

/// A listener's certificate chain and private key, PEM files (see `tls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listener {
    pub addr: SocketAddr,
    pub header: LengthHeader,
    /// Terminals connect with TLS (`{ cert = "…", key = "…" }`; PEM files,
    /// read again when they change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_connections: usize,
    pub max_frame: usize,
    pub idle_timeout_secs: u64,
    /// Requests of one connection processed at once.
    pub in_flight_per_connection: usize,
    /// How long shutdown waits, in all, for in-flight requests (terminal
    /// and HTTP) and for the background jobs' rounds under way.
    pub shutdown_grace_secs: u64,
    /// Threads committing terminal requests (default one). More threads
    /// only help on PostgreSQL, whose batches wait mostly on round trips
    /// and the commit, and only when terminals seldom touch the same rows:
    /// batches that share a row (a budgeted rule, one card) conflict and
    /// are retried, which measured slower than one thread's larger batches
    /// (`benches/postgres.sh`). The embedded ledger gains nothing from more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_threads: Option<usize>,
    /// Threads serving connections, TLS, decoding and the HTTP listeners
    /// (default: one per core). On the 2-core box one worker beside the
    /// engine thread spent less CPU per message in the workers than two,
    /// but no less in all (`benches/echo.sh`, one run: ratios 0.193 and
    /// 0.194), so the default stays; a box whose cores the engine and
    /// storage threads already fill may set fewer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
}

impl Limits {
    /// Engine threads to start.
    pub fn engine_threads(&self) -> usize {
        self.engine_threads.unwrap_or(1)
    }

    /// Connection worker threads to start on a machine of `cores` cores.
    pub fn workers(&self, cores: usize) -> usize {
        self.workers.unwrap_or(cores).max(1)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// DE 7 must be within this many seconds of the switch's clock.
    pub replay_window_secs: u64,
    /// Consecutive security failures that lock a terminal (0: never).
    pub lockout_after: u32,
    /// How long the old key stays valid after a key change.
    pub old_key_grace_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Holds {
    pub expiry_secs: i64,
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settlement {
    /// Daily run at this local time, "HH:MM"; none: only on request.
    pub daily_at: Option<String>,
    /// Weekend days by name (default Friday).
    pub weekend: Vec<String>,
    /// Holidays, Gregorian "YYYY-MM-DD".
    pub holidays: Vec<String>,
    /// Holidays as the Iranian calendar gives them, Jalali "YYYY-MM-DD"
    /// (e.g. "1405-01-01" for Nowruz). Thursday as a full weekend day:
    /// `weekend = ["thursday", "friday"]`; as a half day it stays a working
    /// day (banks execute transfers in the morning).
    pub jalali_holidays: Vec<String>,
    /// Where settlement files are written (relative to the data directory).
    pub output_dir: PathBuf,
    /// The operator's account payouts are paid from (`{ name, iban, bic }`);
    /// needed for a `pain.001` payout file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debtor: Option<crate::payout::Debtor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub format: LogFormat,
    /// A tracing filter, e.g. "info" or "clubswitch=debug".
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    pub addr: SocketAddr,
    /// Token file; `CLUBSWITCH_ADMIN_TOKEN` wins over it.
    pub token_file: Option<PathBuf>,
    /// Requests a second each credential may make, in bursts of up to a
    /// second's worth; more are answered 429. Failed sign-ins are counted
    /// the same way per source address.
    pub requests_per_sec: u32,
    /// Sign-ins (a password, a login code asked for or given) a minute
    /// each source address may try, in bursts of up to a minute's worth;
    /// more are answered 429. Each password costs an argon2 hash (about
    /// 19 MiB and tens of milliseconds): `requests_per_sec` alone would
    /// let one address keep every core busy hashing.
    pub sign_ins_per_minute: u32,
    /// A console session lasts this long after sign-in.
    pub session_secs: u32,
    /// Wrong passwords in a row that lock a user out...
    pub max_failed_logins: u32,
    /// ...for this long.
    pub lockout_secs: u32,
    /// HTTPS (`{ cert = "…", key = "…" }`; PEM files, read again when they
    /// change). Without it the API is plain HTTP: keep it on loopback or
    /// behind a TLS-terminating proxy (runbook: TLS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
    /// Payment gateways whose signed top-up callbacks are taken
    /// (`POST /v1/gateways/{name}/top-up`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayConfig>,
}

/// A payment gateway that reports paid top-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Its name in the callback's path.
    pub name: String,
    /// A file holding the secret it signs callbacks with (at least 32
    /// characters).
    pub secret_file: PathBuf,
    /// How far a callback's timestamp may be from the switch's clock.
    #[serde(default = "default_gateway_window")]
    pub window_secs: u32,
}

fn default_gateway_window() -> u32 {
    300
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Prometheus metrics, health and readiness.
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// The embedded ledger's page cache; absent: an eighth of the memory
    /// the switch may use, between 128 MB and 4 GB (runbook: Memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mb: Option<u64>,
    /// Whether a new embedded ledger is compressed: about half the
    /// disk for more CPU and commit latency (runbook: Storage). An
    /// existing ledger keeps what it was created with.
    pub compress: bool,
    /// How often, in milliseconds, the embedded ledger's log is reclaimed
    /// (sled's flusher, which frees at most one 512 KB segment a run);
    /// absent: every 10. Longer spends less CPU and lets the file grow
    /// where the writes outrun it (runbook: Storage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reclaim_every_ms: Option<u64>,
    /// A PostgreSQL ledger several switch nodes share
    /// (`postgres://user:password@host1,host2/db?target_session_attrs=read-write`);
    /// absent: the embedded ledger in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Keeping the live ledger bounded: what is older than `after_secs` and
/// finished leaves the ledger for hashed archive files in `archive/` under the
/// data directory (see the runbook).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Archive {
    /// Finished transactions and journal entries older than this are
    /// archived. An archived purchase can no longer be refunded, so this is
    /// also the refund window. Default 30 days.
    pub after_secs: i64,
    /// How often the archiver runs.
    pub interval_secs: u64,
}

impl Archive {
    /// Request records older than this are forgotten: a retransmission that
    /// old is refused by the DE 7 window anyway. A day beyond the window,
    /// unless the archive horizon is shorter.
    pub fn request_keep_secs(&self, holds: &Holds, security: &Security) -> i64 {
        (self.minimum_after_secs(holds, security) + 86_400).min(self.after_secs)
    }

    /// The shortest horizon that keeps every request record a terminal
    /// may still retransmit against, and every hold until it expires.
    pub fn minimum_after_secs(&self, holds: &Holds, security: &Security) -> i64 {
        holds.expiry_secs.saturating_add(
            i64::try_from(security.replay_window_secs.saturating_mul(2)).unwrap_or(i64::MAX),
        )
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            master_key_file: None,
            listeners: vec![Listener::default()],
            limits: Limits::default(),
            security: Security::default(),
            holds: Holds::default(),
            settlement: Settlement::default(),
            currencies: vec![364],
            utc_offset_secs: 3 * 3600 + 1800,
            log: Log::default(),
            admin: Admin::default(),
            metrics: Metrics::default(),
            storage: Storage::default(),
            archive: Archive::default(),
            loyalty: LoyaltyConfig::default(),
            notices: Notices::default(),
        }
    }
}

impl Default for Archive {
    fn default() -> Self {
        Archive {
            after_secs: 30 * 86_400,
            interval_secs: 60,
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Listener {
            addr: SocketAddr::from(([0, 0, 0, 0], 5858)),
            header: LengthHeader::Binary2,
            tls: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 20_000,
            max_frame: clubswitch_wire::frame::DEFAULT_MAX_FRAME,
            idle_timeout_secs: 300,
            in_flight_per_connection: 32,
            shutdown_grace_secs: 10,
            engine_threads: None,
            workers: None,
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            replay_window_secs: 300,
            lockout_after: 5,
            old_key_grace_secs: 600,
        }
    }
}

impl Default for Holds {
    fn default() -> Self {
        Holds {
            expiry_secs: 15 * 60,
            sweep_interval_secs: 10,
        }
    }
}

impl Default for Settlement {
    fn default() -> Self {
        Settlement {
            daily_at: None,
            weekend: vec!["friday".into()],
            holidays: Vec::new(),
            jalali_holidays: Vec::new(),
            output_dir: PathBuf::from("settlements"),
            debtor: None,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

impl Admin {
    /// How console sign-ins are limited.
    pub fn login_policy(&self) -> clubswitch_engine::LoginPolicy {
        clubswitch_engine::LoginPolicy {
            session_secs: i64::from(self.session_secs),
            max_failed: self.max_failed_logins,
            lockout_secs: i64::from(self.lockout_secs),
        }
    }
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            addr: SocketAddr::from(([127, 0, 0, 1], 5859)),
            token_file: None,
            requests_per_sec: 500,
            sign_ins_per_minute: 30,
            session_secs: 8 * 3600,
            max_failed_logins: 5,
            lockout_secs: 900,
            tls: None,
            gateways: Vec::new(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            addr: SocketAddr::from(([127, 0, 0, 1], 5860)),
        }
    }
}

/// Where member notices go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeChannel {
    /// Written to the log (the demo).
    Log,
    /// POSTed as JSON to `webhook_url` (an SMS gateway).
    Webhook,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notices {
    pub channel: NoticeChannel,
    pub webhook_url: Option<String>,
    /// Sent as `Authorization: Bearer`; from this file.
    pub webhook_token_file: Option<PathBuf>,
    pub webhook_timeout_ms: u64,
    /// First retry after this long, doubling up to `retry_max_secs`.
    pub retry_base_secs: i64,
    pub retry_max_secs: i64,
    /// Attempts at a member notice before it is given up (logged and
    /// counted), so one the gateway always refuses does not come round
    /// for ever.
    pub max_attempts: u32,
    /// How often the outbox is drained, and how many per round.
    pub interval_ms: u64,
    pub per_round: usize,
    /// What a member texts to stop marketing messages, as the gateway
    /// forwards it to `POST /v1/inbound/sms` (compared without case,
    /// spaces or the difference between Persian and Latin digits).
    pub opt_out_keywords: Vec<String>,
    /// What a member texts to take them again.
    pub opt_in_keywords: Vec<String>,
    /// The language of notices to members who chose none: "fa" (the
    /// default) or "en".
    pub language: Lang,
    /// Local hours in which no campaign message goes ("22:00-08:00", the
    /// default; "" for none). Receipts and codes go at any hour.
    pub quiet_hours: QuietHours,
    /// Campaign messages sent per second at most.
    pub campaign_rate_per_sec: u32,
    /// Attempts at a campaign message before it is reported failed.
    pub campaign_max_attempts: u32,
    /// What the gateway charges per SMS part, in rials (campaign costs).
    pub sms_part_cost: u64,
    /// The gateway request: its method ("POST", "PUT" or "GET").
    pub webhook_method: WebhookMethod,
    /// The request body as a template (minijinja: `{{ to }}`, `{{ text }}`,
    /// `{{ id }}`, `{{ member }}`, `{{ at }}`, `{{ notice }}`; filters
    /// `tojson`, `urlencode`); unset: the switch's own JSON. The URL may
    /// hold placeholders too.
    pub webhook_body: Option<String>,
    /// The body's content type.
    pub webhook_content_type: String,
    /// The header that carries the token from `webhook_token_file`.
    pub webhook_auth_header: String,
    /// Written before the token in that header, with a space ("Bearer");
    /// "": the token alone.
    pub webhook_auth_scheme: String,
}

/// How the gateway is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    Post,
    Put,
    Get,
}

impl WebhookMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookMethod::Post => "POST",
            WebhookMethod::Put => "PUT",
            WebhookMethod::Get => "GET",
        }
    }
}

/// Local hours without marketing: from `from` up to `to` (minutes after
/// midnight), across midnight when `to` is earlier; none when equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct QuietHours {
    from: u16,
    to: u16,
}

impl QuietHours {
    /// Whether local time `secs_of_day` (0..86400) falls inside.
    pub fn contains(self, secs_of_day: i64) -> bool {
        let minute = secs_of_day.rem_euclid(86_400) / 60;
        let (from, to) = (i64::from(self.from), i64::from(self.to));
        if from <= to {
            (from..to).contains(&minute)
        } else {
            minute >= from || minute < to
        }
    }

    /// The first moment after `now` (at UTC offset `offset`) at which the
    /// quiet hours end.
    pub fn end_after(
        self,
        now: clubswitch_engine::UnixTime,
        offset: i64,
    ) -> clubswitch_engine::UnixTime {
        let secs_of_day = (now.0 + offset).rem_euclid(86_400);
        let wait = (i64::from(self.to) * 60 - secs_of_day).rem_euclid(86_400);
        now.plus(if wait == 0 { 86_400 } else { wait })
    }

    /// Whether `now` is quiet at UTC offset `offset` (seconds).
    pub fn quiet_at(self, now: clubswitch_engine::UnixTime, offset: i64) -> bool {
        self.contains(now.0 + offset)
    }
}

impl TryFrom<String> for QuietHours {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(QuietHours { from: 0, to: 0 });
        }
        let minutes = |t: &str| parse_hhmm(t.trim()).map(|(h, m)| u16::from(h) * 60 + u16::from(m));
        match s.split_once('-').map(|(a, b)| (minutes(a), minutes(b))) {
            Some((Some(from), Some(to))) => Ok(QuietHours { from, to }),
            _ => Err(format!(
                "quiet_hours is \"HH:MM-HH:MM\" (or \"\" for none), not {s:?}"
            )),
        }
    }
}

impl From<QuietHours> for String {
    fn from(q: QuietHours) -> String {
        if q.from == q.to {
            return String::new();
        }
        format!(
            "{:02}:{:02}-{:02}:{:02}",
            q.from / 60,
            q.from % 60,
            q.to / 60,
            q.to % 60
        )
    }
}

impl Notices {
    /// Whether an inbound text asks to stop (`Some(true)`) or to start
    /// (`Some(false)`) marketing messages; `None`: neither.
    pub fn opt_out_asked(&self, text: &str) -> Option<bool> {
        let fold = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_whitespace() && *c != '\u{200C}')
                .map(|c| clubswitch_engine::contact::ascii_digit(c).unwrap_or(c))
                .flat_map(char::to_lowercase)
                // Arabic yeh and kaf typed on an Arabic keyboard.
                .map(|c| match c {
                    'ي' => 'ی',
                    'ك' => 'ک',
                    c => c,
                })
                .collect()
        };
        let text = fold(text);
        let said = |words: &[String]| words.iter().any(|w| fold(w) == text);
        if said(&self.opt_out_keywords) {
            Some(true)
        } else if said(&self.opt_in_keywords) {
            Some(false)
        } else {
            None
        }
    }
}

impl Default for Notices {
    fn default() -> Self {
        Notices {
            channel: NoticeChannel::Log,
            webhook_url: None,
            webhook_token_file: None,
            webhook_timeout_ms: 5_000,
            retry_base_secs: 5,
            retry_max_secs: 3_600,
            max_attempts: 48,
            interval_ms: 1_000,
            per_round: 200,
            opt_out_keywords: ["لغو", "لغو11", "off", "stop", "unsubscribe"]
                .map(String::from)
                .to_vec(),
            opt_in_keywords: ["عضویت", "start"].map(String::from).to_vec(),
            language: Lang::Fa,
            quiet_hours: QuietHours {
                from: 22 * 60,
                to: 8 * 60,
            },
            campaign_rate_per_sec: 20,
            campaign_max_attempts: 5,
            sms_part_cost: 0,
            webhook_method: WebhookMethod::Post,
            webhook_body: None,
            webhook_content_type: "application/json".into(),
            webhook_auth_header: "Authorization".into(),
            webhook_auth_scheme: "Bearer".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Every check `config check` makes.
    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        if self.listeners.is_empty() {
            return bad("at least one terminal listener is needed".into());
        }
        if !(-12 * 3600..=14 * 3600).contains(&self.utc_offset_secs) {
            return bad(format!(
                "utc_offset_secs {} is not a time zone (-43200 to 50400)",
                self.utc_offset_secs
            ));
        }
        for l in &self.listeners {
            if self.limits.max_frame > l.header.limit() {
                return bad(format!(
                    "limits.max_frame {} is more than a {:?} header can carry ({})",
                    self.limits.max_frame,
                    l.header,
                    l.header.limit()
                ));
            }
        }
        if self.limits.max_frame < 64 {
            return bad("limits.max_frame below 64 bytes cannot carry a request".into());
        }
        if self.limits.in_flight_per_connection == 0 || self.limits.max_connections == 0 {
            return bad(
                "limits.in_flight_per_connection and max_connections must be positive".into(),
            );
        }
        if self.admin.requests_per_sec == 0 || self.admin.sign_ins_per_minute == 0 {
            return bad("admin.requests_per_sec and sign_ins_per_minute must be positive".into());
        }
        for (i, g) in self.admin.gateways.iter().enumerate() {
            let named = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if g.name.is_empty() || g.name.len() > 64 || !g.name.chars().all(named) {
                return bad(format!(
                    "admin.gateways: name {:?}: 1 to 64 letters, digits, - or _",
                    g.name
                ));
            }
            if self.admin.gateways[..i].iter().any(|o| o.name == g.name) {
                return bad(format!("admin.gateways: {} is listed twice", g.name));
            }
        }
        if self.admin.session_secs == 0 || self.admin.max_failed_logins == 0 {
            return bad("admin.session_secs and max_failed_logins must be positive".into());
        }
        if matches!(self.limits.engine_threads, Some(n) if n == 0 || n > 64) {
            return bad("limits.engine_threads must be between 1 and 64".into());
        }
        if matches!(self.limits.workers, Some(n) if n == 0 || n > 256) {
            return bad("limits.workers must be between 1 and 256".into());
        }
        if matches!(self.storage.cache_mb, Some(mb) if !(16..=1 << 20).contains(&mb)) {
            return bad("storage.cache_mb must be between 16 and 1048576 (1 TB)".into());
        }
        if matches!(self.storage.reclaim_every_ms, Some(ms) if !(1..=1_000).contains(&ms)) {
            return bad("storage.reclaim_every_ms must be between 1 and 1000".into());
        }
        if self.holds.expiry_secs <= 0 {
            return bad("holds.expiry_secs must be positive".into());
        }
        if self.currencies.is_empty() || self.currencies.iter().any(|c| *c > 999) {
            return bad("currencies must list ISO 4217 numeric codes".into());
        }
        self.loyalty
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("loyalty: {e}")))?;
        let n = &self.notices;
        if n.channel == NoticeChannel::Webhook
            && !n
                .webhook_url
                .as_deref()
                .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            return bad("notices.channel webhook needs an http(s) notices.webhook_url".into());
        }
        if n.retry_base_secs <= 0 || n.retry_max_secs < n.retry_base_secs || n.per_round == 0 {
            return bad(
                "notices: retry_base_secs positive, retry_max_secs at least that, per_round positive"
                    .into(),
            );
        }
        if n.campaign_rate_per_sec == 0 || n.campaign_max_attempts == 0 || n.max_attempts == 0 {
            return bad(
                "notices: campaign_rate_per_sec, campaign_max_attempts and max_attempts must be positive"
                    .into(),
            );
        }
        crate::gateway::Shape::of(n.webhook_url.as_deref(), n.webhook_body.as_deref()).map_err(
            |e| ConfigError::Invalid(format!("notices.webhook_url or webhook_body: {e}")),
        )?;
        if let Some(t) = &self.settlement.daily_at {
            parse_hhmm(t).ok_or_else(|| {
                ConfigError::Invalid(format!("settlement.daily_at {t:?} is not HH:MM"))
            })?;
        }
        self.calendar()?;
        let least = self.archive.minimum_after_secs(&self.holds, &self.security);
        if self.archive.after_secs < least {
            return bad(format!(
                "archive.after_secs {} is shorter than holds.expiry_secs plus twice security.replay_window_secs ({least})",
                self.archive.after_secs
            ));
        }
        if self.archive.interval_secs == 0 {
            return bad("archive.interval_secs must be positive".into());
        }
        if !self.admin.addr.ip().is_loopback()
            && self.admin.token_file.is_none()
            && std::env::var_os(ADMIN_TOKEN_ENV).is_none()
        {
            return bad("the admin API listens beyond loopback: set admin.token_file or CLUBSWITCH_ADMIN_TOKEN".into());
        }
        Ok(())
    }

    pub fn calendar(&self) -> Result<Calendar, ConfigError> {
        let mut cal = Calendar {
            weekend: 0,
            holidays: Default::default(),
        };
        for d in &self.settlement.weekend {
            let i = DAYS
                .iter()
                .position(|n| n.eq_ignore_ascii_case(d))
                .ok_or_else(|| {
                    ConfigError::Invalid(format!("settlement.weekend: {d:?} is not a day"))
                })?;
            cal.weekend |= 1 << i;
        }
        for h in &self.settlement.holidays {
            cal.holidays.insert(parse_date(h).ok_or_else(|| {
                ConfigError::Invalid(format!("settlement.holidays: {h:?} is not YYYY-MM-DD"))
            })?);
        }
        for h in &self.settlement.jalali_holidays {
            let day = parse_ymd(h)
                .and_then(|(y, m, d)| clubswitch_engine::calendar::day_from_jalali(y, m, d))
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "settlement.jalali_holidays: {h:?} is not a Jalali YYYY-MM-DD date"
                    ))
                })?;
            cal.holidays.insert(day);
        }
        Ok(cal)
    }

    pub fn engine(&self) -> Result<EngineConfig, ConfigError> {
        Ok(EngineConfig {
            hold_ttl_secs: self.holds.expiry_secs,
            currencies: self
                .currencies
                .iter()
                .filter_map(|c| Currency::new(*c))
                .collect(),
            utc_offset_secs: self.utc_offset_secs,
            calendar: self.calendar()?,
            loyalty: self.loyalty.clone(),
            refund_window_secs: self.archive.after_secs,
            rollups: true,
        })
    }
}

pub fn parse_hhmm(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

/// Days since 1970-01-01 of "YYYY-MM-DD": four digits of year, so every
/// day it gives is within what day arithmetic (times 86,400 seconds) holds.
pub fn parse_date(s: &str) -> Option<i64> {
    let (y, m, d) = parse_ymd(s)?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = clubswitch_wire::fields::days_from_civil(y, m, d);
    (clubswitch_wire::fields::civil_from_days(days) == (y, m, d)).then_some(days)
}

/// The numbers of "YYYY-MM-DD", whatever the calendar.
fn parse_ymd(s: &str) -> Option<(i32, u8, u8)> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// "YYYY-MM-DD" of a day number (days since 1970-01-01).
pub fn format_date(day: i64) -> String {
    clubswitch_engine::iso_date(day)
}

/// RFC 3339 (UTC, seconds) of a moment: "2026-12-02T07:13:54Z".
pub fn format_timestamp(t: clubswitch_engine::UnixTime) -> String {
    t.to_rfc3339()
}

/// The moment of [`format_timestamp`]'s text ("2026-12-02T07:13:54Z", UTC
/// to the second), as Unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let day = parse_date(date)?;
    let mut hms = time.split(':');
    let mut part = |max: i64| {
        let p = hms.next().filter(|p| p.len() == 2)?;
        p.parse::<i64>().ok().filter(|v| (0..=max).contains(v))
    };
    let (h, m, sec) = (part(23)?, part(59)?, part(59)?);
    hms.next()
        .is_none()
        .then_some(day * 86_400 + h * 3_600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_reads_back_as_the_moment_it_was_written_from() {
        for t in [0, 1_764_659_634, 1_796_169_599] {
            let text = format_timestamp(clubswitch_engine::UnixTime(t));
            assert_eq!(parse_timestamp(&text), Some(t), "{text}");
        }
        for bad in [
            "2026-12-02",
            "2026-12-02T07:13:54",
            "2026-12-02T24:00:00Z",
            "2026-12-02T7:13:54Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_date_is_four_digits_of_year_and_a_real_day() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2026-12-07"), Some(20_794));
        for bad in [
            "1000000000000-01-01",
            "99999-01-01",
            "2026-02-30",
            "2026-1-5",
            "2026-12-07-01",
            "-2026-12-07",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn quiet_hours_may_cross_midnight_and_empty_means_never() {
        let q = QuietHours::try_from("22:00-08:00".to_owned()).unwrap();
        let at = |h: i64, m: i64| q.contains(h * 3600 + m * 60);
        assert!(at(22, 0) && at(23, 59) && at(0, 0) && at(7, 59));
        assert!(!at(8, 0) && !at(12, 0) && !at(21, 59));
        let day = QuietHours::try_from("13:00-14:30".to_owned()).unwrap();
        assert!(day.contains(13 * 3600) && day.contains(14 * 3600 + 29 * 60));
        assert!(!day.contains(14 * 3600 + 30 * 60));
        // At 23:30 local (UTC+3:30), quiet ends at 08:00 the next morning.
        let offset = 12_600;
        let now = clubswitch_engine::UnixTime(86_400 * 100 + 23 * 3600 + 1800 - offset);
        assert_eq!(q.end_after(now, offset).0 - now.0, 8 * 3600 + 1800);
        let never = QuietHours::try_from(String::new()).unwrap();
        assert!((0..24).all(|h| !never.contains(h * 3600)));
        assert_eq!(String::from(q), "22:00-08:00");
        for bad in ["22-08", "25:00-08:00", "22:00", "22:00-08:60"] {
            assert!(QuietHours::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        let t = clubswitch_engine::UnixTime(1_795_428_000 + 3_723);
        assert_eq!(format_timestamp(t), "2026-11-23T11:02:03Z");
        assert_eq!(
            format_timestamp(clubswitch_engine::UnixTime(-1)),
            "1969-12-31T23:59:59Z"
        );
    }

    #[test]
    fn defaults_pass_their_own_checks() {
        Config::default().check().unwrap();
    }

    #[test]
    fn request_records_outlive_the_replay_window_but_not_the_archive_horizon() {
        let c = Config::default();
        let keep = c.archive.request_keep_secs(&c.holds, &c.security);
        assert_eq!(keep, 900 + 600 + 86_400);
        let mut short = Config::default();
        short.archive.after_secs = 3_600;
        short.check().unwrap();
        assert_eq!(
            short
                .archive
                .request_keep_secs(&short.holds, &short.security),
            3_600
        );
    }

    #[test]
    fn example_configuration_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/clubswitch.toml");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.listeners.len(), 2);
    }

    #[test]
    fn an_inbound_stop_is_read_whatever_the_digits_case_or_spacing() {
        let n = Notices::default();
        for text in ["لغو", " لغو ۱۱", "لغو11", "STOP", "Stop ", "UnSubscribe"] {
            assert_eq!(n.opt_out_asked(text), Some(true), "{text}");
        }
        assert_eq!(n.opt_out_asked("START"), Some(false));
        assert_eq!(n.opt_out_asked("عضويت"), Some(false), "Arabic yeh");
        assert_eq!(n.opt_out_asked("سلام"), None);
        assert_eq!(n.opt_out_asked(""), None);
    }

    #[test]
    fn jalali_holidays_and_a_thursday_weekend_move_the_settlement_due_date() {
        let mut c = Config::default();
        // Wednesday 9 Dey 1405 = 2026-12-30; Thursday and Friday off, and
        // Saturday 12 Dey a holiday: due Sunday 2027-01-03.
        c.settlement.weekend = vec!["thursday".into(), "friday".into()];
        c.settlement.jalali_holidays = vec!["1405-10-12".into()];
        let cal = c.calendar().unwrap();
        let wednesday = clubswitch_wire::fields::days_from_civil(2026, 12, 30);
        assert_eq!(
            cal.next_working_day(wednesday),
            clubswitch_wire::fields::days_from_civil(2027, 1, 3)
        );
        c.settlement.jalali_holidays = vec!["1404-12-30".into()];
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("jalali_holidays"));
    }

    #[test]
    fn the_log_is_reclaimed_at_least_once_a_second() {
        let mut c = Config::default();
        for ms in [1, 10, 1_000] {
            c.storage.reclaim_every_ms = Some(ms);
            c.check().unwrap();
        }
        for ms in [0, 1_001] {
            c.storage.reclaim_every_ms = Some(ms);
            let err = c.check().unwrap_err().to_string();
            assert!(err.contains("storage.reclaim_every_ms"), "{ms}: {err}");
        }
    }

    #[test]
    fn connection_workers_are_one_per_core_unless_set() {
        let mut l = Limits::default();
        assert_eq!(l.workers(2), 2);
        assert_eq!(l.workers(0), 1, "never none");
        l.workers = Some(1);
        assert_eq!(l.workers(8), 1, "an operator's choice stands");
        let mut c = Config::default();
        c.limits.workers = Some(0);
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("limits.workers"));
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = Config::default();
        c.limits.max_frame = 70_000;
        assert!(c.check().unwrap_err().to_string().contains("max_frame"));
        let mut c = Config::default();
        c.settlement.weekend = vec!["fryday".into()];
        assert!(c.check().unwrap_err().to_string().contains("fryday"));
        let mut c = Config::default();
        c.settlement.holidays = vec!["2026-02-30".into()];
        assert!(c.check().is_err());
        let mut c = Config::default();
        c.archive.after_secs = 600;
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("archive.after_secs"));
        assert!(
            toml::from_str::<Config>("bogus = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
