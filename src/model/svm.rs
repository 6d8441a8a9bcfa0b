//! Support vector classification with scikit-learn `SVC` semantics.
//!
//! Training runs our port of libsvm's SMO solver (`svm/smo.rs`, the solver scikit-learn's `SVC`
//! uses: WSS3 working sets, shrinking, `f32` kernel cache) on one binary problem at a time,
//! with the rows ordered as libsvm orders them, so decision values equal scikit-learn's to
//! rounding. The fitted [`SvmModel`] is a plain serde struct with its own prediction code; one
//! trial costs one pass over the support vectors.
//!
//! ```
//! use bciops::model::svm::{Gamma, Kernel, SvmParams};
//! use ndarray::array;
//!
//! let x = array![[0.0, 0.1], [0.2, 0.0], [1.0, 1.1], [1.2, 0.9]];
//! let y = array![0_i64, 0, 1, 1];
//! let model = SvmParams::new()
//!     .kernel(Kernel::Rbf)
//!     .gamma(Gamma::Scale)
//!     .c(10.0)
//!     .check()?
//!     .fit(x.view(), y.view())?;
//! assert_eq!(model.predict_one(&[1.1, 1.0])?, 1);
//! # Ok::<(), bciops::Error>(())
//! ```
//!
//! Conventions follow scikit-learn: classes are the sorted distinct labels; with two classes
//! there is one decision column and a positive value means `classes[1]`; with more, one-vs-one
//! machines vote (ties go to the lower class) and [`SvmModel::decision_function`] gives
//! sklearn's default `decision_function_shape='ovr'` transform of the pairwise values.

mod params;
mod probability;
mod smo;
#[cfg(test)]
mod tests;
mod train;

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

pub(crate) use params::number_or_text;
pub use params::{CheckedSvmParams, Gamma, Kernel, Multiclass, SvmParams};
pub use probability::Platt;

use crate::{Error, Result};

/// A kernel with every coefficient resolved, as used at prediction time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FittedKernel {
    Linear,
    /// `exp(-gamma |x-y|²)`
    Rbf {
        gamma: f64,
    },
    /// `(gamma x·y + coef0)^degree`
    Poly {
        gamma: f64,
        coef0: f64,
        degree: u32,
    },
    /// `tanh(gamma x·y + coef0)`
    Sigmoid {
        gamma: f64,
        coef0: f64,
    },
}

impl FittedKernel {
    /// The kernel value of two feature vectors of equal length.
    #[inline]
    pub fn eval(&self, a: &[f64], b: &[f64]) -> f64 {
        match *self {
            FittedKernel::Linear => dot(a, b),
            FittedKernel::Rbf { gamma } => {
                let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                (-gamma * d2).exp()
            }
            FittedKernel::Poly {
                gamma,
                coef0,
                degree,
            } => smo::powi(gamma * dot(a, b) + coef0, degree),
            FittedKernel::Sigmoid { gamma, coef0 } => (gamma * dot(a, b) + coef0).tanh(),
        }
    }

    /// The resolved `gamma` (sklearn's `SVC._gamma`), where the kernel has one.
    pub fn gamma(&self) -> Option<f64> {
        match *self {
            FittedKernel::Linear => None,
            FittedKernel::Rbf { gamma }
            | FittedKernel::Poly { gamma, .. }
            | FittedKernel::Sigmoid { gamma, .. } => Some(gamma),
        }
    }
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One binary SVM: `f(x) = Σ dual_coef[s] · K(sv[support[s]], x) + intercept`, positive for
/// class `positive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMachine {
    /// Index into `SvmModel::classes` of the class on the positive side.
    pub positive: usize,
    /// Index of the class on the negative side; `None` means every other class (one-vs-rest).
    pub negative: Option<usize>,
    /// Rows of `SvmModel::support_vectors` this machine uses.
    pub support: Vec<usize>,
    /// `alpha_i · y_i` (y = +1 on the positive side), as sklearn's `dual_coef_`.
    pub dual_coef: Vec<f64>,
    /// `-rho`, as sklearn's `intercept_`.
    pub intercept: f64,
    /// Platt sigmoid for `P(positive | f)`, when fitted with `probability`.
    pub platt: Option<Platt>,
}

