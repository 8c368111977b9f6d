//! Offline evaluation: `tailor eval`.
//!
//! ```text
//! tailor eval --input FILE [--split random|time] [--seed 42] [--algo NAME,...] [--k 10,20]
//!             [--json OUT] [--split-dir DIR] [--no-tune] [--threads N]
//! ```
//!
//! The protocol is the one of `shared/data/README.md` and `recsys_baseline.py`: every row is an
//! implicit interaction (duplicates merged, weight 1); users with ≥ 5 interactions hold out
//! `floor(20%)` (at least 1); each model ranks the full catalog minus the user's training
//! items. Hyper-parameters are chosen on a validation split carved from the training set
//! with the same rule and `seed + 1` (43 by default, like the baseline), never on the test
//! set; the chosen configuration is then refit on the full training set, and only that fit
//! is timed and measured.
//!
//! The random split draws with a bit-exact port of numpy's `default_rng(seed).choice`, and ids
//! are numbered like `np.unique`, so `--split random --seed 42` holds out the same pairs as the
//! baseline. `--split-dir DIR` instead reads the pairs `recsys_baseline.py --dump-split DIR`
//! wrote (`--input` is then not needed), which guarantees identical data whatever the file
//! format; pass `--split time` with a time-split directory so validation also splits by time.

pub mod grid;
pub mod input;
pub mod memory;
pub mod metrics;
pub mod numpy_rng;
mod report;
pub mod split;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;

pub use report::{AlgoResult, EvalReport, Meta};
pub use split::SplitMode;

use crate::algo::{
    AlgoConfig, AlgoError, Interactions, InteractionsBuilder, ItemIdx, Merge, Model, ModelBundle,
    Query, Recommender, TrainData,
};
use split::Split;

/// Errors of `tailor eval`.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file could not be opened or read.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A line of an input file is malformed.
    #[error("{file}line {line}: {reason}")]
    Parse {
        /// `"path: "`, or empty when reading from memory.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Invalid arguments.
    #[error("{0}")]
    Usage(String),
    /// Fitting or a configuration failed.
    #[error(transparent)]
    Algo(#[from] AlgoError),
}

impl EvalError {
    /// Prefixes a parse error with the file it came from.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Self::Parse { line, reason, .. } => Self::Parse {
                file: format!("{}: ", path.display()),
                line,
                reason,
            },
            Self::Io(what, e) if what.is_empty() => Self::Io(path.display().to_string(), e),
            other => other,
        }
    }
}

/// Arguments of `tailor eval` (mount with `#[command(flatten)]` or as a subcommand's args).
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Interactions: `user item [rating [timestamp]]` per line; comma, tab or whitespace
    /// separated; optional header; `.gz` accepted.
    #[arg(long, value_name = "FILE", required_unless_present = "split_dir")]
    pub input: Option<PathBuf>,
    /// How held-out interactions are chosen; `time` without a timestamp column uses file
    /// order.
    #[arg(long, value_enum, default_value_t = SplitMode::Random)]
    pub split: SplitMode,
    /// Seed of the random split (numpy-compatible); the validation split uses seed + 1.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Algorithms to evaluate, by name.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "popular,itemknn_cosine,itemknn_bm25,als,bpr"
    )]
    pub algo: Vec<String>,
    /// Cut-offs for Recall@K and NDCG@K (coverage is always @10).
    #[arg(long, value_delimiter = ',', default_value = "10,20")]
    pub k: Vec<usize>,
    /// Also write the report as JSON here.
    #[arg(long, value_name = "OUT")]
    pub json: Option<PathBuf>,
    /// Score on a split dumped by `recsys_baseline.py --dump-split DIR` (train.csv, test.csv).
    #[arg(long, value_name = "DIR")]
    pub split_dir: Option<PathBuf>,
    /// Use each algorithm's first grid point instead of tuning on the validation split.
    #[arg(long)]
    pub no_tune: bool,
    /// Worker threads for fitting and ranking (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Default for EvalArgs {
    fn default() -> Self {
        Self {
            input: None,
            split: SplitMode::Random,
            seed: 42,
            algo: vec!["popular".into()],
            k: vec![10, 20],
            json: None,
            split_dir: None,
            no_tune: false,
            threads: None,
        }
    }
}

/// Reads an interaction file into a binary matrix (duplicates merged, latest time kept; file
/// position is the time when there is no timestamp column). Ids are numbered in sorted order
/// like `np.unique`, so tie-breaks by item id match the baseline.
pub fn load_interactions(path: &std::path::Path) -> Result<Interactions, EvalError> {
    let table = input::read_table(path)?;
    let mut b = InteractionsBuilder::new();
    for (n, row) in table.rows.iter().enumerate() {
        b.push(&row.user, &row.item, 1.0, row.timestamp.unwrap_or(n as i64));
    }
    b.sort_ids();
    Ok(b.build(Merge::Binary))
}

