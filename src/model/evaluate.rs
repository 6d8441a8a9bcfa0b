//! Cross-validated evaluation of a model family. CSP is fitted inside every fold, on
//! that fold's training trials only; test trials never touch a fit.

use std::collections::BTreeMap;
use std::time::Instant;

use ndarray::{ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::classifier::{self, CheckedParams};
use crate::model::csp::{self, Csp, Scatter};
use crate::model::cv::{self, Evaluation};
use crate::model::family::{DataShape, Labelled, Params, Trials3};
use crate::model::metrics::Scores;

/// One fold's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldResult {
    pub fold: usize,
    pub n_train: usize,
    pub n_test: usize,
    pub accuracy: f64,
    pub kappa: f64,
    pub seconds: f64,
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluated {
    pub evaluation: String,
    pub seed: u64,
    /// Mean over folds.
    pub accuracy: f64,
    pub kappa: f64,
    pub folds: Vec<FoldResult>,
    /// Every tested trial's prediction pooled (each trial once under k-fold).
    pub pooled: Scores,
    /// Pooled scores of each subject's tested trials.
    pub per_subject: BTreeMap<u32, Scores>,
    /// The prediction of each trial, where it was tested.
    #[serde(skip)]
    pub predictions: Vec<Option<usize>>,
    /// The fold that tested each trial.
    #[serde(skip)]
    pub fold_of: Vec<Option<usize>>,
}

/// What the evaluation needs to know of each trial besides its data.
#[derive(Debug, Clone, Copy)]
pub struct Trials<'a> {
    /// Class index of each trial, `0..n_classes`.
    pub y: &'a [usize],
    pub n_classes: usize,
    pub subjects: &'a [u32],
    pub sessions: &'a [String],
}

/// A fold's predictions and its wall time.
pub type FoldOutcome = Result<(Vec<usize>, f64)>;

/// Fits one fold from the per-trial scatters (computed once for all folds) and predicts its
/// test trials.
fn run_fold<T: csp::Sample + Sync>(
    x: ArrayView3<T>,
    y: &[usize],
    scatters: &[Scatter],
    n_classes: usize,
    split: &cv::Split,
    params: &CheckedParams,
) -> Result<Vec<usize>> {
    let classes =
        csp::class_scatters(n_classes, split.train.iter().map(|&i| (&scatters[i], y[i])))?;
    let csp = Csp::fit_from_scatters(&classes, &params.csp)?;
    let train_x = x.select(Axis(0), &split.train);
    let train_y: Vec<usize> = split.train.iter().map(|&i| y[i]).collect();
    let features = csp.transform(train_x.view())?;
    let fitted = classifier::fit_on_features(csp, features, &train_y, params)?;
    let test_x = x.select(Axis(0), &split.test);
    fitted.predict(test_x.view())
}

/// The folds of `csp+svm`: every trial's scatter is computed once for all folds, then each
/// fold (on rayon's pool, one per core) fits CSP from its training trials' scatters.
/// `on_fold(fold, predictions, seconds)` is called as each finishes.
pub fn csp_svm_folds<T: csp::Sample + Sync>(
    x: ArrayView3<T>,
    y: &[usize],
    n_classes: usize,
    params: &CheckedParams,
    splits: &[cv::Split],
    on_fold: &(dyn Fn(usize, &[usize], f64) + Sync),
) -> Vec<FoldOutcome> {
    let scatters = match csp::trial_scatters(x) {
        Ok(s) => s,
        Err(e) => return vec![Err(e)],
    };
    splits
        .par_iter()
        .enumerate()
        .map(|(f, split)| {
            let start = Instant::now();
            let out = run_fold(x, y, &scatters, n_classes, split, params)
                .map(|p| (p, start.elapsed().as_secs_f64()));
            if let Ok((pred, secs)) = &out {
                on_fold(f, pred, *secs);
            }
            out
        })
        .collect()
}

