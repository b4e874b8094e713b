//! How records are stored: one format-version byte, then bincode.
//!
//! A later release that changes a record bumps [`FORMAT_VERSION`] and migrates
//! (the `meta` tree records the version the data directory was written with).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EngineError, Result};

/// The record format this release writes and reads.
pub const FORMAT_VERSION: u8 = 1;

pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    bincode::serialize_into(&mut out, value).map_err(|e| EngineError::Corrupt {
        what: std::any::type_name::<T>(),
        reason: e.to_string(),
    })?;
    Ok(out)
}

pub fn from_slice<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    match raw.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            bincode::deserialize(body).map_err(|e| EngineError::Corrupt {
                what: std::any::type_name::<T>(),
                reason: e.to_string(),
            })
        }
        Some((&found, _)) => Err(EngineError::FormatVersion {
            found,
            supported: FORMAT_VERSION,
        }),
        None => Err(EngineError::Corrupt {
            what: std::any::type_name::<T>(),
            reason: "empty record".into(),
        }),
    }
}
