//! Hyper-parameter sweeps: W&B sweep files, search strategies (grid, random, TPE), and many
//! candidates evaluated with shared work.

pub mod runner;
pub mod sweep;
pub mod tpe;
