//! Message security of the profile (section 3): key derivation, MAC, card
//! block and key wrapping.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::encode::encode_into;
use crate::error::FieldError;
use crate::fields::de;
use crate::message::Message;

type HmacSha256 = Hmac<Sha256>;

/// Length of the MAC carried in DE 64 / DE 128.
pub const MAC_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a message failed a security check. The switch answers all of them
/// with 63 but [`SecurityError::CardNumberLength`] (14: the block opened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    #[error("no MAC as the last field (DE 64 or DE 128)")]
    MacMissing,
    #[error("MAC does not verify")]
    MacMismatch,
    #[error("card block is not hex of nonce, ciphertext and tag")]
    CardBlockMalformed,
    #[error("card block does not authenticate under this terminal's key and message")]
    CardBlockRejected,
    #[error("card block content is not a card number with optional =YYMM expiry")]
    CardDataInvalid,
    #[error("card block holds digits, but not the 12 to 19 of a card number")]
    CardNumberLength,
    #[error("wrapped key is not 32 bytes")]
    WrappedKeyInvalid,
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// A terminal master key: 32 bytes, shown once as 64 hex digits. Never
/// printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Tmk([u8; 32]);

impl Tmk {
    pub fn from_bytes(b: [u8; 32]) -> Tmk {
        Tmk(b)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Option<Tmk> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Tmk(out))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Tmk {
        use aes_gcm::aead::rand_core::RngCore;
        let mut out = [0u8; 32];
        OsRng.fill_bytes(&mut out);
        Tmk(out)
    }

    pub fn to_hex(&self) -> String {
        hex::encode_upper(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Tmk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tmk(<redacted>)")
    }
}

/// The working keys derived from a terminal's TMK.
#[derive(Clone)]
pub struct TerminalKeys {
    /// HMAC keyed with `K_mac`; cloned per use so the key schedule is paid
    /// once per terminal, not once per message.
    mac: HmacSha256,
    enc: Aes256Gcm,
}

impl fmt::Debug for TerminalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TerminalKeys(<redacted>)")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl TerminalKeys {
    /// `K_mac = HMAC-SHA256(TMK, "clubswitch/mac/v1")`,
    /// `K_enc = HMAC-SHA256(TMK, "clubswitch/enc/v1")`.
    pub fn derive(tmk: &Tmk) -> TerminalKeys {
        let k_mac = hmac(&tmk.0, b"clubswitch/mac/v1");
        let k_enc = hmac(&tmk.0, b"clubswitch/enc/v1");
        TerminalKeys {
            mac: match <HmacSha256 as Mac>::new_from_slice(&k_mac) {
                Ok(m) => m,
                Err(_) => unreachable!("HMAC takes keys of any length"),
            },
            enc: Aes256Gcm::new(&k_enc.into()),
        }
    }

    /// The 8-byte MAC of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.mac.clone();
        m.update(data);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Checks `tag` against the MAC of `data` in constant time.
    pub fn verify_mac(&self, data: &[u8], tag: &[u8]) -> Result<(), SecurityError> {
        if tag.len() != MAC_LEN {
            return Err(SecurityError::MacMismatch);
        }
        let mut m = self.mac.clone();
        m.update(data);
        m.verify_truncated_left(tag)
            .map_err(|_| SecurityError::MacMismatch)
    }

