//! Evaluating many hyper-parameter candidates on one dataset, sharing the work they share.
//!
//! A sweep's candidates differ in a few parameters, so most of the cross-validation work is
//! common: the folds, every trial's covariance, every fold's class covariances, and the CSP fit
//! and features of every distinct CSP setting. These are computed once; each candidate then
//! costs only its SVM fits. Results equal `evaluate::evaluate` run on each candidate alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ndarray::{Array2, Array3, ArrayView3, Axis};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::classifier::{CheckedParams, Head};
use crate::model::csp::{self, Csp, CspParams, Scatter};
use crate::model::cv::{self, Evaluation, Split};
use crate::model::evaluate::Trials;
use crate::model::family::{csp_svm::CspSvm, DataShape, Family, Labelled, Params};
use crate::model::metrics::Scores;

/// The outcome of one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialResult {
    pub params: Params,
    /// Mean over the folds run; None when the candidate failed.
    pub accuracy: Option<f64>,
    pub kappa: Option<f64>,
    pub fold_accuracy: Vec<f64>,
    pub fold_kappa: Vec<f64>,
    /// Stopped early by the pruning rule after `fold_accuracy.len()` folds.
    pub pruned: bool,
    /// Why the candidate could not be evaluated (e.g. more components than channels).
    pub error: Option<String>,
    pub seconds: f64,
}

/// CSP features of every trial under each fold's CSP, for one CSP setting.
type FoldFeatures = std::result::Result<Vec<Array2<f64>>, String>;

/// Decides after each fold whether a candidate stops early: `(candidate index, fold
/// accuracies so far, fold kappas so far) -> stop`.
pub type Prune<'p> = dyn Fn(usize, &[f64], &[f64]) -> bool + Sync + 'p;

/// Work shared by every candidate of a sweep, kept across calls to [`Prepared::evaluate`]: the
/// folds, every trial's scatter, every fold's class scatters and, once computed, the per-fold
/// CSP features of each CSP setting.
pub struct Prepared {
    y: Vec<usize>,
    n_classes: usize,
    n_channels: usize,
    splits: Vec<Split>,
    scatters: Vec<Scatter>,
    /// `fold_classes[f][k]`: class `k`'s scatter over fold `f`'s training trials.
    fold_classes: Vec<Vec<Scatter>>,
    features: Mutex<HashMap<String, Arc<FoldFeatures>>>,
    /// The trials themselves, for families without a shared-work path (float32, as datasets
    /// hold them).
    x: Array3<f32>,
    data: DataShape,
}

