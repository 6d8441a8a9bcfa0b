//! Hyper-parameter search for the `tune` step.

pub mod tpe;
