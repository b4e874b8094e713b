//! The switch master key, and sealing secrets under it.
//!
//! Terminal keys and the card-hash key are stored only sealed: AES-256-GCM
//! under the master key, `"CSK1" ‖ nonce(12) ‖ ciphertext ‖ tag`, with the
//! purpose of the secret as associated data so a sealed terminal key cannot
//! be passed off as the card key. Losing the master key makes every sealed
//! secret unreadable: terminals must be re-keyed and cards re-issued.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use clubswitch_engine::durable_file::{self, Access};

const MAGIC: &[u8; 4] = b"CSK1";

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("no master key: set {env} or master_key_file (create one with `clubswitch keygen`)", env = crate::config::MASTER_KEY_ENV)]
    Missing,
    #[error("reading the master key file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the master key must be 64 hex digits")]
    Malformed,
    #[error("a sealed {0} does not open under this master key (wrong key, or damaged data)")]
    Unseal(&'static str),
    #[error("the new master key is the one in use: nothing to rotate to")]
    SameKey,
}

#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_hex(s: &str) -> Result<MasterKey, MasterKeyError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut k).map_err(|_| MasterKeyError::Malformed)?;
        Ok(MasterKey(Aes256Gcm::new(&k.into())))
    }

    /// From the environment variable, else the file.
    pub fn load(file: Option<&Path>) -> Result<MasterKey, MasterKeyError> {
        if let Ok(v) = std::env::var(crate::config::MASTER_KEY_ENV) {
            return Self::from_hex(&v);
        }
        Self::from_file(file.ok_or(MasterKeyError::Missing)?)
    }

    /// From the file alone, whatever the environment holds (a new key
    /// beside the one the switch runs with).
    pub fn from_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MasterKeyError::Read(path.display().to_string(), e))?;
        Self::from_hex(&text)
    }

    /// Whether `other` is this key: what one seals, the other opens.
    pub fn same_as(&self, other: &MasterKey) -> bool {
        const PROBE: &str = "clubswitch same-key probe";
        other.unseal(PROBE, &self.seal(PROBE, b"probe")).is_ok()
    }

    /// A fresh key as 64 hex digits.
    pub fn generate_hex() -> String {
        hex::encode_upper(Aes256Gcm::generate_key(&mut OsRng))
    }

    pub fn seal(&self, purpose: &'static str, secret: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: purpose.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(4 + 12 + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn unseal(&self, purpose: &'static str, sealed: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        if sealed.len() < 4 + 12 + 16 || &sealed[..4] != MAGIC {
            return Err(MasterKeyError::Unseal(purpose));
        }
        let (nonce, ct) = sealed[4..].split_at(12);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| MasterKeyError::Unseal(purpose))
    }

    pub fn unseal32(
        &self,
        purpose: &'static str,
        sealed: &[u8],
    ) -> Result<[u8; 32], MasterKeyError> {
        self.unseal(purpose, sealed)?
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::Unseal(purpose))
    }
}

/// Writes a new key file readable by its owner only, durably: a key the
/// switch sealed anything under must survive a power cut. Refuses to
/// replace an existing file.
pub fn write_key_file(path: &Path, hex: &str) -> std::io::Result<()> {
    durable_file::create_new(path, format!("{hex}\n").as_bytes(), Access::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_for_its_purpose_and_key() {
        let k = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        let sealed = k.seal("terminal key", b"secret");
        assert_eq!(k.unseal("terminal key", &sealed).unwrap(), b"secret");
        assert!(k.unseal("card key", &sealed).is_err());
        let other = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        assert!(other.unseal("terminal key", &sealed).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
}
