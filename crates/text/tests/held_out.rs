//! The shipped sentiment model on the held-out 20 % of the labelled reviews. Fails if the model
//! file or the data split regresses below what was measured when the model was trained
//! (README: zh 0.8502, en 0.8934), minus a margin for harmless retraining noise.
#![allow(clippy::print_stderr)]

use std::path::Path;
use std::time::Instant;

use tailor_text::sentiment::{self, SentimentModel};

const DATA_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/review-sentiment"
);

#[test]
fn shipped_model_keeps_its_held_out_accuracy() {
    let dir = Path::new(DATA_DIR);
    if !dir.exists() {
        eprintln!("skipped: no labelled data at {DATA_DIR}");
        return;
    }
    let started = Instant::now();
    let report = sentiment::evaluate(SentimentModel::shipped(), dir).unwrap();
    eprintln!("{report:#?} in {:.1?}", started.elapsed());

    assert_eq!(report.zh.examples, 3472, "the Chinese split changed");
    assert_eq!(report.en.examples, 197, "the English split changed");
    assert!(
        report.zh.accuracy >= 0.84,
        "zh accuracy {}",
        report.zh.accuracy
    );
    // 197 sentences: each one is half a point.
    assert!(
        report.en.accuracy >= 0.875,
        "en accuracy {}",
        report.en.accuracy
    );
}
