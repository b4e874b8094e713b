//! Expiring holds that were never confirmed.

use clubswitch_wire::Rrn;

use crate::engine::Engine;
use crate::error::Result;
use crate::flows::end_hold;
use crate::model::{Txn, TxnState, UnixTime};
use crate::store::Table;

impl Engine {
    /// Expires up to `max` holds whose time has passed at `now`, releasing
    /// what they held. Returns how many it expired. Each hold ends in its own
    /// transaction, and only if it is still pending.
    pub fn expire_holds(&self, now: UnixTime, max: usize) -> Result<usize> {
        let upto = (now.0.max(0) as u64 + 1).to_be_bytes();
        let due: Vec<Vec<u8>> = self
            .store
            .keys_in(Table::HoldExpiry, &[], &upto)
            .take(max)
            .collect::<Result<_>>()?;
        let offset = self.cfg.utc_offset_secs;
        let mut n = 0;
        for key in due {
            let Ok(rrn) = Rrn::from_bytes(&key[key.len().saturating_sub(12)..]) else {
                continue;
            };
            let expired = self.store.transaction(|tx| {
                let Some(mut t) = tx.get::<Txn>(Table::Txns, rrn.as_bytes())? else {
                    tx.remove(Table::HoldExpiry, &key)?;
                    return Ok(false);
                };
                if t.state != TxnState::Held || t.expires > now {
                    tx.remove(Table::HoldExpiry, &key)?;
                    return Ok(false);
                }
                end_hold(tx, &mut t, TxnState::Expired, offset)?;
                tx.put(Table::Txns, rrn.as_bytes(), &t)?;
                Ok(true)
            })?;
            n += usize::from(expired);
        }
        Ok(n)
    }

    /// Pending holds right now.
    pub fn pending_holds(&self) -> usize {
        self.store.len(Table::HoldExpiry)
    }

    /// Forgets request records older than `before` (retransmissions that old
    /// are refused by the DE 7 window anyway). Returns how many it removed.
    pub fn purge_requests(&self, before: UnixTime) -> Result<usize> {
        let old: Vec<Vec<u8>> = self
            .store
            .scan::<crate::model::RequestRecord>(Table::Requests, b"")
            .filter_map(|r| match r {
                Ok((k, rec)) if rec.at < before => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        for k in &old {
            self.store.transaction(|tx| tx.remove(Table::Requests, k))?;
        }
        Ok(old.len())
    }
}
