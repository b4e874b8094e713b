//! Typed reads and writes of the profile's fields on [`Message`]: each parses
//! or formats through its value type, so no caller handles field strings.

use bytes::Bytes;

use super::additional_amounts::AmountBlocks;
use super::amount::{Amount, Currency};
use super::de;
use super::ids::{AuthId, MerchantId, Rrn, TerminalId};
use super::network_code::NetworkCode;
use super::original_data::OriginalData;
use super::processing_code::ProcessingCode;
use super::response_code::ResponseCode;
use super::stan::Stan;
use super::transmission_time::TransmissionTime;
use crate::error::FieldError;
use crate::message::Message;

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
    use crate::message::Mti;

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
}
