//! `bciops predict`: apply a model to an epochs dataset or to raw recordings.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Global;
use crate::fsutil::write_atomic;
use crate::predict::{self, PredictOptions};

/// Predict the class of every trial with a trained model. The model directory's checksums are
/// verified first. `--data` takes an epochs dataset, or raw recordings (GDF files or
/// directories), which are preprocessed with the model's own filter, channels and window.
/// When the data has labels, accuracy and Cohen's kappa are reported.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model directory (from `bciops train`).
    #[arg(long, short, value_name = "DIR")]
    pub model: PathBuf,
    /// An epochs dataset directory, or recordings (`.gdf` files or directories).
    #[arg(long, short, required = true, num_args = 1.., value_name = "PATH")]
    pub data: Vec<PathBuf>,
    /// Write the predictions as JSON to this file.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
    let p = predict::run(&args.model, &args.data, options)?;
    let json = serde_json::to_string_pretty(&p)?;
    if let Some(out) = &args.out {
        write_atomic(out, json.as_bytes())?;
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
