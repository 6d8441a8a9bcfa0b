//! L2-regularised logistic regression, as scikit-learn 1.9's `LogisticRegression()` with the
//! lbfgs solver: two classes by the binomial loss (one coefficient row, for class 1), more by
//! the multinomial loss (one row per class), intercepts unpenalised. The objective is
//! scikit-learn's, `mean(lossᵢ) + ‖W‖² / (2 C n)`.
//!
//! It is minimised by argmin's L-BFGS (memory 10, as scipy's) with a More–Thuente line search,
//! from zero as scikit-learn starts. scikit-learn stops when the largest gradient component is
//! below `tol` (1e-4); stopping there on another L-BFGS path would land on another point of
//! that tolerance's neighbourhood, so this solver goes on until the gradient's norm is below
//! `tol · 1e-4` (or `max_iter` iterations): both are then near the same optimum, and the
//! predictions agree wherever scikit-learn's own inexactness does not decide the label.
//!
//! ```
//! use bciops::model::logistic::{LogisticParams, LogisticRegression};
//! use ndarray::array;
//!
//! let x = array![[0.0, 1.0], [0.2, 0.9], [0.1, 1.2], [2.0, 0.1], [2.1, 0.0], [1.9, -0.2]];
//! let y = [0, 0, 0, 1, 1, 1];
//! let lr = LogisticRegression::fit(x.view(), &y, 2, &LogisticParams::default())?;
//! assert_eq!(lr.predict(x.view())?, y);
//! # Ok::<(), bciops::Error>(())
//! ```

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State, TerminationReason};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::linear::{self, Linear};
use crate::{Error, Result};

const HEAD: &str = "logistic regression";

/// How far below scikit-learn's `tol` (on the largest gradient component) the gradient's
/// norm is driven: far enough that the coefficients sit at the optimum to ~1e-6.
const TIGHTER: f64 = 1e-4;

/// Logistic-regression hyper-parameters; the default is scikit-learn's `LogisticRegression()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticParams {
    /// Inverse regularisation strength (`C`), > 0.
    pub c: f64,
    /// L-BFGS iterations at most (`max_iter`), ≥ 1.
    pub max_iter: usize,
    /// scikit-learn's stopping tolerance (`tol`), > 0; see the module documentation.
    pub tol: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams {
            c: 1.0,
            max_iter: 100,
            tol: 1e-4,
        }
    }
}

impl LogisticParams {
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }

    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// A one-line error for a value no fit can use.
    pub fn check(&self) -> Result<()> {
        if !(self.c.is_finite() && self.c > 0.0) {
            return Err(Error::Invalid(format!(
                "logistic regression `c` = `{}` must be a positive number",
                self.c
            )));
        }
        if self.max_iter == 0 {
            return Err(Error::Invalid(
                "logistic regression `max_iter` must be at least 1, got `0`".into(),
            ));
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(Error::Invalid(format!(
                "logistic regression `tol` = `{}` must be a positive number",
                self.tol
            )));
        }
        Ok(())
    }
}

/// A fitted logistic regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogisticRegression {
    pub params: LogisticParams,
    /// scikit-learn's `coef_` and `intercept_` (one row for two classes).
    pub linear: Linear,
    /// L-BFGS iterations taken (`n_iter_`).
    pub n_iter: usize,
    /// False if `max_iter` ended the fit first (scikit-learn's `ConvergenceWarning`).
    pub converged: bool,
}

impl LogisticRegression {
    /// Fits on `x` (trials × features) with labels `y` in `0..n_classes`; every class needs
    /// at least two trials.
    pub fn fit(
        x: ArrayView2<f64>,
        y: &[usize],
        n_classes: usize,
        params: &LogisticParams,
    ) -> Result<LogisticRegression> {
        params.check()?;
        linear::check_training(x, y, n_classes, HEAD)?;
        let (n, p) = x.dim();
        let n_out = if n_classes == 2 { 1 } else { n_classes };
        let objective = Objective {
            x,
            y,
            n_out,
            l2: 1.0 / (params.c * n as f64),
            cache: RefCell::new(Cache {
                w: Array1::from_elem(n_out * (p + 1), f64::NAN),
                cost: 0.0,
                grad: Array1::zeros(n_out * (p + 1)),
                raw: Array2::zeros((n, n_out)),
            }),
        };
        let line_search = MoreThuenteLineSearch::new();
        let solver = LBFGS::new(line_search, 10)
            .with_tolerance_grad(params.tol * TIGHTER)
            .and_then(|s| s.with_tolerance_cost(0.0))
            .map_err(|e| Error::Internal(format!("logistic regression solver: {e}")))?;
        let w0 = Array1::<f64>::zeros(n_out * (p + 1));
        let result = Executor::new(objective, solver)
            .configure(|state| state.param(w0).max_iters(params.max_iter as u64))
            .run()
            .map_err(|e| Error::Numerical(format!("logistic regression did not fit: {e}")))?;
        let state = result.state();
        let converged = !matches!(
            state.get_termination_reason(),
            Some(TerminationReason::MaxItersReached)
        );
        let n_iter = state.get_iter() as usize;
        let w = state
            .get_best_param()
            .ok_or_else(|| Error::Internal("logistic regression: no solution".into()))?;
        if w.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical(
                "logistic regression diverged: a coefficient is not finite".into(),
            ));
        }
        let w = w
            .view()
            .into_shape_with_order((n_out, p + 1))
            .expect("n_out × (p + 1) parameters");
        let coef = w.slice(ndarray::s![.., ..p]).to_owned();
        let intercept = w.column(p).to_owned();
        Ok(LogisticRegression {
            params: params.clone(),
            linear: Linear {
                coef,
                intercept,
                n_classes,
            },
            n_iter,
            converged,
        })
    }

    pub fn n_classes(&self) -> usize {
        self.linear.n_classes
    }

    pub fn n_features(&self) -> usize {
        self.linear.n_features()
    }

    /// `decision_function`, trials × outputs: with two classes ONE column, the log-odds of
    /// class 1 (scikit-learn's 1-D result); otherwise one column per class.
    pub fn decision_function(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.linear.decision_function(x, HEAD)
    }

    /// `predict_proba`, trials × classes: `[1 − σ(s), σ(s)]` for two classes, softmax for
    /// more (the multinomial model's own probabilities).
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

