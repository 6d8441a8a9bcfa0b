//! Riemannian geometry of covariance matrices, as pyRiemann 0.12 defines it: per-trial
//! covariance estimates ([`covariances`]: `scm`, `lwf`, `oas`), their affine-invariant mean
//! ([`mean_riemann`]), tangent-space vectors at that mean ([`TangentSpace`]) and minimum
//! distance to the class means ([`Mdm`]).
//!
//! Every matrix function goes through a symmetric eigendecomposition (`f(C) = V f(Λ) Vᵀ`), in
//! pure Rust; loops over trials run on rayon's pool with one workspace per thread.
//!
//! ```
//! use bciops::model::riemann::{covariances, CovEstimator, Mdm, TangentSpace};
//! use ndarray::Array3;
//!
//! // 8 trials × 3 channels × 60 samples; class 1 has more power on channel 0.
//! let x = Array3::from_shape_fn((8, 3, 60), |(trial, ch, t)| {
//!     let gain = if trial % 2 == 1 && ch == 0 { 3.0 } else { 1.0 };
//!     gain * ((t * (ch + 2) + trial * 7) as f64 * 0.37).sin() + 0.1 * (t as f64 * 1.3).cos()
//! });
//! let y = [0, 1, 0, 1, 0, 1, 0, 1];
//! let covs = covariances(x.view(), CovEstimator::Oas)?;
//! let ts = TangentSpace::fit(covs.view())?;
//! assert_eq!(ts.transform(covs.view())?.dim(), (8, 6)); // 3 · 4 / 2 features
//! let mdm = Mdm::fit(covs.view(), &y, 2)?;
//! assert_eq!(mdm.predict(covs.view())?.len(), 8);
//! # Ok::<(), bciops::Error>(())
//! ```

mod covariance;
mod eigen;
mod mdm;
mod mean;
pub mod spd;
mod tangent;
#[cfg(test)]
mod tests;

pub use covariance::{covariance, covariances, CovEstimator};
pub use eigen::Eig;
pub use mdm::Mdm;
pub use mean::{mean_riemann, mean_riemann_report, MeanReport, DEFAULT_MAXITER, DEFAULT_TOL};
pub use tangent::{n_features, Projector, TangentSpace, Workspace};
