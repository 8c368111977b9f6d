//! The crate's one error type: reading training data and parsing model files.

use std::path::PathBuf;

/// Errors from loading data sets and model files. Scoring and tokenizing never fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A data or model file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A data set file has a line that does not follow its format.
    #[error("{}:{line}: {reason}", path.display())]
    Data {
        /// The file involved.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A model file has a line that does not follow the model format.
    #[error("model line {line}: {reason}")]
    Model {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