/// A fitted SVM classifier: self-contained and serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SvmModel {
    /// The parameters it was fitted with (gamma as given; the resolved value is in `kernel`).
    pub params: SvmParams,
    /// Sorted distinct training labels; outputs index classes in this order.
    pub classes: Vec<i64>,
    pub n_features: usize,
    pub kernel: FittedKernel,
    /// Every training row that is a support vector of some machine, in training order.
    pub support_vectors: Array2<f64>,
    /// Class index (into `classes`) of each support vector.
    pub support_classes: Vec<usize>,
    /// Two classes: one machine (`positive` = 1). Otherwise the pairs (0,1), (0,2), … (1,2), …
    /// in sklearn's order for one-vs-one, or one machine per class for one-vs-rest.
    pub machines: Vec<BinaryMachine>,
}

impl SvmModel {
    /// Number of support vectors per class, as sklearn's `n_support_`.
    pub fn n_support(&self) -> Vec<usize> {
        let mut n = vec![0; self.classes.len()];
        for &c in &self.support_classes {
            n[c] += 1;
        }
        n
    }

    /// Reject a model read from a file whose parts do not fit together, so that prediction
    /// (which trusts them) cannot index out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("svm model is inconsistent: {what}")));
        let k = self.classes.len();
        let n_sv = self.support_vectors.nrows();
        if k < 2 || self.classes.windows(2).any(|w| w[0] >= w[1]) {
            return bad("`classes` must hold at least two sorted distinct labels");
        }
        if self.n_features == 0
            || self.support_vectors.ncols() != self.n_features
            || !self.support_vectors.is_standard_layout()
        {
            return bad("support vectors do not have `n_features` columns");
        }
        if self.support_classes.len() != n_sv || self.support_classes.iter().any(|&c| c >= k) {
            return bad("`support_classes` does not match the support vectors");
        }
        let (ovr, expected) = match (k, self.params.multiclass) {
            (2, _) => (false, 1),
            (_, Multiclass::Ovo) => (false, k * (k - 1) / 2),
            (_, Multiclass::Ovr) => (true, k),
        };
        if self.machines.len() != expected {
            return bad("wrong number of binary machines");
        }
        for m in &self.machines {
            if m.positive >= k
                || m.negative.is_none() != ovr
                || m.negative.is_some_and(|j| j >= k || j == m.positive)
                || m.support.len() != m.dual_coef.len()
                || m.support.iter().any(|&s| s >= n_sv)
            {
                return bad("a binary machine refers to classes or support vectors it lacks");
            }
            let platt_finite = m.platt.is_none_or(|p| p.a.is_finite() && p.b.is_finite());
            if !m.intercept.is_finite()
                || m.dual_coef.iter().any(|a| !a.is_finite())
                || !platt_finite
            {
                return bad("non-finite coefficients");
            }
        }
        if self.support_vectors.iter().any(|v| !v.is_finite()) {
            return bad("non-finite support vectors");
        }
        let kernel_ok = match self.kernel {
            FittedKernel::Linear => true,
            FittedKernel::Rbf { gamma } => gamma.is_finite() && gamma > 0.0,
            FittedKernel::Poly {
                gamma,
                coef0,
                degree,
            } => gamma.is_finite() && gamma > 0.0 && coef0.is_finite() && degree >= 1,
            FittedKernel::Sigmoid { gamma, coef0 } => {
                gamma.is_finite() && gamma > 0.0 && coef0.is_finite()
            }
        };
        if !kernel_ok {
            return bad("invalid kernel coefficients");
        }
        Ok(())
    }

    /// Whether `predict_proba` is available.
    pub fn has_probability(&self) -> bool {
        self.machines.iter().all(|m| m.platt.is_some())
    }

    fn is_binary(&self) -> bool {
        self.classes.len() == 2
    }

    /// Raw value of every binary machine: `(n_trials, n_machines)`. For one-vs-one this is
    /// sklearn's `decision_function_shape='ovo'` layout.
    pub fn machine_decisions(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check_input(x)?;
        let mut out = Array2::zeros((x.nrows(), self.machines.len()));
        let mut kernel_row = vec![0.0; self.support_vectors.nrows()];
        let mut buf = Vec::new();
        for (i, row) in x.outer_iter().enumerate() {
            let trial = contiguous(&row, &mut buf);
            self.kernel_row(trial, &mut kernel_row);
            for (m, machine) in self.machines.iter().enumerate() {
                out[(i, m)] = machine_value(machine, &kernel_row);
            }
        }
        Ok(out)
    }

    /// sklearn's `decision_function` with its default shape: two classes give one column
    /// (positive means `classes[1]`); one-vs-one gives `(n, k)` votes plus scaled confidences
    /// (`_ovr_decision_function`); one-vs-rest gives each class's machine value.
    pub fn decision_function(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        let raw = self.machine_decisions(x)?;
        if self.is_binary() || self.params.multiclass == Multiclass::Ovr {
            return Ok(raw);
        }
        let k = self.classes.len();
        let mut out = Array2::zeros((raw.nrows(), k));
        for (raw_row, mut out_row) in raw.outer_iter().zip(out.outer_iter_mut()) {
            ovo_to_ovr(
                &self.machines,
                raw_row.as_slice().expect("fresh array is contiguous"),
                out_row.as_slice_mut().expect("fresh array is contiguous"),
            );
        }
        Ok(out)
    }

    /// Predicted labels (values of `classes`).
    pub fn predict(&self, x: ArrayView2<f64>) -> Result<Array1<i64>> {
        let raw = self.machine_decisions(x)?;
        let mut votes = vec![0usize; self.classes.len()];
        Ok(raw
            .outer_iter()
            .map(|r| self.classes[self.winner(r.as_slice().expect("contiguous"), &mut votes)])
            .collect())
    }

    /// Class probabilities `(n_trials, n_classes)`; needs a model fitted with `probability`.
    pub fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.require_probability()?;
        let raw = self.machine_decisions(x)?;
        let mut out = Array2::zeros((raw.nrows(), self.classes.len()));
        for (r, mut o) in raw.outer_iter().zip(out.outer_iter_mut()) {
            self.probabilities(
                r.as_slice().expect("contiguous"),
                o.as_slice_mut().expect("contiguous"),
            );
        }
        Ok(out)
    }

    /// The label of one trial; allocates only a vector of one value per support vector.
    pub fn predict_one(&self, x: &[f64]) -> Result<i64> {
        let values = self.machine_values_one(x)?;
        let mut votes = vec![0usize; self.classes.len()];
        Ok(self.classes[self.winner(&values, &mut votes)])
    }

    /// Class probabilities of one trial.
    pub fn predict_proba_one(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.require_probability()?;
        let values = self.machine_values_one(x)?;
        let mut p = vec![0.0; self.classes.len()];
        self.probabilities(&values, &mut p);
        Ok(p)
    }

    fn machine_values_one(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.n_features {
            return Err(Error::Data(format!(
                "svm expects `{}` features per trial, got `{}`",
                self.n_features,
                x.len()
            )));
        }
        if let Some(j) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "feature `{j}` is `{}`: svm features must be finite",
                x[j]
            )));
        }
        let mut kernel_row = vec![0.0; self.support_vectors.nrows()];
        self.kernel_row(x, &mut kernel_row);
        Ok(self
            .machines
            .iter()
            .map(|m| machine_value(m, &kernel_row))
            .collect())
    }

    fn require_probability(&self) -> Result<()> {
        if self.has_probability() {
            Ok(())
        } else {
            Err(Error::Invalid(
                "this svm was fitted without `probability`: no class probabilities".into(),
            ))
        }
    }

    fn check_input(&self, x: ArrayView2<f64>) -> Result<()> {
        if x.ncols() != self.n_features {
            return Err(Error::Data(format!(
                "svm expects `{}` features per trial, got `{}`",
                self.n_features,
                x.ncols()
            )));
        }
        if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(Error::Data(format!(
                "feature `{j}` of trial `{i}` is `{v}`: svm features must be finite"
            )));
        }
        Ok(())
    }

    fn kernel_row(&self, x: &[f64], out: &mut [f64]) {
        for (o, sv) in out.iter_mut().zip(self.support_vectors.outer_iter()) {
            *o = self
                .kernel
                .eval(sv.as_slice().expect("support vectors are contiguous"), x);
        }
    }

    /// Index of the predicted class from the machine values (libsvm's rules).
    fn winner(&self, values: &[f64], votes: &mut [usize]) -> usize {
        if self.is_binary() {
            // libsvm votes for its first class when its value is > 0; sklearn's sign is the
            // opposite, so a value of exactly zero goes to classes[1].
            return usize::from(values[0] >= 0.0);
        }
        if self.params.multiclass == Multiclass::Ovr {
            return first_argmax(values.iter().copied());
        }
        votes.iter_mut().for_each(|v| *v = 0);
        for (m, &v) in self.machines.iter().zip(values) {
            let neg = m
                .negative
                .expect("one-vs-one machines have a negative class");
            votes[if v > 0.0 { m.positive } else { neg }] += 1;
        }
        first_argmax(votes.iter().map(|&v| v as f64))
    }

    fn probabilities(&self, values: &[f64], out: &mut [f64]) {
        let platt = |m: &BinaryMachine, v: f64| {
            m.platt
                .expect("checked by require_probability")
                .probability(v)
        };
        if self.is_binary() {
            let p1 = probability::clamp_pairwise(platt(&self.machines[0], values[0]));
            out[0] = 1.0 - p1;
            out[1] = p1;
        } else if self.params.multiclass == Multiclass::Ovr {
            for (o, (m, &v)) in out.iter_mut().zip(self.machines.iter().zip(values)) {
                *o = platt(m, v);
            }
            probability::normalize(out);
        } else {
            let k = self.classes.len();
            let mut r = vec![0.0; k * k];
            for (m, &v) in self.machines.iter().zip(values) {
                let (i, j) = (m.positive, m.negative.expect("one-vs-one"));
                let p = probability::clamp_pairwise(platt(m, v));
                r[i * k + j] = p;
                r[j * k + i] = 1.0 - p;
            }
            probability::couple_pairwise(k, &r, out);
        }
    }
}

