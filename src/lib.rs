//! bciops: the MLOps loop for EEG motor-imagery brain-computer interfaces in one binary.
//!
//! The core does no I/O beyond reading and writing files and knows nothing of the command
//! line: `signal` (recording formats, filters, epoching, synthetic data), `model` (CSP, SVM,
//! evaluation), `dataset` (the epochs dataset format), `tune` (sweeps). `preprocess`, `train`
//! and `predict` tie them into the steps of the same names; `cli` is the binary's front end.

pub mod cli;
pub mod dataset;
pub mod download;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod model;
pub mod pipeline;
pub mod predict;
pub mod preprocess;
pub mod registry;
pub mod serve;
pub mod signal;
pub mod storage;
pub mod tracking;
pub mod train;
pub mod tune;

pub use error::{Error, Result};

#[cfg(test)]
mod testutil;
