//! `clubswitch`: the switch daemon and its command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clubswitch::cli;
use clubswitch::config::{Config, LogFormat};
use clubswitch::error::SwitchError;

#[derive(Debug, Parser)]
#[command(
    name = "clubswitch",
    version,
    about = "Open-source loyalty switch for ISO 8583 card terminals"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Configuration file (TOML); without it, the built-in defaults.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The ledger in PostgreSQL (overrides `[storage] url`): a libpq-style
    /// URL, several hosts allowed.
    #[arg(long, env = "CLUBSWITCH_STORE_URL", hide_env_values = true)]
    store_url: Option<String>,
    /// Terminal listener address (overrides the first listener).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Admin API address.
    #[arg(long)]
    admin: Option<std::net::SocketAddr>,
    /// Metrics address.
    #[arg(long)]
    metrics: Option<std::net::SocketAddr>,
    /// Log format: human or json.
    #[arg(long)]
    log_format: Option<String>,
    /// Seed the demo data set and write its keys and cards to demo.json
    /// (creates a master key in the data directory if none is configured).
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the switch.
    Run(RunArgs),
    /// Print a new master key (64 hex digits), or write it to a new file.
    Keygen {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Decode and encode messages of the terminal profile.
    #[command(subcommand)]
    Wire(cli::wire::WireCommand),
    /// Operate the running switch through its admin API.
    Admin(cli::admin::AdminArgs),
    /// Play certification fixtures against a running switch.
    Replay(cli::replay::ReplayArgs),
    /// Drive a running switch with many terminals and report throughput and latency.
    Loadgen(cli::loadgen::LoadgenArgs),
    /// Check the ledger's invariants, and the archive files against it, on
    /// a stopped data directory.
    Audit(RunArgs),
    /// Move finished history older than `archive.after_secs` into archive
    /// files now, on a stopped data directory (the running switch does it
    /// every `archive.interval_secs`).
    Archive(RunArgs),
    /// Synthetic purchases, refunds and reversals over the past DAYS at
    /// every demo terminal, each day settled, on a stopped demo data
    /// directory (for demos, dashboards and reports over history).
    DemoHistory {
        #[command(flatten)]
        run: RunArgs,
        /// Days back from today.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Purchases a day at each terminal.
        #[arg(long, default_value_t = 8)]
        per_day: u32,
    },
    /// Copy a stopped switch's embedded ledger (`DATA_DIR/ledger`) into an
    /// empty PostgreSQL ledger. Archive files stay in the data directory.
    Migrate {
        /// The stopped switch's data directory.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL ledger's URL.
        #[arg(long, env = "CLUBSWITCH_STORE_URL", hide_env_values = true)]
        to: String,
    },
    /// Put a backup (`clubswitch admin backup`) into the configured data
    /// directory, whose ledger and archive must not exist (the switch must
    /// be stopped).
    Restore {
        #[command(flatten)]
        run: RunArgs,
        /// The backup directory.
        #[arg(long)]
        from: PathBuf,
    },
    /// Re-seal every terminal key and the card key under a new master key
    /// (the switch must be stopped).
    RotateMasterKey {
        #[command(flatten)]
        run: RunArgs,
        /// File with the new master key.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// Print the admin API's OpenAPI 3.1 description (what
    /// `/v1/openapi.json` serves and protocol-spec/admin-api.openapi.json
    /// keeps).
    Openapi,
}

#[derive(Debug, Subcommand)]
enum ConfigCmd {
    /// Parse and check a configuration file.
    Check { path: PathBuf },
    /// Print the default configuration as TOML.
    Default,
}

fn config(a: &RunArgs) -> Result<Config, SwitchError> {
    let mut cfg = match &a.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = &a.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(url) = &a.store_url {
        cfg.storage.url = Some(url.clone());
    }
    if let Some(l) = a.listen {
        if let Some(first) = cfg.listeners.first_mut() {
            first.addr = l;
        }
    }
    if let Some(x) = a.admin {
        cfg.admin.addr = x;
    }
    if let Some(x) = a.metrics {
        cfg.metrics.addr = x;
    }
    if let Some(f) = &a.log_format {
        cfg.log.format = match f.as_str() {
            "json" => LogFormat::Json,
            "human" => LogFormat::Human,
            other => return Err(SwitchError::LogFormat(other.to_owned())),
        };
    }
    cfg.check()?;
    Ok(cfg)
}

/// The daemon's memory allocator: mimalloc 3. sled allocates and frees
/// small buffers for every operation, much of it across threads; under
/// glibc's malloc that was nearly a fifth of the switch's CPU under load,
/// and its per-thread arenas kept freed pages resident (runbook: Memory).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every file the switch makes (the ledger, archive files, backups,
    // settlement and payout files, keys) holds members' data or secrets:
    // its user's alone, as the systemd unit's `UMask=0077` makes them,
    // also when an operator runs a command from a shell.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => config(&a).and_then(|cfg| clubswitch::daemon::run(cfg, a.demo)),
        Command::Keygen { out } => {
            let key = clubswitch::master::MasterKey::generate_hex();
            match out {
                Some(p) => clubswitch::master::write_key_file(&p, &key)
                    .map(|_| println!("wrote a new master key to {}", p.display()))
                    .map_err(|source| SwitchError::Io { path: p, source }),
                None => {
                    println!("{key}");
                    Ok(())
                }
            }
        }
        Command::Config(ConfigCmd::Check { path }) => cli::config::check(&path),
        Command::Config(ConfigCmd::Default) => cli::config::print_default(),
        Command::Wire(cmd) => cli::wire::run(cmd),
        Command::Admin(a) => cli::admin::run(a),
        Command::Replay(a) => cli::replay::run(a),
        Command::Loadgen(a) => cli::loadgen::run(a),
        Command::Audit(a) => config(&a).and_then(|cfg| cli::offline::audit(&cfg)),
        Command::Archive(a) => config(&a).and_then(|cfg| cli::offline::archive(&cfg)),
        Command::DemoHistory { run, days, per_day } => {
            config(&run).and_then(|cfg| cli::history::run(&cfg, days, per_day))
        }
        Command::Migrate { from, to } => cli::offline::migrate(&from, &to),
        Command::Openapi => {
            let doc = clubswitch::http::openapi::document(&clubswitch::http::routes::table());
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            Ok(())
        }
        Command::Restore { run, from } => {
            config(&run).and_then(|cfg| clubswitch::backup::restore(&cfg, &from))
        }
        Command::RotateMasterKey { run, new_key_file } => {
            config(&run).and_then(|cfg| cli::offline::rotate_master(&cfg, &new_key_file))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clubswitch: {e}");
            ExitCode::FAILURE
        }
    }
}
