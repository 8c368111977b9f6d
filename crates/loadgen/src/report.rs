//! The report: per load level and per step, throughput, the latency spectrum and errors by
//! gRPC status code; the echo baseline run the same way; Tailor's figures as ratios to the
//! baseline; as text for people and JSON for tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::{Load, PhaseStats};

/// A run is sustained when it achieved at least this share of the offered rate...
const SUSTAINED_SHARE: f64 = 0.95;
/// ...with at most this share of errors, and as many partial answers (a screen whose modules
/// the gateway had to leave out is the system shedding load, not serving it).
const MAX_ERROR_SHARE: f64 = 0.01;

/// Everything one `loadgen` invocation measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// `open`, `closed` or `sweep`.
    pub mode: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// Where it ran.
    pub machine: Machine,
    /// p99 above which an open-loop level does not count as sustained.
    pub slo_p99_ms: f64,
    /// The system under test.
    pub target: Side,
    /// The echo baseline, driven the same way with the same message sizes.
    pub baseline: Option<Side>,
    /// Target / baseline at each load level both ran.
    pub comparisons: Vec<Comparison>,
    /// Target / baseline capacity (sweeps and closed loop).
    pub ceiling: Option<Ceiling>,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// `linux`, …
    pub os: String,
    /// `x86_64`, …
    pub arch: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

/// One side of the comparison: the target, or the baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Side {
    /// `profile`, `echo baseline`, …
    pub name: String,
    /// `grpc` or `grpc-web`.
    pub transport: String,
    /// Where it listened.
    pub url: String,
    /// One entry per load level, in the order run.
    pub runs: Vec<RunReport>,
}

impl Side {
    /// Open loop: the highest offered rate it sustained.
    pub fn max_sustained_rate(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter(|r| r.sustained)
            .filter_map(|r| r.offered_rate)
            .fold(None, |best, rate| {
                Some(best.map_or(rate, |b: f64| b.max(rate)))
            })
    }

    /// Whether some open-loop level was not sustained (the sweep found the knee).
    pub fn saturated(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.offered_rate.is_some() && !r.sustained)
    }

    /// The highest throughput of any level.
    pub fn max_throughput(&self) -> f64 {
        self.runs.iter().map(|r| r.throughput).fold(0.0, f64::max)
    }
}

/// One load level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// e.g. `100/s` or `64 users`.
    pub label: String,
    /// Open loop: requests per second offered.
    pub offered_rate: Option<f64>,
    /// Closed loop: virtual users.
    pub users: Option<usize>,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measurement window, seconds.
    pub duration_s: f64,
    /// Calls started in the window.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Answers per second within the window.
    pub throughput: f64,
    /// Items (events for ingestion) per second within the window.
    pub items_per_s: f64,
    /// Latency of successful calls, milliseconds.
    pub latency_ms: Percentiles,
    /// Open loop: how late the generator sent calls after their intended start.
    pub dispatch_lag_ms: Option<Percentiles>,
    /// Open loop: the offered rate was achieved (≥ 95 %), errors and partial answers ≤ 1 %
    /// each, p99 within the SLO; closed loop: errors and partial answers ≤ 1 % each.
    pub sustained: bool,
    /// Per step.
    pub steps: Vec<StepReport>,
}

/// One step at one load level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    /// Step name.
    pub name: String,
    /// Operation.
    pub op: String,
    /// Calls started in the window.
    pub requests: u64,
    /// Failed calls by gRPC status code.
    pub errors: BTreeMap<String, u64>,
    /// The first message of each failing code.
    #[serde(default)]
    pub error_messages: BTreeMap<String, String>,
    /// Answers per second.
    pub throughput: f64,
    /// Items per second.
    pub items_per_s: f64,
    /// Latency of successful calls, milliseconds.
    pub latency_ms: Percentiles,
    /// Items the server refused.
    pub rejected_items: u64,
    /// Successful calls whose answer was empty (nothing recommended: an unseeded system).
    #[serde(default)]
    pub empty_answers: u64,
    /// Successful calls whose answer was partial (a feed module degraded).
    #[serde(default)]
    pub partial_answers: u64,
    /// Mean encoded request size.
    pub mean_request_bytes: f64,
    /// Mean encoded response size.
    pub mean_response_bytes: f64,
    /// Mean items per successful call.
    pub mean_items: f64,
}

/// The latency spectrum, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Target / baseline at one load level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    /// The level.
    pub label: String,
    /// Throughput ratio.
    pub throughput: f64,
    /// Median latency ratio.
    pub p50: f64,
    /// p99 latency ratio.
    pub p99: f64,
}

/// Target / baseline capacity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceiling {
    /// How capacity was measured.
    pub basis: String,
    /// The target's capacity, requests per second.
    pub target: f64,
    /// False when the target sustained every level tried (its capacity is at least this).
    pub target_saturated: bool,
    /// The baseline's capacity, requests per second: the RPC ceiling.
    pub baseline: f64,
    /// False when the baseline sustained every level tried.
    pub baseline_saturated: bool,
    /// target / baseline.
    pub ratio: f64,
}

