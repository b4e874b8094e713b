//! The command line.

pub mod wire;
