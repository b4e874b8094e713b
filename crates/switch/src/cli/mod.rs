//! The command line.

pub mod admin;
pub mod config;
pub mod loadgen;
pub mod offline;
pub mod replay;
pub mod wire;
