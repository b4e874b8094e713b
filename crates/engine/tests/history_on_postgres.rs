//! The `history` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "history.rs"]
mod history;
