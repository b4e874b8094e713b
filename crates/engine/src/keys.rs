//! The card-hash key: cards are identified by a keyed hash of the number.

use std::fmt;

use clubswitch_wire::CardNumber;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::CardHash;

/// HMAC-SHA256 under the switch's card key. The key is supplied by the
/// daemon (stored encrypted under the master key); it never leaves memory.
#[derive(Clone)]
pub struct CardHasher {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for CardHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardHasher(<redacted>)")
    }
}

impl CardHasher {
    pub fn new(key: &[u8; 32]) -> CardHasher {
        let mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        CardHasher { mac }
    }

    pub fn hash(&self, pan: &CardNumber) -> CardHash {
        let mut m = self.mac.clone();
        m.update(pan.expose());
        CardHash(m.finalize().into_bytes().into())
    }
}
