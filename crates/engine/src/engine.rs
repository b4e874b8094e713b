//! The engine: a cheap handle over the [`Core`] every part shares. Terminal
//! requests go through [`Engine::handle`] and [`Engine::handle_batch`];
//! everything else is a feature's handle ([`Engine::admin`],
//! [`Engine::loyalty`], ...), each defined in its own module over the core,
//! so no feature imports this file and this file imports them all.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock};

use clubswitch_wire::TerminalId;

use crate::access::Access;
use crate::admin::Admin;
use crate::archive::Archive;
use crate::audit::Audit;
use crate::backup::{BackupPaths, BackupReport};
use crate::config::EngineConfig;
use crate::core::Core;
use crate::error::Result;
use crate::expiry::Sweeper;
use crate::keys::CardHasher;
use crate::loyalty::Loyalty;
use crate::model::{CardHash, UnixTime};
use crate::notice::Outbox;
use crate::reports::Reports;
use crate::request::{Reply, Request};
use crate::requests::FirstLayout;
use crate::settlement::Settlement;
use crate::storage::durability::FlushStats;
use crate::storage::{Durable, Store};
use crate::terminal::Terminals;

/// The authorization engine. Clones share one ledger.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
}

impl Engine {
    pub fn new(store: Store, hasher: CardHasher, cfg: EngineConfig) -> Engine {
        Engine {
            core: Arc::new(Core {
                first_layout: FirstLayout::of(&store),
                store,
                hasher,
                cfg,
                pending: AtomicUsize::new(0),
                archiving: Mutex::new(()),
                settling: RwLock::new(()),
                strangers: crate::strangers::Strangers::default(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    /// Users, API tokens and the action log.
    pub fn access(&self) -> Access<'_> {
        Access::new(&self.core)
    }

    pub fn config(&self) -> &EngineConfig {
        &self.core.cfg
    }

    /// The keyed hash a card number is stored under.
    pub fn card_hash(&self, pan: &clubswitch_wire::CardNumber) -> CardHash {
        self.core.hasher.hash(pan)
    }

    /// Handles one terminal request at time `now`, atomically.
    pub fn handle(&self, req: &Request, now: UnixTime) -> Result<Reply> {
        Terminals { core: &self.core }.handle(req, now)
    }

    /// Handles several requests in one transaction, in order, each exactly
    /// as [`Engine::handle`] would (a later request sees what an earlier one
    /// wrote). A decline is an outcome like any other; only a storage
    /// failure fails the batch, and then none of it is applied. Committing
    /// many requests at once spares the storage's per-commit cost, which
    /// dominates a single request's.
    pub fn handle_batch(&self, reqs: &[Request], now: UnixTime) -> Result<Vec<Reply>> {
        Terminals { core: &self.core }.handle_batch(reqs, now)
    }

    /// Merchants, terminals, members, cards, rules, top-up and store credit.
    pub fn admin(&self) -> Admin<'_> {
        Admin::new(&self.core)
    }

    /// Loyalty programmes, standing, points, the daily pass, draws,
    /// coalitions, reports.
    pub fn loyalty(&self) -> Loyalty<'_> {
        Loyalty::new(&self.core)
    }

    /// Settlement batches.
    pub fn settlement(&self) -> Settlement<'_> {
        Settlement::new(&self.core)
    }

    /// Paying settled batches by bank transfer, and reconciling them.
    pub fn payouts(&self) -> crate::payout::Payouts<'_> {
        crate::payout::Payouts::new(&self.core)
    }

