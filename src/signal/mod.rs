//! Signals: recording formats, filters, epoching and synthetic data. Plain synchronous code.

pub mod epochs;
pub mod recording;

pub use recording::{Event, Recording};
