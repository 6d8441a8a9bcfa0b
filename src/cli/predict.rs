//! `bciops predict`: apply a model to an epochs dataset or to raw recordings.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Global;
use crate::predict::{self, PredictOptions};
use crate::storage::{self, Fetched, Location};

/// Predict the class of every trial with a trained model. The model directory's checksums are
/// verified first. `--data` takes an epochs dataset, or raw recordings (GDF files or
/// directories), which are preprocessed with the model's own filter, channels and window.
/// When the data has labels, accuracy and Cohen's kappa are reported.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model directory (from `bciops train`): a path or `s3://` / `gs://` URI.
    #[arg(long, short, value_name = "DIR|URI")]
    pub model: Location,
    /// An epochs dataset directory, or recordings (`.gdf` files or directories); paths or URIs.
    #[arg(long, short, required = true, num_args = 1.., value_name = "PATH|URI")]
    pub data: Vec<Location>,
    /// Write the predictions as JSON to this file (a path or URI).
    #[arg(long, short, value_name = "FILE|URI")]
    pub out: Option<Location>,
    /// Include SVM decision values.
    #[arg(long)]
    pub decision: bool,
    /// Include class probabilities (the model must be trained with `--probability`).
    #[arg(long)]
    pub proba: bool,
    /// Print the predictions as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PredictArgs, _global: Global) -> Result<()> {
    let options = PredictOptions {
        decision: args.decision,
        proba: args.proba,
    };
    let model = storage::fetch_dir(&args.model)?;
    let data = fetch_data(&args.data)?;
    let paths: Vec<PathBuf> = data.iter().map(|f| f.path().to_owned()).collect();
    let mut p = predict::run(model.path(), &paths, options).map_err(|e| {
        data.iter()
            .fold(model.relabel(e), |e, fetched| fetched.relabel(e))
    })?;
    p.model = args.model.to_string();
    p.data = args
        .data
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let json = serde_json::to_string_pretty(&p)?;
    if let Some(out) = &args.out {
        storage::write_file(out, json.as_bytes())?;
    }
    match (p.accuracy, p.kappa) {
        (Some(a), Some(k)) => eprintln!(
            "{} trials: accuracy {:.1} % (kappa {:.3})",
            p.n,
            a * 100.0,
            k
        ),
        _ => eprintln!("{} trials predicted", p.n),
    }
    if args.json {
        super::emit(&json)?;
    } else if args.out.is_none() {
        super::emit(&p.labels.join("\n"))?;
    }
    Ok(())
}

/// Local copies of `--data`: a published dataset (remote ones need their completion marker) or
/// recordings.
fn fetch_data(data: &[Location]) -> crate::Result<Vec<Fetched>> {
    if let [one @ Location::Remote(_)] = data {
        let names: Vec<String> = storage::list(one)?.into_iter().map(|e| e.name).collect();
        if names
            .iter()
            .any(|n| n == "meta.json" || n == storage::MARKER)
        {
            return Ok(vec![storage::fetch_dir(one)?]);
        }
    }
    storage::fetch_inputs(data, |name| {
        let lower = name.to_ascii_lowercase();
        [".gdf", ".mat", ".txt", ".labels"]
            .iter()
            .any(|ext| lower.ends_with(ext))
    })
}