/// Runs the evaluation, writes the table to `out` (and JSON if asked) and returns the report.
pub fn run(args: &EvalArgs, out: &mut dyn Write) -> Result<EvalReport, EvalError> {
    if args.k.is_empty() || args.k.contains(&0) {
        return Err(EvalError::Usage("--k needs positive cut-offs".into()));
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = args.threads {
        builder = builder.num_threads(t);
    }
    let pool = builder
        .build()
        .map_err(|e| EvalError::Usage(format!("thread pool: {e}")))?;
    let report = pool.install(|| evaluate_all(args))?;
    report::write_table(&report, out).map_err(|e| EvalError::Io("output".into(), e))?;
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| EvalError::Io(path.display().to_string(), e.into()))?;
        std::fs::write(path, json).map_err(|e| EvalError::Io(path.display().to_string(), e))?;
    }
    Ok(report)
}

fn evaluate_all(args: &EvalArgs) -> Result<EvalReport, EvalError> {
    let t0 = Instant::now();
    let (split, source) = match (&args.split_dir, &args.input) {
        (Some(dir), _) => (split::load_split_dir(dir)?, dir.display().to_string()),
        (None, Some(path)) => {
            let data = load_interactions(path)?;
            (
                split::split(&data, args.split, args.seed),
                path.display().to_string(),
            )
        }
        (None, None) => {
            return Err(EvalError::Usage(
                "give --input FILE or --split-dir DIR".into(),
            ));
        }
    };
    // The validation split applies the same rule inside the training set.
    let valid = split::split(&split.train, args.split, args.seed + 1);
    let mut ks = args.k.clone();
    ks.sort_unstable();
    ks.dedup();
    let depth = ks.iter().copied().max().unwrap_or(10).max(10);
    let meta = Meta {
        source,
        split: if args.split_dir.is_some() {
            "split-dir".into()
        } else {
            format!("{:?}", args.split).to_lowercase()
        },
        seed: args.seed,
        users: split.train.n_users(),
        items: split.train.n_items(),
        train: split.train.nnz(),
        test: split.test_pairs(),
        test_users: split.test.len(),
        threads: rayon::current_num_threads(),
        ks: ks.clone(),
        load_split_s: t0.elapsed().as_secs_f64(),
        base_rss_mib: memory::rss_bytes().map_or(0.0, |b| b as f64 / 1048576.0),
    };

    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(args.algo.len() as u64));
    overall.set_style(style("{prefix} [{bar:30}] {pos}/{len} {msg}"));
    overall.set_prefix("eval");
    let mut results = Vec::new();
    for name in &args.algo {
        overall.set_message(name.clone());
        let result = evaluate_one(name, args, &split, &valid, &ks, depth, &bars);
        results.push(result.unwrap_or_else(|e| AlgoResult::failed(name, e.to_string())));
        overall.inc(1);
    }
    overall.finish_and_clear();
    Ok(EvalReport { meta, results })
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn fit_bar(bars: &MultiProgress, what: String) -> ProgressBar {
    let bar = bars.add(ProgressBar::new(0));
    bar.set_style(style("  {msg} [{bar:30}] {pos}/{len} {elapsed}"));
    bar.set_message(what);
    bar
}

fn evaluate_one(
    name: &str,
    args: &EvalArgs,
    split: &Split,
    valid: &Split,
    ks: &[usize],
    depth: usize,
    bars: &MultiProgress,
) -> Result<AlgoResult, EvalError> {
    let mut candidates = grid::grid(name, &split.train)?;
    if args.no_tune {
        candidates.truncate(1);
    }
    let mut tuned = Vec::new();
    let mut best = candidates[0].clone();
    if candidates.len() > 1 {
        let mut best_score = f64::NEG_INFINITY;
        for config in &candidates {
            let bar = fit_bar(bars, format!("tune {name}"));
            let model = config.fit(TrainData::new(&valid.train), &bar)?;
            bar.finish_and_clear();
            let m = score(&model, valid, ks, depth, bars, name);
            let ndcg = m.ndcg.get(&10).or_else(|| m.ndcg.values().next()).copied();
            let ndcg = ndcg.unwrap_or(0.0);
            tuned.push((config.clone(), ndcg));
            if ndcg > best_score {
                best_score = ndcg;
                best = config.clone();
            }
        }
    }
    let bar = fit_bar(bars, format!("fit {name}"));
    let sampler = memory::PeakRss::start();
    let t = Instant::now();
    let model = best.fit(TrainData::new(&split.train), &bar)?;
    let fit_s = t.elapsed().as_secs_f64();
    let (peak_rss_mib, fit_delta_rss_mib) = sampler.finish();
    bar.finish_and_clear();
    let model_mib = model_size_mib(&best, &split.train, model.clone());
    let t = Instant::now();
    let metrics = score(&model, split, ks, depth, bars, name);
    let recommend_s = t.elapsed().as_secs_f64();
    Ok(AlgoResult::new(
        name,
        &best,
        &metrics,
        report::Costs {
            fit_s,
            recommend_s,
            peak_rss_mib,
            fit_delta_rss_mib,
            model_mib,
        },
        tuned,
    ))
}

