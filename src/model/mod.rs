//! Models: Common Spatial Patterns, SVMs, the fitted pipeline and its evaluation.

pub mod scaler;
pub mod svm;
