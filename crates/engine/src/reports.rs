//! Sales reports: what the terminals took in a period of local days, by
//! merchant or by terminal.
//!
//! Read from the transactions still in the live ledger (the archive's
//! horizon, 30 days by default); what lies further back is in the archive
//! files.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::admin::Admin;
use crate::core::Core;
use crate::error::Result;
use crate::model::TxnState;

/// How a sales report groups its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesBy {
    Merchant,
    Terminal,
}

/// One line of a sales report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SalesLine {
    /// Confirmed purchases.
    pub purchases: u64,
    /// What they were confirmed for.
    pub sales: u64,
    pub discounts: u64,
    pub fees: u64,
    /// Refunds confirmed in the period.
    pub refunds: u64,
}

/// Reports over the ledger.
pub struct Reports<'a> {
    core: &'a Core,
}

impl<'a> Reports<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Reports { core }
    }

    /// Sales, discounts, fees and refunds confirmed on the local days
    /// `from..=to` (days since 1970-01-01 in the switch's time zone), by
    /// merchant or terminal id.
    pub fn sales(&self, from: i64, to: i64, by: SalesBy) -> Result<BTreeMap<String, SalesLine>> {
        let offset = self.core.cfg.utc_offset_secs;
        let txns = Admin::new(self.core).transactions(|t| {
            t.confirmed
                .is_some_and(|c| (from..=to).contains(&c.local_day(offset)))
        })?;
        let mut lines: BTreeMap<String, SalesLine> = BTreeMap::new();
        for t in &txns {
            let key = match by {
                SalesBy::Terminal => t.request.terminal.as_str(),
                SalesBy::Merchant => t.merchant.as_str(),
            };
            let l = lines.entry(key.to_owned()).or_default();
            match t.code {
                c if c.is_refund() => l.refunds += t.final_amount,
                _ if t.state == TxnState::Confirmed => {
                    l.purchases += 1;
                    l.sales += t.final_amount;
                    l.discounts += t.discount;
                    l.fees += t.fee;
                }
                _ => {}
            }
        }
        Ok(lines)
    }
}
