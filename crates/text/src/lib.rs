//! Shared text processing for Tailor's services: a CJK-aware tokenizer for indexing and
//! classification (recommend's TF-IDF, aftersales' categorization) and, later in this crate,
//! review sentiment for profile.
//!
//! # Layout
//! - [`tokenize`](mod@tokenize): Unicode word splitting, jieba segmentation of Han runs,
//!   lowercasing and stop words.

pub mod tokenize;

pub use tokenize::{is_stop_word, tokenize, tokenize_keep_stopwords, warm_up};
