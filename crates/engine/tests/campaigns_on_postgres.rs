//! The `campaigns` tests on a PostgreSQL ledger (`common::store` picks it
//! by this target's name).

#[path = "campaigns.rs"]
mod campaigns;
