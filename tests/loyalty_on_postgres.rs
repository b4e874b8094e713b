//! The `loyalty` tests with the switch on a PostgreSQL ledger (the test
//! support picks it by this target's name).

#[path = "loyalty.rs"]
mod loyalty;
