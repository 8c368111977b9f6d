//! Median fit time of ALS and item-kNN on a dumped split, for the side-by-side timing with
//! `implicit` in `docs/evaluation.md`:
//! `cargo run --release -p tailor-recommend --example fit_time -- DIR [REPEATS]`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use indicatif::ProgressBar;
use tailor_recommend::algo::{
    AlgoConfig, TrainData,
    als::AlsConfig,
    knn::{KnnConfig, Weighting},
};
use tailor_recommend::eval::split::load_split_dir;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().context("usage: fit_time DIR [REPEATS]")?);
    let repeats: usize = args
        .next()
        .map_or(Ok(3), |r| r.parse())
        .context("REPEATS")?;
    let split = load_split_dir(&dir)?;
    let data = TrainData::new(&split.train);
    let mut out = std::io::stdout().lock();
    let knn = |weighting, k| AlgoConfig::ItemKnn(KnnConfig { k, weighting });
    let configs = [
        (
            "als",
            AlgoConfig::Als(AlsConfig {
                alpha: 9.0,
                regularization: 0.01,
                ..AlsConfig::default()
            }),
        ),
        ("itemknn_cosine K=50", knn(Weighting::Cosine, 50)),
        ("itemknn_cosine K=200", knn(Weighting::Cosine, 200)),
        ("itemknn_bm25 K=50", knn(Weighting::bm25(), 50)),
        ("itemknn_bm25 K=200", knn(Weighting::bm25(), 200)),
    ];
    for (name, config) in configs {
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let t = Instant::now();
            let model = config.fit(data, &ProgressBar::hidden())?;
            times.push(t.elapsed().as_secs_f64());
            drop(model);
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let all: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
        writeln!(
            out,
            "{name}\t{:.3}\t{}",
            sorted[sorted.len() / 2],
            all.join(" ")
        )?;
    }
    Ok(())
}
