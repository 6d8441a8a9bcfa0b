//! What the linear heads ([`super::lda::Lda`], [`super::logistic::LogisticRegression`]) share
//! once fitted: scores `X Wᵀ + b`, probabilities and labels with scikit-learn's conventions, and
//! the checks of their inputs.
//!
//! Two classes are one column, as scikit-learn stores them (`coef_` of shape `(1, n_features)`):
//! the score is the log-odds of class 1 over class 0, class 1 is predicted when it is positive,
//! and the probabilities are `[1 − σ(s), σ(s)]`. More classes have one column per class,
//! probabilities by softmax and labels by the first largest score (`argmax`).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[cfg(test)]
pub(crate) mod testdata;

/// A fitted linear decision function over `n_classes` classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// `n_outputs × n_features`: one row for two classes, one per class for more.
    pub coef: Array2<f64>,
    /// One per row of `coef`.
    pub intercept: Array1<f64>,
    pub n_classes: usize,
}

impl Linear {
    pub fn n_features(&self) -> usize {
        self.coef.ncols()
    }

    /// Columns of [`Linear::decision_function`]: 1 for two classes, else `n_classes`.
    pub fn n_outputs(&self) -> usize {
        self.coef.nrows()
    }

    /// Scores, `n_trials × n_outputs` (one column for two classes: scikit-learn's 1-D
    /// `decision_function`, as a column).
    pub fn decision_function(&self, x: ArrayView2<f64>, head: &str) -> Result<Array2<f64>> {
        check_features(x, self.n_features(), head)?;
        let mut out = x.dot(&self.coef.t());
        out += &self.intercept;
        Ok(out)
    }

    /// Class probabilities, `n_trials × n_classes`.
    pub fn predict_proba(&self, x: ArrayView2<f64>, head: &str) -> Result<Array2<f64>> {
        let scores = self.decision_function(x, head)?;
        let mut out = Array2::zeros((x.nrows(), self.n_classes));
        for (s, mut p) in scores.outer_iter().zip(out.outer_iter_mut()) {
            probabilities(
                s.as_slice().expect("a fresh array is contiguous"),
                p.as_slice_mut().expect("a fresh array is contiguous"),
            );
        }
        Ok(out)
    }

    /// Class indices.
    pub fn predict(&self, x: ArrayView2<f64>, head: &str) -> Result<Vec<usize>> {
        let scores = self.decision_function(x, head)?;
        Ok(scores
            .outer_iter()
            .map(|s| label(s.as_slice().expect("a fresh array is contiguous")))
            .collect())
    }

    /// Scores of one trial into `out` (length [`Linear::n_outputs`]), without allocating.
    pub fn decision_one(&self, x: &[f64], out: &mut [f64], head: &str) -> Result<()> {
        check_row(x, self.n_features(), head)?;
        assert_eq!(out.len(), self.n_outputs(), "decision_one: output length");
        for ((o, w), b) in out
            .iter_mut()
            .zip(self.coef.outer_iter())
            .zip(&self.intercept)
        {
            *o = w.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + b;
        }
        Ok(())
    }

    /// Probabilities of one trial into `out` (length `n_classes`), without allocating.
    pub fn proba_one(&self, x: &[f64], out: &mut [f64], head: &str) -> Result<()> {
        assert_eq!(out.len(), self.n_classes, "proba_one: output length");
        let k = self.n_outputs();
        // The scores fit in `out` (k ≤ n_classes); softmax works in place.
        self.decision_one(x, &mut out[..k], head)?;
        if k == 1 {
            let s = out[0];
            probabilities(&[s], out);
        } else {
            softmax_in_place(out);
        }
        Ok(())
    }

    /// The class of one trial, without allocating beyond a few scores on the stack for up to
    /// 16 classes.
    pub fn predict_one(&self, x: &[f64], head: &str) -> Result<usize> {
        let k = self.n_outputs();
        let mut small = [0.0; 16];
        let mut large;
        let scores: &mut [f64] = if k <= small.len() {
            &mut small[..k]
        } else {
            large = vec![0.0; k];
            &mut large
        };
        self.decision_one(x, scores, head)?;
        Ok(label(scores))
    }
}

/// scikit-learn's `LinearClassifierMixin.predict`: one score, class 1 if positive; several,
/// the first largest.
pub fn label(scores: &[f64]) -> usize {
    if scores.len() == 1 {
        usize::from(scores[0] > 0.0)
    } else {
        let mut best = 0;
        for (i, &s) in scores.iter().enumerate().skip(1) {
            if s > scores[best] {
                best = i;
            }
        }
        best
    }
}

/// Probabilities from scores: `[1 − σ(s), σ(s)]` for one score (scipy's `expit`), softmax for
/// several (scikit-learn's `extmath.softmax`: shift by the largest, exponentiate, normalise).
pub fn probabilities(scores: &[f64], out: &mut [f64]) {
    if scores.len() == 1 {
        let p = 1.0 / (1.0 + (-scores[0]).exp());
        out[0] = 1.0 - p;
        out[1] = p;
    } else {
        out.copy_from_slice(scores);
        softmax_in_place(out);
    }
}

fn softmax_in_place(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Checks training data for a head: as many labels as trials, labels below `n_classes`, at
/// least two trials in every class, finite features. Returns the trials per class.
pub fn check_training(
    x: ArrayView2<f64>,
    y: &[usize],
    n_classes: usize,
    head: &str,
) -> Result<Vec<usize>> {
    let (n, p) = x.dim();
    if y.len() != n {
        return Err(Error::Data(format!(
            "{head}: `{n}` trials but `{}` labels",
            y.len()
        )));
    }
    if n_classes < 2 {
        return Err(Error::Data(format!(
            "{head} needs at least 2 classes, got `{n_classes}`"
        )));
    }
    if p == 0 {
        return Err(Error::Data(format!(
            "{head} needs at least one feature, got `0`"
        )));
    }
    let mut counts = vec![0usize; n_classes];
    for (i, &c) in y.iter().enumerate() {
        match counts.get_mut(c) {
            Some(k) => *k += 1,
            None => {
                return Err(Error::Data(format!(
                    "{head}: label `{c}` of trial `{i}` is not below the `{n_classes}` classes"
                )))
            }
        }
    }
    if let Some((class, &count)) = counts.iter().enumerate().find(|(_, &k)| k < 2) {
        return Err(Error::Data(format!(
            "{head}: class `{class}` has `{count}` trials, at least 2 are needed"
        )));
    }
    check_finite(x, head)?;
    Ok(counts)
}

/// Every feature finite, else an error naming the first trial and feature that is not.
pub fn check_finite(x: ArrayView2<f64>, head: &str) -> Result<()> {
    for (i, row) in x.axis_iter(Axis(0)).enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{head}: feature `{j}` of trial `{i}` is `{}`: features must be finite",
                row[j]
            )));
        }
    }
    Ok(())
}

fn check_features(x: ArrayView2<f64>, n_features: usize, head: &str) -> Result<()> {
    if x.ncols() != n_features {
        return Err(Error::Data(format!(
            "{head} was fitted on `{n_features}` features, got `{}`",
            x.ncols()
        )));
    }
    check_finite(x, head)
}

fn check_row(x: &[f64], n_features: usize, head: &str) -> Result<()> {
    if x.len() != n_features {
        return Err(Error::Data(format!(
            "{head} was fitted on `{n_features}` features, got `{}`",
            x.len()
        )));
    }
    if let Some(j) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "{head}: feature `{j}` is `{}`: features must be finite",
            x[j]
        )));
    }
    Ok(())
}
