//! `bciops tune`: a W&B sweep file run locally on an epochs dataset; `bciops tune merge`
//! combines shard outputs.

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{progress, track, Global};
use crate::model::cv::Evaluation;
use crate::storage::{self, Location, OutputDir};
use crate::tune::journal::Status;
use crate::tune::outputs;
use crate::tune::session::{self, Event, Outcome, TuneConfig};
use crate::tune::sweep;
use crate::Error;

/// Search hyper-parameters with a Weights & Biases sweep file, locally: no sweep server, no
/// account. Every trial is scored with honest cross-validation (CSP fitted inside each fold).
///
/// Methods: `grid` (every combination), `random` (seeded draws), `bayes` (TPE). Trials that
/// cannot work on the data (e.g. 60 CSP components on 22 channels) are recorded as failed with
/// the reason. A journal in OUT makes a killed sweep resume where it stopped (failed trials run
/// again); outputs: trials.csv, trials.json, best.json (for `train --params`), report.html.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TuneArgs {
    #[command(subcommand)]
    pub merge: Option<TuneCommand>,
    /// Epochs dataset directory (from `bciops preprocess`): a path or URI (s3://, gs://).
    #[arg(long, short, value_name = "DIR|URI", required = true)]
    pub data: Option<Location>,
    /// Sweep file in the W&B sweep YAML format (e.g. configs/sweep.yaml): a path or URI.
    #[arg(
        long,
        short,
        value_name = "FILE|URI",
        required_unless_present = "sweep_text"
    )]
    pub sweep: Option<Location>,
    /// The sweep itself, as YAML text, instead of a file (how a compiled Kubeflow pipeline
    /// passes it: as a pipeline parameter).
    #[arg(long, value_name = "YAML", conflicts_with = "sweep")]
    pub sweep_text: Option<String>,
    /// Output directory: journal, trials table, best.json, report.html. A remote URI is
    /// written when the sweep ends (an earlier complete output there is resumed).
    #[arg(long, short, value_name = "DIR|URI", required = true)]
    pub out: Option<Location>,
    /// Evaluation of every trial: `cv:K`, `holdout:F` or `session`.
    #[arg(long = "eval", default_value = "cv:5", value_parser = |s: &str| s.parse::<Evaluation>().map_err(|e| e.to_string()))]
    pub evaluation: Evaluation,
    /// Run at most N trials (with `run_cap`, the smaller wins). Random and bayes sweeps run 50
    /// when neither says.
    #[arg(long, value_name = "N")]
    pub max_trials: Option<usize>,
    /// Threads (default: every core).
    #[arg(long, short, value_name = "N")]
    pub jobs: Option<usize>,
    /// Seed of the folds, random draws and TPE: a sweep is deterministic for a seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run only shard I of N (1-based): a deterministic share of the trials, for splitting a
    /// sweep over machines; combine with `bciops tune merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Parameters the sweep does not vary (JSON, flat or under `params`; default: train's).
    #[arg(long, value_name = "FILE|URI")]
    pub params: Option<Location>,
    /// Model family of every candidate whose sweep does not search `pipeline` (default: the
    /// `--params` file's, else `csp+svm`).
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// Discard OUT's journal and start over instead of resuming.
    #[arg(long)]
    pub restart: bool,
    /// How many of the best trials to print at the end.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Print a JSON summary (best trial, counts) on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub track: track::TrackArgs,
    #[command(flatten)]
    pub wandb: super::wandb::WandbArgs,
}

#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Combine the outputs of sweep shards into one trials table, best.json and report.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard output directories (each with trials.json): paths or URIs.
    #[arg(required = true, value_name = "DIR|URI")]
    pub dirs: Vec<Location>,
    /// Where the combined outputs go: a path or URI.
    #[arg(long, short, value_name = "DIR|URI")]
    pub out: Location,
    /// How many of the best trials to print.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("shard `{s}` is not `I/N` with 1 <= I <= N (e.g. `2/4`)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

