//! The command line, a module per subcommand (`run` is [`crate::daemon`],
//! `restore` is [`crate::backup::restore`]):
//!
//! - [`admin`]: operator commands, sent to the running daemon's admin API.
//! - [`config`]: check a configuration file, or print the default one.
//! - [`offline`]: `audit`, `archive` and `rotate-master-key` on a stopped
//!   data directory.
//! - [`history`]: `demo-history`, months of synthetic purchases on a
//!   stopped demo data directory.
//! - [`replay`]: certification fixtures played against a running switch.
//! - [`loadgen`]: many terminals driving a running switch, for throughput
//!   and latency.
//! - [`wire`]: messages decoded and encoded by hand.

pub mod admin;
pub mod config;
pub mod history;
pub mod loadgen;
pub mod offline;
pub mod replay;
pub mod wire;
