//! Typed values of the data elements the profile uses, and accessors on
//! [`Message`] that parse and format them, so no other code handles field
//! strings.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, FieldError};
use crate::message::{Message, Mti};

/// Data element numbers of the profile.
pub mod de {
    pub const PAN: u8 = 2;
    pub const PROCESSING_CODE: u8 = 3;
    pub const AMOUNT: u8 = 4;
    pub const TRANSMISSION_TIME: u8 = 7;
    pub const STAN: u8 = 11;
    pub const LOCAL_TIME: u8 = 12;
    pub const LOCAL_DATE: u8 = 13;
    pub const TRACK2: u8 = 35;
    pub const RRN: u8 = 37;
    pub const AUTH_ID: u8 = 38;
    pub const RESPONSE_CODE: u8 = 39;
    pub const TERMINAL_ID: u8 = 41;
    pub const MERCHANT_ID: u8 = 42;
    pub const TRACK1: u8 = 45;
    pub const CURRENCY: u8 = 49;
    pub const ADDITIONAL_AMOUNTS: u8 = 54;
    pub const MAC: u8 = 64;
    pub const NETWORK_CODE: u8 = 70;
    pub const ORIGINAL_DATA: u8 = 90;
    pub const CARD_BLOCK: u8 = 120;
    pub const MAC_SECONDARY: u8 = 128;
}

fn digits<const N: usize>(field: u8, raw: &[u8]) -> Result<u64, FieldError> {
    if raw.len() != N || !raw.iter().all(u8::is_ascii_digit) {
        return Err(invalid(field, "not all digits"));
    }
    Ok(raw
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')))
}

fn write_digits<const N: usize>(mut v: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out
}

fn printable(raw: &[u8]) -> bool {
    raw.iter().all(|b| (0x20..0x7f).contains(b))
}

macro_rules! fixed_text {
    ($(#[$doc:meta])* $name:ident, $len:expr, $field:expr, $check:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name([u8; $len]);

        impl $name {
            pub const LEN: usize = $len;

            /// Parses the field's raw bytes.
            pub fn from_bytes(raw: &[u8]) -> Result<Self, FieldError> {
                let arr: [u8; $len] = raw.try_into().map_err(|_| invalid($field, "wrong length"))?;
                let check: fn(&[u8]) -> bool = $check;
                if !check(&arr) {
                    return Err(invalid($field, $what));
                }
                Ok($name(arr))
            }

            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            pub fn as_str(&self) -> &str {
                std::str::from_utf8(&self.0).unwrap_or("")
            }
        }

        impl std::str::FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_bytes(s.as_bytes())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.as_str())
            }
        }
    };
}

fixed_text!(
    /// Terminal id (DE 41, ans8).
    TerminalId, 8, de::TERMINAL_ID, printable, "not printable ASCII"
);
fixed_text!(
    /// Merchant id (DE 42, ans15).
    MerchantId, 15, de::MERCHANT_ID, printable, "not printable ASCII"
);
fixed_text!(
    /// Retrieval reference number (DE 37, an12), assigned by the switch.
    Rrn, 12, de::RRN, |b| b.iter().all(u8::is_ascii_alphanumeric), "not alphanumeric"
);
fixed_text!(
    /// Authorization id (DE 38, an6), assigned by the switch.
    AuthId, 6, de::AUTH_ID, |b| b.iter().all(u8::is_ascii_alphanumeric), "not alphanumeric"
);

impl Rrn {
    /// An RRN from a switch-assigned sequence number (12 digits).
    pub fn from_sequence(n: u64) -> Rrn {
        Rrn(write_digits::<12>(n % 1_000_000_000_000))
    }
}

impl AuthId {
    /// An authorization id from a number (6 digits).
    pub fn from_number(n: u64) -> AuthId {
        AuthId(write_digits::<6>(n % 1_000_000))
    }
}

/// System trace audit number (DE 11, n6).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Stan(u32);

impl Stan {
    pub fn new(v: u32) -> Option<Stan> {
        (v <= 999_999).then_some(Stan(v))
    }
    pub fn value(self) -> u32 {
        self.0
    }
    pub fn from_bytes(raw: &[u8]) -> Result<Stan, FieldError> {
        digits::<6>(de::STAN, raw).map(|v| Stan(v as u32))
    }
    pub fn to_bytes(self) -> [u8; 6] {
        write_digits::<6>(u64::from(self.0))
    }
}