/// Evaluates `params` on `x` (trials × channels × samples).
/// Folds run in parallel over the machine's cores; `on_fold` is called as each finishes.
pub fn evaluate<'a>(
    x: Trials3<'a>,
    trials: Trials<'a>,
    params: &Params,
    data: DataShape,
    evaluation: Evaluation,
    seed: u64,
    on_fold: &(dyn Fn(&FoldResult) + Sync),
) -> Result<Evaluated> {
    let Trials {
        y,
        n_classes,
        subjects: trial_subjects,
        sessions,
    } = trials;
    let n = x.n_trials();
    assert_eq!(y.len(), n, "labels and trials differ");
    let splits = cv::splits(evaluation, y, sessions, seed)?;

    // Every fold runs; the first failing fold in fold order is reported, whichever thread
    // finished first.
    let report = |f: usize, pred: &[usize], secs: f64| {
        let split = &splits[f];
        let truth: Vec<usize> = split.test.iter().map(|&i| y[i]).collect();
        let s = Scores::new(&truth, pred, n_classes);
        on_fold(&FoldResult {
            fold: f,
            n_train: split.train.len(),
            n_test: split.test.len(),
            accuracy: s.accuracy,
            kappa: s.kappa,
            seconds: secs,
        });
    };
    let set = Labelled {
        x,
        y,
        n_classes,
        data,
    };
    let mut outcomes = params
        .family()
        .evaluate_folds(set, params, &splits, &report);
    if outcomes.len() != splits.len() {
        // Work shared by every fold failed before any fold ran.
        return match outcomes.pop() {
            Some(Err(e)) => Err(e),
            _ => Err(Error::Internal("a family returned too few folds".into())),
        };
    }

    let mut predictions: Vec<Option<usize>> = vec![None; n];
    let mut fold_of: Vec<Option<usize>> = vec![None; n];
    let mut folds = Vec::with_capacity(splits.len());
    for (f, (split, outcome)) in splits.iter().zip(outcomes).enumerate() {
        let (pred, seconds) = outcome.map_err(|e| match e {
            Error::Data(m) => Error::Data(format!("fold {}: {m}", f + 1)),
            other => other,
        })?;
        let truth: Vec<usize> = split.test.iter().map(|&i| y[i]).collect();
        let s = Scores::new(&truth, &pred, n_classes);
        for (&i, &p) in split.test.iter().zip(&pred) {
            predictions[i] = Some(p);
            fold_of[i] = Some(f);
        }
        folds.push(FoldResult {
            fold: f,
            n_train: split.train.len(),
            n_test: split.test.len(),
            accuracy: s.accuracy,
            kappa: s.kappa,
            seconds,
        });
    }
    let tested: Vec<usize> = (0..n).filter(|&i| predictions[i].is_some()).collect();
    let truth: Vec<usize> = tested.iter().map(|&i| y[i]).collect();
    let pred: Vec<usize> = tested.iter().filter_map(|&i| predictions[i]).collect();
    let pooled = Scores::new(&truth, &pred, n_classes);
    let mut per_subject = BTreeMap::new();
    let mut subjects: Vec<u32> = tested.iter().map(|&i| trial_subjects[i]).collect();
    subjects.sort_unstable();
    subjects.dedup();
    for s in subjects {
        let idx: Vec<usize> = tested
            .iter()
            .copied()
            .filter(|&i| trial_subjects[i] == s)
            .collect();
        let t: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
        let p: Vec<usize> = idx.iter().filter_map(|&i| predictions[i]).collect();
        per_subject.insert(s, Scores::new(&t, &p, n_classes));
    }
    let k = folds.len() as f64;
    Ok(Evaluated {
        evaluation: evaluation.to_string(),
        seed,
        accuracy: folds.iter().map(|f| f.accuracy).sum::<f64>() / k,
        kappa: folds.iter().map(|f| f.kappa).sum::<f64>() / k,
        folds,
        pooled,
        per_subject,
        predictions,
        fold_of,
    })
}
