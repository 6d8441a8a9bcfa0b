//! bciops: the MLOps loop for EEG motor-imagery brain-computer interfaces in one binary.
//!
//! The library is split into a core that does no I/O beyond reading and writing files
//! (`signal`, `model`) and the edges that the binary drives (`cli`).

pub mod cli;
pub mod error;
pub mod model;
pub mod signal;

pub use error::{Error, Result};
