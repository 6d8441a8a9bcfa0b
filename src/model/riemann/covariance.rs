//! Per-trial spatial covariance matrices, as pyRiemann 0.12's `Covariances(estimator=…)`.
//!
//! Every estimator removes each channel's mean over the trial's samples and divides by the
//! number of samples `n` (not `n − 1`):
//! - `scm`: `X̃ X̃ᵀ / n` (pyRiemann's `covariance_scm`, `assume_centered=False`);
//! - `lwf`: scikit-learn's `ledoit_wolf(X.T)`: `(1 − s) S + s μ I` with `S` the `scm` estimate,
//!   `μ = tr S / p` and the Ledoit–Wolf coefficient `s`;
//! - `oas`: scikit-learn's `oas(X.T)`: the same shrinkage with the Oracle Approximating
//!   Shrinkage coefficient.
//!
//! All arithmetic is float64 whatever the trials' type (pyRiemann computes float32 trials in
//! float32).

use std::fmt;
use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::eigen::symmetrise;
use crate::model::csp::Sample;
use crate::model::linalg;
use crate::{Error, Result};

/// A covariance whose smallest Cholesky pivot is below this fraction of its largest diagonal
/// entry is taken as singular: rank-deficient data (average reference, fewer samples than
/// channels, a flat channel) leaves pivots near 1e-15 relative, even through float32, while
/// full-rank EEG stays many orders of magnitude above. The same threshold as CSP's.
const PD_REL_TOL: f64 = 1e-10;

/// How each trial's covariance is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CovEstimator {
    /// Sample covariance matrix.
    Scm,
    /// Ledoit–Wolf shrinkage.
    Lwf,
    /// Oracle Approximating Shrinkage; the default, as in MOABB's Riemannian pipelines.
    #[default]
    Oas,
}

impl CovEstimator {
    pub const ALL: [CovEstimator; 3] = [CovEstimator::Scm, CovEstimator::Lwf, CovEstimator::Oas];

    pub fn name(self) -> &'static str {
        match self {
            CovEstimator::Scm => "scm",
            CovEstimator::Lwf => "lwf",
            CovEstimator::Oas => "oas",
        }
    }
}

impl fmt::Display for CovEstimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CovEstimator {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        CovEstimator::ALL
            .into_iter()
            .find(|e| e.name() == s)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown covariance estimator `{s}`; expected `scm`, `lwf` or `oas`"
                ))
            })
    }
}

/// The covariance of every trial of `x` (trials × channels × samples): trials × channels ×
/// channels. Trials are estimated in parallel.
///
/// Errors name the first bad trial: non-finite samples, or a covariance that is not positive
/// definite (rank-deficient data; shrinkage, `lwf` or `oas`, makes it definite).
pub fn covariances<T: Sample + Sync>(x: ArrayView3<T>, est: CovEstimator) -> Result<Array3<f64>> {
    let (n_trials, n_channels, n_samples) = x.dim();
    if n_channels == 0 {
        return Err(Error::Data(
            "covariances need at least one channel, got `0`".into(),
        ));
    }
    if n_samples < 2 {
        return Err(Error::Data(format!(
            "covariances need at least 2 samples per trial, got `{n_samples}`"
        )));
    }
    let mut out = Array3::<f64>::zeros((n_trials, n_channels, n_channels));
    // Each trial's outcome; the first failing trial in trial order is reported.
    let outcomes: Vec<std::result::Result<(), String>> = out
        .as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(n_channels * n_channels)
        .enumerate()
        .map_init(
            || Array2::<f64>::zeros((n_channels, n_samples)),
            |centred, (i, cov)| {
                let cov = ArrayViewMut2::from_shape((n_channels, n_channels), cov)
                    .expect("chunk of n × n");
                trial_covariance(x.index_axis(Axis(0), i), est, centred, cov)
            },
        )
        .collect();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        outcome.map_err(|why| Error::Data(format!("trial `{i}`: {why}")))?;
    }
    Ok(out)
}

/// The covariance of one trial (channels × samples), for serving.
pub fn covariance<T: Sample>(trial: ArrayView2<T>, est: CovEstimator) -> Result<Array2<f64>> {
    let (n_channels, n_samples) = trial.dim();
    if n_channels == 0 || n_samples < 2 {
        return Err(Error::Data(format!(
            "a covariance needs at least one channel and 2 samples, got `{n_channels}` × `{n_samples}`"
        )));
    }
    let mut centred = Array2::zeros((n_channels, n_samples));
    let mut cov = Array2::zeros((n_channels, n_channels));
    trial_covariance(trial, est, &mut centred, cov.view_mut()).map_err(Error::Data)?;
    Ok(cov)
}

