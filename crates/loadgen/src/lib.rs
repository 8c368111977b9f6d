//! Tailor's load generator: drives Tailor's services over gRPC or gRPC-web from a scenario
//! file, the way DeathStarBench's wrk2 drives microservices — constant-rate open-loop load
//! with latency measured from each request's intended start (no coordinated omission), the
//! full percentile spectrum from HdrHistogram — plus closed-loop virtual users and rate
//! sweeps that find the saturation point (bisecting between the last level sustained and the
//! first not, `--refine`). An echo server started in-process and driven the
//! same way, with the same message sizes, gives the RPC ceiling of the machine, and every
//! report states Tailor's figures as a ratio to it.
//!
//! The binary mounts [`LoadgenArgs`] and [`run`] as `tailor loadgen SCENARIO [OPTIONS]`.
//! Scenarios for each service are in `crates/loadgen/scenarios`, each saying how to run it.
//!
//! # Operations
//! A scenario step names one (`--help` lists them from [`steps::registry`]); targets
//! default to where `tailor serve all` listens.
//! - `echo` (in-process echo server): the RPC ceiling, `request_bytes` / `reply_bytes`.
//! - `profile.record_events`, `profile.get_profile`, `profile.list_recent_items` (profile,
//!   `:50051`, service token with `profile:write` / `profile:read`): behaviour ingestion in
//!   batches (also how a benchmark seeds behaviour) and profile reads of Zipf users.
//! - `recommend.recommend`, `recommend.list_similar_items` (recommend, `:50052`, service
//!   token with `recommend:read`): recommendations for a placement (home, product page,
//!   cart, post-purchase) of Zipf users with context items, similar items of Zipf items;
//!   `recommend.upsert_items` (`recommend:admin`): the population's catalogue, in turn, to
//!   seed the catalog.
//! - `mobile.get_home_feed`, `mobile.get_product_page`, `mobile.track_events` (gateway,
//!   `:8080`, gRPC or gRPC-web): the app's screens and event flushes, as signed-in users
//!   with a JWT per user ([`identity`]) or anonymous devices (`x-device-id`).
//!
//! Item ids are the population's (`lg-i0000042`) unless a step's `item_format` spells them
//! as the system's catalog does (`item-{}`, `{}` the item's rank). Answers that are empty
//! (nothing recommended) or partial (a degraded feed module) are counted per step: a
//! benchmark of an unseeded system shows them instead of fast, meaningless latencies.
//!
//! # Adding a target
//! A module in [`steps`] with a parameter struct and a [`steps::Step`] per RPC, one
//! [`steps::Operation`] per RPC in [`steps::registry`] (its target and the credential it
//! needs), and the target's default address in the runner.
//!
//! # Layout
//! - [`scenario`]: scenario files (steps, weights, think times, population, default load).
//! - [`population`]: users and items with Zipf skew.
//! - [`steps`]: the registry of operations (`profile.record_events`, `echo`, …).
//! - [`target`]: gRPC and gRPC-web connections with service credentials.
//! - [`identity`]: app users' JWTs and device ids for the gateway.
//! - [`schedule`]: the open-loop schedule and coordinated-omission-safe latency.
//! - [`engine`]: runs one load level (open or closed loop) and records it.
//! - [`runner`]: a whole invocation: levels, sweeps, the echo baseline.
//! - [`echo`]: the in-process echo server.
//! - [`report`]: throughput, percentiles, errors by code, ratios; text and JSON.
//! - [`plot`]: the latency-vs-load SVG.
//! - [`compare`]: two builds' reports of one scenario side by side (`tailor loadgen-compare`).

pub mod compare;
pub mod echo;
pub mod engine;
pub mod identity;
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
#[command(after_help = steps::help())]
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

    /// Sweeps: after the first level not sustained, this many more levels bisecting the
    /// interval between it and the last level sustained, so the saturation point (and the
    /// ratio to the echo ceiling) is known to a few per cent, not to the sweep's step.
    #[arg(long, default_value_t = 3)]
    pub refine: usize,

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

    /// Service bearer token for the services (e.g. from `tailor token`); without it, tokens
    /// are minted with the development secret. The gateway gets app users' tokens instead.
    #[arg(long, env = "TAILOR_LOADGEN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Service name in minted tokens.
    #[arg(long, default_value = "loadgen")]
    pub service: String,

    /// Scopes of minted service tokens (repeatable); default: those the scenario's
    /// operations on each target need (e.g. `profile:read`, `recommend:admin`).
    #[arg(long = "scope")]
    pub scopes: Vec<String>,

    /// HS256 secret the gateway checks app users' tokens with (its `jwt.hs256_secret`);
    /// default: the gateway's development secret.
    #[arg(long, env = "TAILOR_LOADGEN_USER_JWT_SECRET", hide_env_values = true)]
    pub user_jwt_secret: Option<String>,

    /// `iss` of app users' tokens (the gateway's `jwt.issuer`).
    #[arg(long, default_value = identity::DEV_USER_JWT_ISSUER)]
    pub user_jwt_issuer: String,

    /// `aud` of app users' tokens (the gateway's `jwt.audience`).
    #[arg(long, default_value = identity::DEV_USER_JWT_AUDIENCE)]
    pub user_jwt_audience: String,

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
        assert!(
            cli.args.scopes.is_empty(),
            "default: what the operations need"
        );
        assert_eq!(cli.args.user_jwt_issuer, identity::DEV_USER_JWT_ISSUER);
        assert_eq!(cli.args.user_jwt_audience, identity::DEV_USER_JWT_AUDIENCE);
        assert!(Cli::try_parse_from(["loadgen", "s.toml", "--target", "nourl"]).is_err());
    }

    #[test]
    fn help_lists_every_operation() {
        use clap::CommandFactory as _;
        let help = Cli::command().render_help().to_string();
        for op in steps::registry() {
            assert!(
                help.contains(op.name),
                "{} missing from --help:\n{help}",
                op.name
            );
        }
    }
}
