//! `bciops train`: an epochs dataset → an evaluated model directory (`--pipeline`, CSP + SVM by
//! default).

use anyhow::{Context, Result};
use clap::Args;

use super::model_flags::ModelFlags;
use super::{progress, track, Global};
use crate::fsutil::Replace;
use crate::model::cv::Evaluation;
use crate::storage::{self, Location, OutputDir};
use crate::train::{self, Metrics, TrainConfig};

/// Train a model (`--pipeline`, CSP + SVM by default) on an epochs dataset, evaluate it honestly
/// (every stage is fitted inside every fold), and write a model directory: MLmodel, model.json,
/// metrics.json, report.html, checksums.
///
/// Hyper-parameters come from the family's defaults (for CSP + SVM: MNE `CSP()`, scikit-learn
/// `SVC()`), then a `--params` file (e.g. a sweep's `best.json`), then these flags: later wins.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Epochs dataset directory (from `bciops preprocess`): a path or `s3://` / `gs://` URI.
    #[arg(long, short, value_name = "DIR|URI")]
    pub data: Location,
    /// Output model directory, a path or URI (replaced only once complete; a remote one gets
    /// its completion marker last).
    #[arg(long, short, value_name = "DIR|URI")]
    pub out: Location,
    /// Replace an existing output directory even when it holds files bciops did not write
    /// (without it such a directory is refused). Never the current directory or one that holds
    /// an input.
    #[arg(long)]
    pub force: bool,
    /// JSON file of hyper-parameters (flat, or under a `params` key as `best.json` has them);
    /// a path or URI.
    #[arg(long, value_name = "FILE|URI")]
    pub params: Option<Location>,
    /// Evaluation: stratified k-fold `cv:K`, random hold-out `holdout:F`, or `session`
    /// (fit on session T, test on E: the competition protocol).
    #[arg(long = "eval", default_value = "cv:5", value_parser = |s: &str| s.parse::<Evaluation>().map_err(|e| e.to_string()))]
    pub evaluation: Evaluation,
    /// Seed of every random choice (folds, hold-out); recorded in the model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// `--pipeline NAME` and the hyper-parameters of every family (each flag says which
    /// families take it).
    #[command(flatten)]
    pub model: ModelFlags,
    /// Do not write report.html.
    #[arg(long)]
    pub no_report: bool,
    /// Print metrics.json on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub track: track::TrackArgs,
    #[command(flatten)]
    pub wandb: super::wandb::WandbArgs,
}

pub use super::model_flags::read_params;

pub fn run(args: TrainArgs, global: Global) -> Result<()> {
    let mut config = TrainConfig {
        params: args.model.resolve(args.params.as_ref())?,
        evaluation: args.evaluation,
        seed: args.seed,
        report: !args.no_report,
        force: args.force,
        run_id: None,
    };
    let replace = Replace {
        kind: crate::model::artifact::MODEL_DIR,
        force: args.force,
    };
    let inputs: Vec<&Location> = [Some(&args.data), args.params.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    super::output::check(&args.out, replace, &inputs)?;
    let folds = match args.evaluation {
        Evaluation::KFold(k) => k as u64,
        _ => 1,
    };
    // Started before the work, so a tracking misconfiguration (e.g. bad credentials) fails
    // fast; a run dropped on an error path is closed as FAILED.
    let mut run = args.track.start("train")?;
    // A journaled run gets its server id only when synced: its model names no run.
    config.run_id = run.server_id().map(str::to_owned);
    run.log_params(&track::params_of("", &config.params));
    if config.params.pipeline() == crate::model::family::DEFAULT {
        // Other families log `pipeline` among their params; the default's params stay as
        // they were, and the family is logged beside them.
        run.log_param("pipeline", config.params.pipeline().to_owned());
    }
    run.log_param("evaluation", args.evaluation.to_string());
    run.log_param("seed", config.seed.to_string());
    run.log_param("data", args.data.to_string());
    run.log_param("out", args.out.to_string());
    if let Some(p) = &args.params {
        run.log_param("params_file", p.to_string());
    }
    let data = storage::fetch_dir(&args.data)?;
    let out = OutputDir::new(&args.out)?;
    let bar = progress::bar(global, folds, "folds");
    let data_name = args.data.to_string();
    let trained = train::run_as(data.path(), &data_name, out.path(), &config, &|f| {
        bar.set_message(format!(
            "fold {} accuracy {:.1} %",
            f.fold + 1,
            f.accuracy * 100.0
        ));
        bar.inc(1);
    })
    .map_err(|e| data.relabel(e))
    .with_context(|| format!("training on `{}` failed", args.data))?;
    bar.finish_and_clear();
    // The run logs its artifacts from the local copy when it finishes, so it finishes before
    // a remote output's scratch directory is published and removed.
    if !run.is_off() {
        record(&mut run, &trained, out.path());
    }
    args.track.finish(run)?;
    out.publish()?;
    // After publishing: a W&B directory that cannot be written costs no outputs.
    if let Some(w) = args.wandb.config() {
        let dir = super::wandb::record_train(&w, &config, &data_name, &trained)?;
        eprintln!(
            "W&B: offline run in {} (upload with `wandb sync`)",
            dir.display()
        );
    }
    let metrics = trained.metrics;
    print_summary(&metrics, &args.out);
    if args.json {
        super::emit(&serde_json::to_string_pretty(&metrics)?)?;
    }
    Ok(())
}

/// The evaluation as metrics (fold scores as steps), the dataset digest as a tag, and the
/// model directory, metrics.json and report.html as artifacts.
fn record(run: &mut crate::tracking::Run, trained: &train::Trained, out: &std::path::Path) {
    let m = &trained.metrics;
    run.log_metric("accuracy", m.accuracy, 0);
    run.log_metric("kappa", m.kappa, 0);
    for f in &m.folds {
        run.log_metric("fold_accuracy", f.accuracy, f.fold as i64);
        run.log_metric("fold_kappa", f.kappa, f.fold as i64);
    }
    for (s, sc) in &m.subjects {
        run.log_metric(format!("subject_{s}_accuracy"), sc.accuracy, 0);
    }
    for (class, r) in &m.recall {
        run.log_metric(format!("recall_{class}"), *r, 0);
    }
    run.log_metric("n_trials", m.n_trials as f64, 0);
    run.log_metric("evaluation_seconds", m.evaluation_seconds, 0);
    run.log_metric("fit_seconds", m.fit_seconds, 0);
    run.set_tag("bciops.dataset_sha256", &trained.dataset_sha256);
    // Only local files can be logged (an output given as an object-store URI is skipped).
    if !out.is_dir() {
        return;
    }
    run.log_artifact(out, "model");
    run.log_model(out, "model");
    run.log_artifact(out.join("metrics.json"), "");
    if out.join("report.html").is_file() {
        run.log_artifact(out.join("report.html"), "");
    }
}

fn print_summary(m: &Metrics, out: &Location) {
    eprintln!(
        "{}: accuracy {:.1} % (kappa {:.3}) over {} fold(s) of {} trials; model written to {}",
        m.evaluation,
        m.accuracy * 100.0,
        m.kappa,
        m.folds.len(),
        m.n_trials,
        out
    );
    if m.subjects.len() > 1 {
        for (s, sc) in &m.subjects {
            eprintln!(
                "  subject {s:>3}: accuracy {:5.1} %  kappa {:6.3}  ({} trials)",
                sc.accuracy * 100.0,
                sc.kappa,
                sc.n
            );
        }
    }
    eprintln!(
        "  evaluation {:.2} s, final fit {:.2} s",
        m.evaluation_seconds, m.fit_seconds
    );
}
