//! Hyper-parameter sweeps: W&B sweep files, search strategies (grid, random, TPE), many
//! candidates evaluated with shared work, a journal to resume, and the sweep's outputs.

pub mod journal;
pub mod outputs;
pub mod runner;
pub mod search;
pub mod session;
pub mod space;
pub mod sweep;
pub mod tpe;
