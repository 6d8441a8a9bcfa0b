//! Signals: recording formats, filters, epoching and synthetic data. Plain synchronous code.

pub mod filter;
pub mod recording;

pub use recording::{Event, Recording};
