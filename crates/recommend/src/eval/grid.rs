//! Hyper-parameter grids tuned on the validation split, one per algorithm name.
//!
//! Small on purpose, like the baseline's: a handful of points around each algorithm's usual
//! optimum, so tuning costs a few fits. Where an algorithm also runs in the baseline, its grid
//! covers the baseline's (ALS's `alpha` differs by one because we use Hu et al.'s
//! `c = 1 + alpha` where `implicit` uses `c = alpha`).

use crate::algo::{
    AlgoConfig, Interactions, Result,
    als::{AlsConfig, Solver},
    bpr::BprConfig,
    knn::{KnnConfig, Weighting},
    popularity::PopularityConfig,
    rules::RulesConfig,
    sequence::SequenceConfig,
};

/// The configurations to try for `name`; the first is used when tuning is off.
pub fn grid(name: &str, data: &Interactions) -> Result<Vec<AlgoConfig>> {
    let base = AlgoConfig::by_name(name)?;
    Ok(match base {
        AlgoConfig::Popularity(c) if c.trending => {
            // Timestamps may be seconds or positions: scale the half-life to the data's span.
            let span = data.max_time() - data.entries().map(|e| e.3).min().unwrap_or(0);
            [0.02, 0.1, 0.5]
                .iter()
                .map(|f| {
                    AlgoConfig::Popularity(PopularityConfig {
                        trending: true,
                        half_life: (span as f64 * f).max(1.0),
                        window: None,
                    })
                })
                .collect()
        }
        AlgoConfig::ItemKnn(KnnConfig {
            weighting: Weighting::Rp3 { alpha, .. },
            ..
        }) => {
            let mut out = Vec::new();
            for k in [100, 200] {
                for beta in [0.0, 0.3, 0.6] {
                    out.push(AlgoConfig::ItemKnn(KnnConfig {
                        k,
                        weighting: Weighting::Rp3 { alpha, beta },
                    }));
                }
            }
            out
        }
        AlgoConfig::ItemKnn(c) => [50, 200, 400]
            .iter()
            .map(|&k| AlgoConfig::ItemKnn(KnnConfig { k, ..c.clone() }))
            .collect(),
        AlgoConfig::UserKnn(c) => [50, 200]
            .iter()
            .map(|&k| AlgoConfig::UserKnn(KnnConfig { k, ..c.clone() }))
            .collect(),
        AlgoConfig::Als(c) if c.solver == Solver::Cholesky => {
            // Exact solves cost d times more per entry: one point, the CG grid's usual winner.
            vec![AlgoConfig::Als(AlsConfig {
                alpha: 20.0,
                regularization: 0.1,
                ..c
            })]
        }
        AlgoConfig::Als(c) if c.bm25.is_some() => {
            // BM25 weights are several times larger than 1: smaller slopes.
            let mut out = Vec::new();
            for alpha in [0.3, 1.0, 3.0] {
                for regularization in [0.1, 1.0] {
                    out.push(AlgoConfig::Als(AlsConfig {
                        alpha,
                        regularization,
                        ..c.clone()
                    }));
                }
            }
            out
        }
        AlgoConfig::Als(c) => {
            let mut out = Vec::new();
            for alpha in [9.0, 20.0, 40.0] {
                for regularization in [0.01, 0.1, 1.0] {
                    out.push(AlgoConfig::Als(AlsConfig {
                        alpha,
                        regularization,
                        ..c.clone()
                    }));
                }
            }
            out
        }
        AlgoConfig::Bpr(c) => [0.01, 0.05]
            .iter()
            .map(|&learning_rate| {
                AlgoConfig::Bpr(BprConfig {
                    learning_rate,
                    ..c.clone()
                })
            })
            .collect(),
        AlgoConfig::Rules(c) => [0.0, 0.05]
            .iter()
            .map(|&min_confidence| {
                AlgoConfig::Rules(RulesConfig {
                    min_support: 0.0,
                    min_confidence,
                    ..c.clone()
                })
            })
            .collect(),
        AlgoConfig::Sequence(c) => {
            let mut out = Vec::new();
            for window in [1, 3] {
                for history in [3, 10] {
                    out.push(AlgoConfig::Sequence(SequenceConfig {
                        window,
                        history,
                        ..c.clone()
                    }));
                }
            }
            out
        }
        other => vec![other],
    })
}