/// Turns a phase's recordings into its report; `slo_p99` bounds sustained open-loop levels.
pub fn summarise(stats: &PhaseStats, names: &[(String, String)], slo_p99: Duration) -> RunReport {
    let window = stats.window.as_secs_f64().max(1e-9);
    let steps: Vec<StepReport> = stats
        .steps
        .iter()
        .zip(names)
        .map(|(s, (name, op))| {
            let ok = s.ok_total.max(1) as f64;
            StepReport {
                name: name.clone(),
                op: op.clone(),
                requests: s.latency.len() + s.error_count(),
                errors: s.errors.clone(),
                error_messages: s.error_messages.clone(),
                throughput: s.completed_in_window as f64 / window,
                items_per_s: s.items_in_window as f64 / window,
                latency_ms: Percentiles::of(&s.latency),
                rejected_items: s.rejected,
                empty_answers: s.empty,
                partial_answers: s.partial,
                mean_request_bytes: s.request_bytes as f64 / ok,
                mean_response_bytes: s.response_bytes as f64 / ok,
                mean_items: s.items as f64 / ok,
            }
        })
        .collect();
    let requests: u64 = steps.iter().map(|s| s.requests).sum();
    let errors: u64 = steps.iter().map(|s| s.errors.values().sum::<u64>()).sum();
    let throughput = steps.iter().map(|s| s.throughput).sum();
    let latency = Percentiles::of(&stats.all);
    let partial: u64 = steps.iter().map(|s| s.partial_answers).sum();
    let within = |n: u64| n as f64 <= MAX_ERROR_SHARE * requests.max(1) as f64;
    let served = requests > 0 && within(errors) && within(partial);
    let (offered_rate, users, sustained) = match stats.load {
        Load::Open { rate } => (
            Some(rate),
            None,
            served
                && throughput >= SUSTAINED_SHARE * rate
                && latency.p99 <= slo_p99.as_secs_f64() * 1000.0,
        ),
        Load::Closed { users } => (None, Some(users), served),
    };
    RunReport {
        label: level_label(stats.load),
        offered_rate,
        users,
        warmup_s: stats.warmup.as_secs_f64(),
        duration_s: stats.window.as_secs_f64(),
        requests,
        errors,
        throughput,
        items_per_s: steps.iter().map(|s| s.items_per_s).sum(),
        latency_ms: latency,
        dispatch_lag_ms: stats.lag.as_ref().map(Percentiles::of),
        sustained,
        steps,
    }
}

#[cfg(test)]
impl RunReport {
    /// An open-loop level at `rate` that served it all with this p99, for tests.
    pub(crate) fn example(rate: f64, p99: f64, sustained: bool) -> Self {
        Self {
            label: level_label(Load::Open { rate }),
            offered_rate: Some(rate),
            users: None,
            warmup_s: 1.0,
            duration_s: 1.0,
            requests: rate as u64,
            errors: 0,
            throughput: rate,
            items_per_s: rate,
            latency_ms: Percentiles {
                count: 10,
                p50: p99 / 2.0,
                p99,
                ..Percentiles::default()
            },
            dispatch_lag_ms: None,
            sustained,
            steps: Vec::new(),
        }
    }
}

/// `100/s` or `64 users`.
pub fn level_label(load: Load) -> String {
    match load {
        Load::Open { rate } => format!("{}/s", trim_number(rate)),
        Load::Closed { users } => format!("{users} users"),
    }
}

fn trim_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Ratios of the target's runs to the baseline's at the same load levels.
pub fn compare(target: &Side, baseline: &Side) -> Vec<Comparison> {
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    target
        .runs
        .iter()
        .filter_map(|t| {
            let b = baseline.runs.iter().find(|b| b.label == t.label)?;
            Some(Comparison {
                label: t.label.clone(),
                throughput: ratio(t.throughput, b.throughput),
                p50: ratio(t.latency_ms.p50, b.latency_ms.p50),
                p99: ratio(t.latency_ms.p99, b.latency_ms.p99),
            })
        })
        .collect()
}

/// Capacity of both sides, when the mode measures capacity.
pub fn ceiling(mode: &str, target: &Side, baseline: &Side) -> Option<Ceiling> {
    let (basis, t, t_sat, b, b_sat) = match mode {
        "sweep" => (
            "highest offered rate sustained in the sweep (≥ 95 % achieved, ≤ 1 % errors, ≤ 1 % partial answers, p99 within the SLO)",
            target.max_sustained_rate().unwrap_or(0.0),
            target.saturated(),
            baseline.max_sustained_rate().unwrap_or(0.0),
            baseline.saturated(),
        ),
        "closed" => (
            "closed-loop throughput with the same virtual users",
            target.max_throughput(),
            true,
            baseline.max_throughput(),
            true,
        ),
        _ => return None,
    };
    Some(Ceiling {
        basis: basis.to_owned(),
        target: t,
        target_saturated: t_sat,
        baseline: b,
        baseline_saturated: b_sat,
        ratio: if b > 0.0 { t / b } else { f64::NAN },
    })
}

