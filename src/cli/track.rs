//! The tracking flags `preprocess`, `train` (and `tune`) share, and how they start a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::tracking::{self, Finished, Run, RunSpec, RunStatus, Tracker, TrackingConfig};

#[derive(Debug, Clone, Args)]
pub struct TrackArgs {
    /// Where the run is recorded: `http(s)://…` (an MLflow server), or a directory or
    /// `file://…` (the embedded store). Default: `./bciops-store`.
    #[arg(
        long,
        env = "MLFLOW_TRACKING_URI",
        hide_env_values = true,
        value_name = "URI"
    )]
    pub tracking_uri: Option<String>,
    /// Experiment the run belongs to.
    #[arg(long, env = "MLFLOW_EXPERIMENT_NAME", default_value = tracking::DEFAULT_EXPERIMENT)]
    pub experiment: String,
    /// Run name (default: the subcommand's name).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
    /// Record this run as a child of another (MLflow tag `mlflow.parentRunId`).
    #[arg(long, value_name = "RUN_ID")]
    pub parent_run: Option<String>,
    /// Write the run's id to FILE (bare text, for pipeline steps).
    #[arg(long, value_name = "FILE")]
    pub run_id_out: Option<PathBuf>,
    /// Record no run at all (also `BCIOPS_NO_TRACK=true`).
    #[arg(long, env = "BCIOPS_NO_TRACK", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_track: bool,
}

impl TrackArgs {
    pub fn config(&self) -> Result<TrackingConfig, Error> {
        TrackingConfig::resolve(self.tracking_uri.as_deref(), self.no_track)
    }

    /// The backend these flags name (a sweep keeps it to start its trials' child runs).
    pub fn open(&self) -> Result<Tracker, Error> {
        tracking::open(&self.config()?)
    }

    /// The run these flags describe for a subcommand: experiment, name (default: the
    /// subcommand), parent, and the standard tags plus `bciops.step`.
    pub fn spec(&self, command: &str) -> RunSpec {
        let mut spec = RunSpec::new(
            self.experiment.clone(),
            self.run_name.clone().unwrap_or_else(|| command.to_owned()),
        );
        spec.parent = self.parent_run.clone();
        spec.tags = tracking::standard_tags();
        spec.tags.insert("bciops.step".into(), command.to_owned());
        spec
    }

    /// Opens the backend and starts the subcommand's run.
    pub fn start(&self, command: &str) -> Result<Run, Error> {
        self.open()?.start_run(self.spec(command))
    }

    /// Finishes the run, says where it went on stderr, and writes `--run-id-out`.
    pub fn finish(&self, run: Run) -> Result<Option<Finished>> {
        if run.is_off() {
            drop(run);
            return Ok(None);
        }
        let done = run.finish(RunStatus::Finished)?;
        eprintln!("{}", done.summary());
        if let Some(path) = &self.run_id_out {
            crate::fsutil::write_atomic(path, format!("{}\n", done.run_id).as_bytes())?;
        }
        Ok(Some(done))
    }
}

/// Flattens a serializable value into run parameters under `prefix`.
pub fn params_of<T: serde::Serialize>(prefix: &str, value: &T) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(value) {
        tracking::flatten_params(prefix, &v, &mut out);
    }
    out
}

/// The dataset digest `train` records in its model: sha256 over the lines `<sha256>  <file>`
/// of X.npy, y.npy, trials.csv and meta.json (the same as `Dataset::load` computes).
pub fn dataset_sha256(dir: &Path) -> Result<String, Error> {
    let mut lines = String::new();
    for name in ["X.npy", "y.npy", "trials.csv", "meta.json"] {
        let path = dir.join(name);
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io("read", &path, e))?;
        let digest = format!("{:x}", hasher.finalize());
        lines.push_str(&format!("{digest}  {name}\n"));
    }
    Ok(crate::fsutil::sha256_hex(lines.as_bytes()))
}
