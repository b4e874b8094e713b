//! Who takes part: merchants and their terminals, members and their cards.

use clubswitch_wire::{Amount, Expiry, MerchantId, TerminalId};
use serde::{Deserialize, Serialize};

use super::{CardHash, MemberId, Status, UnixTime};
use crate::codec::Record;

/// On what amount a merchant's fee is computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeeBase {
    #[default]
    Gross,
    Discounted,
}

/// Which transactions a merchant offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Offers {
    pub discount: bool,
    pub club: bool,
    pub store: bool,
}

impl Default for Offers {
    fn default() -> Self {
        Offers {
            discount: true,
            club: true,
            store: true,
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Merchant {
    pub id: MerchantId,
    pub name: String,
    pub status: Status,
    /// Fee the merchant owes the network, in basis points.
    pub fee_bps: u32,
    pub fee_base: FeeBase,
    /// Where settlements are paid (an IBAN).
    pub settlement_account: String,
    pub offers: Offers,
    /// Largest amount of one purchase, if limited.
    pub max_amount: Option<Amount>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Terminal {
    pub id: TerminalId,
    pub merchant: MerchantId,
    pub status: Status,
    /// The TMK, sealed under the switch master key by the daemon; the engine
    /// never sees it in clear.
    pub sealed_tmk: Vec<u8>,
    /// The key being replaced by a key change, and until when it is valid.
    pub previous_tmk: Option<(Vec<u8>, UnixTime)>,
    pub security_failures: u32,
    pub locked: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardKind {
    /// Issued by this switch: club balance, store credit.
    Club,
    /// A bank card enrolled for discounts and loyalty.
    Bank,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Card {
    pub hash: CardHash,
    pub last4: [u8; 4],
    pub kind: CardKind,
    pub member: Option<MemberId>,
    /// The club (rial) account of a club card.
    pub account: Option<u64>,
    pub status: Status,
    pub expiry: Option<Expiry>,
    /// Largest purchase, if limited.
    pub max_amount: Option<Amount>,
    /// Largest club spend per local day, if limited.
    pub daily_limit: Option<Amount>,
    /// The card this one was renewed onto.
    pub replaced_by: Option<CardHash>,
}

/// Loyalty tier of a member.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Tier {
    #[default]
    Bronze,
    Silver,
    Gold,
    Platinum,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub phone: String,
    pub tier: Tier,
    pub groups: Vec<String>,
    pub status: Status,
    /// The language the member reads messages in; none chosen, the
    /// switch's default (format version 5).
    pub language: Option<super::Language>,
    /// When the member opted out of marketing messages (campaigns,
    /// greetings); receipts and what they must know still reach them
    /// (format version 5).
    pub opted_out: Option<UnixTime>,
    /// When the member joined the club (their anniversary); none for
    /// members enrolled before format version 6.
    pub joined: Option<UnixTime>,
}

impl Record for Merchant {}
impl Record for Terminal {}
impl Record for Card {}
impl Record for Member {
    fn upgrade(version: u8, body: &[u8]) -> crate::error::Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1..=4 => crate::codec::with_tail(
                body,
                &(None::<super::Language>, None::<UnixTime>, None::<UnixTime>),
            ),
            5 => crate::codec::with_tail(body, &None::<UnixTime>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}