impl Prepared {
    /// Computes the folds of `evaluation` (from `seed`) and the scatters everything else needs.
    pub fn new<T: csp::Sample + Sync>(
        x: ArrayView3<'_, T>,
        trials: Trials<'_>,
        rate: f64,
        evaluation: Evaluation,
        seed: u64,
    ) -> Result<Prepared> {
        let splits = cv::splits(evaluation, trials.y, trials.sessions, seed)?;
        let scatters = csp::trial_scatters(x)?;
        let fold_classes = splits
            .iter()
            .map(|s| {
                csp::class_scatters(
                    trials.n_classes,
                    s.train.iter().map(|&i| (&scatters[i], trials.y[i])),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Prepared {
            y: trials.y.to_vec(),
            n_classes: trials.n_classes,
            n_channels: x.len_of(Axis(1)),
            splits,
            scatters,
            fold_classes,
            features: Mutex::new(HashMap::new()),
            x: x.mapv(|v| Into::<f64>::into(v) as f32),
            data: DataShape {
                n_channels: x.len_of(Axis(1)),
                n_samples: x.len_of(Axis(2)),
                rate,
            },
        })
    }

    pub fn n_folds(&self) -> usize {
        self.splits.len()
    }

    /// Fits the CSP of each fold and computes every trial's features with it.
    fn csp_features(&self, params: &CspParams) -> FoldFeatures {
        self.fold_classes
            .iter()
            .enumerate()
            .map(|(f, classes)| {
                let csp = Csp::fit_from_scatters(classes, params)
                    .map_err(|e| format!("fold {}: {e}", f + 1))?;
                csp.transform_scatters(&self.scatters)
                    .map_err(|e| format!("fold {}: {e}", f + 1))
            })
            .collect()
    }

    /// Fits the scaler and SVM of `params` on each fold's training features and scores the
    /// test trials, fold by fold, asking `prune` after each whether to go on.
    fn score(
        &self,
        params: &CheckedParams,
        features: &[Array2<f64>],
        stop: impl Fn(&[f64], &[f64]) -> bool,
    ) -> Result<(Vec<f64>, Vec<f64>, bool)> {
        let y = &self.y;
        let mut accuracy = Vec::with_capacity(self.splits.len());
        let mut kappa = Vec::with_capacity(self.splits.len());
        for (f, (split, all)) in self.splits.iter().zip(features).enumerate() {
            let train = all.select(Axis(0), &split.train);
            let train_y: Vec<usize> = split.train.iter().map(|&i| y[i]).collect();
            let head = Head::fit(train, &train_y, params)?;
            let predicted = head.predict(all.select(Axis(0), &split.test))?;
            let truth: Vec<usize> = split.test.iter().map(|&i| y[i]).collect();
            let s = Scores::new(&truth, &predicted, self.n_classes);
            accuracy.push(s.accuracy);
            kappa.push(s.kappa);
            if f + 1 < self.splits.len() && stop(&accuracy, &kappa) {
                return Ok((accuracy, kappa, true));
            }
        }
        Ok((accuracy, kappa, false))
    }

    /// Fits and scores a candidate of a family without shared work, fold by fold, asking
    /// `stop` after each whether to go on.
    fn score_alone(
        &self,
        params: &Params,
        stop: impl Fn(&[f64], &[f64]) -> bool,
    ) -> Result<(Vec<f64>, Vec<f64>, bool)> {
        let y = &self.y;
        let mut accuracy = Vec::with_capacity(self.splits.len());
        let mut kappa = Vec::with_capacity(self.splits.len());
        for f in 0..self.splits.len() {
            let split = &self.splits[f..=f];
            let set = Labelled {
                x: self.x.view().into(),
                y,
                n_classes: self.n_classes,
                data: self.data,
            };
            let outcome = params
                .family()
                .evaluate_folds(set, params, split, &|_, _, _| {})
                .pop()
                .unwrap_or_else(|| Err(Error::Internal("no fold outcome".into())));
            let (predicted, _) = outcome.map_err(|e| match e {
                Error::Data(m) => Error::Data(format!("fold {}: {m}", f + 1)),
                other => other,
            })?;
            let truth: Vec<usize> = split[0].test.iter().map(|&i| y[i]).collect();
            let s = Scores::new(&truth, &predicted, self.n_classes);
            accuracy.push(s.accuracy);
            kappa.push(s.kappa);
            if f + 1 < self.splits.len() && stop(&accuracy, &kappa) {
                return Ok((accuracy, kappa, true));
            }
        }
        Ok((accuracy, kappa, false))
    }

    /// Evaluates every candidate on up to `jobs` threads. `prune` may stop a candidate after
    /// any fold but the last; `on_result` is called as each candidate finishes.
    pub fn evaluate(
        &self,
        candidates: &[Params],
        jobs: usize,
        prune: &Prune<'_>,
        on_result: &(dyn Fn(usize, &TrialResult) + Sync),
    ) -> Result<Vec<TrialResult>> {
        // Check every candidate once; the invalid ones fail with their reason, the rest are
        // grouped by CSP setting so each setting's CSP is fitted once per fold, ever.
        // `csp+svm` candidates share CSP fits; the other families run alone (`None` here).
        let checked: Vec<std::result::Result<Option<CheckedParams>, String>> = candidates
            .iter()
            .map(|p| {
                if p.pipeline() != CspSvm.name() {
                    return p
                        .family()
                        .check(p, self.data)
                        .map(|_| None)
                        .map_err(|e| e.to_string());
                }
                CspSvm::typed(p)
                    .and_then(|m| m.check(self.n_channels))
                    .map(Some)
                    .map_err(|e| e.to_string())
            })
            .collect();
        let mut keys: Vec<Option<String>> = Vec::with_capacity(candidates.len());
        let mut missing: Vec<(String, CspParams)> = Vec::new();
        {
            let cache = self.lock_features();
            for c in &checked {
                keys.push(match c {
                    Ok(Some(p)) => {
                        let key = serde_json::to_string(&p.csp)
                            .map_err(|e| Error::encode("csp parameters", e))?;
                        if !cache.contains_key(&key) && !missing.iter().any(|(k, _)| *k == key) {
                            missing.push((key.clone(), p.csp.clone()));
                        }
                        Some(key)
                    }
                    Ok(None) | Err(_) => None,
                });
            }
        }
        let jobs = jobs.max(1);
        let computed = parallel_map(missing.len(), jobs, |i| self.csp_features(&missing[i].1));
        let features: Vec<Option<Arc<FoldFeatures>>> = {
            let mut cache = self.lock_features();
            for ((key, _), f) in missing.into_iter().zip(computed) {
                cache.insert(key, Arc::new(f));
            }
            keys.iter()
                .map(|k| k.as_ref().and_then(|k| cache.get(k).cloned()))
                .collect()
        };
        let results: Vec<TrialResult> = parallel_map(candidates.len(), jobs, |i| {
            let start = Instant::now();
            let outcome = match (&checked[i], features[i].as_deref()) {
                (Err(reason), _) => Err(reason.clone()),
                (Ok(None), _) => self
                    .score_alone(&candidates[i], |acc, kap| prune(i, acc, kap))
                    .map_err(|e| e.to_string()),
                (Ok(Some(_)), Some(Err(reason))) => Err(reason.clone()),
                (Ok(Some(p)), Some(Ok(f))) => self
                    .score(p, f, |acc, kap| prune(i, acc, kap))
                    .map_err(|e| e.to_string()),
                (Ok(Some(_)), None) => Err("internal: no CSP setting".to_owned()),
            };
            let result = match outcome {
                Ok((acc, kap, pruned)) => TrialResult {
                    params: candidates[i].clone(),
                    accuracy: Some(mean(&acc)),
                    kappa: Some(mean(&kap)),
                    fold_accuracy: acc,
                    fold_kappa: kap,
                    pruned,
                    error: None,
                    seconds: start.elapsed().as_secs_f64(),
                },
                Err(reason) => TrialResult {
                    params: candidates[i].clone(),
                    accuracy: None,
                    kappa: None,
                    fold_accuracy: Vec::new(),
                    fold_kappa: Vec::new(),
                    pruned: false,
                    error: Some(reason),
                    seconds: start.elapsed().as_secs_f64(),
                },
            };
            on_result(i, &result);
            result
        });
        Ok(results)
    }

    fn lock_features(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FoldFeatures>>> {
        // A poisoned lock only means another thread panicked mid-insert of a whole entry.
        self.features.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Evaluates every candidate with `evaluation` (the same folds for all, from `seed`) on up to
/// `jobs` threads, without pruning. `on_result` is called as each candidate finishes.
#[allow(clippy::too_many_arguments)] // the one-call form of `Prepared::new` + `evaluate`
pub fn run<'a, T: csp::Sample + Sync>(
    x: ArrayView3<'a, T>,
    trials: Trials<'a>,
    candidates: &[Params],
    rate: f64,
    evaluation: Evaluation,
    seed: u64,
    jobs: usize,
    on_result: &(dyn Fn(usize, &TrialResult) + Sync),
) -> Result<Vec<TrialResult>> {
    Prepared::new(x, trials, rate, evaluation, seed)?.evaluate(
        candidates,
        jobs,
        &|_, _, _| false,
        on_result,
    )
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `f(0..n)` on up to `jobs` threads, results in index order (rayon's indexed `collect`).
/// `--jobs` bounds the threads, so the work runs on a pool of that size rather than the
/// global one (a pool costs what the scoped threads it replaced cost: one spawn per thread).
fn parallel_map<R: Send>(n: usize, jobs: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let run = || (0..n).into_par_iter().map(&f).collect();
    match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.clamp(1, n.max(1)))
        .build()
    {
        Ok(pool) => pool.install(run),
        // The OS refused the threads: the global pool still gives the same results.
        Err(_) => run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::classifier::ModelParams;
    use crate::model::evaluate;
    use crate::model::family::csp_svm::params_of;
    use ndarray::Array3;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Mixed Gaussian sources with a class-dependent gain on one source per class.
    fn data(n: usize, channels: usize, samples: usize) -> (Array3<f64>, Vec<usize>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
        let mixing = Array2::from_shape_fn((channels, channels), |_| normal());
        let y: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let mut x = Array3::zeros((n, channels, samples));
        for (i, mut trial) in x.outer_iter_mut().enumerate() {
            let s = Array2::from_shape_fn((channels, samples), |(c, _)| {
                (if c == y[i] { 1.6 } else { 1.0 }) * normal()
            });
            trial.assign(&mixing.dot(&s));
        }
        (x, y)
    }

    #[test]
    fn shared_work_gives_the_same_scores_as_evaluating_each_candidate_alone() {
        let (x, y) = data(60, 6, 100);
        let subjects = vec![1u32; 60];
        let sessions = vec!["T".to_owned(); 60];
        let trials = Trials {
            y: &y,
            n_classes: 2,
            subjects: &subjects,
            sessions: &sessions,
        };
        let base = ModelParams::default();
        let candidates = [
            ModelParams {
                n_components: 2,
                kernel: "linear".parse().unwrap(),
                ..base.clone()
            },
            ModelParams {
                n_components: 2,
                c: 0.5,
                ..base.clone()
            },
            ModelParams {
                n_components: 4,
                standardize: true,
                ..base.clone()
            },
            ModelParams {
                n_components: 60,
                ..base.clone()
            },
        ];
        let candidates: Vec<Params> = candidates.iter().map(params_of).collect();
        let seen = AtomicUsize::new(0);
        let results = run(
            x.view(),
            trials,
            &candidates,
            250.0,
            Evaluation::KFold(3),
            5,
            2,
            &|_, _| {
                seen.fetch_add(1, Ordering::Relaxed);
            },
        )
        .unwrap();
        assert_eq!(
            seen.load(Ordering::Relaxed),
            4,
            "every candidate is reported"
        );
        for (p, r) in candidates.iter().zip(&results).take(3) {
            let shape = DataShape {
                n_channels: 6,
                n_samples: 100,
                rate: 250.0,
            };
            let alone = evaluate::evaluate(
                x.view().into(),
                trials,
                p,
                shape,
                Evaluation::KFold(3),
                5,
                &|_| {},
            )
            .unwrap();
            assert_eq!(r.accuracy, Some(alone.accuracy), "{p:?}");
            assert_eq!(r.kappa, Some(alone.kappa));
            let folds: Vec<f64> = alone.folds.iter().map(|f| f.accuracy).collect();
            assert_eq!(r.fold_accuracy, folds);
        }
        // 60 components on 6 channels cannot work: recorded as failed with the reason.
        assert_eq!(results[3].accuracy, None);
        assert!(
            results[3].error.as_deref().unwrap().contains("`60`"),
            "{:?}",
            results[3].error
        );
    }
}
