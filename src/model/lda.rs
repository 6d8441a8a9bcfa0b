//! Linear discriminant analysis, as scikit-learn 1.9's
//! `LinearDiscriminantAnalysis(solver="lsqr", shrinkage=…)`.
//!
//! - Class priors are the class frequencies; class means are plain averages.
//! - The within-class covariance is `Σₖ priorₖ Cₖ`, each class's `Cₖ` estimated on its own
//!   trials (`_class_cov`): empirically (`/ n`, centred), shrunk by a fixed coefficient
//!   towards `tr(C)/p · I`, or — `auto`, the default here — by Ledoit–Wolf on the class's
//!   standardised features, rescaled back by the features' deviations (`_cov(X, "auto")`).
//! - `coef = lstsq(C, meansᵀ)ᵀ`, `interceptₖ = −½ meanₖ · coefₖ + ln priorₖ`; with two
//!   classes both collapse to class 1 minus class 0, one row (scikit-learn's binary case).
//!
//! `lstsq` is LAPACK's minimum-norm least squares; for the positive definite covariances that
//! shrinkage gives it is the plain solution, found here by Cholesky. A covariance that Cholesky
//! finds (near-)singular — possible only without shrinkage — is solved like `lstsq`, through
//! the pseudo-inverse with scipy's cut-off (singular values below `ε · σ_max` are zero).
//!
//! ```
//! use bciops::model::lda::{Lda, LdaParams};
//! use ndarray::array;
//!
//! let x = array![[0.0, 1.0], [0.2, 0.9], [0.1, 1.2], [2.0, 0.1], [2.1, 0.0], [1.9, -0.2]];
//! let y = [0, 0, 0, 1, 1, 1];
//! let lda = Lda::fit(x.view(), &y, 2, &LdaParams::default())?;
//! assert_eq!(lda.predict(x.view())?, y);
//! # Ok::<(), bciops::Error>(())
//! ```

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::linalg;
use super::linear::{self, Linear};
use super::scaler::StandardScaler;
use crate::{Error, Result};

pub use super::csp::Shrinkage;

const HEAD: &str = "lda";

/// LDA hyper-parameters. The default is the `csp+lda` family's scikit-learn
/// `LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LdaParams {
    /// `none` (empirical), `auto` (Ledoit–Wolf) or a fixed coefficient in `0..=1`.
    pub shrinkage: Shrinkage,
}

impl Default for LdaParams {
    fn default() -> Self {
        LdaParams {
            shrinkage: Shrinkage::Auto,
        }
    }
}

impl LdaParams {
    pub fn shrinkage(mut self, shrinkage: Shrinkage) -> Self {
        self.shrinkage = shrinkage;
        self
    }

    /// A one-line error for a value no fit can use.
    pub fn check(&self) -> Result<()> {
        if let Shrinkage::Fixed(s) = self.shrinkage {
            if !(0.0..=1.0).contains(&s) {
                return Err(Error::Invalid(format!(
                    "lda shrinkage `{s}` must be between 0 and 1"
                )));
            }
        }
        Ok(())
    }
}

/// A fitted LDA.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lda {
    pub params: LdaParams,
    /// scikit-learn's `coef_` and `intercept_` (one row for two classes).
    pub linear: Linear,
    /// Class frequencies in the training data (`priors_`).
    pub priors: Vec<f64>,
    /// `n_classes × n_features` (`means_`).
    pub means: Array2<f64>,
}

impl Lda {
    /// Fits on `x` (trials × features) with labels `y` in `0..n_classes`. Every class needs at
    /// least two trials (a class covariance of one trial is zero).
    pub fn fit(
        x: ArrayView2<f64>,
        y: &[usize],
        n_classes: usize,
        params: &LdaParams,
    ) -> Result<Lda> {
        params.check()?;
        let counts = linear::check_training(x, y, n_classes, HEAD)?;
        let (n, p) = x.dim();
        let priors: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();

        // Means as `np.add.at` sums them: in trial order.
        let mut means = Array2::<f64>::zeros((n_classes, p));
        for (row, &c) in x.outer_iter().zip(y) {
            means.row_mut(c).scaled_add(1.0, &row);
        }
        for (mut m, &c) in means.outer_iter_mut().zip(&counts) {
            m /= c as f64;
        }

        let mut covariance = Array2::<f64>::zeros((p, p));
        let mut members = Vec::with_capacity(n);
        for (class, &prior) in priors.iter().enumerate() {
            members.clear();
            members.extend((0..n).filter(|&i| y[i] == class));
            let xg = x.select(Axis(0), &members);
            let cov = class_covariance(xg, params.shrinkage)?;
            covariance.scaled_add(prior, &cov);
        }

        // coef = C⁻¹ meansᵀ, one column per class.
        let coef_t = solve(&covariance, means.t().to_owned())?;
        let mut coef = coef_t.reversed_axes();
        let mut intercept: Array1<f64> = Array1::from_iter(
            coef.outer_iter()
                .zip(means.outer_iter())
                .zip(&priors)
                .map(|((w, m), prior)| -0.5 * w.dot(&m) + prior.ln()),
        );
        if n_classes == 2 {
            let diff = &coef.row(1) - &coef.row(0);
            coef = diff.insert_axis(Axis(0));
            intercept = Array1::from_elem(1, intercept[1] - intercept[0]);
        }
        Ok(Lda {
            params: params.clone(),
            linear: Linear {
                coef,
                intercept,
                n_classes,
            },
            priors,
            means,
        })
    }

    pub fn n_classes(&self) -> usize {
        self.linear.n_classes
    }

    pub fn n_features(&self) -> usize {
        self.linear.n_features()
    }

