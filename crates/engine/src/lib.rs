//! The clubswitch authorization engine.
//!
//! Two-phase terminal transactions (request and hold, then confirm) on a
//! double-entry ledger stored in sled. The engine knows nothing of sockets:
//! it takes typed requests ([`Request`]) built from the wire crate's typed
//! fields and returns an [`Outcome`] (response code, RRN, DE 54 amounts) and,
//! when value moved, a [`FlushTicket`] that resolves once the change is on
//! disk.
//!
//! Every operation is one atomic sled transaction; concurrent operations on
//! the same account serialize, so two purchases can never together spend
//! more than a balance.

pub mod admin;
pub mod archive;
pub mod audit;
pub mod backup;
pub mod calendar;
pub mod codec;
pub mod durability;
pub mod durable_file;
pub mod engine;
pub mod error;
pub mod expiry;
mod flows;
mod framed;
pub mod keys;
mod ledger;
pub mod loyalty;
pub mod model;
pub mod notice;
pub mod rules;
pub mod settlement;
pub mod store;

pub use admin::NewCard;
pub use archive::{ArchiveCheck, ArchiveRun, ArchiveState};
pub use audit::AuditReport;
pub use backup::{BackupPaths, BackupReport};
pub use calendar::Calendar;
pub use durability::{FlushError, FlushMark, FlushStats, FlushTicket};
pub use engine::{Authorize, Confirm, Engine, EngineConfig, Refund, Reply, Request, Undo};
pub use error::EngineError;
pub use keys::CardHasher;
pub use loyalty::{
    Birthday, DailyRun, Lots, LoyaltyConfig, Program, ReferralCode, Review, Standing,
};
pub use model::*;
pub use notice::{Notice, NoticeKind};
pub use rules::{BinRange, DiscountRule, RuleRecord};
pub use settlement::SettlementBatch;
pub use store::{Store, StoreConfig};