    /// Encrypts `plaintext` as a card block: hex (upper case) of
    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], aad: &CardAad, nonce: [u8; NONCE_LEN]) -> String {
        let payload = Payload {
            msg: plaintext,
            aad: &aad.0,
        };
        // AES-GCM encryption fails only for plaintexts over 64 GiB.
        let ct = self
            .enc
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut out = String::with_capacity(2 * (NONCE_LEN + ct.len()));
        out.push_str(&hex::encode_upper(nonce));
        out.push_str(&hex::encode_upper(ct));
        out
    }

    /// Decrypts a card block (hex, either case) and authenticates it against
    /// the message it came in.
    pub fn open(&self, block: &[u8], aad: &CardAad) -> Result<Vec<u8>, SecurityError> {
        if !block.len().is_multiple_of(2) || block.len() < 2 * (NONCE_LEN + TAG_LEN) {
            return Err(SecurityError::CardBlockMalformed);
        }
        let raw = hex::decode(block).map_err(|_| SecurityError::CardBlockMalformed)?;
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ct,
            aad: &aad.0,
        };
        self.enc
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SecurityError::CardBlockRejected)
    }

    /// Seals card data with a fresh random nonce.
    pub fn seal_card(&self, card: &CardData, aad: &CardAad) -> String {
        self.seal_card_with_nonce(card, aad, random_nonce())
    }

    pub fn seal_card_with_nonce(
        &self,
        card: &CardData,
        aad: &CardAad,
        nonce: [u8; NONCE_LEN],
    ) -> String {
        self.seal(&card.to_plaintext(), aad, nonce)
    }

    /// Opens a card block into card data.
    pub fn open_card(&self, block: &[u8], aad: &CardAad) -> Result<CardData, SecurityError> {
        CardData::from_plaintext(&self.open(block, aad)?)
    }

    /// Wraps a new TMK for a key change (DE 120 of the 0810): the 32 key
    /// bytes are the plaintext.
    pub fn wrap_key(&self, new: &Tmk, aad: &CardAad) -> String {
        self.seal(&new.0, aad, random_nonce())
    }

    pub fn unwrap_key(&self, block: &[u8], aad: &CardAad) -> Result<Tmk, SecurityError> {
        let raw = self.open(block, aad)?;
        let key: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| SecurityError::WrappedKeyInvalid)?;
        Ok(Tmk(key))
    }

    /// Encodes `msg` with its MAC: DE 64, or DE 128 when the message has a
    /// secondary bitmap, set last. Any MAC already present is replaced.
    pub fn sign(&self, msg: &mut Message) -> Bytes {
        let mut out = BytesMut::new();
        self.sign_into(msg, &mut out);
        out.freeze()
    }

    /// As [`TerminalKeys::sign`], appending to `dst`.
    pub fn sign_into(&self, msg: &mut Message, dst: &mut BytesMut) {
        msg.remove(de::MAC);
        msg.remove(de::MAC_SECONDARY);
        let field = msg.mac_field();
        // An 8-byte binary value always fits DE 64 / DE 128.
        let _ = msg.set(field, Bytes::from_static(&[0u8; MAC_LEN]));
        let start = dst.len();
        encode_into(msg, dst);
        let end = dst.len();
        let tag = self.mac(&dst[start..end - MAC_LEN]);
        dst.truncate(end - MAC_LEN);
        dst.put_slice(&tag);
        let _ = msg.set(field, tag.to_vec());
    }

    /// Verifies the MAC of a decoded message against its encoded bytes
    /// `raw`. The MAC must be the last field, DE 64 or DE 128.
    pub fn verify(&self, raw: &[u8], msg: &Message) -> Result<(), SecurityError> {
        let data = mac_input(raw, msg)?;
        self.verify_mac(data, &raw[data.len()..])
    }
}

/// The bytes a message's MAC covers: all of `raw` but the trailing 8 MAC
/// bytes, provided the decoded message's last field is DE 64 or DE 128.
pub fn mac_input<'a>(raw: &'a [u8], msg: &Message) -> Result<&'a [u8], SecurityError> {
    match msg.fields().last() {
        Some((de::MAC | de::MAC_SECONDARY, v)) if v.len() == MAC_LEN && raw.len() >= MAC_LEN => {
            Ok(&raw[..raw.len() - MAC_LEN])
        }
        _ => Err(SecurityError::MacMissing),
    }
}

fn random_nonce() -> [u8; NONCE_LEN] {
    Aes256Gcm::generate_nonce(&mut OsRng).into()
}

/// The associated data binding a card block to its message:
/// DE 41 ‖ DE 11 ‖ DE 7 as they travel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CardAad([u8; 24]);

impl CardAad {
    /// The aad of `msg`; all three fields must be present.
    pub fn of(msg: &Message) -> Result<CardAad, FieldError> {
        let mut out = [0u8; 24];
        for (range, field) in [
            (0..8, de::TERMINAL_ID),
            (8..14, de::STAN),
            (14..24, de::TRANSMISSION_TIME),
        ] {
            let v = msg.get(field).ok_or(FieldError::Missing(field))?;
            // Fixed-length fields: the message model guarantees the length.
            out.get_mut(range)
                .filter(|slot| slot.len() == v.len())
                .ok_or(FieldError::Missing(field))?
                .copy_from_slice(v);
        }
        Ok(CardAad(out))
    }

    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }
}

