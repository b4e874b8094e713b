//! Data element numbers of the profile.

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