    /// `decision_function`, trials × outputs: with two classes ONE column, the log-odds of
    /// class 1 over class 0 (scikit-learn's 1-D result); otherwise one column per class.
    pub fn decision_function(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.linear.decision_function(x, HEAD)
    }

    /// `predict_proba`, trials × classes: `[1 − σ(s), σ(s)]` for two classes, softmax of the
    /// scores for more.
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.linear.predict_proba(x, HEAD)
    }

    pub fn predict(&self, x: ArrayView2<f64>) -> Result<Vec<usize>> {
        self.linear.predict(x, HEAD)
    }

    /// The class of one trial's features, without allocating (serving).
    pub fn predict_one(&self, x: &[f64]) -> Result<usize> {
        self.linear.predict_one(x, HEAD)
    }

    /// One trial's scores into `out` (1 value for two classes, else one per class).
    pub fn decision_one(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.linear.decision_one(x, out, HEAD)
    }

    /// One trial's class probabilities into `out` (one per class).
    pub fn proba_one(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        self.linear.proba_one(x, out, HEAD)
    }
}

/// One class's covariance as scikit-learn's `_cov(Xg, shrinkage)`.
fn class_covariance(xg: Array2<f64>, shrinkage: Shrinkage) -> Result<Array2<f64>> {
    match shrinkage {
        Shrinkage::None => Ok(empirical(centred(xg))),
        Shrinkage::Fixed(s) => {
            let mut cov = empirical(centred(xg));
            shrink(&mut cov, s);
            Ok(cov)
        }
        Shrinkage::Auto => {
            // StandardScaler, then `ledoit_wolf` (which centres again: the mean of the
            // standardised features is zero up to rounding, and is removed as sklearn does).
            let scaler = StandardScaler::fit(xg.view())?;
            let z = centred(scaler.transform(xg.view())?);
            let s = ledoit_wolf_shrinkage(&z);
            let mut cov = empirical(z);
            shrink(&mut cov, s);
            for ((i, j), v) in cov.indexed_iter_mut() {
                *v *= scaler.scale[i] * scaler.scale[j];
            }
            Ok(cov)
        }
    }
}

/// `x` minus its column means.
fn centred(mut x: Array2<f64>) -> Array2<f64> {
    let n = x.nrows() as f64;
    let mean = x.sum_axis(Axis(0)) / n;
    x -= &mean;
    x
}

/// `xᵀx / n` of centred samples.
fn empirical(xc: Array2<f64>) -> Array2<f64> {
    let n = xc.nrows() as f64;
    xc.t().dot(&xc) / n
}

/// `shrunk_covariance`: `(1 − s) C + s · tr(C)/p · I`.
fn shrink(cov: &mut Array2<f64>, s: f64) {
    let mu = cov.diag().sum() / cov.nrows() as f64;
    *cov *= 1.0 - s;
    cov.diag_mut().mapv_inplace(|d| d + s * mu);
}

/// scikit-learn's `ledoit_wolf_shrinkage(z, assume_centered=True)` for centred samples `z`
/// (trials × features); 0 for one feature, as there.
fn ledoit_wolf_shrinkage(z: &Array2<f64>) -> f64 {
    let (n, p) = z.dim();
    if p == 1 {
        return 0.0;
    }
    let (nf, pf) = (n as f64, p as f64);
    // beta_ = Σᵢⱼ (X²ᵀX²)ᵢⱼ = Σₜ (Σⱼ zₜⱼ²)²; mu = Σⱼ Σₜ zₜⱼ² / (n p).
    let mut beta_ = 0.0;
    let mut trace_sum = 0.0;
    for row in z.outer_iter() {
        let sq: f64 = row.iter().map(|v| v * v).sum();
        beta_ += sq * sq;
        trace_sum += sq;
    }
    let emp_trace_sum = trace_sum / nf;
    let mu = emp_trace_sum / pf;
    // delta_ = Σᵢⱼ (zᵀz)ᵢⱼ² / n².
    let gram = z.t().dot(z);
    let delta_ = gram.iter().map(|v| v * v).sum::<f64>() / (nf * nf);
    let beta = (beta_ / nf - delta_) / (pf * nf);
    let delta = (delta_ - 2.0 * mu * emp_trace_sum + pf * mu * mu) / pf;
    let beta = beta.min(delta);
    if beta == 0.0 || delta <= 0.0 {
        0.0
    } else {
        beta / delta
    }
}

/// `lstsq(a, b)` for symmetric positive semi-definite `a`: Cholesky when `a` is clearly
/// positive definite, otherwise the pseudo-inverse with scipy's default cut-off.
fn solve(a: &Array2<f64>, mut b: Array2<f64>) -> Result<Array2<f64>> {
    // Pivots above 1e-10 of the largest diagonal entry: condition number below ~1e10, where
    // Cholesky's and LAPACK's least-squares solutions agree to well within the parity bound.
    if let Ok(l) = linalg::cholesky(a.view(), 1e-10) {
        linalg::solve_lower_in_place(l.view(), &mut b);
        linalg::solve_lower_transpose_in_place(l.view(), &mut b);
        return Ok(b);
    }
    let (values, vectors) = linalg::eigh(a.view()).ok_or_else(|| {
        Error::Numerical("lda: the eigendecomposition of the covariance did not converge".into())
    })?;
    let largest = values.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let cutoff = f64::EPSILON * largest;
    // a⁺ b = V diag(1/λ) Vᵀ b over the eigenvalues above the cut-off.
    let mut vtb = vectors.t().dot(&b);
    for (mut row, &l) in vtb.outer_iter_mut().zip(&values) {
        if l.abs() > cutoff {
            row /= l;
        } else {
            row.fill(0.0);
        }
    }
    Ok(vectors.dot(&vtb))
}

#[cfg(test)]
mod tests;