impl Report {
    /// Writes the report as text.
    pub fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "scenario {}: {}", self.scenario, self.description)?;
        writeln!(
            out,
            "mode {}, {} cores ({}/{}), started {}",
            self.mode, self.machine.cores, self.machine.os, self.machine.arch, self.started_at
        )?;
        write_side(out, &self.target)?;
        if let Some(baseline) = &self.baseline {
            write_side(out, baseline)?;
        }
        if !self.comparisons.is_empty() {
            writeln!(out, "\n{} / echo baseline at equal load:", self.target.name)?;
            for c in &self.comparisons {
                writeln!(
                    out,
                    "  {:<12} throughput {:>6.3}   p50 x{:<8.2} p99 x{:.2}",
                    c.label, c.throughput, c.p50, c.p99
                )?;
            }
        }
        if let Some(c) = &self.ceiling {
            let bound = |saturated: bool| if saturated { "" } else { ">= " };
            writeln!(
                out,
                "\nceiling ({}):\n  {} {}{:.1} req/s, echo {}{:.1} req/s: {:.4} of the RPC ceiling",
                c.basis,
                self.target.name,
                bound(c.target_saturated),
                c.target,
                bound(c.baseline_saturated),
                c.baseline,
                c.ratio
            )?;
        }
        Ok(())
    }
}

fn write_side(out: &mut impl Write, side: &Side) -> std::io::Result<()> {
    writeln!(out, "\n{} ({}, {})", side.name, side.transport, side.url)?;
    writeln!(
        out,
        "  {:<12} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9}",
        "load",
        "req/s",
        "items/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9",
        "max ms",
        "errors",
        "sustained"
    )?;
    for run in &side.runs {
        let l = &run.latency_ms;
        writeln!(
            out,
            "  {:<12} {:>10.1} {:>11.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7} {:>9}",
            run.label,
            run.throughput,
            run.items_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            run.errors,
            if run.sustained { "yes" } else { "NO" }
        )?;
        if run.steps.len() > 1 {
            for s in &run.steps {
                let l = &s.latency_ms;
                writeln!(
                    out,
                    "    {:<10} {:>10.1} {:>11.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>7}",
                    s.name,
                    s.throughput,
                    s.items_per_s,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.p999,
                    l.max,
                    s.errors.values().sum::<u64>()
                )?;
            }
        }
        for s in &run.steps {
            for (code, n) in &s.errors {
                let message = s.error_messages.get(code).map_or("", String::as_str);
                writeln!(
                    out,
                    "    errors in {}: {code} x{n} (first: {message})",
                    s.name
                )?;
            }
            if s.rejected_items > 0 {
                writeln!(
                    out,
                    "    {}: {} items rejected by the server",
                    s.name, s.rejected_items
                )?;
            }
            if s.empty_answers > 0 {
                writeln!(
                    out,
                    "    {}: {} of {} answers empty (is the catalog seeded and a model trained?)",
                    s.name, s.empty_answers, s.latency_ms.count
                )?;
            }
            if s.partial_answers > 0 {
                writeln!(
                    out,
                    "    {}: {} of {} answers partial (a module's backend was slow or down)",
                    s.name, s.partial_answers, s.latency_ms.count
                )?;
            }
        }
        if let Some(lag) = &run.dispatch_lag_ms
            && lag.p99 > 1.0
        {
            writeln!(
                out,
                "    note: the generator sent calls late (lag p99 {:.2} ms); latencies include it",
                lag.p99
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{StepStats, histogram};

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.p99 - 0.99).abs() < 0.01, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.01, "{p:?}");
        assert_eq!(Percentiles::of(&histogram()), Percentiles::default());
    }

    /// One 10 s open-loop level at 100/s: 1,000 calls of 1 ms, `errors` of them failed and
    /// `partial` answered in part.
    fn level(errors: u64, partial: u64, p99_ms: u64) -> PhaseStats {
        let mut step = StepStats::new();
        for n in 0..1000 - errors {
            let us = if n < 980 { 1000 } else { p99_ms * 1000 };
            step.latency.record(us).unwrap();
        }
        if errors > 0 {
            step.errors.insert("UNAVAILABLE".to_owned(), errors);
        }
        step.partial = partial;
        step.completed_in_window = 1000;
        let all = step.latency.clone();
        PhaseStats {
            label: "t".to_owned(),
            load: Load::Open { rate: 100.0 },
            warmup: Duration::ZERO,
            window: Duration::from_secs(10),
            steps: vec![step],
            all,
            lag: None,
        }
    }

    #[test]
    fn a_level_is_sustained_only_with_few_errors_few_partial_answers_and_p99_in_the_slo() {
        let names = [("home".to_owned(), "mobile.get_home_feed".to_owned())];
        let slo = Duration::from_millis(100);
        let sustained = |stats: PhaseStats| summarise(&stats, &names, slo).sustained;
        assert!(sustained(level(0, 0, 1)));
        assert!(sustained(level(10, 10, 1)), "1 % of each is tolerated");
        assert!(!sustained(level(11, 0, 1)), "errors");
        assert!(!sustained(level(0, 11, 1)), "partial answers");
        assert!(!sustained(level(0, 0, 101)), "p99 over the SLO");
    }
}
