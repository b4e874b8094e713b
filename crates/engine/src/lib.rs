//! The clubswitch authorization engine.
//!
//! Two-phase terminal transactions (request and hold, then confirm) on a
//! double-entry ledger. The engine knows nothing of sockets or HTTP: it
//! takes typed requests ([`Request`]) built from the wire crate's typed
//! fields and returns an [`Outcome`] (response code, RRN, DE 54 amounts)
//! and, when value moved, a ticket that resolves once the change is
//! durable. Every operation is one atomic transaction; concurrent
//! operations on the same account serialize, so two purchases can never
//! together spend more than a balance.
//!
//! Layout, from the ground up (a module uses only those above it):
//! - [`error`], [`codec`]: failures, and how records are encoded.
//! - [`model`]: the records and their keys (imports nothing of the engine
//!   but the codec).
//! - [`storage`]: the [`Store`] over a backend (embedded, memory), group
//!   commit and [`Durable`] results.
//! - [`config`], [`calendar`], [`keys`]: settings, working days, the card
//!   hasher; [`request`]: what the terminal path asks and answers.
//! - `core`: what every part shares; `ledger`: postings and holds; `cx`:
//!   one terminal request's context; [`rules`]: discount rules and fees.
//! - `flows`: authorize, confirm, undo, refund; `terminal`: the terminal
//!   path over them.
//! - Features, each a handle over the core: [`admin`], [`loyalty`],
//!   [`settlement`], [`archive`], [`notice`] (the outbox), [`expiry`] (the
//!   sweeper), [`audit`], [`reports`], [`backup`].
//! - [`engine`]: [`Engine`], the handle the switch holds.
//! - [`durable_file`], `framed`: files written so a power cut cannot tear
//!   them.

pub mod access;
pub mod admin;
pub mod archive;
pub mod audit;
pub mod backup;
pub mod calendar;
pub mod campaign;
pub mod codec;
pub mod config;
mod core;
mod cx;
pub mod durable_file;
pub mod engine;
pub mod error;
pub mod expiry;
mod flows;
mod framed;
pub mod idempotency;
pub mod keys;
mod ledger;
pub mod loyalty;
pub mod model;
pub mod notice;
pub mod payout;
pub mod reports;
pub mod request;
pub mod requests;
pub mod rollup;
pub mod rules;
#[cfg(test)]
mod scratch;
pub mod settlement;
pub mod storage;
mod strangers;
pub mod template;
mod terminal;

pub use access::{
    ActionEntry, Language, LogFilter, LoginPolicy, NewAction, Role, Session, SignIn, TokenRecord,
    User,
};
pub use admin::{AdminRefund, NewCard};
pub use archive::{ArchiveCheck, ArchiveRun, ArchiveState};
pub use audit::{AuditReport, Records};
pub use backup::{BackupPaths, BackupReport};
pub use calendar::Calendar;
pub use campaign::{Audience, Campaign, CampaignState, Campaigns, Figures, NewCampaign};
pub use config::{EngineConfig, LoyaltyConfig, TierBasis};
pub use engine::Engine;
pub use error::{EngineError, StorageError};
pub use idempotency::Idempotency;
pub use keys::CardHasher;
pub use loyalty::{Birthday, DailyRun, Program, ReferralCode, Review, Standing, Till};
pub use model::*;
pub use notice::{Notice, NoticeKind};
pub use reports::{HistoryLine, Period, SalesBy, SalesLine};
pub use request::{
    Authorize, Confirm, Refund, Reply, Request, TerminalChange, TerminalUpdate, Undo,
};
pub use rules::{BinRange, DiscountRule, RuleRecord};
pub use settlement::Settled;
pub use storage::durability::{FlushError, FlushStats, FlushTicket};
pub use storage::{Durable, EmbeddedConfig, Store};
pub use template::{Event, Template, Templates};
