//! Opening a data directory: the logs, the master key, the admin token and
//! the engine. The daemon and the offline commands (`audit`, `archive`,
//! `rotate-master-key`) all start here, so they open a ledger the same way.

use clubswitch_engine::durable_file;
use clubswitch_engine::{CardHasher, EmbeddedConfig, Engine, Store};

use crate::config::{Config, LogFormat, ADMIN_TOKEN_ENV, MASTER_KEY_ENV, NO_FDATASYNC_ENV};
use crate::error::SwitchError;
use crate::layout::{admin_token_file, ledger_dir, master_key_file};
use crate::master::{write_key_file, MasterKey};
use crate::memory::ledger_cache_bytes;

/// The name the ledger keeps the sealed card-hash key under.
pub const CARD_KEY: &str = "card_hash_key";
/// Purpose string sealing the card-hash key under the master key.
pub const CARD_KEY_PURPOSE: &str = "clubswitch card hash key";

/// Logs to standard error at the configured level (`CLUBSWITCH_LOG` wins)
/// and format.
pub fn init_logs(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLUBSWITCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Opens the data directory and the engine: the master key unseals the
/// card-hash key (created on first start).
pub fn open_engine(cfg: &Config, master: &MasterKey) -> Result<Engine, SwitchError> {
    durable_file::create_dir_all(&cfg.data_dir).map_err(|source| SwitchError::Create {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let store = open_store(cfg)?;
    let card_key = match store.sealed(CARD_KEY)? {
        Some(s) => master.unseal32(CARD_KEY_PURPOSE, &s)?,
        None => {
            let k: [u8; 32] = rand::random();
            store
                .keep_sealed(CARD_KEY, master.seal(CARD_KEY_PURPOSE, &k))?
                .wait()?;
            k
        }
    };
    let engine_cfg = cfg.engine()?;
    Ok(Engine::new(store, CardHasher::new(&card_key), engine_cfg))
}

/// The ledger: PostgreSQL at `[storage] url` when there is one, otherwise
/// the embedded ledger in the data directory.
pub fn open_store(cfg: &Config) -> Result<Store, SwitchError> {
    match &cfg.storage.url {
        Some(url) => Store::connect(url).map_err(SwitchError::ConnectLedger),
        None => Store::open(&ledger_dir(&cfg.data_dir), &embedded_config(cfg)).map_err(|source| {
            SwitchError::OpenLedger {
                dir: cfg.data_dir.clone(),
                source,
            }
        }),
    }
}

/// The embedded ledger's settings from the configuration.
pub fn embedded_config(cfg: &Config) -> EmbeddedConfig {
    let cache_bytes = ledger_cache_bytes(cfg.storage.cache_mb);
    tracing::info!(
        cache_mb = cache_bytes >> 20,
        sized = if cfg.storage.cache_mb.is_some() {
            "configured"
        } else {
            "from memory"
        },
        "embedded ledger page cache"
    );
    EmbeddedConfig {
        cache_bytes,
        fdatasync: std::env::var_os(NO_FDATASYNC_ENV).is_none(),
        compress: cfg.storage.compress,
        flush_every_ms: cfg
            .storage
            .reclaim_every_ms
            .or(EmbeddedConfig::default().flush_every_ms),
    }
}

/// The master key from the environment or the configured file; with
/// `create`, a missing key file is created (demo mode).
pub fn master_key(cfg: &Config, create: bool) -> Result<MasterKey, SwitchError> {
    let file = master_key_file(cfg);
    if create && std::env::var_os(MASTER_KEY_ENV).is_none() && !file.exists() {
        durable_file::create_dir_all(&cfg.data_dir).map_err(|source| SwitchError::Create {
            path: cfg.data_dir.clone(),
            source,
        })?;
        write_key_file(&file, &MasterKey::generate_hex()).map_err(|source| {
            SwitchError::Create {
                path: file.clone(),
                source,
            }
        })?;
        tracing::warn!(file = %file.display(), "created a master key for the demo; back it up: losing it loses every terminal key");
    }
    Ok(MasterKey::load(Some(&file))?)
}

/// The admin token from the environment or file, created on first start.
pub fn admin_token(cfg: &Config) -> Result<String, SwitchError> {
    if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV) {
        return Ok(t.trim().to_owned());
    }
    let file = admin_token_file(cfg);
    if !file.exists() {
        let token = hex::encode(rand::random::<[u8; 24]>());
        write_key_file(&file, &token).map_err(|source| SwitchError::Create {
            path: file.clone(),
            source,
        })?;
        tracing::info!(file = %file.display(), "created the admin API token");
    }
    std::fs::read_to_string(&file)
        .map(|t| t.trim().to_owned())
        .map_err(|source| SwitchError::Read { path: file, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_ledger_reclaims_its_log_every_10_ms_unless_configured() {
        let mut cfg = Config::default();
        assert_eq!(embedded_config(&cfg).flush_every_ms, Some(10));
        cfg.storage.reclaim_every_ms = Some(250);
        assert_eq!(embedded_config(&cfg).flush_every_ms, Some(250));
    }
}
