//! Minimum distance to mean, as pyRiemann 0.12's `MDM(metric="riemann")`: each class is its
//! covariances' Riemannian mean; a trial goes to the class whose mean is nearest in the
//! affine-invariant distance (the first such class on a tie, as NumPy's `argmin`).

use ndarray::{Array1, Array2, Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::eigen::Eig;
use super::mean::{mean_riemann, DEFAULT_MAXITER, DEFAULT_TOL};
use super::spd::{self, SpdError};
use crate::{Error, Result};

/// A fitted MDM classifier: one Riemannian mean per class, class `k` at index `k`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MdmFile", into = "MdmFile")]
pub struct Mdm {
    /// classes × channels × channels.
    means: Array3<f64>,
    /// `Mₖ^{-1/2}` of each mean, what every distance needs.
    whiteners: Array3<f64>,
}

/// What a model file holds of an [`Mdm`]: the means; the rest is derived on loading.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MdmFile {
    means: Array3<f64>,
}

impl TryFrom<MdmFile> for Mdm {
    type Error = Error;

    fn try_from(file: MdmFile) -> Result<Self> {
        Mdm::from_means(file.means)
    }
}

impl From<Mdm> for MdmFile {
    fn from(mdm: Mdm) -> Self {
        MdmFile { means: mdm.means }
    }
}

impl Mdm {
    /// Fits the class means of `covs` (trials × channels × channels) with class indices `y`
    /// (`0..n_classes`, every class present).
    pub fn fit(covs: ArrayView3<f64>, y: &[usize], n_classes: usize) -> Result<Self> {
        let (m, n, n2) = covs.dim();
        if y.len() != m {
            return Err(Error::Data(format!(
                "`{}` labels for `{m}` trials",
                y.len()
            )));
        }
        if n != n2 || n == 0 {
            return Err(Error::Data(format!(
                "mdm needs non-empty square covariances, got `{n}` × `{n2}`"
            )));
        }
        if n_classes < 2 {
            return Err(Error::Data(format!(
                "mdm needs at least 2 classes, got `{n_classes}`"
            )));
        }
        if let Some(&bad) = y.iter().find(|&&c| c >= n_classes) {
            return Err(Error::Data(format!(
                "class index `{bad}` is out of range for `{n_classes}` classes"
            )));
        }
        let members: Vec<Vec<usize>> = (0..n_classes)
            .map(|k| (0..m).filter(|&i| y[i] == k).collect())
            .collect();
        if let Some(k) = members.iter().position(Vec::is_empty) {
            return Err(Error::Data(format!("mdm: class `{k}` has no trials")));
        }
        let mut means = Array3::zeros((n_classes, n, n));
        for (k, idx) in members.iter().enumerate() {
            let class = covs.select(Axis(0), idx);
            let mean = mean_riemann(class.view(), None, DEFAULT_TOL, DEFAULT_MAXITER).map_err(
                |e| match e {
                    Error::Data(msg) => Error::Data(format!("mdm class `{k}`: {msg}")),
                    other => other,
                },
            )?;
            means.index_axis_mut(Axis(0), k).assign(&mean);
        }
        Self::from_means(means)
    }

    /// An MDM with the given class means (classes × channels × channels, each SPD).
    pub fn from_means(means: Array3<f64>) -> Result<Self> {
        let (k, n, n2) = means.dim();
        if k < 2 || n != n2 || n == 0 {
            return Err(Error::Data(format!(
                "mdm needs at least 2 square class means, got `{k}` of `{n}` × `{n2}`"
            )));
        }
        let mut whiteners = Array3::zeros((k, n, n));
        for (c, (mean, mut w)) in means
            .outer_iter()
            .zip(whiteners.outer_iter_mut())
            .enumerate()
        {
            let inv = spd::invsqrtm(mean)
                .map_err(|e| Error::Data(format!("mdm mean of class `{c}` {}", e.describe())))?;
            w.assign(&inv);
        }
        Ok(Mdm { means, whiteners })
    }

    pub fn n_classes(&self) -> usize {
        self.means.len_of(Axis(0))
    }

