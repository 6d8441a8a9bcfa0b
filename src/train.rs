//! `train` as a library call: an epochs dataset in, an evaluated model directory out.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use ndarray::Axis;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::artifact::{self, DatasetRef, ModelFile, Preprocessing};
use crate::model::cv::Evaluation;
use crate::model::evaluate::{self, Evaluated, FoldResult, Trials};
use crate::model::family::{self, DataShape, FittedModel, Params};
use crate::model::report::{Report, Spectra};
use crate::signal::montage;

/// What `train` needs besides its input and output.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub params: Params,
    pub evaluation: Evaluation,
    pub seed: u64,
    /// Write `report.html` into the model directory.
    pub report: bool,
    /// Replace a directory at `out` that is not a model bciops wrote (`--force`).
    pub force: bool,
    /// The tracking run training in, recorded in the model's `MLmodel`.
    pub run_id: Option<String>,
}

/// `metrics.json`: the evaluation's mean scores on top, details below.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub kappa: f64,
    pub evaluation: String,
    pub seed: u64,
    pub n_trials: usize,
    pub classes: Vec<String>,
    /// Recall of each class over the pooled test predictions.
    pub recall: BTreeMap<String, f64>,
    /// `confusion[true][predicted]` over the pooled test predictions.
    pub confusion: Vec<Vec<usize>>,
    pub folds: Vec<FoldResult>,
    /// Subject → pooled scores of its tested trials.
    pub subjects: BTreeMap<String, SubjectScores>,
    /// Wall time of the evaluation and of the final fit, seconds.
    pub evaluation_seconds: f64,
    pub fit_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectScores {
    pub n: usize,
    pub accuracy: f64,
    pub kappa: f64,
}

/// What `train` returns besides the files it wrote.
#[derive(Debug, Clone)]
pub struct Trained {
    /// What `metrics.json` holds.
    pub metrics: Metrics,
    /// The digest of the dataset the model was trained on (as `model.json` records it).
    pub dataset_sha256: String,
}

/// Trains and evaluates, writes the model directory, and returns the metrics.
pub fn run(
    data: &Path,
    out: &Path,
    config: &TrainConfig,
    on_fold: &(dyn Fn(&FoldResult) + Sync),
) -> Result<Trained> {
    run_as(data, &data.display().to_string(), out, config, on_fold)
}

/// As [`run`], recording the dataset in the model as `data_name` (e.g. the `s3://` URI a local
/// copy was downloaded from) instead of its local path.
pub fn run_as(
    data: &Path,
    data_name: &str,
    out: &Path,
    config: &TrainConfig,
    on_fold: &(dyn Fn(&FoldResult) + Sync),
) -> Result<Trained> {
    let dataset = Dataset::load(data)?;
    let meta = &dataset.meta;
    let n_classes = meta.classes.len();
    let y: Vec<usize> = dataset.y.iter().map(|&c| c as usize).collect();
    let (n, channels, samples) = dataset.x.dim();
    let shape = DataShape {
        n_channels: channels,
        n_samples: samples,
        rate: meta.rate,
    };
    let family = config.params.family();
    family.check(&config.params, shape)?;
    if let Some(i) = dataset.x.iter().position(|v| !v.is_finite()) {
        let per_trial = dataset.x.len() / n.max(1);
        return Err(Error::Data(format!(
            "`{}`: trial {} holds a non-finite value",
            data.display(),
            i / per_trial.max(1)
        )));
    }
    let subjects: Vec<u32> = dataset.trials.iter().map(|t| t.subject).collect();
    let sessions: Vec<String> = dataset.trials.iter().map(|t| t.session.clone()).collect();

    let start = Instant::now();
    let evaluated = evaluate::evaluate(
        dataset.x.view().into(),
        Trials {
            y: &y,
            n_classes,
            subjects: &subjects,
            sessions: &sessions,
        },
        &config.params,
        shape,
        config.evaluation,
        config.seed,
        on_fold,
    )?;
    let evaluation_seconds = start.elapsed().as_secs_f64();

    // The final model learns from every training trial: all of them, except under the
    // competition protocol, where the evaluation session stays unseen.
    let start = Instant::now();
    let train: Vec<usize> = match config.evaluation {
        Evaluation::Session => (0..n)
            .filter(|&i| sessions[i].eq_ignore_ascii_case("T"))
            .collect(),
        _ => (0..n).collect(),
    };
    let x_train = dataset.x.select(Axis(0), &train);
    let y_train: Vec<usize> = train.iter().map(|&i| y[i]).collect();
    let fitted = FittedModel(family.fit(
        x_train.view().into(),
        &y_train,
        n_classes,
        &config.params,
        shape,
    )?);
    let fit_seconds = start.elapsed().as_secs_f64();

    let metrics = metrics_of(
        &evaluated,
        &meta.classes,
        n,
        evaluation_seconds,
        fit_seconds,
    );
    let model = ModelFile {
        format: artifact::FORMAT.to_owned(),
        format_version: artifact::FORMAT_VERSION,
        bciops_version: env!("CARGO_PKG_VERSION").to_owned(),
        classes: meta.classes.clone(),
        preprocessing: Preprocessing {
            channels: meta.channels.clone(),
            rate: meta.rate,
            filter: meta.filter.clone(),
            window: meta.window.clone(),
            events: meta.events.clone(),
        },
        params: config.params.clone(),
        seed: config.seed,
        dataset: DatasetRef {
            path: data_name.to_owned(),
            sha256: dataset.sha256.clone(),
            n_trials: n,
        },
        fitted,
    };
    let report = config.report.then(|| {
        let mut report = report_of(&model, &metrics);
        // Spectra of every trial, not only the final fit's: what the data hold per class.
        report.spectra = Spectra::of_trials(
            dataset.x.view(),
            &y,
            n_classes,
            &meta.channels,
            meta.rate,
            Some(meta.filter.band),
        );
        report.to_html()
    });
    let metrics_json =
        serde_json::to_value(&metrics).map_err(|e| Error::encode("the metrics", e))?;
    let extra = [("cv_predictions.csv", cv_predictions_csv(&evaluated, &y))];
    artifact::save(
        out,
        &model,
        &metrics_json,
        report.as_deref(),
        &extra,
        config.run_id.as_deref(),
        config.force,
    )?;
    Ok(Trained {
        metrics,
        dataset_sha256: model.dataset.sha256,
    })
}