impl fmt::Display for Stan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

/// An amount in minor units (rials for IRR), n12.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(999_999_999_999);

    pub fn new(v: u64) -> Option<Amount> {
        (v <= Self::MAX.0).then_some(Amount(v))
    }
    pub fn value(self) -> u64 {
        self.0
    }
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<Amount, FieldError> {
        digits::<12>(field, raw).map(Amount)
    }
    pub fn to_bytes(self) -> [u8; 12] {
        write_digits::<12>(self.0)
    }
    pub fn checked_add(self, o: Amount) -> Option<Amount> {
        self.0.checked_add(o.0).and_then(Amount::new)
    }
    pub fn checked_sub(self, o: Amount) -> Option<Amount> {
        self.0.checked_sub(o.0).map(Amount)
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// ISO 4217 numeric currency code (DE 49, n3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Currency(u16);

impl Currency {
    pub const IRR: Currency = Currency(364);

    pub fn new(code: u16) -> Option<Currency> {
        (code <= 999).then_some(Currency(code))
    }
    pub fn code(self) -> u16 {
        self.0
    }
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<Currency, FieldError> {
        digits::<3>(field, raw).map(|v| Currency(v as u16))
    }
    pub fn to_bytes(self) -> [u8; 3] {
        write_digits::<3>(u64::from(self.0))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// What a request asks for, from its processing code (DE 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ProcessingCode {
    /// 000000: bank-card purchase, discount lookup.
    BankDiscount,
    /// 009100: purchase from the card's club (rial) account.
    ClubPurchase,
    /// 009200: purchase from store credit at this merchant.
    StorePurchase,
    /// 319100: balance inquiry, club account.
    ClubBalance,
    /// 319200: balance inquiry, store credit and points at this merchant.
    StoreBalance,
    /// 209100: refund to the club account.
    ClubRefund,
    /// 209200: refund to store credit.
    StoreRefund,
}

impl ProcessingCode {
    pub const ALL: [ProcessingCode; 7] = [
        ProcessingCode::BankDiscount,
        ProcessingCode::ClubPurchase,
        ProcessingCode::StorePurchase,
        ProcessingCode::ClubBalance,
        ProcessingCode::StoreBalance,
        ProcessingCode::ClubRefund,
        ProcessingCode::StoreRefund,
    ];

    pub fn code(self) -> &'static [u8; 6] {
        match self {
            ProcessingCode::BankDiscount => b"000000",
            ProcessingCode::ClubPurchase => b"009100",
            ProcessingCode::StorePurchase => b"009200",
            ProcessingCode::ClubBalance => b"319100",
            ProcessingCode::StoreBalance => b"319200",
            ProcessingCode::ClubRefund => b"209100",
            ProcessingCode::StoreRefund => b"209200",
        }
    }

    /// The processing code for DE 3's raw bytes. A well-formed code the
    /// profile does not know is `Ok(None)` (answered 12); malformed bytes are
    /// an error (answered 30).
    pub fn from_bytes(raw: &[u8]) -> Result<Option<ProcessingCode>, FieldError> {
        digits::<6>(de::PROCESSING_CODE, raw)?;
        Ok(Self::ALL.into_iter().find(|p| &p.code()[..] == raw))
    }

    /// Whether this is a purchase (a two-phase transaction with a hold).
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            ProcessingCode::BankDiscount
                | ProcessingCode::ClubPurchase
                | ProcessingCode::StorePurchase
        )
    }
}