#[inline]
fn machine_value(machine: &BinaryMachine, kernel_row: &[f64]) -> f64 {
    machine
        .support
        .iter()
        .zip(&machine.dual_coef)
        .map(|(&s, &a)| a * kernel_row[s])
        .sum::<f64>()
        + machine.intercept
}

/// Index of the first largest value.
fn first_argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// sklearn's `_ovr_decision_function(dec < 0, -dec, k)`: votes per class plus the summed
/// pairwise confidences squashed into (-1/3, 1/3), so ties in votes are broken by confidence.
fn ovo_to_ovr(machines: &[BinaryMachine], raw: &[f64], out: &mut [f64]) {
    let k = out.len();
    let mut confidence = vec![0.0; k];
    out.iter_mut().for_each(|v| *v = 0.0);
    for (m, &dec) in machines.iter().zip(raw) {
        let (i, j) = (m.positive, m.negative.expect("one-vs-one"));
        confidence[i] += dec;
        confidence[j] -= dec;
        out[if dec < 0.0 { j } else { i }] += 1.0;
    }
    for (o, c) in out.iter_mut().zip(confidence) {
        *o += c / (3.0 * (c.abs() + 1.0));
    }
}

/// A row as a slice, copying only when the view is not contiguous.
fn contiguous<'a>(row: &'a ndarray::ArrayView1<'_, f64>, buf: &'a mut Vec<f64>) -> &'a [f64] {
    match row.as_slice() {
        Some(s) => s,
        None => {
            buf.clear();
            buf.extend(row.iter());
            buf
        }
    }
}
