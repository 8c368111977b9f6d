//! Tailor's load generator: drives Tailor's services over gRPC or gRPC-web from a scenario
//! file, the way DeathStarBench's wrk2 drives microservices — constant-rate open-loop load
//! with latency measured from each request's intended start (no coordinated omission), the
//! full percentile spectrum from HdrHistogram — plus closed-loop virtual users and rate
//! sweeps that find the saturation point. An echo server started in-process and driven the
//! same way, with the same message sizes, gives the RPC ceiling of the machine, and every
//! report states Tailor's figures as a ratio to it.
//!
//! The binary mounts [`LoadgenArgs`] and [`run`] as `tailor loadgen`; until then
//! `cargo run --release -p tailor-loadgen --example loadgen -- SCENARIO [OPTIONS]`.
//!
//! # Layout
//! - [`scenario`]: scenario files (steps, weights, think times, population, default load).
//! - [`population`]: users and items with Zipf skew.
//! - [`steps`]: the registry of operations (`profile.record_events`, `echo`, …).
//! - [`target`]: gRPC and gRPC-web connections with service credentials.
//! - [`schedule`]: the open-loop schedule and coordinated-omission-safe latency.
//! - [`engine`]: runs one load level (open or closed loop) and records it.
//! - [`runner`]: a whole invocation: levels, sweeps, the echo baseline.
//! - [`echo`]: the in-process echo server.
//! - [`report`]: throughput, percentiles, errors by code, ratios; text and JSON.
//! - [`plot`]: the latency-vs-load SVG.

pub mod echo;
pub mod engine;
pub mod plot;
pub mod population;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod schedule;
pub mod steps;
pub mod target;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub use report::Report;

use crate::scenario::Mode;
use crate::target::Transport;

/// `tailor loadgen`: load from a scenario file against running targets.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadgenArgs {
    /// Scenario file, e.g. crates/loadgen/scenarios/profile-read.toml.
    pub scenario: PathBuf,

    /// Where a target listens, `NAME=URL` (repeatable), e.g.
    /// `--target profile=http://127.0.0.1:50051`. Overrides the scenario's `targets`.
    /// `echo` without a URL is started in-process.
    #[arg(long = "target", value_name = "NAME=URL", value_parser = parse_target)]
    pub targets: Vec<(String, String)>,

    /// Transport for every target, overriding the scenario.
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,

    /// Open loop (constant rate) or closed loop (virtual users); default: the scenario's.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Open loop: requests per second.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Open loop: sweep these rates (comma-separated), stopping after the first one not
    /// sustained, to find the saturation point.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub rates: Vec<f64>,

    /// Closed loop: virtual users.
    #[arg(long)]
    pub users: Option<usize>,

    /// Measured time per load level, e.g. `30s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// Unmeasured warm-up per load level, e.g. `5s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,

    /// HTTP/2 connections per target.
    #[arg(long)]
    pub connections: Option<usize>,

    /// Also run the in-process echo server the same way (same mode, levels and message
    /// sizes) and report every figure as a ratio to it.
    #[arg(long, value_enum, default_value_t = Baseline::None)]
    pub baseline: Baseline,

    /// An open-loop level counts as sustained only with p99 at or below this.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub slo_p99: Duration,

    /// Client-side deadline of each call.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub timeout: Duration,

    /// Open loop: most calls in flight (beyond it, waiting is charged to latency).
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,

    /// Bearer token for the targets (e.g. from `tailor token`); without it, tokens are
    /// minted with the development secret.
    #[arg(long, env = "TAILOR_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Service name in minted tokens.
    #[arg(long, default_value = "loadgen")]
    pub service: String,

    /// Scopes of minted tokens (repeatable).
    #[arg(long = "scope", default_values_t = ["profile:read".to_owned(), "profile:write".to_owned()])]
    pub scopes: Vec<String>,

    /// Runtime threads of the in-process echo server (default: one per CPU, like a server).
    #[arg(long)]
    pub echo_workers: Option<usize>,

    /// Seed of the generators (runs with the same seed send the same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Draw latency against load as SVG to this file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,

    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// The baseline to measure in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// None.
    None,
    /// The in-process echo server (`tailor.loadtest.v1.EchoService`).
    Echo,
}

fn parse_target(s: &str) -> Result<(String, String), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected NAME=URL, e.g. profile=http://127.0.0.1:50051"))?;
    if name.is_empty() || url.is_empty() {
        return Err(format!("`{s}`: expected NAME=URL"));
    }
    Ok((name.to_owned(), url.to_owned()))
}

/// Runs the scenario as `args` say, writes the text report to `out` (and JSON and plot
/// files when asked), and returns the report.
pub async fn run(args: LoadgenArgs, out: &mut impl Write) -> anyhow::Result<Report> {
    let report = runner::run(&args).await?;
    report.write_text(out)?;
    out.flush()?;
    if let Some(path) = &args.json {
        let file = std::fs::File::create(path)
            .map_err(|err| anyhow::anyhow!("creating {}: {err}", path.display()))?;
        serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report)?;
    }
    if let Some(path) = &args.plot {
        plot::write(&report, path)?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let cli = Cli::parse_from([
            "loadgen",
            "s.toml",
            "--target",
            "profile=http://127.0.0.1:1",
            "--rates",
            "100,200",
            "--baseline",
            "echo",
            "--transport",
            "grpc-web",
            "--duration",
            "2s",
        ]);
        assert_eq!(cli.args.rates, vec![100.0, 200.0]);
        assert_eq!(cli.args.baseline, Baseline::Echo);
        assert_eq!(cli.args.transport, Some(Transport::GrpcWeb));
        assert_eq!(cli.args.duration, Some(Duration::from_secs(2)));
        assert_eq!(
            cli.args.targets,
            vec![("profile".to_owned(), "http://127.0.0.1:1".to_owned())]
        );
        assert_eq!(cli.args.scopes, vec!["profile:read", "profile:write"]);
        assert!(Cli::try_parse_from(["loadgen", "s.toml", "--target", "nourl"]).is_err());
    }
}
