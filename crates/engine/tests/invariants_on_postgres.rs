//! The `invariants` tests on a PostgreSQL ledger (`common::store` picks it by
//! this target's name).

#[path = "invariants.rs"]
mod invariants;