pub fn run(args: TuneArgs, global: Global) -> Result<()> {
    if let Some(TuneCommand::Merge(m)) = args.merge {
        return merge(m);
    }
    let (Some(data), Some(out)) = (args.data, args.out) else {
        return Err(Error::Invalid("`tune` needs --data, --sweep and --out".into()).into());
    };
    // What messages and the run record call the sweep.
    let (sweep_path, bytes) = match (&args.sweep, args.sweep_text) {
        (Some(path), _) => (path.to_string(), storage::read_file(path)?),
        (None, Some(text)) => ("--sweep-text".to_owned(), text.into_bytes()),
        (None, None) => {
            return Err(Error::Invalid("`tune` needs --sweep or --sweep-text".into()).into())
        }
    };
    let sweep_sha256 = crate::fsutil::sha256_hex(&bytes);
    let text =
        String::from_utf8(bytes).map_err(|_| Error::malformed(&sweep_path, "is not UTF-8 text"))?;
    let sweep = sweep::parse(&text, &sweep_path)?;
    for note in &sweep.notes {
        eprintln!("note: {note}");
    }
    let base = super::model_flags::ModelFlags {
        pipeline: args.pipeline.clone(),
        set: Vec::new(),
    }
    .resolve(args.params.as_ref())?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if let Some(m) = &sweep.metric {
        if m.goal == sweep::Goal::Minimize && (m.name == "accuracy" || m.name == "kappa") {
            eprintln!(
                "note: the sweep minimizes `{}` (W&B's default goal when `goal` is left out); write `goal: maximize` to find the best model",
                m.name
            );
        }
    }
    let config = TuneConfig {
        sweep,
        sweep_sha256,
        evaluation: args.evaluation,
        seed: args.seed,
        jobs,
        max_trials: args.max_trials,
        shard: args.shard,
        restart: args.restart,
        base,
    };
    let (metric, _) = session::metric_of(&config.sweep)?;
    // Started before the work, so a tracking misconfiguration fails fast.
    let tracker = args.track.open()?;
    let mut run = tracker.start_run(args.track.spec("tune"))?;
    run.log_param("data", data.to_string());
    run.log_param("sweep", sweep_path.clone());
    run.log_param("out", out.to_string());
    run.log_param("evaluation", config.evaluation.to_string());
    run.log_param("seed", config.seed.to_string());
    run.log_param("jobs", config.jobs.to_string());
    if let Some(n) = config.max_trials {
        run.log_param("max_trials", n.to_string());
    }
    if let Some((i, n)) = config.shard {
        run.log_param("shard", format!("{i}/{n}"));
    }
    run.log_param("sweep.sha256", config.sweep_sha256.clone());
    let bar = progress::bar(global, 0, "trials");
    let mut on_event = |e: Event<'_>| match e {
        Event::Start { planned, resumed } => {
            bar.set_length(planned as u64);
            bar.set_position(resumed as u64);
            if resumed > 0 {
                bar.println(format!(
                    "resuming: {resumed} of {planned} trials already in the journal"
                ));
            }
        }
        Event::Preprocessing { overrides } => {
            bar.set_message(format!("preprocessing again for {}", overrides.key()));
        }
        Event::Trial { record, best } => {
            bar.inc(1);
            if let Some(b) = best {
                bar.set_message(format!("best {metric} {b:.4}"));
            }
            if record.status == Status::Failed && !global.quiet {
                bar.println(format!(
                    "trial {} failed: {}",
                    record.id,
                    record.error.as_deref().unwrap_or("?")
                ));
            }
        }
    };
    let fetched = storage::fetch_dir(&data)?;
    let staged = OutputDir::new(&out)?;
    if out.is_remote() && storage::exists(&out.join(storage::MARKER))? {
        // Resume from the sweep's last published output.
        let earlier = storage::fetch_dir(&out)?;
        copy_tree(earlier.path(), staged.path())?;
    }
    let outcome = session::run(fetched.path(), &config, staged.path(), &mut on_event)
        .map_err(|e| fetched.relabel(e))
        .with_context(|| format!("sweep `{sweep_path}` failed"))?;
    bar.finish_and_clear();
    // The runs log their artifacts from the local copy when they finish, so they finish before
    // a remote output's scratch directory is published and removed.
    if !run.is_off() {
        record_trials(&tracker, &args.track, &run, &outcome)?;
        record_sweep(&mut run, &outcome, staged.path());
    }
    args.track.finish(run)?;
    staged.publish()?;
    // After publishing: a W&B directory that cannot be written costs no outputs.
    if let Some(w) = args.wandb.config() {
        let id = super::wandb::sweep_id(&config.sweep_sha256, &outcome);
        let written = super::wandb::record_sweep(&w, &config.sweep, &id, &outcome)?;
        eprintln!(
            "W&B: sweep `{id}`, {} new offline run(s) in {} (upload with `wandb sync`)",
            written.len(),
            w.dir.display()
        );
    }
    let out = out.to_string();
    summarize(&outcome, &out, args.top);
    if args.json {
        super::emit(&serde_json::to_string_pretty(&summary_json(
            &outcome, &out,
        ))?)?;
    }
    all_failed(&outcome)
}

/// Copies a directory's files (one level of subdirectories deep is enough for sweep outputs,
/// but the walk is recursive anyway).
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io("read", from, e))? {
        let entry = entry.map_err(|e| Error::io("read", from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else if entry.file_name() != storage::MARKER {
            std::fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, e))?;
        }
    }
    Ok(())
}

fn merge(args: MergeArgs) -> Result<()> {
    let fetched = args
        .dirs
        .iter()
        .map(storage::fetch_dir)
        .collect::<Result<Vec<_>, Error>>()?;
    let dirs: Vec<&Path> = fetched.iter().map(|f| f.path()).collect();
    let (info, records) = outputs::merge(&dirs)?;
    let staged = OutputDir::new(&args.out)?;
    std::fs::create_dir_all(staged.path()).map_err(|e| Error::io("create", staged.path(), e))?;
    let best = outputs::write_all(staged.path(), &info, &records)?;
    staged.publish()?;
    let out = args.out.to_string();
    let outcome = Outcome {
        info,
        records,
        best,
        ran: 0,
        resumed: 0,
        reached_target: false,
    };
    summarize(&outcome, &out, args.top);
    if args.json {
        super::emit(&serde_json::to_string_pretty(&summary_json(
            &outcome, &out,
        ))?)?;
    }
    all_failed(&outcome)
}

