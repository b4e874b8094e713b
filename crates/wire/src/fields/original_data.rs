//! Original data elements (DE 90): which earlier message a confirm or
//! reversal refers to.

use serde::{Deserialize, Serialize};

use super::de;
use super::stan::Stan;
use super::transmission_time::TransmissionTime;
use crate::error::{invalid, FieldError};
use crate::message::Mti;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
