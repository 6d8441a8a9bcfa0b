//! Models: Common Spatial Patterns, SVMs, the fitted pipeline and its evaluation.
