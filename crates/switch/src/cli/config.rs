//! `clubswitch config`: check a configuration file, or print the default
//! one.

use std::path::Path;

use crate::config::Config;
use crate::error::SwitchError;
use crate::memory::ledger_cache_bytes;

/// `config check`: parse, check, and say what would run.
pub fn check(path: &Path) -> Result<(), SwitchError> {
    let cfg = Config::load(path)?;
    println!("{}: ok", path.display());
    for l in &cfg.listeners {
        println!("  terminals on {} ({:?} length header)", l.addr, l.header);
    }
    println!(
        "  admin API on {}, metrics on {}",
        cfg.admin.addr, cfg.metrics.addr
    );
    println!("  data in {}", cfg.data_dir.display());
    match &cfg.storage.url {
        Some(_) => println!("  ledger in PostgreSQL"),
        None => println!(
            "  embedded ledger, page cache {} MB{}",
            ledger_cache_bytes(cfg.storage.cache_mb) >> 20,
            if cfg.storage.cache_mb.is_none() {
                " (from this shell's memory; the daemon sizes it from its own, \
                 or set [storage] cache_mb)"
            } else {
                ""
            }
        ),
    }
    Ok(())
}

/// `config default`: the built-in configuration as TOML.
pub fn print_default() -> Result<(), SwitchError> {
    print!("{}", toml::to_string_pretty(&Config::default())?);
    Ok(())
}
