//! The `daily` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "daily.rs"]
mod daily;
