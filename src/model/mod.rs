//! Models: Common Spatial Patterns, SVMs, the fitted pipeline and its evaluation.

pub mod cv;
pub mod metrics;
pub mod report;
pub mod classifier;
pub mod evaluate;
pub mod artifact;
