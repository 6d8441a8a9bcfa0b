//! `predict` as a library call: a verified model applied to an epochs dataset, or to raw
//! recordings preprocessed exactly as the model's training data was.

use std::path::{Path, PathBuf};

use ndarray::Array3;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::model::artifact::{self, ModelFile};
use crate::model::metrics::Scores;
use crate::preprocess::{self, PreprocessConfig};
use crate::signal::epochs::EpochSpec;

/// What to compute besides labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct PredictOptions {
    pub decision: bool,
    pub proba: bool,
}

/// The answer: one label per trial, optional scores, and agreement with the truth.
#[derive(Debug, Clone, Serialize)]
pub struct Predictions {
    pub model: String,
    pub data: String,
    pub n: usize,
    pub classes: Vec<String>,
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Vec<Vec<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probabilities: Option<Vec<Vec<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kappa: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Vec<Vec<usize>>>,
}

/// Refuses data the model was not trained for, naming the first mismatch.
pub fn check_compatible(model: &ModelFile, data: &Dataset, name: &str) -> Result<()> {
    let p = &model.preprocessing;
    let m = &data.meta;
    if m.channels != p.channels {
        let diff = p
            .channels
            .iter()
            .zip(&m.channels)
            .position(|(a, b)| a != b)
            .map(|i| {
                format!(
                    "channel {} is `{}` in the data but `{}` in the model",
                    i + 1,
                    m.channels[i],
                    p.channels[i]
                )
            })
            .unwrap_or_else(|| {
                format!(
                    "the data has {} channels, the model {}",
                    m.channels.len(),
                    p.channels.len()
                )
            });
        return Err(Error::Data(format!(
            "`{name}` does not fit the model: {diff}"
        )));
    }
    if m.rate != p.rate {
        return Err(Error::Data(format!(
            "`{name}` is sampled at {} Hz but the model at {} Hz",
            m.rate, p.rate
        )));
    }
    if m.window.samples != p.window.samples {
        return Err(Error::Data(format!(
            "`{name}` has trials of {} samples but the model takes {}",
            m.window.samples, p.window.samples
        )));
    }
    // Whether trials were filtered one by one or cut from a filtered recording is allowed to
    // differ: that is exactly the train/serve difference worth measuring.
    let (a, b) = (&m.filter, &p.filter);
    if a.order != b.order || a.band != b.band || a.mode != b.mode {
        return Err(Error::Data(format!(
            "`{name}` was filtered {} N={} {:?} Hz but the model expects {} N={} {:?} Hz",
            a.mode, a.order, a.band, b.mode, b.order, b.band
        )));
    }
    Ok(())
}

/// Preprocesses raw recordings with the model's own preprocessing into a private temporary
/// dataset, so what was trained is exactly what is applied.
fn preprocess_for(model: &ModelFile, inputs: &[PathBuf]) -> Result<(Dataset, TempDir)> {
    let p = &model.preprocessing;
    let mode = p.filter.mode;
    let config = PreprocessConfig {
        subjects: None,
        sessions: None,
        band: (p.filter.band[0], p.filter.band[1]),
        order: p.filter.order,
        mode,
        epochs: EpochSpec {
            events: p.events.clone(),
            classes: model.classes.clone(),
            tmin: p.window.tmin,
            tmax: p.window.tmax,
            keep_rejected: false,
        },
        channels: Some(p.channels.clone()),
        labels_dirs: Vec::new(),
        per_trial: p.filter.per_trial,
        force: false,
    };
    let sources = preprocess::discover(inputs, &config)?;
    let tmp = TempDir::new()?;
    let dir = tmp.0.join("epochs");
    preprocess::run(&sources, &config, &dir, &mut |_, _| {})?;
    Ok((Dataset::load(&dir)?, tmp))
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("bciops-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `path` is an epochs dataset directory (as opposed to recordings).
pub fn is_dataset(path: &Path) -> bool {
    path.join("meta.json").is_file()
}

/// Loads the model, reads the data and predicts.
pub fn run(model_dir: &Path, inputs: &[PathBuf], options: PredictOptions) -> Result<Predictions> {
    let model = artifact::load(model_dir)?;
    let name = inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (data, _tmp) = match inputs {
        [one] if is_dataset(one) => (Dataset::load(one)?, None),
        _ => {
            let (d, t) = preprocess_for(&model, inputs)?;
            (d, Some(t))
        }
    };
    check_compatible(&model, &data, &name)?;
    predict_dataset(&model, &data, model_dir, &name, options)
}

/// Predicts every trial of a loaded dataset.
pub fn predict_dataset(
    model: &ModelFile,
    data: &Dataset,
    model_dir: &Path,
    name: &str,
    options: PredictOptions,
) -> Result<Predictions> {
    let x: &Array3<f32> = &data.x;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        let per = x.len() / x.dim().0.max(1);
        return Err(Error::Data(format!(
            "`{name}`: trial {} holds a non-finite value",
            i / per.max(1)
        )));
    }
    let fitted = &model.fitted;
    let predicted = fitted.predict(x.view().into())?;
    let to_rows = |a: ndarray::Array2<f64>| a.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>();
    let decision = if options.decision {
        Some(to_rows(fitted.scores(x.view().into())?))
    } else {
        None
    };
    let probabilities = if options.proba {
        let p = fitted.predict_proba(x.view().into()).map_err(|e| match e {
            Error::Setting { setting, .. } => Error::setting(
                setting,
                None,
                format!(
                    "model `{}` was trained without probability estimates: train it again \
                     with them",
                    model_dir.display()
                ),
            ),
            other => other,
        })?;
        Some(to_rows(p))
    } else {
        None
    };
    // The dataset's class indices refer to its own class list; map them onto the model's.
    let truth: Option<Vec<usize>> = data
        .y
        .iter()
        .map(|&c| {
            let class = data.meta.classes.get(c as usize)?;
            model.classes.iter().position(|k| k == class)
        })
        .collect();
    let scores = truth.map(|t| Scores::new(&t, &predicted, model.classes.len()));
    Ok(Predictions {
        model: model_dir.display().to_string(),
        data: name.to_owned(),
        n: predicted.len(),
        classes: model.classes.clone(),
        labels: predicted
            .iter()
            .map(|&c| model.classes[c].clone())
            .collect(),
        decision,
        probabilities,
        accuracy: scores.as_ref().map(|s| s.accuracy),
        kappa: scores.as_ref().map(|s| s.kappa),
        confusion: scores.map(|s| s.confusion),
    })
}
