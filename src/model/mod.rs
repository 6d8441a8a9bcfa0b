//! Models: Common Spatial Patterns, SVMs, the fitted pipeline and its evaluation.

pub mod artifact;
pub mod classifier;
pub mod csp;
pub mod cv;
pub mod evaluate;
pub mod family;
pub mod lda;
pub mod linalg;
pub mod linear;
pub mod logistic;
pub mod metrics;
pub mod mlflow_flavors;
pub mod mutual_info;
pub mod report;
pub mod riemann;
pub mod scaler;
pub mod svm;
