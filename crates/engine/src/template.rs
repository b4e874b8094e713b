//! The words of member notices as operators and merchants write them: a
//! template per event and language, for the whole network or for one
//! merchant. The engine keeps them; the switch fills them in (and ships a
//! default for every event, used where none is kept). A merchant's own
//! template wins over the network's for notices of its events.

use clubswitch_wire::MerchantId;
use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::model::{Language, UnixTime};
use crate::notice::NoticeKind;
use crate::storage::Table;

/// The events a template may be written for: every notice but the login
/// code (a credential, whose words are fixed) and campaign messages (which
/// carry their own text).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Receipt,
    LowBalance,
    TierChange,
    Vip,
    PointsConverted,
    ReferralBonus,
    DrawWon,
    Returned,
    ExpiryWarning,
    Expired,
    Birthday,
    CardExpiring,
    Repurchase,
    Anniversary,
    TierAtRisk,
}

impl Event {
    pub const ALL: [Event; 15] = [
        Event::Receipt,
        Event::LowBalance,
        Event::TierChange,
        Event::Vip,
        Event::PointsConverted,
        Event::ReferralBonus,
        Event::DrawWon,
        Event::Returned,
        Event::ExpiryWarning,
        Event::Expired,
        Event::Birthday,
        Event::CardExpiring,
        Event::Repurchase,
        Event::Anniversary,
        Event::TierAtRisk,
    ];

    /// Its name in the API and in keys: `receipt`, `expiry_warning`, …
    pub fn name(self) -> &'static str {
        match self {
            Event::Receipt => "receipt",
            Event::LowBalance => "low_balance",
            Event::TierChange => "tier_change",
            Event::Vip => "vip",
            Event::PointsConverted => "points_converted",
            Event::ReferralBonus => "referral_bonus",
            Event::DrawWon => "draw_won",
            Event::Returned => "returned",
            Event::ExpiryWarning => "expiry_warning",
            Event::Expired => "expired",
            Event::Birthday => "birthday",
            Event::CardExpiring => "card_expiring",
            Event::Repurchase => "repurchase",
            Event::Anniversary => "anniversary",
            Event::TierAtRisk => "tier_at_risk",
        }
    }

    pub fn from_name(s: &str) -> Result<Event> {
        Event::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "event is one of {}, not {s:?}",
                    Event::ALL.map(Event::name).join(", ")
                ))
            })
    }

    /// The event a notice tells of, if its words come from a template.
    pub fn of(kind: &NoticeKind) -> Option<Event> {
        Some(match kind {
            NoticeKind::Receipt { .. } => Event::Receipt,
            NoticeKind::LowBalance { .. } => Event::LowBalance,
            NoticeKind::TierChange { .. } => Event::TierChange,
            NoticeKind::Vip { .. } => Event::Vip,
            NoticeKind::PointsConverted { .. } => Event::PointsConverted,
            NoticeKind::ReferralBonus { .. } => Event::ReferralBonus,
            NoticeKind::DrawWon { .. } => Event::DrawWon,
            NoticeKind::Returned { .. } => Event::Returned,
            NoticeKind::ExpiryWarning { .. } => Event::ExpiryWarning,
            NoticeKind::Expired { .. } => Event::Expired,
            NoticeKind::Birthday => Event::Birthday,
            NoticeKind::CardExpiring { .. } => Event::CardExpiring,
            NoticeKind::Repurchase { .. } => Event::Repurchase,
            NoticeKind::Anniversary { .. } => Event::Anniversary,
            NoticeKind::TierAtRisk { .. } => Event::TierAtRisk,
            NoticeKind::LoginCode { .. } | NoticeKind::Campaign { .. } => return None,
        })
    }

    /// Whether it happens at a merchant, whose own template may write it
    /// (see [`merchant_of`]).
    pub fn at_merchant(self) -> bool {
        matches!(
            self,
            Event::Receipt
                | Event::PointsConverted
                | Event::ReferralBonus
                | Event::DrawWon
                | Event::Returned
                | Event::ExpiryWarning
                | Event::Expired
                | Event::Repurchase
        )
    }

    /// Whether it is marketing: not sent to a member who opted out, nor in
    /// quiet hours. The rest is what a member must know (a purchase, an
    /// expiry).
    pub fn is_marketing(self) -> bool {
        matches!(
            self,
            Event::Birthday | Event::Repurchase | Event::Anniversary | Event::TierAtRisk
        )
    }
}