/// Each tested trial's fold, truth and prediction: for error analysis, and so a peer
/// implementation can be run on exactly the same folds.
fn cv_predictions_csv(e: &Evaluated, y: &[usize]) -> String {
    let mut out = String::from("index,fold,true,predicted\n");
    for (i, (fold, pred)) in e.fold_of.iter().zip(&e.predictions).enumerate() {
        if let (Some(f), Some(p)) = (fold, pred) {
            out.push_str(&format!("{i},{f},{},{p}\n", y[i]));
        }
    }
    out
}

fn metrics_of(
    e: &Evaluated,
    classes: &[String],
    n: usize,
    evaluation_seconds: f64,
    fit_seconds: f64,
) -> Metrics {
    Metrics {
        accuracy: e.accuracy,
        kappa: e.kappa,
        evaluation: e.evaluation.clone(),
        seed: e.seed,
        n_trials: n,
        classes: classes.to_vec(),
        recall: classes
            .iter()
            .cloned()
            .zip(e.pooled.recall.iter().copied())
            .collect(),
        confusion: e.pooled.confusion.clone(),
        folds: e.folds.clone(),
        subjects: e
            .per_subject
            .iter()
            .map(|(s, sc)| {
                (
                    s.to_string(),
                    SubjectScores {
                        n: sc.n,
                        accuracy: sc.accuracy,
                        kappa: sc.kappa,
                    },
                )
            })
            .collect(),
        evaluation_seconds,
        fit_seconds,
    }
}

fn report_of(model: &ModelFile, m: &Metrics) -> Report {
    let f = &model.preprocessing.filter;
    let mut facts = vec![
        (
            "accuracy".into(),
            format!(
                "{:.1} % (mean over {} fold(s), {})",
                m.accuracy * 100.0,
                m.folds.len(),
                m.evaluation
            ),
        ),
        ("Cohen's kappa".into(), format!("{:.3}", m.kappa)),
        (
            "trials".into(),
            format!("{} ({})", m.n_trials, m.classes.join(", ")),
        ),
        (
            "preprocessing".into(),
            format!(
                "{} channels, {} Hz, Butterworth N={} {}–{} Hz {}, window {}–{} s",
                model.preprocessing.channels.len(),
                model.preprocessing.rate,
                f.order,
                f.band[0],
                f.band[1],
                f.mode,
                model.preprocessing.window.tmin,
                model.preprocessing.window.tmax
            ),
        ),
    ];
    let parts = model.fitted.report(&model.params);
    if model.params.pipeline() != family::DEFAULT {
        facts.push((
            "pipeline".into(),
            format!(
                "{} ({})",
                model.params.pipeline(),
                model.params.family().stages()
            ),
        ));
    }
    facts.extend(parts.facts);
    facts.extend([
        ("seed".into(), model.seed.to_string()),
        (
            "dataset".into(),
            format!(
                "{} (sha256 {})",
                model.dataset.path,
                &model.dataset.sha256[..12]
            ),
        ),
    ]);
    Report {
        title: format!("bciops model — {}", m.classes.join(" vs ")),
        facts,
        classes: m.classes.clone(),
        confusion: m.confusion.clone(),
        folds: m
            .folds
            .iter()
            .map(|f| (format!("{}", f.fold + 1), f.accuracy))
            .collect(),
        subjects: m
            .subjects
            .iter()
            .map(|(s, sc)| (format!("S{s}"), sc.accuracy))
            .collect(),
        chance: 1.0 / m.classes.len().max(1) as f64,
        maps: parts.maps,
        maps_title: parts.maps_title,
        maps_note: parts.maps_note,
        positions: model
            .preprocessing
            .channels
            .iter()
            .map(|c| montage::position(c))
            .collect(),
        channel_names: model.preprocessing.channels.clone(),
        ..Report::default()
    }
}
