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
//!
//! # Serving in a nutshell
//!
//! ```
//! use indicatif::ProgressBar;
//! use tailor_recommend::algo::{
//!     AlgoConfig, InteractionsBuilder, Merge, ModelBundle, Query, Recommender, TrainData,
//! };
//!
//! let mut events = InteractionsBuilder::new();
//! for (user, item) in [("ann", "tea"), ("ann", "cups"), ("bob", "tea"), ("bob", "kettle")] {
//!     events.push(user, item, 1.0, 0);
//! }
//! let data = events.build(Merge::Sum);
//! let config = AlgoConfig::by_name("itemknn_cosine")?;
//! let model = config.fit(TrainData::new(&data), &ProgressBar::hidden())?;
//!
//! // A visitor the model has never seen, who just viewed tea.
//! let tea = data.items.get("tea").expect("known item");
//! let recs = model.recommend(&Query::anonymous(&[tea]), 5, &[tea]);
//! let names: Vec<&str> = recs.iter().filter_map(|&(i, _)| data.items.external(i)).collect();
//! assert_eq!(names, ["cups", "kettle"]);
//!
//! // Persist and hot-swap: the bundle carries the id maps with the model.
//! let bundle = ModelBundle { config, users: data.users.clone(), items: data.items.clone(),
//!                            trained_at: 0, model };
//! let loaded = ModelBundle::from_bytes(&bundle.to_bytes()?)?;
//! assert_eq!(loaded.model.similar_items(tea, 1).len(), 1);
//! # Ok::<(), tailor_recommend::algo::AlgoError>(())
//! ```

pub mod algo;
pub mod eval;
pub mod experiment;
