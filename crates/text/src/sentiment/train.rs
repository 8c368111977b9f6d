//! Training and evaluating the sentiment models on the labelled review files.
//!
//! Per language: extract features of the training part, drop features seen in fewer than
//! `min_count` reviews, fit an L2-regularised logistic regression with AdaGrad SGD (examples in
//! a seeded shuffled order each epoch), keep the `max_features` largest weights, and refit on
//! those alone so the pruned model is not just a truncated one. Everything runs in a fixed
//! order, so the same data and options give the same model file.

use std::collections::HashMap;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use super::data::{self, DataStats, Example, Split};
use super::vader::Vader;
use super::{Feature, Language, SentimentModel, Weights, features};
use crate::error::Result;

/// Training knobs. The defaults produce the shipped model.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Passes over the training examples, per fit.
    pub epochs: usize,
    /// AdaGrad base step.
    pub learning_rate: f64,
    /// L2 penalty per example update.
    pub l2: f64,
    /// Chinese feature selection.
    pub zh: FeatureOptions,
    /// English feature selection.
    pub en: FeatureOptions,
    /// Seed of the per-epoch example order (the data split has its own fixed seed).
    pub seed: u64,
    /// Draw an indicatif progress bar on stderr.
    pub show_progress: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 12,
            learning_rate: 0.1,
            l2: 1e-4,
            zh: FeatureOptions {
                min_count: 3,
                max_features: 25_000,
            },
            // With 800 training sentences, a word seen once is still worth a weight.
            en: FeatureOptions {
                min_count: 1,
                max_features: 3_000,
            },
            seed: 1,
            show_progress: false,
        }
    }
}

/// Which features a language's model keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureOptions {
    /// Features seen in fewer training reviews than this are ignored (noise, and size).
    pub min_count: usize,
    /// The largest weights kept after the first fit; the model is refitted on them alone.
    pub max_features: usize,
}

/// What training did and how well the result does on the held-out part.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Chinese data and feature counts.
    pub zh: LanguageTrainStats,
    /// English data and feature counts.
    pub en: LanguageTrainStats,
    /// The trained model on the held-out 20 %.
    pub held_out: EvalReport,
    /// The VADER lexicon alone (compound ≥ 0.05 is positive, VADER's own rule) on the English
    /// held-out part: the baseline the English model has to beat.
    pub lexicon_only_en: LanguageReport,
}

/// Per-language training facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanguageTrainStats {
    /// Rows read, dropped and split.
    pub data: DataStats,
    /// Distinct features reaching `min_count`.
    pub features_seen: usize,
    /// Features in the model after pruning.
    pub features_kept: usize,
}

/// Accuracy of a model on the held-out part of each language.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalReport {
    /// Chinese held-out reviews.
    pub zh: LanguageReport,
    /// English held-out reviews.
    pub en: LanguageReport,
}

/// Accuracy on one language. A review counts as predicted positive when its polarity is above
/// 0, so neutral-labelled and unscorable reviews still count, on whichever side they fall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LanguageReport {
    /// Reviews evaluated.
    pub examples: usize,
    /// Share predicted correctly, 0..=1.
    pub accuracy: f64,
    /// Gold label × predicted label counts.
    pub confusion: Confusion,
    /// Reviews labelled [`super::Label::Neutral`] (|polarity| < [`super::NEUTRAL_BAND`]).
    pub neutral: usize,
    /// Reviews whose detected language was not the data set's.
    pub other_language: usize,
}

/// Binary confusion counts, positive being the positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Positive reviews predicted positive.
    pub true_positive: usize,
    /// Positive reviews predicted negative.
    pub false_negative: usize,
    /// Negative reviews predicted positive.
    pub false_positive: usize,
    /// Negative reviews predicted negative.
    pub true_negative: usize,
}

