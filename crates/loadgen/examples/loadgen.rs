//! `tailor loadgen` until the main binary mounts it:
//! `cargo run --release -p tailor-loadgen --example loadgen -- SCENARIO [OPTIONS]`.

use std::process::ExitCode;

use clap::Parser as _;

/// Tailor's load generator.
#[derive(clap::Parser)]
#[command(name = "loadgen")]
struct Cli {
    #[command(flatten)]
    args: tailor_loadgen::LoadgenArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match tailor_loadgen::run(cli.args, &mut out).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
