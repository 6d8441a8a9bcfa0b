//! Hyper-parameter sweeps: W&B sweep files, search strategies, and many candidates evaluated
//! with shared work.

pub mod runner;
pub mod sweep;
