//! The clubswitch daemon and command line, as a library so the integration
//! tests and tools share its terminal client and configuration.
//!
//! # Layout
//!
//! A terminal's request, from the socket to the ledger and back:
//!
//! - [`server`]: accepts terminal connections and reads their frames,
//!   pipelined up to a bound, within the connection limits.
//! - [`handler`]: from a request's bytes to its response's: decoding,
//!   terminal keys, MAC, DE 7 window, card block, the signed response.
//! - [`batch`]: the engine's thread, where requests from every connection
//!   are committed together, a batch to a transaction.
//! - then the engine (`clubswitch_engine`): authorization, the ledger,
//!   loyalty.
//!
//! The operators' side of the running switch:
//!
//! - [`http`]: the admin API, a file per resource behind a bearer token,
//!   and the metrics listener (`/metrics`, `/health`, `/ready`).
//! - [`metrics`]: the Prometheus counters and histograms, recorded without
//!   a lock.
//! - [`backup`]: a backup directory, its manifest, and restoring from it.
//! - [`background`]: long work (a backup) on a thread of its own at a
//!   lower priority.
//!
//! Its background work:
//!
//! - [`jobs`]: the periodic rounds: holds, the loyalty review, the daily
//!   pass and settlement, the archiver, the notifier.
//! - [`notify`]: member notices from the outbox to the log or an SMS
//!   gateway, in the request shape [`gateway`] renders.
//! - [`settlement`]: a settlement's batches written as CSV and JSON files.
//!
//! Starting and stopping:
//!
//! - [`boot`]: opening a data directory: logs, master key, admin token,
//!   engine.
//! - [`daemon`]: `clubswitch run`: the listeners, serving, and a graceful
//!   shutdown.
//! - [`layout`]: where a data directory (or a backup) keeps things.
//! - [`config`]: the configuration, its defaults and its checks.
//! - [`master`]: the master key, and sealing secrets under it.
//! - [`memory`]: the memory the process may use; the ledger's page cache.
//! - [`demo`]: the deterministic demo data set.
//! - [`error`]: [`SwitchError`](error::SwitchError), what can fail outside
//!   a terminal's request.
//!
//! The command line:
//!
//! - [`cli`]: the subcommands: the admin client, `config`, the offline
//!   commands on a stopped data directory, `replay`, `loadgen`, `wire`.
//! - [`client`]: a terminal's side of the protocol, for `replay`,
//!   `loadgen` and the tests.

pub mod background;
pub mod backup;
pub mod batch;
pub mod boot;
pub mod campaign;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod handler;
pub mod http;
pub mod jobs;
pub mod lang;
pub mod layout;
pub mod master;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod payout;
pub mod server;
pub mod settlement;
pub mod sms;
pub mod tls;
pub mod words;