/// Trains both models on the files in `data_dir` (see the crate README for the data set) and
/// evaluates them on the held-out part.
pub fn train(data_dir: &Path, opts: &TrainOptions) -> Result<(SentimentModel, TrainReport)> {
    let data = data::load(data_dir)?;
    let examples = data.zh.train.len() + data.en.train.len();
    // Feature extraction once, then two fits of `epochs` passes each.
    let steps = examples * (1 + 2 * opts.epochs) + data.zh.held_out.len() + data.en.held_out.len();
    let progress = progress_bar(opts.show_progress, steps as u64);

    progress.set_message("zh");
    let (zh, zh_stats) = train_language(&data.zh, Language::Zh, opts, &progress);
    progress.set_message("en");
    let (en, en_stats) = train_language(&data.en, Language::En, opts, &progress);

    // Round-trip through the file format so the report describes exactly the saved model.
    let model = SentimentModel { zh, en };
    let model = SentimentModel::parse(&model.to_text(""))?;

    progress.set_message("evaluating");
    let held_out = EvalReport {
        zh: evaluate_examples(&model, &data.zh.held_out, Language::Zh),
        en: evaluate_examples(&model, &data.en.held_out, Language::En),
    };
    progress.inc((data.zh.held_out.len() + data.en.held_out.len()) as u64);
    progress.finish_and_clear();
    let lexicon_only_en = tally(data.en.held_out.par_iter().map(|e| {
        let compound = Vader::shipped().compound(&e.text);
        (e.positive, compound >= 0.05, false, false)
    }));
    let report = TrainReport {
        zh: zh_stats,
        en: en_stats,
        held_out,
        lexicon_only_en,
    };
    Ok((model, report))
}

/// Evaluates `model` on the held-out 20 % of each language in `data_dir`.
pub fn evaluate(model: &SentimentModel, data_dir: &Path) -> Result<EvalReport> {
    let data = data::load(data_dir)?;
    Ok(EvalReport {
        zh: evaluate_examples(model, &data.zh.held_out, Language::Zh),
        en: evaluate_examples(model, &data.en.held_out, Language::En),
    })
}

fn evaluate_examples(
    model: &SentimentModel,
    examples: &[Example],
    lang: Language,
) -> LanguageReport {
    tally(examples.par_iter().map(|e| {
        let s = model.score(&e.text);
        let neutral = s.label == super::Label::Neutral;
        (e.positive, s.polarity > 0.0, neutral, s.language != lang)
    }))
}

/// Sums `(gold positive, predicted positive, neutral, other language)` tuples.
fn tally(outcomes: impl ParallelIterator<Item = (bool, bool, bool, bool)>) -> LanguageReport {
    let counts = outcomes
        .map(|(gold, predicted, neutral, other)| {
            let mut c = [0usize; 6];
            c[usize::from(gold) * 2 + usize::from(predicted)] = 1;
            c[4] = usize::from(neutral);
            c[5] = usize::from(other);
            c
        })
        .reduce(|| [0; 6], |a, b| std::array::from_fn(|i| a[i] + b[i]));
    let confusion = Confusion {
        true_negative: counts[0],
        false_positive: counts[1],
        false_negative: counts[2],
        true_positive: counts[3],
    };
    let examples = counts[..4].iter().sum();
    let correct = confusion.true_positive + confusion.true_negative;
    LanguageReport {
        examples,
        accuracy: if examples == 0 {
            0.0
        } else {
            correct as f64 / examples as f64
        },
        confusion,
        neutral: counts[4],
        other_language: counts[5],
    }
}

fn progress_bar(show: bool, len: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "training {msg:>10} [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(len).with_style(style)
}

/// One training example after feature extraction: feature ids with their L2-normalised
/// TF-IDF values, and the dense lexicon input.
struct Encoded {
    ids: Vec<u32>,
    values: Vec<f64>,
    dense: f64,
    positive: bool,
}