/// A card number, 12 to 19 digits. Never shown in clear: `Debug` and
/// `Display` print only the last four digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber {
    digits: [u8; 19],
    len: u8,
}

impl CardNumber {
    pub fn new(digits: &[u8]) -> Option<CardNumber> {
        if !(12..=19).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut out = [0u8; 19];
        out[..digits.len()].copy_from_slice(digits);
        Some(CardNumber {
            digits: out,
            len: digits.len() as u8,
        })
    }

    /// The clear digits. Only for hashing and encryption; never log them.
    pub fn expose(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// The last four digits.
    pub fn last4(&self) -> [u8; 4] {
        let d = self.expose();
        [
            d[d.len() - 4],
            d[d.len() - 3],
            d[d.len() - 2],
            d[d.len() - 1],
        ]
    }

    /// The first `n` digits (the BIN prefix), `n` at most 8.
    pub fn prefix(&self, n: usize) -> &[u8] {
        &self.expose()[..n.min(8)]
    }

    /// Whether the number passes the Luhn check.
    pub fn luhn_ok(&self) -> bool {
        let sum: u32 = self
            .expose()
            .iter()
            .rev()
            .enumerate()
            .map(|(i, d)| {
                let v = u32::from(d - b'0');
                if i % 2 == 1 {
                    let x = v * 2;
                    if x > 9 {
                        x - 9
                    } else {
                        x
                    }
                } else {
                    v
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// The masked form: `************1234`.
    pub fn masked(&self) -> String {
        let d = self.expose();
        let mut s = "*".repeat(d.len() - 4);
        s.extend(self.last4().iter().map(|b| char::from(*b)));
        s
    }
}

impl std::str::FromStr for CardNumber {
    type Err = SecurityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CardNumber::new(s.as_bytes()).ok_or(SecurityError::CardDataInvalid)
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

impl fmt::Display for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A card expiry, YYMM.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Expiry {
    /// Two-digit year (20YY).
    pub year: u8,
    pub month: u8,
}

impl Expiry {
    pub fn from_yymm(raw: &[u8]) -> Option<Expiry> {
        if raw.len() != 4 || !raw.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let year = (raw[0] - b'0') * 10 + (raw[1] - b'0');
        let month = (raw[2] - b'0') * 10 + (raw[3] - b'0');
        (1..=12).contains(&month).then_some(Expiry { year, month })
    }

    pub fn to_yymm(self) -> [u8; 4] {
        [
            b'0' + self.year / 10,
            b'0' + self.year % 10,
            b'0' + self.month / 10,
            b'0' + self.month % 10,
        ]
    }
}

/// What a card block carries: the card number and, optionally, the expiry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CardData {
    pub pan: CardNumber,
    pub expiry: Option<Expiry>,
}

impl CardData {
    pub fn to_plaintext(&self) -> Vec<u8> {
        let mut out = self.pan.expose().to_vec();
        if let Some(e) = self.expiry {
            out.push(b'=');
            out.extend_from_slice(&e.to_yymm());
        }
        out
    }

    pub fn from_plaintext(raw: &[u8]) -> Result<CardData, SecurityError> {
        let (pan, expiry) = match raw.iter().position(|b| *b == b'=') {
            Some(i) => (
                &raw[..i],
                Some(Expiry::from_yymm(&raw[i + 1..]).ok_or(SecurityError::CardDataInvalid)?),
            ),
            None => (raw, None),
        };
        let pan = CardNumber::new(pan).ok_or(
            if !pan.is_empty() && pan.iter().all(u8::is_ascii_digit) {
                SecurityError::CardNumberLength
            } else {
                SecurityError::CardDataInvalid
            },
        )?;
        Ok(CardData { pan, expiry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;
    use crate::message::Mti;

    fn keys() -> TerminalKeys {
        TerminalKeys::derive(&Tmk::from_bytes([7u8; 32]))
    }

    fn request() -> Message {
        let mut m = Message::new(Mti::AUTH_REQUEST);
        m.set(3, &b"009100"[..]).unwrap();
        m.set(7, &b"1122183000"[..]).unwrap();
        m.set(11, &b"000001"[..]).unwrap();
        m.set(41, &b"TERM0001"[..]).unwrap();
        m
    }

    #[test]
    fn signed_message_verifies_and_any_bit_flip_fails() {
        let k = keys();
        let mut m = request();
        let raw = k.sign(&mut m);
        let decoded = decode(&raw).unwrap();
        assert!(decoded.has(64));
        k.verify(&raw, &decoded).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.to_vec();
            bad[i] ^= 0x01;
            let bad = Bytes::from(bad);
            if let Ok(d) = decode(&bad) {
                assert!(k.verify(&bad, &d).is_err(), "flip at {i} verified");
            }
        }
    }

    #[test]
    fn mac_goes_to_de_128_with_a_secondary_bitmap() {
        let k = keys();
        let mut m = request();
        m.set(70, &b"301"[..]).unwrap();
        let raw = k.sign(&mut m);
        let decoded = decode(&raw).unwrap();
        assert!(decoded.has(128) && !decoded.has(64));
        k.verify(&raw, &decoded).unwrap();
    }

    #[test]
    fn message_without_mac_is_refused() {
        let m = request();
        let raw = crate::encode::encode(&m);
        assert_eq!(keys().verify(&raw, &m), Err(SecurityError::MacMissing));
    }

    #[test]
    fn wrong_key_fails_mac() {
        let mut m = request();
        let raw = keys().sign(&mut m);
        let other = TerminalKeys::derive(&Tmk::from_bytes([8u8; 32]));
        assert_eq!(other.verify(&raw, &m), Err(SecurityError::MacMismatch));
    }

    #[test]
    fn card_block_round_trips_and_is_bound_to_its_message() {
        let k = keys();
        let m = request();
        let aad = CardAad::of(&m).unwrap();
        let card = CardData {
            pan: "6037991234567890".parse().unwrap(),
            expiry: Expiry::from_yymm(b"2812"),
        };
        let block = k.seal_card(&card, &aad);
        assert_eq!(k.open_card(block.as_bytes(), &aad).unwrap(), card);
        assert_eq!(
            k.open_card(block.to_lowercase().as_bytes(), &aad).unwrap(),
            card
        );
        let mut other = m.clone();
        other.set(11, &b"000002"[..]).unwrap();
        let other_aad = CardAad::of(&other).unwrap();
        assert_eq!(
            k.open_card(block.as_bytes(), &other_aad),
            Err(SecurityError::CardBlockRejected)
        );
        assert_eq!(
            k.open_card(b"zz", &aad),
            Err(SecurityError::CardBlockMalformed)
        );
    }

    #[test]
    fn card_plaintext_must_be_digits_and_optional_expiry() {
        assert!(CardData::from_plaintext(b"6037991234567890").is_ok());
        assert!(CardData::from_plaintext(b"6037991234567890=2812").is_ok());
        assert!(CardData::from_plaintext(b"6037991234567890=2813").is_err());
        assert!(CardData::from_plaintext(b"60379912345").is_err());
        assert!(CardData::from_plaintext(b"60379912345678901234").is_err());
        assert!(CardData::from_plaintext(b"603799123456789A").is_err());
    }

    #[test]
    fn card_number_is_masked_in_debug_and_display() {
        let pan: CardNumber = "6037991234567890".parse().unwrap();
        assert_eq!(pan.to_string(), "************7890");
        assert!(!format!("{pan:?}").contains("603799"));
        assert_eq!(&pan.last4(), b"7890");
    }

    #[test]
    fn luhn() {
        assert!(CardNumber::new(b"4111111111111111").unwrap().luhn_ok());
        assert!(!CardNumber::new(b"4111111111111112").unwrap().luhn_ok());
    }

    #[test]
    fn key_wrap_round_trips() {
        let k = keys();
        let aad = CardAad::of(&request()).unwrap();
        let new = Tmk::generate();
        let wrapped = k.wrap_key(&new, &aad);
        assert_eq!(k.unwrap_key(wrapped.as_bytes(), &aad).unwrap(), new);
    }

    #[test]
    fn tmk_debug_is_redacted() {
        let t = Tmk::from_bytes([0xAB; 32]);
        assert!(!format!("{t:?}").contains("AB"));
        assert_eq!(Tmk::from_hex(&t.to_hex()), Some(t));
    }
}
