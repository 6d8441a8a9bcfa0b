//! `bciops compare-register`: register a candidate model and move the alias to it only if it
//! beats the current champion.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Global;
use crate::registry::compare::{self, CompareOptions, Decision, Outcome};
use crate::registry::{RegistryConfig, CHAMPION};
use crate::storage::{self, Location};

/// Compare a trained model with the one behind an alias; register it and move the alias only
/// if it is better by more than --min-delta (the first model of a name is always promoted).
///
/// Prints the decision; `--decision-out` gets the bare word `promoted` or `rejected` for
/// pipeline conditions. A rejection is a successful run (exit 0).
#[derive(Debug, Args)]
pub struct CompareRegisterArgs {
    /// The candidate model directory (from `bciops train`): a path, `file://`, or a
    /// published directory on `s3://BUCKET/PREFIX` / `gs://BUCKET/PREFIX`.
    #[arg(long, value_name = "DIR|URI")]
    pub model: PathBuf,
    /// Registered model name.
    #[arg(long)]
    pub name: String,
    /// Metric compared: a top-level number of metrics.json; higher is better.
    #[arg(long, default_value = "accuracy")]
    pub metric: String,
    /// The candidate must beat the champion by more than this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub min_delta: f64,
    /// Alias moved to a promoted version.
    #[arg(long, default_value = CHAMPION)]
    pub alias: String,
    /// The run whose `model` artifact the new version comes from (e.g. train's
    /// `--run-id-out`); without it, MLflow gets a small run holding the files.
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Write the bare decision (`promoted` or `rejected`) to FILE (a path or a bucket URI).
    #[arg(long, value_name = "FILE|URI")]
    pub decision_out: Option<PathBuf>,
    /// Print the decision as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Which registry: `--registry-uri`, `MLFLOW_REGISTRY_URI`, then the tracking URI.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Model registry: `http(s)://…` (MLflow), a directory / `file://…` (the embedded
    /// store), or `s3://BUCKET/PREFIX` / `gs://BUCKET/PREFIX` (the embedded store's registry
    /// on a bucket). Default: $MLFLOW_REGISTRY_URI, else the tracking URI, else ./bciops-store.
    #[arg(long, value_name = "URI")]
    pub registry_uri: Option<String>,
    /// Tracking URI, the registry's default (else $MLFLOW_TRACKING_URI).
    #[arg(long, value_name = "URI")]
    pub tracking_uri: Option<String>,
}

impl RegistryArgs {
    pub fn config(&self) -> Result<RegistryConfig, crate::Error> {
        RegistryConfig::resolve(self.registry_uri.as_deref(), self.tracking_uri.as_deref())
    }
}

pub fn run(args: CompareRegisterArgs, _global: Global) -> Result<()> {
    let config = args.registry.config()?;
    let registry = config.open()?;
    let location = Location::from_path(&args.model)?;
    // A model on a bucket is fetched (and checked against its completion marker) first; the
    // registry records its URI, not the temporary copy.
    let fetched = storage::fetch_dir(&location)?;
    let decision = compare::compare_register(
        &registry,
        fetched.path(),
        &CompareOptions {
            name: args.name.clone(),
            metric: args.metric.clone(),
            min_delta: args.min_delta,
            alias: args.alias.clone(),
            run_id: args.run_id.clone(),
            origin: location.is_remote().then(|| location.to_string()),
        },
    )
    .map_err(|e| fetched.relabel(e))?;
    if let Some(path) = &args.decision_out {
        storage::write_file(
            &Location::from_path(path)?,
            decision.decision.as_str().as_bytes(),
        )?;
    }
    if args.json {
        super::emit(&serde_json::to_string_pretty(&decision)?)?;
    } else {
        super::emit(&describe(&decision))?;
    }
    Ok(())
}

fn describe(d: &Decision) -> String {
    let champion = match (d.champion, d.champion_version) {
        (Some(c), Some(v)) => format!("champion version {v} {c:.4}"),
        _ => "no champion yet".to_owned(),
    };
    let outcome = match (d.decision, d.version, d.lost_race) {
        (Outcome::Promoted, Some(v), _) => {
            format!("registered `{}` version {v}, now `{}`", d.name, d.alias)
        }
        (_, Some(v), true) => format!(
            "registered `{}` version {v}, but `{}` is version {}",
            d.name,
            d.alias,
            d.alias_version.unwrap_or(0)
        ),
        _ => "not registered".to_owned(),
    };
    format!(
        "{}: {} {:.4} vs {champion}; {outcome} ({})",
        d.decision.as_str(),
        d.metric,
        d.candidate,
        d.reason
    )
}
