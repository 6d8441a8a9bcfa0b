//! Orchestration: the pipeline DAG (preprocess → tune or train → compare-register → deploy),
//! run on this machine step by step (`run`), or emitted for Kubeflow Pipelines (`kfp`).
//! Every step is a bciops subcommand, the same one a container runs.

pub mod cluster;
pub mod config;
pub mod dag;
pub mod kfp;
pub mod run;

pub use config::PipelineConfig;