/// One child run per trial (`mlflow.parentRunId` = the sweep's run): its sweep values and full
/// parameters, the metric and fold scores (as steps), its status.
fn record_trials(
    tracker: &crate::tracking::Tracker,
    flags: &track::TrackArgs,
    parent: &crate::tracking::Run,
    o: &Outcome,
) -> Result<(), Error> {
    for r in &o.records {
        let spec = flags
            .spec("tune-trial")
            .parent(parent.id())
            .tag("bciops.trial_id", r.id.clone())
            .tag("bciops.trial_status", r.status.as_str());
        let mut spec = spec;
        spec.name = format!("trial-{}", r.id);
        let mut child = tracker.start_run(spec)?;
        for (k, v) in &r.values {
            child.log_param(
                format!("sweep.{k}"),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            );
        }
        if let Some(p) = &r.params {
            child.log_params(&track::params_of("", p));
        }
        if let Some(v) = r.accuracy {
            child.log_metric("accuracy", v, 0);
        }
        if let Some(v) = r.kappa {
            child.log_metric("kappa", v, 0);
        }
        for (f, (a, k)) in r.fold_accuracy.iter().zip(&r.fold_kappa).enumerate() {
            child.log_metric("fold_accuracy", *a, f as i64);
            child.log_metric("fold_kappa", *k, f as i64);
        }
        child.log_metric("seconds", r.seconds, 0);
        if let Some(e) = &r.error {
            child.set_tag("bciops.error", e.clone());
        }
        let status = match r.status {
            Status::Failed => crate::tracking::RunStatus::Failed,
            _ => crate::tracking::RunStatus::Finished,
        };
        child.finish(status)?;
    }
    Ok(())
}

/// The sweep's outcome on its own run: counts, the best trial, and the outputs as artifacts.
fn record_sweep(run: &mut crate::tracking::Run, o: &Outcome, dir: &Path) {
    run.log_metric("trials", o.records.len() as f64, 0);
    run.log_metric("complete", count(o, Status::Ok) as f64, 0);
    run.log_metric("pruned", count(o, Status::Pruned) as f64, 0);
    run.log_metric("failed", count(o, Status::Failed) as f64, 0);
    run.set_tag("bciops.dataset_sha256", o.info.dataset_sha256.clone());
    if let Some(b) = &o.best {
        run.log_metric(format!("best_{}", b.metric), b.value, 0);
        run.set_tag("bciops.best_trial", b.trial_id.clone());
        run.log_params(&track::params_of("best", &b.params));
    }
    for name in ["trials.csv", "trials.json", "best.json", "report.html"] {
        if dir.join(name).is_file() {
            run.log_artifact(dir.join(name), "");
        }
    }
}

/// A sweep whose every trial failed found nothing: its outputs are kept (the journal says
/// why each failed), but the step fails, so a pipeline does not go on without parameters.
fn all_failed(o: &Outcome) -> Result<()> {
    let failed = count(o, Status::Failed);
    if failed == 0 || failed < o.records.len() {
        return Ok(());
    }
    let first = o
        .records
        .iter()
        .find_map(|r| r.error.as_deref())
        .unwrap_or("no reason recorded");
    Err(Error::Data(format!(
        "every one of the {failed} trials failed, so there are no best parameters (the first: {first})"
    ))
    .into())
}

fn count(o: &Outcome, s: Status) -> usize {
    o.records.iter().filter(|r| r.status == s).count()
}

fn summarize(o: &Outcome, out: &str, top: usize) {
    eprintln!(
        "{} trials: {} complete, {} stopped early, {} failed ({} run now, {} from the journal){}",
        o.records.len(),
        count(o, Status::Ok),
        count(o, Status::Pruned),
        count(o, Status::Failed),
        o.ran,
        o.resumed,
        if o.reached_target {
            "; stopped at the metric's target"
        } else {
            ""
        }
    );
    if top > 0 && !o.records.is_empty() {
        eprint!("{}", outputs::top_table(&o.info, &o.records, top));
    }
    match &o.best {
        Some(b) => eprintln!(
            "best: trial {} with {} {:.4}; parameters in {}",
            b.trial_id,
            b.metric,
            b.value,
            format_args!("{}/best.json", out.trim_end_matches('/'))
        ),
        None => eprintln!("no trial completed, so there is no best.json"),
    }
}

fn summary_json(o: &Outcome, out: &str) -> serde_json::Value {
    serde_json::json!({
        "out": out,
        "metric": o.info.metric,
        "goal": o.info.goal,
        "trials": o.records.len(),
        "complete": count(o, Status::Ok),
        "pruned": count(o, Status::Pruned),
        "failed": count(o, Status::Failed),
        "ran": o.ran,
        "resumed": o.resumed,
        "reached_target": o.reached_target,
        "best": o.best,
    })
}
