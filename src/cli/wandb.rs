//! `--wandb` for `train` and `tune`: the runs as W&B offline runs (see
//! [`crate::tracking::wandb`]), besides whatever `--tracking-uri` records.
//!
//! A sweep is recorded as W&B's agent records one: every trial a run of its own, its config
//! the trial's sweep values in W&B's shape (nested parameters nested), `sweep_id` shared by
//! all trials of the sweep, one history row per fold, and the trial's scores in the summary.

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;
use serde_json::{json, Value};

use crate::error::Result;
use crate::tracking::wandb::{self, OfflineRun, WandbConfig};
use crate::tune::journal::{Record, Status};
use crate::tune::session::Outcome;
use crate::tune::sweep::Sweep;

#[derive(Debug, Clone, Args)]
pub struct WandbArgs {
    /// Also write the run as a W&B offline run in `$WANDB_DIR/wandb/` (upload later with
    /// `wandb sync`); also on with `WANDB_MODE=offline`, never with `WANDB_MODE=disabled`.
    #[arg(long)]
    pub wandb: bool,
}

impl WandbArgs {
    pub fn config(&self) -> Option<WandbConfig> {
        WandbConfig::resolve(self.wandb)
    }
}

/// The W&B id of a sweep: the same sweep file, dataset, evaluation and seed give the same id,
/// so shards of one sweep, and a resumed sweep, share it.
pub fn sweep_id(sweep_sha256: &str, o: &Outcome) -> String {
    wandb::id_from(&format!(
        "sweep:{sweep_sha256}:{}:{}:{}",
        o.info.dataset_sha256, o.info.evaluation, o.info.seed
    ))
}

/// Writes one offline run per trial not already written (a resumed sweep writes only its new
/// trials); returns the directories written.
pub fn record_sweep(
    w: &WandbConfig,
    sweep: &Sweep,
    sweep_id: &str,
    o: &Outcome,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let start = Utc::now();
    for r in &o.records {
        let id = wandb::id_from(&format!("trial:{sweep_id}:{}", r.id));
        if w.existing(&id).is_some() {
            continue;
        }
        let run = OfflineRun {
            id,
            name: format!("trial-{}", r.id),
            job_type: "tune-trial".into(),
            group: String::new(),
            tags: vec!["bciops".into()],
            sweep_id: sweep_id.to_owned(),
            config: sweep.nest(&r.values),
            history: folds(r),
            summary: trial_summary(r),
            exit_code: i32::from(r.status == Status::Failed),
            start,
            runtime_seconds: r.seconds,
        };
        written.push(run.write(w)?);
    }
    Ok(written)
}

fn folds(r: &Record) -> Vec<std::collections::BTreeMap<String, Value>> {
    r.fold_accuracy
        .iter()
        .zip(&r.fold_kappa)
        .enumerate()
        .map(|(f, (a, k))| {
            [
                ("fold".to_owned(), json!(f + 1)),
                ("fold_accuracy".to_owned(), json!(a)),
                ("fold_kappa".to_owned(), json!(k)),
            ]
            .into_iter()
            .collect()
        })
        .collect()
}

fn trial_summary(r: &Record) -> serde_json::Map<String, Value> {
    let mut s = serde_json::Map::new();
    if let Some(a) = r.accuracy {
        s.insert("accuracy".into(), json!(a));
    }
    if let Some(k) = r.kappa {
        s.insert("kappa".into(), json!(k));
    }
    s.insert("status".into(), json!(r.status.as_str()));
    s.insert("trial_id".into(), json!(r.id));
    s.insert("seconds".into(), json!(r.seconds));
    if let Some(e) = &r.error {
        s.insert("error".into(), json!(e));
    }
    s
}

/// Writes `train`'s run: the parameters, evaluation and data as config, one history row per
/// fold, the evaluation's scores as summary.
pub fn record_train(
    w: &WandbConfig,
    config: &crate::train::TrainConfig,
    data: &str,
    trained: &crate::train::Trained,
) -> Result<PathBuf> {
    let m = &trained.metrics;
    let mut cfg = match serde_json::to_value(&config.params) {
        Ok(Value::Object(p)) => p,
        _ => serde_json::Map::new(),
    };
    cfg.insert("evaluation".into(), json!(config.evaluation.to_string()));
    cfg.insert("seed".into(), json!(config.seed));
    cfg.insert("data".into(), json!(data));
    let history = m
        .folds
        .iter()
        .map(|f| {
            [
                ("fold".to_owned(), json!(f.fold + 1)),
                ("fold_accuracy".to_owned(), json!(f.accuracy)),
                ("fold_kappa".to_owned(), json!(f.kappa)),
            ]
            .into_iter()
            .collect()
        })
        .collect();
    let mut summary = serde_json::Map::new();
    summary.insert("accuracy".into(), json!(m.accuracy));
    summary.insert("kappa".into(), json!(m.kappa));
    summary.insert("n_trials".into(), json!(m.n_trials));
    for (class, r) in &m.recall {
        summary.insert(format!("recall_{class}"), json!(r));
    }
    for (s, sc) in &m.subjects {
        summary.insert(format!("subject_{s}_accuracy"), json!(sc.accuracy));
    }
    summary.insert("dataset_sha256".into(), json!(trained.dataset_sha256));
    let run = OfflineRun {
        id: wandb::random_id(),
        name: "train".into(),
        job_type: "train".into(),
        group: String::new(),
        tags: vec!["bciops".into()],
        sweep_id: String::new(),
        config: cfg,
        history,
        summary,
        exit_code: 0,
        start: Utc::now(),
        runtime_seconds: m.evaluation_seconds + m.fit_seconds,
    };
    run.write(w)
}
