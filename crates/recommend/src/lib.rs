//! Tailor's recommendation core: the CPU-side algorithms the recommend service trains and
//! serves, the offline evaluation behind `tailor eval`, and experiment assignment for A/B
//! tests of recommendation variants.
//!
//! Nothing here knows about gRPC, storage or events: the service's `api`, `store` and
//! `domain` modules call in with plain ids and vectors.
//!
//! # Layout
//! - [`algo`]: the interaction matrix, the [`algo::Recommender`] trait and every algorithm
//!   (popularity, item/user kNN, ALS, BPR, TF-IDF, embeddings, association rules, next-item
//!   transitions), plus the versioned model file format.
//! - [`eval`]: reading interaction files, the train/test split, Recall/NDCG/coverage, tuning on
//!   a validation split and the report of `tailor eval`.
//! - [`experiment`]: GrowthBook-compatible hashing of users into experiment variants.

pub mod algo;
pub mod eval;
pub mod experiment;
