//! Offline evaluation.