/// Transmission date and time (DE 7, MMDDhhmmss, UTC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct TransmissionTime {
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl TransmissionTime {
    pub fn from_bytes(field: u8, raw: &[u8]) -> Result<TransmissionTime, FieldError> {
        digits::<10>(field, raw)?;
        let two = |i: usize| (raw[i] - b'0') * 10 + (raw[i + 1] - b'0');
        let t = TransmissionTime {
            month: two(0),
            day: two(2),
            hour: two(4),
            minute: two(6),
            second: two(8),
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(2000, t.month) // leap-year tolerant
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        if valid {
            Ok(t)
        } else {
            Err(invalid(field, "not a valid MMDDhhmmss"))
        }
    }

    pub fn to_bytes(self) -> [u8; 10] {
        let v = u64::from(self.month) * 100_000_000
            + u64::from(self.day) * 1_000_000
            + u64::from(self.hour) * 10_000
            + u64::from(self.minute) * 100
            + u64::from(self.second);
        write_digits::<10>(v)
    }

    /// The transmission time of a Unix time (UTC).
    pub fn from_unix(secs: i64) -> TransmissionTime {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (_, month, day) = civil_from_days(days);
        TransmissionTime {
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
        }
    }

    /// The Unix time this DE 7 most plausibly names, given the switch's clock
    /// `now`: DE 7 has no year, so the year (now's, the one before or the one
    /// after) that puts it nearest to `now` is taken.
    pub fn nearest_unix(self, now: i64) -> i64 {
        let (year, _, _) = civil_from_days(now.div_euclid(86_400));
        [year - 1, year, year + 1]
            .into_iter()
            .filter(|y| self.day <= days_in_month(*y, self.month))
            .map(|y| {
                days_from_civil(y, self.month, self.day) * 86_400
                    + i64::from(self.hour) * 3600
                    + i64::from(self.minute) * 60
                    + i64::from(self.second)
            })
            .min_by_key(|t| (t - now).abs())
            // 29 February with no leap year near: treat as 1 March.
            .unwrap_or_else(|| days_from_civil(year, 3, 1) * 86_400)
    }

    /// Seconds between this DE 7 and `now` (absolute).
    pub fn skew(self, now: i64) -> u64 {
        (self.nearest_unix(now) - now).unsigned_abs()
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Response code (DE 39).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ResponseCode {
    Approved,
    InvalidMerchant,
    DoNotHonour,
    InvalidTransaction,
    InvalidAmount,
    InvalidCardNumber,
    OriginalNotFound,
    FormatError,
    InsufficientFunds,
    ExpiredCard,
    NotPermittedToCardholder,
    NotPermittedToTerminal,
    ExceedsAmountLimit,
    RestrictedCard,
    SecurityViolation,
    DuplicateTransmission,
    SystemMalfunction,
}

impl ResponseCode {
    pub const ALL: [ResponseCode; 17] = [
        ResponseCode::Approved,
        ResponseCode::InvalidMerchant,
        ResponseCode::DoNotHonour,
        ResponseCode::InvalidTransaction,
        ResponseCode::InvalidAmount,
        ResponseCode::InvalidCardNumber,
        ResponseCode::OriginalNotFound,
        ResponseCode::FormatError,
        ResponseCode::InsufficientFunds,
        ResponseCode::ExpiredCard,
        ResponseCode::NotPermittedToCardholder,
        ResponseCode::NotPermittedToTerminal,
        ResponseCode::ExceedsAmountLimit,
        ResponseCode::RestrictedCard,
        ResponseCode::SecurityViolation,
        ResponseCode::DuplicateTransmission,
        ResponseCode::SystemMalfunction,
    ];

    pub fn code(self) -> &'static [u8; 2] {
        match self {
            ResponseCode::Approved => b"00",
            ResponseCode::InvalidMerchant => b"03",
            ResponseCode::DoNotHonour => b"05",
            ResponseCode::InvalidTransaction => b"12",
            ResponseCode::InvalidAmount => b"13",
            ResponseCode::InvalidCardNumber => b"14",
            ResponseCode::OriginalNotFound => b"25",
            ResponseCode::FormatError => b"30",
            ResponseCode::InsufficientFunds => b"51",
            ResponseCode::ExpiredCard => b"54",
            ResponseCode::NotPermittedToCardholder => b"57",
            ResponseCode::NotPermittedToTerminal => b"58",
            ResponseCode::ExceedsAmountLimit => b"61",
            ResponseCode::RestrictedCard => b"62",
            ResponseCode::SecurityViolation => b"63",
            ResponseCode::DuplicateTransmission => b"94",
            ResponseCode::SystemMalfunction => b"96",
        }
    }

    pub fn as_str(self) -> &'static str {
        std::str::from_utf8(self.code()).unwrap_or("96")
    }

    pub fn from_bytes(raw: &[u8]) -> Result<ResponseCode, FieldError> {
        Self::ALL
            .into_iter()
            .find(|c| &c.code()[..] == raw)
            .ok_or(invalid(
                de::RESPONSE_CODE,
                "not a response code of the profile",
            ))
    }

    pub fn description(self) -> &'static str {
        match self {
            ResponseCode::Approved => "approved",
            ResponseCode::InvalidMerchant => "invalid merchant",
            ResponseCode::DoNotHonour => "do not honour",
            ResponseCode::InvalidTransaction => "invalid transaction",
            ResponseCode::InvalidAmount => "invalid amount",
            ResponseCode::InvalidCardNumber => "invalid card number",
            ResponseCode::OriginalNotFound => "original not found",
            ResponseCode::FormatError => "format error",
            ResponseCode::InsufficientFunds => "insufficient funds",
            ResponseCode::ExpiredCard => "expired card",
            ResponseCode::NotPermittedToCardholder => "not permitted to cardholder",
            ResponseCode::NotPermittedToTerminal => "not permitted to terminal",
            ResponseCode::ExceedsAmountLimit => "exceeds amount limit",
            ResponseCode::RestrictedCard => "restricted card",
            ResponseCode::SecurityViolation => "security violation",
            ResponseCode::DuplicateTransmission => "duplicate transmission",
            ResponseCode::SystemMalfunction => "system malfunction",
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Network management information code (DE 70).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum NetworkCode {
    SignOn,
    SignOff,
    Echo,
    KeyChange,
}

impl NetworkCode {
    pub fn code(self) -> &'static [u8; 3] {
        match self {
            NetworkCode::SignOn => b"001",
            NetworkCode::SignOff => b"002",
            NetworkCode::Echo => b"301",
            NetworkCode::KeyChange => b"161",
        }
    }

    pub fn from_bytes(raw: &[u8]) -> Result<Option<NetworkCode>, FieldError> {
        digits::<3>(de::NETWORK_CODE, raw)?;
        Ok([
            NetworkCode::SignOn,
            NetworkCode::SignOff,
            NetworkCode::Echo,
            NetworkCode::KeyChange,
        ]
        .into_iter()
        .find(|c| &c.code()[..] == raw))
    }
}

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

/// Original data elements (DE 90): the MTI, STAN and DE 7 of the message a
/// confirm or reversal refers to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct OriginalData {
    pub mti: Mti,
    pub stan: Stan,
    pub transmitted: TransmissionTime,
}

impl OriginalData {
    pub fn from_bytes(raw: &[u8]) -> Result<OriginalData, FieldError> {
        let f = de::ORIGINAL_DATA;
        if raw.len() != 42 {
            return Err(invalid(f, "not 42 characters"));
        }
        if raw[20..].iter().any(|b| *b != b'0') {
            return Err(invalid(f, "positions 21-42 must be zeros"));
        }
        let mut mti = [0u8; 4];
        mti.copy_from_slice(&raw[0..4]);
        Ok(OriginalData {
            mti: Mti::new(mti).map_err(|_| invalid(f, "original MTI is not 4 digits"))?,
            stan: Stan::from_bytes(&raw[4..10])
                .map_err(|_| invalid(f, "original STAN is not 6 digits"))?,
            transmitted: TransmissionTime::from_bytes(f, &raw[10..20])?,
        })
    }

    pub fn to_bytes(&self) -> [u8; 42] {
        let mut out = [b'0'; 42];
        out[0..4].copy_from_slice(self.mti.as_bytes());
        out[4..10].copy_from_slice(&self.stan.to_bytes());
        out[10..20].copy_from_slice(&self.transmitted.to_bytes());
        out
    }
}

fn required(msg: &Message, n: u8) -> Result<&[u8], FieldError> {
    msg.get(n).ok_or(FieldError::Missing(n))
}

fn set_known(msg: &mut Message, n: u8, value: impl Into<Bytes>) {
    // The typed values below always fit their field; a failure would be a bug
    // in this module, caught by its tests, and is ignored rather than panicking.
    let _ = msg.set(n, value);
}

/// Typed reads and writes of the profile's fields.
impl Message {
    pub fn processing_code(&self) -> Result<Option<ProcessingCode>, FieldError> {
        ProcessingCode::from_bytes(required(self, de::PROCESSING_CODE)?)
    }
    pub fn set_processing_code(&mut self, p: ProcessingCode) {
        set_known(self, de::PROCESSING_CODE, Bytes::from_static(p.code()));
    }

    pub fn amount(&self) -> Result<Amount, FieldError> {
        Amount::from_bytes(de::AMOUNT, required(self, de::AMOUNT)?)
    }
    pub fn set_amount(&mut self, a: Amount) {
        set_known(self, de::AMOUNT, a.to_bytes().to_vec());
    }

    pub fn transmission_time(&self) -> Result<TransmissionTime, FieldError> {
        TransmissionTime::from_bytes(
            de::TRANSMISSION_TIME,
            required(self, de::TRANSMISSION_TIME)?,
        )
    }
    pub fn set_transmission_time(&mut self, t: TransmissionTime) {
        set_known(self, de::TRANSMISSION_TIME, t.to_bytes().to_vec());
    }

    pub fn stan(&self) -> Result<Stan, FieldError> {
        Stan::from_bytes(required(self, de::STAN)?)
    }
    pub fn set_stan(&mut self, s: Stan) {
        set_known(self, de::STAN, s.to_bytes().to_vec());
    }

    pub fn rrn(&self) -> Result<Rrn, FieldError> {
        Rrn::from_bytes(required(self, de::RRN)?)
    }
    pub fn set_rrn(&mut self, r: Rrn) {
        set_known(self, de::RRN, r.as_bytes().to_vec());
    }

    pub fn auth_id(&self) -> Result<AuthId, FieldError> {
        AuthId::from_bytes(required(self, de::AUTH_ID)?)
    }
    pub fn set_auth_id(&mut self, a: AuthId) {
        set_known(self, de::AUTH_ID, a.as_bytes().to_vec());
    }

    pub fn response_code(&self) -> Result<ResponseCode, FieldError> {
        ResponseCode::from_bytes(required(self, de::RESPONSE_CODE)?)
    }
    pub fn set_response_code(&mut self, rc: ResponseCode) {
        set_known(self, de::RESPONSE_CODE, Bytes::from_static(rc.code()));
    }

    pub fn terminal_id(&self) -> Result<TerminalId, FieldError> {
        TerminalId::from_bytes(required(self, de::TERMINAL_ID)?)
    }
    pub fn set_terminal_id(&mut self, t: TerminalId) {
        set_known(self, de::TERMINAL_ID, t.as_bytes().to_vec());
    }

    pub fn merchant_id(&self) -> Result<MerchantId, FieldError> {
        MerchantId::from_bytes(required(self, de::MERCHANT_ID)?)
    }
    pub fn set_merchant_id(&mut self, m: MerchantId) {
        set_known(self, de::MERCHANT_ID, m.as_bytes().to_vec());
    }

    pub fn currency(&self) -> Result<Currency, FieldError> {
        Currency::from_bytes(de::CURRENCY, required(self, de::CURRENCY)?)
    }
    pub fn set_currency(&mut self, c: Currency) {
        set_known(self, de::CURRENCY, c.to_bytes().to_vec());
    }

    pub fn additional_amounts(&self) -> Result<AmountBlocks, FieldError> {
        AmountBlocks::parse(required(self, de::ADDITIONAL_AMOUNTS)?)
    }
    pub fn set_additional_amounts(&mut self, blocks: &AmountBlocks) {
        if blocks.is_empty() {
            self.remove(de::ADDITIONAL_AMOUNTS);
        } else {
            set_known(self, de::ADDITIONAL_AMOUNTS, blocks.to_bytes());
        }
    }

    pub fn network_code(&self) -> Result<Option<NetworkCode>, FieldError> {
        NetworkCode::from_bytes(required(self, de::NETWORK_CODE)?)
    }
    pub fn set_network_code(&mut self, c: NetworkCode) {
        set_known(self, de::NETWORK_CODE, Bytes::from_static(c.code()));
    }

    pub fn original_data(&self) -> Result<OriginalData, FieldError> {
        OriginalData::from_bytes(required(self, de::ORIGINAL_DATA)?)
    }
    pub fn set_original_data(&mut self, o: &OriginalData) {
        set_known(self, de::ORIGINAL_DATA, o.to_bytes().to_vec());
    }

    /// Whether the message carries the card number in clear (DE 2, 35 or
    /// 45), which the profile refuses with 30.
    pub fn carries_clear_card_data(&self) -> bool {
        self.has(de::PAN) || self.has(de::TRACK2) || self.has(de::TRACK1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_is_twelve_digits() {
        assert_eq!(&Amount::new(1500).unwrap().to_bytes(), b"000000001500");
        assert_eq!(
            Amount::from_bytes(4, b"000000001500").unwrap().value(),
            1500
        );
        assert!(Amount::from_bytes(4, b"00000000150 ").is_err());
        assert!(Amount::from_bytes(4, b"-00000001500").is_err());
        assert!(Amount::new(1_000_000_000_000).is_none());
        assert_eq!(Amount::MAX.checked_add(Amount::new(1).unwrap()), None);
    }

    #[test]
    fn processing_codes_round_trip_and_unknown_is_none() {
        for p in ProcessingCode::ALL {
            assert_eq!(ProcessingCode::from_bytes(p.code()).unwrap(), Some(p));
        }
        assert_eq!(ProcessingCode::from_bytes(b"010000").unwrap(), None);
        assert!(ProcessingCode::from_bytes(b"00910A").is_err());
    }

    #[test]
    fn response_codes_round_trip() {
        for rc in ResponseCode::ALL {
            assert_eq!(ResponseCode::from_bytes(rc.code()).unwrap(), rc);
        }
        assert!(ResponseCode::from_bytes(b"99").is_err());
    }

    #[test]
    fn transmission_time_validates_calendar_fields() {
        assert!(TransmissionTime::from_bytes(7, b"1122183000").is_ok());
        assert!(TransmissionTime::from_bytes(7, b"1322183000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"0431183000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"1122243000").is_err());
        assert!(TransmissionTime::from_bytes(7, b"0229000000").is_ok());
    }

    #[test]
    fn transmission_time_picks_the_nearest_year() {
        // 2026-11-22T18:30:00Z
        let now = days_from_civil(2026, 11, 22) * 86_400 + 18 * 3600 + 30 * 60;
        let t = TransmissionTime::from_unix(now);
        assert_eq!(&t.to_bytes(), b"1122183000");
        assert_eq!(t.nearest_unix(now), now);
        // Just before new year, a terminal slightly ahead sends 0101.
        let eve = days_from_civil(2026, 12, 31) * 86_400 + 86_399;
        let t = TransmissionTime::from_bytes(7, b"0101000010").unwrap();
        assert_eq!(t.skew(eve), 11);
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in (-1000..30_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

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

    #[test]
    fn original_data_is_mti_stan_de7_then_zeros() {
        let raw = b"010000012311221830000000000000000000000000";
        let o = OriginalData::from_bytes(raw).unwrap();
        assert_eq!(o.mti, Mti::AUTH_REQUEST);
        assert_eq!(o.stan.value(), 123);
        assert_eq!(&o.to_bytes(), raw);
        let mut bad = *raw;
        bad[41] = b'1';
        assert!(OriginalData::from_bytes(&bad).is_err());
    }

    #[test]
    fn typed_setters_write_what_getters_read() {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        m.set_processing_code(ProcessingCode::ClubPurchase);
        m.set_amount(Amount::new(120_000).unwrap());
        m.set_stan(Stan::new(42).unwrap());
        m.set_rrn(Rrn::from_sequence(7));
        m.set_auth_id(AuthId::from_number(99));
        m.set_terminal_id("TERM0001".parse().unwrap());
        m.set_merchant_id("MERCHANT0000001".parse().unwrap());
        m.set_currency(Currency::IRR);
        m.set_response_code(ResponseCode::InsufficientFunds);
        m.set_network_code(NetworkCode::Echo);
        assert_eq!(
            m.processing_code().unwrap(),
            Some(ProcessingCode::ClubPurchase)
        );
        assert_eq!(m.amount().unwrap().value(), 120_000);
        assert_eq!(m.get(11), Some(&b"000042"[..]));
        assert_eq!(m.rrn().unwrap().as_str(), "000000000007");
        assert_eq!(m.auth_id().unwrap().as_str(), "000099");
        assert_eq!(m.terminal_id().unwrap().as_str(), "TERM0001");
        assert_eq!(m.currency().unwrap(), Currency::IRR);
        assert_eq!(m.response_code().unwrap(), ResponseCode::InsufficientFunds);
        assert_eq!(m.network_code().unwrap(), Some(NetworkCode::Echo));
        assert_eq!(m.stan(), Ok(Stan::new(42).unwrap()));
        assert!(m.rrn().is_ok());
        assert_eq!(m.original_data(), Err(FieldError::Missing(90)));
    }

    #[test]
    fn terminal_id_must_be_printable() {
        assert!(TerminalId::from_bytes(b"TERM\x01001").is_err());
        assert!(TerminalId::from_bytes(b"TERM001").is_err());
        assert!(TerminalId::from_bytes(b"TERM 001").is_ok());
    }
}