/// scikit-learn's `LinearModelLoss` with `HalfBinomialLoss` (one output) or
/// `HalfMultinomialLoss` (one per class). Parameters are `n_out × (p + 1)`, row-major, the
/// intercept last in each row.
struct Objective<'x, 'y> {
    x: ArrayView2<'x, f64>,
    y: &'y [usize],
    n_out: usize,
    /// `1 / (C n)`.
    l2: f64,
    /// argmin asks for the cost and the gradient at the same point separately; both come from
    /// one pass over the data, kept here with its buffers.
    cache: RefCell<Cache>,
}

struct Cache {
    w: Array1<f64>,
    cost: f64,
    grad: Array1<f64>,
    /// `n × n_out` scores, overwritten by the pointwise gradients.
    raw: Array2<f64>,
}

impl Objective<'_, '_> {
    fn evaluate(&self, w: &Array1<f64>) {
        let mut cache = self.cache.borrow_mut();
        if cache.w == *w {
            return;
        }
        let Cache {
            w: cached_w,
            cost,
            grad,
            raw,
        } = &mut *cache;
        let (n, p) = self.x.dim();
        let k = self.n_out;
        let w2 = w
            .view()
            .into_shape_with_order((k, p + 1))
            .expect("n_out × (p + 1) parameters");
        let coef = w2.slice(ndarray::s![.., ..p]);
        ndarray::linalg::general_mat_mul(1.0, &self.x, &coef.t(), 0.0, raw);
        *raw += &w2.column(p);
        let mut loss = 0.0;
        if k == 1 {
            for (r, &yi) in raw.iter_mut().zip(self.y) {
                let target = if yi == 1 { 1.0 } else { 0.0 };
                loss += log1pexp(*r) - target * *r;
                *r = expit(*r) - target;
            }
        } else {
            for (mut row, &yi) in raw.outer_iter_mut().zip(self.y) {
                let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                // log Σ exp(raw) − raw_y, both shifted by `max`.
                let shifted_y = row[yi] - max;
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                loss += sum.ln() - shifted_y;
                for (c, v) in row.iter_mut().enumerate() {
                    *v = *v / sum - if c == yi { 1.0 } else { 0.0 };
                }
            }
        }
        let nf = n as f64;
        let coef_sq: f64 = coef.iter().map(|v| v * v).sum();
        *cost = loss / nf + 0.5 * self.l2 * coef_sq;
        let mut g2 = grad
            .view_mut()
            .into_shape_with_order((k, p + 1))
            .expect("n_out × (p + 1) gradient");
        // ∇W = Gᵀ X / n + l2 · W; ∇b = Σᵢ Gᵢ / n.
        let (mut g_coef, mut g_int) = g2.view_mut().split_at(Axis(1), p);
        g_coef.assign(&coef);
        ndarray::linalg::general_mat_mul(1.0 / nf, &raw.t(), &self.x, self.l2, &mut g_coef);
        g_int.column_mut(0).assign(&(raw.sum_axis(Axis(0)) / nf));
        cached_w.assign(w);
    }
}

impl CostFunction for Objective<'_, '_> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, w: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        self.evaluate(w);
        Ok(self.cache.borrow().cost)
    }
}

impl Gradient for Objective<'_, '_> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, w: &Self::Param) -> std::result::Result<Array1<f64>, argmin::core::Error> {
        self.evaluate(w);
        Ok(self.cache.borrow().grad.clone())
    }
}

/// `log(1 + eˣ)` without overflow or cancellation (the branches of scikit-learn's
/// `_loss.pyx` `log1pexp`).
fn log1pexp(x: f64) -> f64 {
    if x <= -37.0 {
        x.exp()
    } else if x <= -2.0 {
        x.exp().ln_1p()
    } else if x <= 18.0 {
        (1.0 + x.exp()).ln()
    } else if x <= 33.3 {
        x + (-x).exp()
    } else {
        x
    }
}

/// The logistic function `1 / (1 + e⁻ˣ)`.
fn expit(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests;
