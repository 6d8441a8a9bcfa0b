//! Tangent-space vectors of covariance matrices at a reference point, as pyRiemann 0.12's
//! `TangentSpace(metric="riemann")`: the reference is the Riemannian mean of the training
//! covariances, and each matrix `C` maps to the upper triangle of `log(R^{-1/2} C R^{-1/2})`,
//! row by row (`numpy.triu_indices` order), diagonal entries as they are and off-diagonal ones
//! times √2 (so that the Euclidean norm of the vector is the Frobenius norm of the matrix).

use ndarray::{Array1, Array2, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::eigen::Eig;
use super::mean::{mean_riemann, DEFAULT_MAXITER, DEFAULT_TOL};
use super::spd::{self, SpdError};
use crate::{Error, Result};

/// A fitted tangent space: its reference point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TangentSpace {
    /// The reference SPD matrix (channels × channels), the Riemannian mean of the training
    /// covariances.
    pub reference: Array2<f64>,
}

impl TangentSpace {
    /// Reference = the Riemannian mean of `covs` (pyRiemann's defaults, `tol` 1e-8, 50
    /// iterations).
    pub fn fit(covs: ArrayView3<f64>) -> Result<Self> {
        Ok(TangentSpace {
            reference: mean_riemann(covs, None, DEFAULT_TOL, DEFAULT_MAXITER)?,
        })
    }

    pub fn n_channels(&self) -> usize {
        self.reference.nrows()
    }

    /// Length of a tangent vector, `n (n + 1) / 2`.
    pub fn n_features(&self) -> usize {
        n_features(self.n_channels())
    }

    /// The projector to serve with: computes `R^{-1/2}` once.
    pub fn projector(&self) -> Result<Projector> {
        Projector::new(self.reference.view())
    }

    /// Tangent vectors of `covs` (trials × channels × channels): trials × features.
    pub fn transform(&self, covs: ArrayView3<f64>) -> Result<Array2<f64>> {
        self.projector()?.transform(covs)
    }

    /// The tangent vector of one covariance (channels × channels).
    pub fn transform_one(&self, cov: ArrayView2<f64>) -> Result<Array1<f64>> {
        self.projector()?.transform_one(cov)
    }
}

/// `n (n + 1) / 2`: the length of the tangent vector of `n × n` matrices.
pub fn n_features(n: usize) -> usize {
    n * (n + 1) / 2
}

/// A [`TangentSpace`] ready to map matrices: `R^{-1/2}` computed once.
#[derive(Clone, Debug)]
pub struct Projector {
    whitener: Array2<f64>,
}

impl Projector {
    pub fn new(reference: ArrayView2<f64>) -> Result<Self> {
        let (n, n2) = reference.dim();
        if n != n2 || n == 0 {
            return Err(Error::Data(format!(
                "a tangent-space reference must be a non-empty square matrix, got `{n}` × `{n2}`"
            )));
        }
        let whitener = spd::invsqrtm(reference)
            .map_err(|e| Error::Data(format!("the tangent-space reference {}", e.describe())))?;
        Ok(Projector { whitener })
    }

    pub fn n_channels(&self) -> usize {
        self.whitener.nrows()
    }

    /// Tangent vectors of `covs` (trials × channels × channels), trials in parallel.
    pub fn transform(&self, covs: ArrayView3<f64>) -> Result<Array2<f64>> {
        let (m, n, n2) = covs.dim();
        self.check_shape(n, n2)?;
        let mut out = Array2::<f64>::zeros((m, n_features(n)));
        let outcomes: Vec<std::result::Result<(), SpdError>> = out
            .as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(n_features(n))
            .enumerate()
            .map_init(
                || Workspace::new(n),
                |ws, (i, row)| self.vector_into(covs.index_axis(Axis(0), i), ws, row),
            )
            .collect();
        for (i, outcome) in outcomes.into_iter().enumerate() {
            outcome.map_err(|e| trial_error(i, e))?;
        }
        Ok(out)
    }

    /// The tangent vector of one covariance (channels × channels).
    pub fn transform_one(&self, cov: ArrayView2<f64>) -> Result<Array1<f64>> {
        let (n, n2) = cov.dim();
        self.check_shape(n, n2)?;
        let mut out = Array1::zeros(n_features(n));
        let mut ws = Workspace::new(n);
        self.vector_into(cov, &mut ws, out.as_slice_mut().expect("standard layout"))
            .map_err(|e| Error::Data(format!("the covariance {}", e.describe())))?;
        Ok(out)
    }

    /// Writes the tangent vector of `cov` into `out` (length `n (n + 1) / 2`), reusing `ws`.
    pub fn vector_into(
        &self,
        cov: ArrayView2<f64>,
        ws: &mut Workspace,
        out: &mut [f64],
    ) -> std::result::Result<(), SpdError> {
        let n = self.n_channels();
        assert_eq!(cov.dim(), (n, n), "covariance of another size");
        assert_eq!(out.len(), n_features(n), "tangent vector of another size");
        let Workspace { eig, whitened, log } = ws;
        spd::congruence_into(
            self.whitener.view(),
            cov,
            eig.scratch(),
            whitened.view_mut(),
        );
        spd::apply_into(whitened.view(), f64::ln, eig, log.view_mut())?;
        upper_into(log.view(), out);
        Ok(())
    }

    fn check_shape(&self, n: usize, n2: usize) -> Result<()> {
        if n != n2 || n != self.n_channels() {
            return Err(Error::Data(format!(
                "covariances of `{n}` × `{n2}` where the tangent space has `{}` channels",
                self.n_channels()
            )));
        }
        Ok(())
    }
}

/// Buffers for one thread's tangent vectors.
#[derive(Clone, Debug)]
pub struct Workspace {
    eig: Eig,
    whitened: Array2<f64>,
    log: Array2<f64>,
}

impl Workspace {
    pub fn new(n: usize) -> Self {
        Workspace {
            eig: Eig::new(n),
            whitened: Array2::zeros((n, n)),
            log: Array2::zeros((n, n)),
        }
    }
}

/// pyRiemann's `upper`: the upper triangle row by row, off-diagonal entries times √2.
pub fn upper_into(a: ArrayView2<f64>, out: &mut [f64]) {
    let n = a.nrows();
    let mut k = 0;
    for i in 0..n {
        out[k] = a[[i, i]];
        k += 1;
        for j in i + 1..n {
            out[k] = std::f64::consts::SQRT_2 * a[[i, j]];
            k += 1;
        }
    }
}

fn trial_error(i: usize, e: SpdError) -> Error {
    Error::Data(format!(
        "covariance of trial `{i}` {}; hint: estimate covariances with `lwf` or `oas` shrinkage",
        e.describe()
    ))
}
