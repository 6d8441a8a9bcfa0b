//! Signals: recording formats, filters, epoching and synthetic data. Plain synchronous code.

pub mod bnci;
pub mod epochs;
pub mod filter;
pub mod gdf;
pub mod labels;
pub mod mat;
pub mod montage;
pub mod recording;
pub mod synth;

pub use recording::{Event, Recording};
