//! `clubswitch config`: check a configuration file, or print the default
//! one.

use std::path::Path;

use crate::config::Config;
use crate::error::SwitchError;

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
    Ok(())
}

/// `config default`: the built-in configuration as TOML.
pub fn print_default() -> Result<(), SwitchError> {
    print!("{}", toml::to_string_pretty(&Config::default())?);
    Ok(())
}