fn train_language(
    split: &Split,
    lang: Language,
    opts: &TrainOptions,
    progress: &ProgressBar,
) -> (Weights, LanguageTrainStats) {
    let extracted: Vec<(Vec<String>, f64)> = split
        .train
        .par_iter()
        .map(|e| {
            let (features, dense) = match lang {
                Language::Zh => (features::chinese(&e.text), 0.0),
                _ => (
                    features::english(&e.text),
                    f64::from(Vader::shipped().compound(&e.text)),
                ),
            };
            progress.inc(1);
            (features, dense)
        })
        .collect();

    let feature_opts = match lang {
        Language::Zh => opts.zh,
        _ => opts.en,
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let n = extracted.len() as f64;
    for (features, _) in &extracted {
        for f in features {
            *counts.entry(f.as_str()).or_default() += 1;
        }
    }
    // (feature, idf), sorted by feature. The idf is rounded as the model file rounds it, so
    // training sees the values scoring will.
    let mut vocab: Vec<(&str, f64)> = counts
        .into_iter()
        .filter(|&(_, df)| df >= feature_opts.min_count)
        .map(|(f, df)| {
            let idf = ((1.0 + n) / (1.0 + df as f64)).ln() + 1.0;
            (f, (idf * 1000.0).round() / 1000.0)
        })
        .collect();
    vocab.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let features_seen = vocab.len();

    let encode = |vocab: &[(&str, f64)]| -> Vec<Encoded> {
        let index: HashMap<&str, (u32, f64)> = vocab
            .iter()
            .enumerate()
            .map(|(i, &(f, idf))| (f, (i as u32, idf)))
            .collect();
        extracted
            .iter()
            .zip(&split.train)
            .map(|((features, dense), e)| {
                let known: Vec<(u32, f64)> = features
                    .iter()
                    .filter_map(|f| index.get(f.as_str()).copied())
                    .collect();
                let norm = known.iter().map(|(_, idf)| idf * idf).sum::<f64>().sqrt();
                Encoded {
                    ids: known.iter().map(|&(id, _)| id).collect(),
                    values: known.iter().map(|&(_, idf)| idf / norm).collect(),
                    dense: *dense,
                    positive: e.positive,
                }
            })
            .collect()
    };
    let uses_lexicon = lang == Language::En;

    let first = fit(&encode(&vocab), vocab.len(), uses_lexicon, opts, progress);
    let mut ranked: Vec<((&str, f64), f64)> = vocab.iter().copied().zip(first.weights).collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.0.cmp(b.0.0)));
    ranked.truncate(feature_opts.max_features);
    let mut kept: Vec<(&str, f64)> = ranked.into_iter().map(|(f, _)| f).collect();
    kept.sort_unstable_by(|a, b| a.0.cmp(b.0));

    let fitted = fit(&encode(&kept), kept.len(), uses_lexicon, opts, progress);
    let weights = Weights {
        bias: fitted.bias as f32,
        lexicon: fitted.dense as f32,
        features: kept
            .iter()
            .zip(fitted.weights)
            .map(|(&(f, idf), w)| {
                let feature = Feature {
                    weight: w as f32,
                    idf: idf as f32,
                };
                (f.to_owned(), feature)
            })
            .collect(),
    };
    let stats = LanguageTrainStats {
        data: split.stats,
        features_seen,
        features_kept: weights.features.len(),
    };
    (weights, stats)
}

struct Fitted {
    bias: f64,
    dense: f64,
    weights: Vec<f64>,
}

/// Logistic regression by AdaGrad SGD. The L2 penalty is applied to the weights an example
/// touches (the usual sparse approximation); the intercept is not penalised.
fn fit(
    examples: &[Encoded],
    n_features: usize,
    uses_dense: bool,
    opts: &TrainOptions,
    progress: &ProgressBar,
) -> Fitted {
    const EPS: f64 = 1e-8;
    let mut w = vec![0.0f64; n_features];
    let mut g2 = vec![0.0f64; n_features];
    let (mut bias, mut bias_g2, mut dense, mut dense_g2) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    for epoch in 0..opts.epochs {
        data::shuffle(&mut order, opts.seed.wrapping_add(epoch as u64));
        for &k in &order {
            let e = &examples[k];
            let sparse: f64 = e
                .ids
                .iter()
                .zip(&e.values)
                .map(|(&i, x)| w[i as usize] * x)
                .sum();
            let z = bias + dense * e.dense + sparse;
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - if e.positive { 1.0 } else { 0.0 };
            for (&i, x) in e.ids.iter().zip(&e.values) {
                let i = i as usize;
                let gi = g * x + opts.l2 * w[i];
                g2[i] += gi * gi;
                w[i] -= opts.learning_rate * gi / (g2[i].sqrt() + EPS);
            }
            bias_g2 += g * g;
            bias -= opts.learning_rate * g / (bias_g2.sqrt() + EPS);
            if uses_dense {
                let gd = g * e.dense + opts.l2 * dense;
                dense_g2 += gd * gd;
                dense -= opts.learning_rate * gd / (dense_g2.sqrt() + EPS);
            }
        }
        progress.inc(examples.len() as u64);
    }
    Fitted {
        bias,
        dense,
        weights: w,
    }
}
