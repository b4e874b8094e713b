//! The `loyalty` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "loyalty.rs"]
mod loyalty;
