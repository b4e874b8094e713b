//! Additional amounts (DE 54): the account and amount types of a block, one
//! 20-character block, and the up to 12 blocks of the field.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::amount::{Amount, Currency};
use super::de;
use crate::error::{invalid, FieldError};

/// Account type of a DE 54 block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum AccountType {
    /// 00
    Unspecified,
    /// 91
    Club,
    /// 92
    StoreCredit,
}

impl AccountType {
    fn code(self) -> &'static [u8; 2] {
        match self {
            AccountType::Unspecified => b"00",
            AccountType::Club => b"91",
            AccountType::StoreCredit => b"92",
        }
    }
    fn from_bytes(raw: &[u8]) -> Option<AccountType> {
        match raw {
            b"00" => Some(AccountType::Unspecified),
            b"91" => Some(AccountType::Club),
            b"92" => Some(AccountType::StoreCredit),
            _ => None,
        }
    }
}

/// Amount type of a DE 54 block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum AmountType {
    /// 01
    LedgerBalance,
    /// 02
    AvailableBalance,
    /// 90
    Discount,
    /// 91
    Fee,
    /// 92
    NetAmount,
    /// 93
    PointsEarned,
    /// 94
    PointsBalance,
    /// 95 (profile 1.1): points redeemed (held by a points purchase, then
    /// confirmed).
    PointsRedeemed,
}

impl AmountType {
    fn code(self) -> &'static [u8; 2] {
        match self {
            AmountType::LedgerBalance => b"01",
            AmountType::AvailableBalance => b"02",
            AmountType::Discount => b"90",
            AmountType::Fee => b"91",
            AmountType::NetAmount => b"92",
            AmountType::PointsEarned => b"93",
            AmountType::PointsBalance => b"94",
            AmountType::PointsRedeemed => b"95",
        }
    }
    fn from_bytes(raw: &[u8]) -> Option<AmountType> {
        match raw {
            b"01" => Some(AmountType::LedgerBalance),
            b"02" => Some(AmountType::AvailableBalance),
            b"90" => Some(AmountType::Discount),
            b"91" => Some(AmountType::Fee),
            b"92" => Some(AmountType::NetAmount),
            b"93" => Some(AmountType::PointsEarned),
            b"94" => Some(AmountType::PointsBalance),
            b"95" => Some(AmountType::PointsRedeemed),
            _ => None,
        }
    }
}

/// One 20-character DE 54 block.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct AmountBlock {
    pub account: AccountType,
    pub amount_type: AmountType,
    pub currency: Currency,
    /// `true` for `D` (debit, negative), `false` for `C`.
    pub debit: bool,
    pub amount: Amount,
}

impl AmountBlock {
    pub const LEN: usize = 20;

    /// A credit (non-negative) block.
    pub fn credit(
        account: AccountType,
        amount_type: AmountType,
        currency: Currency,
        amount: Amount,
    ) -> Self {
        AmountBlock {
            account,
            amount_type,
            currency,
            debit: false,
            amount,
        }
    }

    fn parse(raw: &[u8]) -> Result<AmountBlock, FieldError> {
        let bad = |reason| invalid(de::ADDITIONAL_AMOUNTS, reason);
        let account = AccountType::from_bytes(&raw[0..2]).ok_or(bad("unknown account type"))?;
        let amount_type = AmountType::from_bytes(&raw[2..4]).ok_or(bad("unknown amount type"))?;
        let currency = Currency::from_bytes(de::ADDITIONAL_AMOUNTS, &raw[4..7])?;
        let debit = match raw[7] {
            b'C' => false,
            b'D' => true,
            _ => return Err(bad("sign is not C or D")),
        };
        let amount = Amount::from_bytes(de::ADDITIONAL_AMOUNTS, &raw[8..20])?;
        Ok(AmountBlock {
            account,
            amount_type,
            currency,
            debit,
            amount,
        })
    }

    fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(self.account.code());
        out[2..4].copy_from_slice(self.amount_type.code());
        out[4..7].copy_from_slice(&self.currency.to_bytes());
        out[7] = if self.debit { b'D' } else { b'C' };
        out[8..20].copy_from_slice(&self.amount.to_bytes());
    }
}

/// The blocks of DE 54, at most 12 (240 characters). Kept inline so a
/// response's amounts need no allocation until they are encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AmountBlocks {
    blocks: [Option<AmountBlock>; 12],
    len: usize,
}

impl AmountBlocks {
    pub const MAX: usize = 12;

    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block; returns `false` (and adds nothing) when 12 are present.
    pub fn push(&mut self, block: AmountBlock) -> bool {
        match self.blocks.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(block);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &AmountBlock> {
        self.blocks[..self.len].iter().flatten()
    }

    /// The first block of the given account and amount type.
    pub fn find(&self, account: AccountType, amount_type: AmountType) -> Option<&AmountBlock> {
        self.iter()
            .find(|b| b.account == account && b.amount_type == amount_type)
    }

    pub fn parse(raw: &[u8]) -> Result<AmountBlocks, FieldError> {
        if raw.is_empty() || !raw.len().is_multiple_of(AmountBlock::LEN) {
            return Err(invalid(
                de::ADDITIONAL_AMOUNTS,
                "not a whole number of 20-character blocks",
            ));
        }
        let mut out = AmountBlocks::new();
        for chunk in raw.chunks_exact(AmountBlock::LEN) {
            if !out.push(AmountBlock::parse(chunk)?) {
                return Err(invalid(de::ADDITIONAL_AMOUNTS, "more than 12 blocks"));
            }
        }
        Ok(out)
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = vec![0u8; self.len * AmountBlock::LEN];
        for (block, slot) in self.iter().zip(out.chunks_exact_mut(AmountBlock::LEN)) {
            block.write(slot);
        }
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_blocks_parse_and_write() {
        let raw = b"9102364C0000000050009290364D000000000100";
        let blocks = AmountBlocks::parse(raw).unwrap();
        assert_eq!(blocks.len(), 2);
        let avail = blocks
            .find(AccountType::Club, AmountType::AvailableBalance)
            .unwrap();
        assert_eq!(avail.amount.value(), 5000);
        assert!(!avail.debit);
        let disc = blocks
            .find(AccountType::StoreCredit, AmountType::Discount)
            .unwrap();
        assert!(disc.debit);
        assert_eq!(&blocks.to_bytes()[..], &raw[..]);
        assert!(AmountBlocks::parse(&raw[..19]).is_err());
        assert!(AmountBlocks::parse(b"9199364C000000005000").is_err());
        assert!(AmountBlocks::parse(b"9102364X000000005000").is_err());
    }
}