    pub fn n_channels(&self) -> usize {
        self.means.len_of(Axis(1))
    }

    /// The class means, classes × channels × channels.
    pub fn means(&self) -> &Array3<f64> {
        &self.means
    }

    /// Riemannian distance of each trial to each class mean: trials × classes (pyRiemann's
    /// `MDM.transform`). Trials in parallel.
    pub fn distances(&self, covs: ArrayView3<f64>) -> Result<Array2<f64>> {
        let (m, n, n2) = covs.dim();
        self.check_shape(n, n2)?;
        let mut out = Array2::<f64>::zeros((m, self.n_classes()));
        let outcomes: Vec<std::result::Result<(), SpdError>> = out
            .as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(self.n_classes())
            .enumerate()
            .map_init(
                || (Eig::new(n), Array2::zeros((n, n))),
                |(ws, tmp), (i, row)| {
                    self.distances_into(covs.index_axis(Axis(0), i), ws, tmp, row)
                },
            )
            .collect();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            outcome.map_err(|e| {
                Error::Data(format!(
                    "covariance of trial `{i}` {}; hint: estimate covariances with `lwf` or `oas` shrinkage",
                    e.describe()
                ))
            })?;
        }
        Ok(out)
    }

    /// Distances of one covariance to each class mean.
    pub fn distances_one(&self, cov: ArrayView2<f64>) -> Result<Array1<f64>> {
        let (n, n2) = cov.dim();
        self.check_shape(n, n2)?;
        let mut out = Array1::zeros(self.n_classes());
        let mut ws = Eig::new(n);
        let mut tmp = Array2::zeros((n, n));
        self.distances_into(
            cov,
            &mut ws,
            &mut tmp,
            out.as_slice_mut().expect("standard layout"),
        )
        .map_err(|e| Error::Data(format!("the covariance {}", e.describe())))?;
        Ok(out)
    }

    /// The nearest class of each trial.
    pub fn predict(&self, covs: ArrayView3<f64>) -> Result<Vec<usize>> {
        Ok(self
            .distances(covs)?
            .rows()
            .into_iter()
            .map(|r| argmin(r.as_slice().expect("standard layout")))
            .collect())
    }

    /// The nearest class of one covariance.
    pub fn predict_one(&self, cov: ArrayView2<f64>) -> Result<usize> {
        let d = self.distances_one(cov)?;
        Ok(argmin(d.as_slice().expect("standard layout")))
    }

    /// pyRiemann's `MDM.predict_proba`: `softmax(−d²)` over the classes, per trial.
    pub fn probabilities(&self, covs: ArrayView3<f64>) -> Result<Array2<f64>> {
        let mut d = self.distances(covs)?;
        for mut row in d.rows_mut() {
            softmax_neg_sq(row.as_slice_mut().expect("standard layout"));
        }
        Ok(d)
    }

    /// Writes the distance of `cov` to each class mean into `out`.
    pub fn distances_into(
        &self,
        cov: ArrayView2<f64>,
        ws: &mut Eig,
        tmp: &mut Array2<f64>,
        out: &mut [f64],
    ) -> std::result::Result<(), SpdError> {
        for (w, o) in self.whiteners.outer_iter().zip(out.iter_mut()) {
            *o = spd::distance_whitened(cov, w, ws, tmp)?;
        }
        Ok(())
    }

    fn check_shape(&self, n: usize, n2: usize) -> Result<()> {
        if n != n2 || n != self.n_channels() {
            return Err(Error::Data(format!(
                "covariances of `{n}` × `{n2}` where the mdm model has `{}` channels",
                self.n_channels()
            )));
        }
        Ok(())
    }
}

/// Index of the smallest value, the first on a tie.
fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v < values[best] {
            best = i;
        }
    }
    best
}

/// `softmax(−d²)` in place, shifted by the largest logit as SciPy's `softmax`.
fn softmax_neg_sq(d: &mut [f64]) {
    let max = d.iter().map(|v| -v * v).fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in d.iter_mut() {
        *v = (-*v * *v - max).exp();
        sum += *v;
    }
    for v in d.iter_mut() {
        *v /= sum;
    }
}
