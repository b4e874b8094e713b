//! What can go wrong outside a terminal's request: opening a data
//! directory, serving, the background jobs, backup and restore, the
//! offline commands and the command-line clients.
//!
//! `main` prints an error as `clubswitch: {error}`, and the background jobs
//! log it, so each variant's message says what failed and, for a file or
//! an address, which one; the source error's own message follows. A
//! terminal's request never fails with this type: it is answered with a
//! response code (see `handler`). The admin API answers with its own
//! `http::ApiError`, which a `SwitchError` turns into.

use std::net::SocketAddr;
use std::path::PathBuf;

use clubswitch_engine::{EngineError, FlushError};
use clubswitch_wire::{FieldError, SecurityError, SetFieldError, TerminalId};

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::master::MasterKeyError;

#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    // The configuration and the keys.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--log-format {0}: human or json")]
    LogFormat(String),
    /// The configuration as TOML (`config default`).
    #[error("{0}")]
    ConfigText(#[from] toml::ser::Error),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    /// A terminal's key does not open under the master key.
    #[error("{terminal}: {source}")]
    TerminalKey {
        terminal: TerminalId,
        source: MasterKeyError,
    },
    #[error("no card key in this data directory")]
    NoCardKey,

    // Files: each says which, and what was being done with it.
    #[error("creating {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON file (demo.json, a backup's manifest) that does not parse.
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A TOML file (a replay fixture) that does not parse.
    #[error("{}: {source}", path.display())]
    Toml {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },

    // The ledger.
    #[error("opening the ledger in {}: {source}", dir.display())]
    OpenLedger { dir: PathBuf, source: EngineError },
    /// The PostgreSQL ledger (the URL is not repeated: it may hold a
    /// password).
    #[error("connecting to the ledger in PostgreSQL: {0}")]
    ConnectLedger(EngineError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Flush(#[from] FlushError),
    /// Closing the ledger at shutdown, which flushes it.
    #[error("final flush: {0}")]
    FinalFlush(EngineError),

    // The daemon.
    /// The async runtime could not be built.
    #[error("{0}")]
    Runtime(std::io::Error),
    /// A terminal listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The metrics or the admin API listener could not be bound.
    #[error("{what} on {addr}: {source}")]
    HttpListen {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A listener's certificate or key could not be used.
    #[error("TLS ({}): {reason}", cert.display())]
    Tls { cert: PathBuf, reason: String },
    #[error("starting the {name} thread: {source}")]
    Thread {
        name: String,
        source: std::io::Error,
    },
    #[error("the {0} thread stopped without an answer")]
    ThreadLost(String),
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),

    // The background jobs.
    #[error("loyalty review: {0}")]
    LoyaltyReview(EngineError),
    #[error("daily pass: {0}")]
    DailyPass(EngineError),
    #[error("purging request records: {0}")]
    PurgeRequests(EngineError),
    #[error("archiving: {0}")]
    Archive(EngineError),

    // Member notices.
    #[error("reading the outbox: {0}")]
    Outbox(EngineError),
    #[error("removing {count} delivered notices: {source}")]
    NoticesDelivered { count: usize, source: EngineError },
    #[error("rescheduling notice {id}: {source}")]
    NoticeRescheduled { id: u64, source: EngineError },
    /// The SMS gateway answered with an error status.
    #[error("gateway answered {0}")]
    GatewayStatus(u16),
    /// The SMS gateway could not be reached: what failed, never the
    /// request's URL (a GET gateway's carries the number and the text, a
    /// login code included), since this goes to the log and to
    /// `last_error` in the API.
    #[error("gateway: {0}")]
    Gateway(String),
    /// A notice's or campaign's words, or the gateway request, could not
    /// be written from its template.
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// Campaign messages could not be queued or their outcomes recorded.
    #[error("campaigns: {0}")]
    Campaigns(EngineError),
    #[error("campaign {0} is gone")]
    CampaignGone(u64),
    #[error("the text came to {0} characters, more than a message may hold")]
    TooLong(usize),

    // Backup, restore and the offline audit.
    #[error("{} exists and is not empty", .0.display())]
    BackupDirNotEmpty(PathBuf),
    #[error("{}: {source} (not a backup directory?)", path.display())]
    NotABackup {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists: stop the switch and move it aside before restoring", .0.display())]
    RestoreOver(PathBuf),
    /// A backup's manifest could not be put into JSON.
    #[error("{0}")]
    Manifest(serde_json::Error),
    #[error("audit: {0} violations")]
    AuditFailed(usize),

    // The command line's input.
    #[error("reading standard input: {0}")]
    Stdin(std::io::Error),
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// Hex, given on the command line or in a fixture, that is not hex;
    /// `what` says whose.
    #[error("{what}: {source}")]
    Hex {
        what: String,
        source: hex::FromHexError,
    },
    /// A hex length header (`wire --framed`) that does not frame one
    /// message.
    #[error("length header: {0}")]
    LengthHeader(String),
    #[error("the key must be 64 hex digits")]
    KeyHex,
    /// A message field, built by `wire encode` or a fixture, that cannot
    /// be set or read.
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    SetField(#[from] SetFieldError),

    // The command-line clients of a running switch.
    #[error("the admin token: {}: {source}", path.display())]
    AdminToken {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The admin API answered with an error status and message.
    #[error("{code}: {message}")]
    AdminStatus { code: u16, message: String },
    /// An HTTP call to the admin API failed; `what` says which.
    #[error("{what}: {source}")]
    Http {
        what: String,
        source: Box<ureq::Error>,
    },
    /// The admin API's answer could not be read.
    #[error("{0}")]
    HttpBody(std::io::Error),
    #[error("method {0} is not used by the admin API")]
    Method(String),
    /// A terminal connection (replay, loadgen) failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("idle connection {n} of {of}: {source}")]
    IdleConnection {
        n: usize,
        of: usize,
        source: std::io::Error,
    },

    // Replay of certification fixtures.
    /// A fixture asks for something it cannot have (a step, a field, a
    /// terminal or a value that is not there).
    #[error("{0}")]
    Fixture(String),
    #[error("card {card:?}: {source}")]
    Card { card: String, source: SecurityError },
    #[error("{0} steps failed")]
    StepsFailed(usize),

    // The demo data set.
    #[error("demo data: bad value {0:?}")]
    DemoValue(String),

    /// A message that is free text: input the switch cannot use, described
    /// where it is found.
    #[error("{0}")]
    Invalid(String),
}

impl SwitchError {
    pub fn invalid(msg: impl Into<String>) -> SwitchError {
        SwitchError::Invalid(msg.into())
    }

    pub fn fixture(msg: impl Into<String>) -> SwitchError {
        SwitchError::Fixture(msg.into())
    }
}
