//! The `tailor` binary: parses the command line, loads settings, runs the command.

use std::process::ExitCode;

use clap::Parser as _;
use tailor::cli::Cli;
use tailor_kit::config::{EXIT_CONFIG, load};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Validated before anything binds, connects or even starts logging.
    let settings = match load(cli.config.as_deref(), tailor::settings::TOP_LEVEL_KEYS) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("tailor: {err}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    match tailor::run(cli.command, settings).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tailor: {err:#}");
            ExitCode::FAILURE
        }
    }
}
