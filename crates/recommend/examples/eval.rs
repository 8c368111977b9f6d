//! `tailor eval` without building the whole binary (same arguments, same code):
//! `cargo run --release -p tailor-recommend --example eval -- --input FILE ...`.

use clap::Parser;
use tailor_recommend::eval::{EvalArgs, run};

#[derive(Parser)]
#[command(name = "eval", about = "Offline evaluation of Tailor's recommenders")]
struct Cli {
    #[command(flatten)]
    args: EvalArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    run(&cli.args, &mut std::io::stdout().lock())?;
    Ok(())
}
