//! What every part of the engine shares: the ledger, the card hasher, the
//! settings, and the state of its background work. The terminal path and
//! each feature's handle ([`crate::Engine::admin`], [`crate::Engine::loyalty`],
//! ...) borrow it; none of them holds another.

use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, RwLock};

use crate::config::EngineConfig;
use crate::keys::CardHasher;
use crate::requests::FirstLayout;
use crate::storage::Store;
use crate::strangers::Strangers;

pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) hasher: CardHasher,
    pub(crate) cfg: EngineConfig,
    /// Holds due that the last sweep left for the next (for metrics).
    pub(crate) pending: AtomicUsize,
    /// Held by the archive run, audit or backup in progress: none of them
    /// may see history move between the ledger and the archive files.
    pub(crate) archiving: Mutex<()>,
    /// Read by each settlement run while it runs: the archive takes
    /// batches' lists of items only while no run holds it, so no run adds
    /// to a batch whose list it took (`archive`), and batches are read for
    /// their files only then, so none is filed half made
    /// (`Settlement::unfiled`).
    pub(crate) settling: RwLock<()>,
    /// Whether request records of the first key layout may be left (see
    /// `requests`).
    pub(crate) first_layout: FirstLayout,
    /// Wrong passwords given for names no user signs in with (see
    /// `access::login`).
    pub(crate) strangers: Strangers,
}
