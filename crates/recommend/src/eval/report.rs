//! The evaluation report: a Markdown table for people, JSON for tools.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::metrics::Metrics;
use crate::algo::AlgoConfig;

/// What was evaluated, on what.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// Input file or split directory.
    pub source: String,
    /// `random`, `time` or `split-dir`.
    pub split: String,
    /// Split seed.
    pub seed: u64,
    /// Users in the data.
    pub users: usize,
    /// Items in the data (the coverage denominator).
    pub items: usize,
    /// Training pairs.
    pub train: usize,
    /// Held-out pairs.
    pub test: usize,
    /// Users with held-out pairs.
    pub test_users: usize,
    /// Worker threads.
    pub threads: usize,
    /// Metric cut-offs.
    pub ks: Vec<usize>,
    /// Seconds to load and split.
    pub load_split_s: f64,
    /// RSS with the data loaded, before any model.
    pub base_rss_mib: f64,
}

/// Time and memory of the final fit.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Costs {
    /// Wall-clock seconds of the final fit.
    pub fit_s: f64,
    /// Wall-clock seconds to rank every test user.
    pub recommend_s: f64,
    /// Highest RSS sampled during the fit.
    pub peak_rss_mib: f64,
    /// That peak minus the RSS before the fit.
    pub fit_delta_rss_mib: f64,
    /// Size of the persisted model.
    pub model_mib: f64,
}

/// One algorithm's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct AlgoResult {
    /// Algorithm name as given.
    pub algo: String,
    /// The configuration chosen on the validation split.
    pub params: Option<AlgoConfig>,
    /// `recall@K`, `ndcg@K`, `coverage@10`.
    pub metrics: BTreeMap<String, f64>,
    /// Fit and serving costs.
    pub costs: Option<Costs>,
    /// Every configuration tried and its validation NDCG@10.
    pub tuned_on_valid: Vec<(AlgoConfig, f64)>,
    /// Why the algorithm could not be evaluated.
    pub error: Option<String>,
}

impl AlgoResult {
    pub(super) fn new(
        name: &str,
        config: &AlgoConfig,
        m: &Metrics,
        costs: Costs,
        tuned_on_valid: Vec<(AlgoConfig, f64)>,
    ) -> Self {
        let mut metrics = BTreeMap::new();
        for (k, v) in &m.recall {
            metrics.insert(format!("recall@{k}"), *v);
        }
        for (k, v) in &m.ndcg {
            metrics.insert(format!("ndcg@{k}"), *v);
        }
        metrics.insert("coverage@10".into(), m.coverage_at_10);
        Self {
            algo: name.to_owned(),
            params: Some(config.clone()),
            metrics,
            costs: Some(costs),
            tuned_on_valid,
            error: None,
        }
    }

    pub(super) fn failed(name: &str, error: String) -> Self {
        Self {
            algo: name.to_owned(),
            params: None,
            metrics: BTreeMap::new(),
            costs: None,
            tuned_on_valid: Vec::new(),
            error: Some(error),
        }
    }
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Data and settings.
    pub meta: Meta,
    /// One entry per requested algorithm, in order.
    pub results: Vec<AlgoResult>,
}

/// Writes the Markdown table.
pub(super) fn write_table(report: &EvalReport, out: &mut dyn Write) -> io::Result<()> {
    let m = &report.meta;
    writeln!(
        out,
        "**{}** ({}): {} users, {} items, train {} / test {} over {} users; {} threads; \
         RSS before any model {:.0} MiB\n",
        m.source,
        m.split,
        m.users,
        m.items,
        m.train,
        m.test,
        m.test_users,
        m.threads,
        m.base_rss_mib
    )?;
    let mut header = String::from("| algorithm |");
    let mut rule = String::from("|---|");
    for k in &m.ks {
        header.push_str(&format!(" Recall@{k} |"));
        rule.push_str("---|");
    }
    for k in &m.ks {
        header.push_str(&format!(" NDCG@{k} |"));
        rule.push_str("---|");
    }
    header.push_str(" Cov@10 | fit s | recommend s | fit peak RSS MiB (Δ) | model MiB |");
    rule.push_str("---|---|---|---|---|");
    writeln!(out, "{header}\n{rule}")?;
    for r in &report.results {
        if let Some(e) = &r.error {
            writeln!(out, "| {} | error: {e} |", r.algo)?;
            continue;
        }
        let mut line = format!("| {} |", r.algo);
        for k in &m.ks {
            line.push_str(&format!(" {:.4} |", r.metrics[&format!("recall@{k}")]));
        }
        for k in &m.ks {
            line.push_str(&format!(" {:.4} |", r.metrics[&format!("ndcg@{k}")]));
        }
        line.push_str(&format!(" {:.3} |", r.metrics["coverage@10"]));
        if let Some(c) = &r.costs {
            line.push_str(&format!(
                " {:.2} | {:.2} | {:.0} (+{:.0}) | {:.1} |",
                c.fit_s, c.recommend_s, c.peak_rss_mib, c.fit_delta_rss_mib, c.model_mib
            ));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}
