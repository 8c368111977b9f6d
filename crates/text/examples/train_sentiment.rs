//! Trains the sentiment models, writes `models/sentiment.tsv` and prints the held-out report.
//!
//! ```text
//! cargo run --release -p tailor-text --example train_sentiment -- [DATA_DIR] [MODEL_PATH]
//! ```
//! `DATA_DIR` defaults to `../shared/data/review-sentiment` next to the repository, and
//! `MODEL_PATH` to the crate's `models/sentiment.tsv`; the crate must then be rebuilt for
//! `SentimentModel::shipped()` to pick the new file up.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use tailor_text::sentiment::{self, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let data_dir = args.next().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/data/review-sentiment"
            ))
        },
        PathBuf::from,
    );
    let model_path = args.next().map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models/sentiment.tsv")),
        PathBuf::from,
    );
    let opts = TrainOptions {
        show_progress: true,
        ..TrainOptions::default()
    };
    let started = std::time::Instant::now();
    let (model, report) = sentiment::train(&data_dir, &opts)?;
    let comment = format!(
        "Trained by `cargo run --release -p tailor-text --example train_sentiment` on\n\
         shared/data/review-sentiment (see crates/text/README.md), split seed {:#x}.\n\
         Held-out accuracy: zh {:.4} ({} reviews), en {:.4} ({} reviews).",
        sentiment::SPLIT_SEED,
        report.held_out.zh.accuracy,
        report.held_out.zh.examples,
        report.held_out.en.accuracy,
        report.held_out.en.examples,
    );
    model.save(&model_path, &comment)?;
    println!("{report:#?}");
    println!(
        "wrote {} ({} bytes) in {:.1?}",
        model_path.display(),
        std::fs::metadata(&model_path)?.len(),
        started.elapsed()
    );
    Ok(())
}
