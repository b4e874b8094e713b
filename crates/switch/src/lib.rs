//! The clubswitch daemon and command line, as a library so the integration
//! tests and tools share its terminal client and configuration.

pub mod alloc;
pub mod background;
pub mod backup;
pub mod batch;
pub mod boot;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod error;
pub mod handler;
pub mod http;
pub mod jobs;
pub mod layout;
pub mod master;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod settlement;
