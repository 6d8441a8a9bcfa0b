//! Hyperparameter tuning: `sweep` reads Weights & Biases sweep files into a validated search
//! space that the searchers sample from.

pub mod sweep;