    /// Moving finished history into archive files, and checking them.
    pub fn archive(&self) -> Archive<'_> {
        Archive::new(&self.core)
    }

    /// Member notices waiting for delivery.
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox::new(&self.core)
    }

    /// The templates of member notices.
    pub fn templates(&self) -> crate::template::Templates<'_> {
        crate::template::Templates::new(&self.core)
    }

    /// Campaign messages and their marketing lane.
    pub fn campaigns(&self) -> crate::campaign::Campaigns<'_> {
        crate::campaign::Campaigns::new(&self.core)
    }

    /// Hold expiry and the forgetting of old request records.
    pub fn sweeper(&self) -> Sweeper<'_> {
        Sweeper::new(&self.core)
    }

    /// The ledger's invariants and balances.
    pub fn audit(&self) -> Audit<'_> {
        Audit::new(&self.core)
    }

    /// Sales reports.
    pub fn reports(&self) -> Reports<'_> {
        Reports::new(&self.core)
    }

    /// An online backup (see [`crate::backup`]).
    pub fn backup(&self, to: &BackupPaths) -> Result<BackupReport> {
        crate::backup::take(&self.core, to)
    }

    /// A secret kept sealed in the ledger (see [`Store::sealed`]).
    pub fn sealed(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.core.store.sealed(name)
    }

    /// Keeps a sealed secret (see [`Store::keep_sealed`]).
    pub fn keep_sealed(&self, name: &str, sealed: Vec<u8>) -> Result<Durable<()>> {
        self.core.store.keep_sealed(name, sealed)
    }

    /// Whether this node runs the background job `name` now: on a ledger
    /// several nodes share, one node at a time holds each job's lease and
    /// keeps it until it stops; a ledger one process owns always holds
    /// them.
    pub fn lease(&self, name: &str) -> Result<bool> {
        self.core.store.lease(name)
    }

    /// Runs `f` while no other node runs anything under `name` (seeding
    /// the demo data set once when several nodes start on one database).
    pub fn exclusive<T>(&self, name: &str, f: impl FnOnce() -> T) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.core.store.exclusive(name, &mut || {
            if let Some(f) = f.take() {
                out = Some(f());
            }
        })?;
        out.ok_or_else(|| crate::EngineError::invalid("an exclusive section did not run"))
    }

    /// Calls `on` with each terminal whose record changes, through this
    /// node or (on a shared ledger) any other; `None`: changes may have
    /// been missed (a lost connection), so forget every terminal.
    pub fn on_terminal_change(&self, on: impl Fn(Option<TerminalId>) + Send + Sync + 'static) {
        self.core.store.watch_terminals(Arc::new(move |key: &[u8]| {
            match TerminalId::from_bytes(key) {
                Ok(id) => on(Some(id)),
                Err(_) => on(None),
            }
        }));
    }

    /// Whether several switch nodes may share this ledger (a database):
    /// then history stays in it, and files one node writes (archive files)
    /// would be seen by that node alone.
    pub fn shared(&self) -> bool {
        self.core.store.shared()
    }

    /// The largest replay lag of the ledger's standbys, in seconds (a
    /// replicated database only).
    pub fn replication_lag(&self) -> Option<f64> {
        self.core.store.replication_lag()
    }

    /// False while the ledger cannot take writes.
    pub fn healthy(&self) -> bool {
        self.core.store.healthy()
    }

    /// Whether a transaction (a batch, or a background job's step such as
    /// settlement's or the archiver's) holds the embedded ledger now: a
    /// request run at once would wait for it. A hint, as it can change
    /// right after.
    pub fn ledger_in_use(&self) -> bool {
        self.core.store.in_use()
    }

    /// While unhealthy, tries the ledger once (a round trip on a database:
    /// call it off the connection workers), so health returns with the
    /// storage even without traffic.
    pub fn probe(&self) {
        self.core.store.probe()
    }

    /// Figures about the group-commit flusher, for metrics.
    pub fn flush_stats(&self) -> FlushStats {
        self.core.store.flush_stats()
    }

    /// Makes everything durable and stops the flusher (at shutdown).
    pub fn close(&self) -> Result<()> {
        self.core.store.close()
    }

    /// The ledger's size on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.core.store.size_on_disk()
    }
}
