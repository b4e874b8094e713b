//! The `money` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "money.rs"]
mod money;
