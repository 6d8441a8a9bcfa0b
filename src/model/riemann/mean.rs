//! The affine-invariant Riemannian (Karcher) mean of SPD matrices, by pyRiemann 0.12's
//! `mean_riemann` fixed-point iteration:
//!
//! ```text
//! M ← Σᵢ wᵢ Cᵢ                                  (the Euclidean mean)
//! repeat at most maxiter times:
//!     J ← Σᵢ wᵢ log(M^{-1/2} Cᵢ M^{-1/2})
//!     M ← M^{1/2} exp(ν J) M^{1/2}
//!     if ν‖J‖ < τ: ν ← 0.95 ν, τ ← ν‖J‖ (before the update)  else ν ← ν / 2
//!     stop when ‖J‖_F ≤ tol or ν ≤ tol
//! ```
//!
//! with `ν = 1`, `τ = f64::MAX` at the start. Not reaching `tol` within `maxiter` steps is not
//! an error (pyRiemann warns and returns the last `M`); [`mean_riemann_report`] tells.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use super::eigen::Eig;
use super::spd::{self, SpdError};
use crate::{Error, Result};

/// pyRiemann's default tolerance on `‖J‖_F` (`tol=10e-9`).
pub const DEFAULT_TOL: f64 = 1e-8;
/// pyRiemann's default iteration cap.
pub const DEFAULT_MAXITER: usize = 50;

/// How the iteration ended.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanReport {
    pub mean: Array2<f64>,
    /// Updates of `M` made.
    pub iterations: usize,
    /// `‖J‖_F` of the last update.
    pub crit: f64,
    /// Whether `crit ≤ tol` or `ν ≤ tol` stopped it (rather than `maxiter`).
    pub converged: bool,
}

/// The Riemannian mean of `covs` (matrices × n × n, SPD), optionally weighted (normalised to
/// sum 1, as pyRiemann's `check_weights`).
pub fn mean_riemann(
    covs: ArrayView3<f64>,
    weights: Option<&[f64]>,
    tol: f64,
    maxiter: usize,
) -> Result<Array2<f64>> {
    mean_riemann_report(covs, weights, tol, maxiter).map(|r| r.mean)
}

/// [`mean_riemann`], with how it converged.
pub fn mean_riemann_report(
    covs: ArrayView3<f64>,
    weights: Option<&[f64]>,
    tol: f64,
    maxiter: usize,
) -> Result<MeanReport> {
    let (m, n, n2) = covs.dim();
    if n != n2 {
        return Err(Error::Data(format!(
            "a riemannian mean needs square matrices, got `{n}` × `{n2}`"
        )));
    }
    if m == 0 || n == 0 {
        return Err(Error::Data(format!(
            "a riemannian mean needs at least one non-empty matrix, got `{m}` of `{n}` × `{n}`"
        )));
    }
    if tol.is_nan() || tol < 0.0 {
        return Err(Error::Invalid(format!(
            "riemannian mean tolerance `{tol}` must be at least 0"
        )));
    }
    let w = normalised_weights(weights, m)?;
    for (i, c) in covs.outer_iter().enumerate() {
        if c.iter().any(|v| !v.is_finite()) {
            return Err(not_spd(i, SpdError::NonFinite));
        }
    }

    // Euclidean mean: NumPy's `mean` without weights, a weighted sum with.
    let mut mean = Array2::<f64>::zeros((n, n));
    match weights {
        None => {
            for c in covs.outer_iter() {
                mean += &c;
            }
            mean /= m as f64;
        }
        Some(_) => {
            for (c, &wi) in covs.outer_iter().zip(&w) {
                mean.scaled_add(wi, &c);
            }
        }
    }

    let mut logs = Array3::<f64>::zeros((m, n, n));
    let mut ws = Eig::new(n);
    let mut sqrt = Array2::<f64>::zeros((n, n));
    let mut invsqrt = Array2::<f64>::zeros((n, n));
    let mut j = Array2::<f64>::zeros((n, n));
    let mut step = Array2::<f64>::zeros((n, n));
    let (mut nu, mut tau) = (1.0_f64, f64::MAX);
    let mut crit = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..maxiter {
        spd::decompose_spd(mean.view(), &mut ws).map_err(|e| {
            Error::Numerical(format!(
                "riemannian mean: the running mean {}",
                e.describe()
            ))
        })?;
        ws.reconstruct_into(f64::sqrt, sqrt.view_mut());
        ws.reconstruct_into(|l| 1.0 / l.sqrt(), invsqrt.view_mut());
        log_whitened(covs, invsqrt.view(), logs.view_mut())?;
        // Summed in matrix order, so the result does not depend on the thread count.
        j.fill(0.0);
        for (l, &wi) in logs.outer_iter().zip(&w) {
            j.scaled_add(wi, &l);
        }
        let exp = spd::expm(j.mapv(|v| nu * v).view())
            .map_err(|e| Error::Numerical(format!("riemannian mean: the step {}", e.describe())))?;
        super::eigen::matmul_into(sqrt.view(), exp.view(), step.view_mut());
        super::eigen::matmul_into(step.view(), sqrt.view(), mean.view_mut());
        super::eigen::symmetrise(mean.view_mut());
        iterations += 1;

        crit = j.iter().map(|v| v * v).sum::<f64>().sqrt();
        let h = nu * crit;
        if h < tau {
            nu *= 0.95;
            tau = h;
        } else {
            nu *= 0.5;
        }
        if crit <= tol || nu <= tol {
            converged = true;
            break;
        }
    }
    Ok(MeanReport {
        mean,
        iterations,
        crit,
        converged,
    })
}

/// `logs[i] = log(W covs[i] W)` for every matrix, in parallel.
fn log_whitened(
    covs: ArrayView3<f64>,
    whitener: ArrayView2<f64>,
    mut logs: ArrayViewMut3<f64>,
) -> Result<()> {
    let n = whitener.nrows();
    let outcomes: Vec<std::result::Result<(), SpdError>> = logs
        .as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(n * n)
        .enumerate()
        .map_init(
            || (Eig::new(n), Array2::<f64>::zeros((n, n))),
            |(ws, whitened), (i, out)| {
                let out = ArrayViewMut2::from_shape((n, n), out).expect("chunk of n × n");
                let c = covs.index_axis(Axis(0), i);
                spd::congruence_into(whitener, c, ws.scratch(), whitened.view_mut());
                spd::apply_into(whitened.view(), f64::ln, ws, out)
            },
        )
        .collect();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        outcome.map_err(|e| not_spd(i, e))?;
    }
    Ok(())
}

fn not_spd(i: usize, e: SpdError) -> Error {
    Error::Data(format!(
        "matrix `{i}` {}; hint: estimate covariances with `lwf` or `oas` shrinkage",
        e.describe()
    ))
}

/// Weights normalised to sum 1; equal weights when `None`.
fn normalised_weights(weights: Option<&[f64]>, m: usize) -> Result<Vec<f64>> {
    let Some(w) = weights else {
        return Ok(vec![1.0 / m as f64; m]);
    };
    if w.len() != m {
        return Err(Error::Data(format!(
            "`{}` weights for `{m}` matrices",
            w.len()
        )));
    }
    if let Some(bad) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        return Err(Error::Data(format!(
            "weight `{bad}` is not a finite non-negative number"
        )));
    }
    let sum: f64 = w.iter().sum();
    if sum.is_nan() || sum <= 0.0 {
        return Err(Error::Data("weights sum to `0`".into()));
    }
    Ok(w.iter().map(|v| v / sum).collect())
}
