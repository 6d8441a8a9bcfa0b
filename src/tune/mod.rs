//! Hyper-parameter sweeps: many candidates evaluated with shared work.

pub mod runner;
