//! The `archive` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "archive.rs"]
mod archive;