/// The merchant a notice is about, whose template it is written from.
pub fn merchant_of(kind: &NoticeKind) -> Option<MerchantId> {
    match kind {
        NoticeKind::Receipt { merchant, .. }
        | NoticeKind::PointsConverted { merchant, .. }
        | NoticeKind::ReferralBonus { merchant, .. }
        | NoticeKind::DrawWon { merchant, .. }
        | NoticeKind::Returned { merchant, .. }
        | NoticeKind::ExpiryWarning { merchant, .. }
        | NoticeKind::Expired { merchant, .. }
        | NoticeKind::Repurchase { merchant, .. } => Some(*merchant),
        _ => None,
    }
}

/// A template as kept.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Template {
    /// None: the network's.
    pub merchant: Option<MerchantId>,
    pub event: Event,
    pub language: Language,
    pub text: String,
    pub updated: UnixTime,
    pub by: Option<String>,
}

impl crate::codec::Record for Template {}

/// Longest template kept, in characters (ten SMS parts of Persian).
pub const MAX_CHARS: usize = 700;

/// `N` for the network's, `M` ‖ merchant; then the event's name, a 0 and
/// the language's code.
fn key(merchant: Option<&MerchantId>, event: Event, language: Language) -> Vec<u8> {
    let mut k = match merchant {
        None => vec![b'N'],
        Some(m) => {
            let mut k = vec![b'M'];
            k.extend_from_slice(m.as_bytes());
            k
        }
    };
    k.extend_from_slice(event.name().as_bytes());
    k.push(0);
    k.extend_from_slice(match language {
        Language::Persian => b"fa",
        Language::English => b"en",
    });
    k
}

/// The templates kept.
pub struct Templates<'a> {
    core: &'a Core,
}

impl<'a> Templates<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Templates { core }
    }

    /// Keeps `t` (replacing the one for its merchant, event and language).
    /// Its placeholders are the switch's to check, before this.
    pub fn put(&self, t: &Template) -> Result<crate::Durable<()>> {
        if t.text.trim().is_empty() || t.text.chars().count() > MAX_CHARS {
            return Err(EngineError::invalid(format!(
                "a template is 1 to {MAX_CHARS} characters"
            )));
        }
        let k = key(t.merchant.as_ref(), t.event, t.language);
        self.core
            .store
            .transaction_durable(|tx| tx.put(Table::Templates, &k, t))
    }

    /// Forgets a template (the default applies again); whether there was
    /// one.
    pub fn remove(
        &self,
        merchant: Option<&MerchantId>,
        event: Event,
        language: Language,
    ) -> Result<crate::Durable<bool>> {
        let k = key(merchant, event, language);
        self.core.store.transaction_durable(|tx| {
            let had = tx.contains(Table::Templates, &k)?;
            if had {
                tx.remove(Table::Templates, &k)?;
            }
            Ok(had)
        })
    }

    /// The template for exactly this merchant (none: the network's).
    pub fn get(
        &self,
        merchant: Option<&MerchantId>,
        event: Event,
        language: Language,
    ) -> Result<Option<Template>> {
        self.core
            .store
            .get(Table::Templates, &key(merchant, event, language))
    }

    /// The template a notice of `event` about `merchant` is written from:
    /// the merchant's own, else the network's; none: the switch's default.
    pub fn effective(
        &self,
        merchant: Option<&MerchantId>,
        event: Event,
        language: Language,
    ) -> Result<Option<Template>> {
        if let Some(m) = merchant {
            if let Some(t) = self.get(Some(m), event, language)? {
                return Ok(Some(t));
            }
        }
        self.get(None, event, language)
    }

    /// Every template kept: the network's, then each merchant's.
    pub fn list(&self) -> Result<Vec<Template>> {
        self.core.store.values(Table::Templates, b"")
    }
}
