//! The `flows` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "flows.rs"]
mod flows;
