//! `clubswitch`: the switch daemon and its command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and encode messages of the terminal profile.
    #[command(subcommand)]
    Wire(cli::wire::WireCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Wire(cmd) => cli::wire::run(cmd).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("clubswitch: {e}");
            ExitCode::FAILURE
        }
    }
}