/// Estimates one trial's covariance into `cov`; `centred` is a channels × samples buffer.
fn trial_covariance<T: Sample>(
    trial: ArrayView2<T>,
    est: CovEstimator,
    centred: &mut Array2<f64>,
    mut cov: ArrayViewMut2<f64>,
) -> std::result::Result<(), String> {
    let (p, n) = trial.dim();
    let nf = n as f64;
    // Centre each channel: NumPy's two-pass mean, then the deviations.
    for (mut dst, src) in centred.rows_mut().into_iter().zip(trial.rows()) {
        let mut sum = 0.0;
        for (d, &s) in dst.iter_mut().zip(src) {
            let v: f64 = s.into();
            *d = v;
            sum += v;
        }
        if !sum.is_finite() {
            return Err("has non-finite values".into());
        }
        let mean = sum / nf;
        dst.mapv_inplace(|v| v - mean);
    }
    general_mat_mul(1.0 / nf, &*centred, &centred.t(), 0.0, &mut cov);
    symmetrise(cov.view_mut());
    let shrinkage = match est {
        CovEstimator::Scm => 0.0,
        CovEstimator::Lwf => ledoit_wolf_shrinkage(cov.view(), centred.view()),
        CovEstimator::Oas => oas_shrinkage(cov.view(), n),
    };
    if shrinkage > 0.0 {
        let mu = cov.diag().sum() / p as f64;
        cov.mapv_inplace(|v| (1.0 - shrinkage) * v);
        cov.diag_mut().mapv_inplace(|d| d + shrinkage * mu);
    }
    if cov.iter().any(|v| !v.is_finite()) {
        return Err("has non-finite values (or values so large their squares overflow)".into());
    }
    linalg::cholesky(cov.view(), PD_REL_TOL).map_err(|_| {
        format!(
            "the `{est}` covariance is not positive definite (rank-deficient data: \
             average-referenced, a flat channel or fewer samples than channels); \
             hint: use `lwf` or `oas` shrinkage"
        )
    })?;
    Ok(())
}

/// scikit-learn's `ledoit_wolf_shrinkage` of centred samples (the columns of `centred`) with
/// empirical covariance `emp`.
fn ledoit_wolf_shrinkage(emp: ArrayView2<f64>, centred: ArrayView2<f64>) -> f64 {
    let (p, n) = centred.dim();
    if p == 1 {
        return 0.0;
    }
    let (pf, nf) = (p as f64, n as f64);
    // Σₜ ‖xₜ‖⁴ (sklearn's `beta_`, the sum of X²ᵀX²).
    let mut fourth = 0.0;
    for t in 0..n {
        let sq: f64 = centred.column(t).iter().map(|v| v * v).sum();
        fourth += sq * sq;
    }
    let mu = emp.diag().sum() / pf;
    // ‖S‖²_F: sklearn's `delta_` after its division by n².
    let emp_sq: f64 = emp.iter().map(|v| v * v).sum();
    let beta = (fourth / nf - emp_sq) / (pf * nf);
    // ‖S − μI‖²_F / p, expanded as sklearn does.
    let delta = (emp_sq - 2.0 * mu * emp.diag().sum() + pf * mu * mu) / pf;
    let beta = beta.min(delta);
    if beta == 0.0 {
        0.0
    } else {
        beta / delta
    }
}

/// scikit-learn's `_oas` shrinkage of `n` samples with empirical covariance `emp`.
fn oas_shrinkage(emp: ArrayView2<f64>, n: usize) -> f64 {
    let p = emp.nrows();
    if p == 1 {
        return 0.0;
    }
    let pf = p as f64;
    let alpha = emp.iter().map(|v| v * v).sum::<f64>() / (pf * pf);
    let mu = emp.diag().sum() / pf;
    let mu_sq = mu * mu;
    let num = alpha + mu_sq;
    let den = (n as f64 + 1.0) * (alpha - mu_sq / pf);
    if den == 0.0 {
        1.0
    } else {
        (num / den).min(1.0)
    }
}
