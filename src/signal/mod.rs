//! Signals: recording formats, filters, epoching and synthetic data. Plain synchronous code.

pub mod montage;
pub mod recording;
pub mod synth;

pub use recording::{Event, Recording};
