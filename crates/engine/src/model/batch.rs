//! A settlement batch: what one run settled for one merchant, as the
//! ledger keeps it (`settlement` makes batches, `archive` takes their
//! lists of items once it holds the transactions, `payout` pays them).

use std::borrow::Cow;

use clubswitch_wire::{MerchantId, Rrn};
use serde::{Deserialize, Serialize};

use super::UnixTime;
use crate::codec::{with_compact_tail, with_tail, Record};
use crate::error::Result;

/// One merchant's settlement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementBatch {
    pub id: u64,
    pub merchant: MerchantId,
    pub settlement_account: String,
    pub cutoff: UnixTime,
    pub created: UnixTime,
    /// Due date, days since 1970-01-01 (local).
    pub due_day: i64,
    /// The RRNs of its items, until the archive takes the list (see
    /// [`SettlementBatch::items_archived`]).
    pub items: Vec<Rrn>,
    /// Confirmed club purchases.
    pub gross: u64,
    /// Discounts given on bank-card lookups (informational: paid by the
    /// merchant at the till, not through the switch).
    pub discounts: u64,
    /// Fees on purchases and lookups, less fees returned with refunds.
    pub fees: i64,
    /// Club refunds.
    pub refunds: u64,
    /// What the network pays the merchant (negative: what it owes).
    pub net: i64,
    /// How many items' RRNs left `items` for the archive (format 11):
    /// once the archive has taken every transaction a batch lists (and
    /// every earlier batch's list), the list goes too (`archive`), so the
    /// live ledger does not keep an RRN for every item ever settled. The
    /// archived transactions still name their batch.
    pub items_archived: u64,
}

impl SettlementBatch {
    /// How many items it settled, listed or archived.
    pub fn item_count(&self) -> u64 {
        self.items_archived.saturating_add(self.items.len() as u64)
    }
}

impl Record for SettlementBatch {
    fn upgrade(_: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
        with_tail(body, &0u64)
    }

    fn upgrade_compact(version: u8, body: &[u8]) -> Result<Cow<'_, [u8]>> {
        match version {
            ..=10 => with_compact_tail(body, &0u64),
            _ => Ok(Cow::Borrowed(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn a_batch_written_before_format_11_reads_with_no_items_archived() {
        let b = SettlementBatch {
            id: 7,
            merchant: MerchantId::from_bytes(b"MERCHANT0000001").unwrap(),
            settlement_account: "IR000000000000000000000001".into(),
            cutoff: UnixTime(1_700_000_000),
            created: UnixTime(1_700_000_100),
            due_day: 19_700,
            items: vec![Rrn::from_sequence(41), Rrn::from_sequence(42)],
            gross: 10_000,
            discounts: 0,
            fees: 100,
            refunds: 0,
            net: 9_900,
            items_archived: 0,
        };
        let mut body = codec::to_vec(&b).unwrap();
        assert_eq!(body.pop(), Some(0), "the count comes last, a varint 0");
        for version in 7..=10 {
            body[0] = version;
            assert_eq!(codec::from_slice::<SettlementBatch>(&body).unwrap(), b);
        }
        let _six = codec::write_fixed_width();
        let mut v6 = codec::to_vec(&b).unwrap();
        v6.truncate(v6.len() - 8);
        assert_eq!(codec::from_slice::<SettlementBatch>(&v6).unwrap(), b);
    }
}
