//! The context of one terminal request inside its transaction.

use clubswitch_wire::{AccountType, Amount, AmountBlock, AmountType, AuthId, Currency, Rrn};

use crate::config::EngineConfig;
use crate::ledger;
use crate::model::{AccountKey, Merchant, Txn, UnixTime};
use crate::storage::{Table, Tx, TxResult};

/// Everything a terminal flow (and what it calls: loyalty's earnings)
/// works with: the settings, the request's transaction, its time, and the
/// merchant it is for.
pub(crate) struct Cx<'a> {
    pub cfg: &'a EngineConfig,
    pub tx: &'a Tx<'a>,
    pub now: UnixTime,
    pub merchant: &'a Merchant,
    /// Whether request records of the first key layout may be left (see
    /// `requests`): a reversal naming its original looks there too.
    pub first_layout: bool,
}

impl Cx<'_> {
    pub fn day(&self, at: UnixTime) -> i64 {
        at.local_day(self.cfg.utc_offset_secs)
    }

    /// A fresh RRN and authorization id.
    pub fn new_rrn(&self) -> TxResult<(Rrn, AuthId)> {
        let id = self.tx.next_id()?;
        // Ids start at 0; RRN 000000000000 is never issued.
        let n = id + 1;
        Ok((Rrn::from_sequence(n), AuthId::from_number(n)))
    }

    pub fn currency_ok(&self, c: Currency) -> bool {
        self.cfg.currencies.contains(&c)
    }

    /// Ledger and available balance of `key` as DE 54 blocks.
    pub fn balance_blocks(
        &self,
        key: &AccountKey,
        currency: Currency,
    ) -> TxResult<Vec<AmountBlock>> {
        let acc = ledger::account(self.tx, key)?;
        let account = match key {
            AccountKey::Store { .. } => AccountType::StoreCredit,
            _ => AccountType::Club,
        };
        let block = |t, v: i64| AmountBlock {
            account,
            amount_type: t,
            currency,
            debit: v < 0,
            amount: Amount::new(v.unsigned_abs()).unwrap_or(Amount::MAX),
        };
        Ok(vec![
            block(AmountType::LedgerBalance, acc.balance),
            block(AmountType::AvailableBalance, acc.available()),
        ])
    }

    pub fn save_txn(&self, txn: &Txn) -> TxResult<()> {
        self.tx.put(Table::Txns, txn.rrn.as_bytes(), txn)
    }
}
