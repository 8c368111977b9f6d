//! Shared text processing for Tailor's services: a CJK-aware tokenizer for indexing and
//! classification (recommend's TF-IDF, aftersales' categorization) and review sentiment in
//! Chinese and English for profile.
//!
//! # Layout
//! - [`tokenize`](mod@tokenize): Unicode word splitting, jieba segmentation of Han runs,
//!   lowercasing and stop words.
//! - [`sentiment`]: the shipped sentiment model ([`SentimentModel::shipped`]), its file format,
//!   and the training / evaluation code behind it (`sentiment::{train, evaluate}`).
//! - [`Error`]: failures reading data sets and model files.

mod error;
pub mod sentiment;
pub mod tokenize;

pub use error::{Error, Result};
pub use sentiment::{Label, Language, Sentiment, SentimentModel};
pub use tokenize::{is_stop_word, tokenize, tokenize_keep_stopwords, warm_up};
