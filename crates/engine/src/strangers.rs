//! Wrong passwords given for names no user signs in with (none has the
//! name, or its user is revoked or has no password), so that such a name
//! locks as a user's does and the answers tell nobody whether a name is a
//! user's (see `access::login`).
//!
//! Kept in memory, never in the ledger: anyone can make names up, and
//! nothing of them needs to outlive the process. Each node of a shared
//! ledger counts its own. A name is kept as its SHA-256, so what one entry
//! costs does not grow with the name sent. Past [`MAX_NAMES`] (about 6 MB),
//! names neither locked nor failed within a lockout are dropped; a new
//! name that finds the map still full is not counted.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::model::UnixTime;

/// Names kept at once, at most.
const MAX_NAMES: usize = 100_000;

#[derive(Default)]
pub(crate) struct Strangers(Mutex<HashMap<[u8; 32], Failures>>);

/// One name's wrong passwords, as a user's record counts them.
#[derive(Clone, Copy)]
struct Failures {
    failed: u32,
    locked_until: Option<UnixTime>,
    last: UnixTime,
}

impl Strangers {
    /// Counts a wrong password for `name` at `now`, as a user's record
    /// would: `max_failed` in a row lock it for `lockout_secs`. Returns
    /// until when it is locked, if a lock has not run out (the failure
    /// that reaches the limit is answered as a wrong password, as a
    /// user's is).
    pub(crate) fn failed(
        &self,
        name: &str,
        now: UnixTime,
        max_failed: u32,
        lockout_secs: i64,
    ) -> Option<UnixTime> {
        let name: [u8; 32] = Sha256::digest(name.as_bytes()).into();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_NAMES && !map.contains_key(&name) {
            let horizon = now.0 - lockout_secs;
            map.retain(|_, f| f.locked_until.is_some_and(|u| u > now) || f.last.0 > horizon);
            if map.len() >= MAX_NAMES {
                return None;
            }
        }
        let f = map.entry(name).or_insert(Failures {
            failed: 0,
            locked_until: None,
            last: now,
        });
        f.last = now;
        if let Some(until) = f.locked_until.filter(|&until| until > now) {
            return Some(until);
        }
        f.failed += 1;
        if f.failed >= max_failed {
            f.failed = 0;
            f.locked_until = Some(now.plus(lockout_secs));
        }
        None
    }
}