/// Size of the persisted model: what the service holds in memory, within a few percent.
fn model_size_mib(config: &AlgoConfig, data: &Interactions, model: Model) -> f64 {
    let bundle = ModelBundle {
        config: config.clone(),
        users: data.users.clone(),
        items: data.items.clone(),
        trained_at: 0,
        model,
    };
    bundle
        .to_bytes()
        .map_or(f64::NAN, |b| b.len() as f64 / 1048576.0)
}

/// Ranks the top `depth` items for every test user (in parallel) and scores them.
fn score(
    model: &Model,
    split: &Split,
    ks: &[usize],
    depth: usize,
    bars: &MultiProgress,
    name: &str,
) -> metrics::Metrics {
    let bar = fit_bar(bars, format!("rank {name}"));
    bar.set_length(split.test.len() as u64);
    let mut ranked: Vec<Vec<ItemIdx>> = Vec::with_capacity(split.test.len());
    // Chunks keep the progress bar moving; each chunk is ranked in parallel.
    for chunk in split.test.chunks(4096) {
        let histories: Vec<Vec<ItemIdx>> = chunk
            .par_iter()
            .map(|(u, _)| split.train.user_sequence(*u))
            .collect();
        let queries: Vec<Query<'_>> = chunk
            .iter()
            .zip(&histories)
            .map(|((u, _), h)| Query::known(*u, h))
            .collect();
        let seen: Vec<&[ItemIdx]> = chunk
            .iter()
            .map(|(u, _)| split.train.user_items().row_indices(*u))
            .collect();
        for list in model.recommend_many(&queries, depth, &seen) {
            ranked.push(list.into_iter().map(|(i, _)| i).collect());
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let truth: Vec<&[ItemIdx]> = split.test.iter().map(|(_, t)| t.as_slice()).collect();
    metrics::evaluate(&ranked, &truth, split.train.n_items(), ks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_to_end_on_a_small_generated_file() {
        // 40 users in two taste groups; every user has 6 of their group's 8 items.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.csv");
        let mut text = String::from("user,item\n");
        for u in 0..40 {
            let group = u % 2;
            for k in 0..6 {
                let item = group * 8 + (u / 2 + k) % 8;
                text.push_str(&format!("u{u},i{item}\n"));
            }
        }
        std::fs::write(&path, text).unwrap();
        let args = EvalArgs {
            input: Some(path),
            algo: vec!["popular".into(), "itemknn_cosine".into(), "nope".into()],
            json: Some(dir.path().join("out.json")),
            threads: Some(1),
            ..EvalArgs::default()
        };
        let mut table = Vec::new();
        let report = run(&args, &mut table).unwrap();
        assert_eq!(report.meta.test_users, 40);
        assert_eq!(report.meta.test, 40);
        let pop = &report.results[0];
        let knn = &report.results[1];
        // Item-kNN sees the two groups; popularity cannot.
        assert!(knn.metrics["ndcg@10"] > pop.metrics["ndcg@10"]);
        assert!(
            report.results[2]
                .error
                .as_deref()
                .unwrap()
                .contains("unknown algorithm")
        );
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("| itemknn_cosine |"), "{table}");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out.json")).unwrap()).unwrap();
        assert_eq!(json["results"][1]["algo"], "itemknn_cosine");
    }

    #[test]
    fn file_order_is_time_unless_a_timestamp_column_exists() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "u b\nu a\nu b\n").unwrap();
        let m = load_interactions(&plain).unwrap();
        // The repeated "b" keeps its latest position, so "a" came first.
        let id = |x: &str| m.items.get(x).unwrap();
        assert_eq!(m.user_sequence(0), vec![id("a"), id("b")]);
        let timed = dir.path().join("timed.tsv");
        std::fs::write(&timed, "u\ta\t1\t20\nu\tb\t1\t10\n").unwrap();
        let m = load_interactions(&timed).unwrap();
        let id = |x: &str| m.items.get(x).unwrap();
        assert_eq!(m.user_sequence(0), vec![id("b"), id("a")]);
        assert_eq!(m.user_items().values(), &[1.0, 1.0]);
    }

    #[test]
    fn missing_input_is_a_usage_error() {
        let err = run(&EvalArgs::default(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("--input"));
    }
}
