//! Common Spatial Patterns: spatial filters whose output variance best separates classes, and
//! the log-variance features computed through them.
//!
//! Two classes: the generalized symmetric eigenproblem `C₀ w = λ (C₀ + C₁) w`, solved by
//! Cholesky whitening plus a Jacobi eigendecomposition, components ordered by `|λ − 0.5|`
//! descending, filters normalised so that `Wᵀ (C₀ + C₁) W = I` (as `scipy.linalg.eigh(C₀, C₀ + C₁)`).
//!
//! More than two classes, two schemes ([`Multiclass`]):
//! - [`Multiclass::JointDiagonalization`] (default) reproduces `mne.decoding.CSP`: Pham's
//!   approximate joint diagonalisation of all class covariances, filters normalised against
//!   their mean, ordered by the mutual-information approximation of Grosse-Wentrup & Buss
//!   (2008) with equal class priors; `n_components` features in total. `mne.decoding.CSP` is
//!   the usual CSP of Python BCI pipelines, so this keeps features comparable with them on the
//!   four BCI IV 2a classes.
//! - [`Multiclass::OneVsRest`]: for each class `k`, two-class CSP of class `k` against the
//!   pooled trials of all other classes; `n_components` filters per class, class 0's first.
//!
//! Covariances are estimated from concatenated trials without removing the mean (band-passed
//! EEG has none): `Σₜ xₜ xₜᵀ / n`, or `/ (n − 1)` with [`CspParams::unbiased`] (what MNE does;
//! the default). Optional shrinkage (fixed or Ledoit–Wolf, as `sklearn.covariance` with
//! `assume_centered=True`, MNE's `reg`) and trace normalisation (MNE's `norm_trace`). With these
//! defaults, features equal MNE's `CSP(n_components=4, reg=None, log=True)` for full-rank data.
//! Rank-deficient data differs: MNE first restricts everything to the data's rank subspace
//! (and returns fewer filters); here it is an error without shrinkage, and shrinkage acts in
//! the full channel space.
//!
//! For parameter sweeps the covariance work, which dominates, can be shared: compute per-trial
//! [`Scatter`]s once with [`trial_scatters`], sum them per class for each fold with
//! [`class_scatters`], and fit any number of models with [`Csp::fit_from_scatters`].
//!
//! ```
//! use bciops::model::csp::{Csp, CspParams};
//! use ndarray::Array3;
//!
//! // 6 trials × 3 channels × 50 samples; class 1 has more power on channel 0.
//! let x = Array3::from_shape_fn((6, 3, 50), |(trial, ch, t)| {
//!     let gain = if trial % 2 == 1 && ch == 0 { 3.0 } else { 1.0 };
//!     gain * ((t * (ch + 2) + trial) as f64 * 0.7).sin()
//! });
//! let y = [0, 1, 0, 1, 0, 1];
//! let csp = Csp::fit(x.view(), &y, &CspParams::new().n_components(2))?;
//! let features = csp.transform(x.view())?; // 6 × 2 log-variances
//! assert_eq!(features.dim(), (6, 2));
//! # Ok::<(), bciops::Error>(())
//! ```

#[cfg(test)]
mod tests;

use std::ops::AddAssign;

use ndarray::{Array1, Array2, ArrayView2, ArrayView3, Axis, CowArray, Ix2, Slice, Zip};
use serde::{Deserialize, Serialize};

use super::linalg;
use crate::{Error, Result};

/// A class covariance whose smallest Cholesky pivot is below this fraction of its largest
/// diagonal entry is treated as singular: rank-deficient data (average reference, fewer samples
/// than channels) leaves pivots near 1e-15 relative, even after a float32 round trip, while
/// full-rank EEG stays many orders of magnitude above.
const PD_REL_TOL: f64 = 1e-10;

/// The element types trials can come in: epochs datasets are float32 on disk; all arithmetic
/// is float64.
pub trait Sample: Copy + Into<f64> + 'static {
    /// The trial as float64, borrowed when it already is.
    fn to_f64(trial: ArrayView2<'_, Self>) -> CowArray<'_, f64, Ix2>;
}

impl Sample for f64 {
    fn to_f64(trial: ArrayView2<'_, f64>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(trial)
    }
}

impl Sample for f32 {
    fn to_f64(trial: ArrayView2<'_, f32>) -> CowArray<'_, f64, Ix2> {
        CowArray::from(trial.mapv(f64::from))
    }
}

/// Covariance shrinkage towards a scaled identity, `(1 − s) C + s (tr C / p) I`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shrinkage {
    /// The empirical covariance; rank-deficient data is an error.
    None,
    /// Ledoit–Wolf's coefficient, as `sklearn.covariance.ledoit_wolf(X, assume_centered=True)`
    /// and MNE's `reg='ledoit_wolf'`, computed per class.
    Auto,
    /// A fixed coefficient in `0..=1`, as MNE's `reg=<float>`.
    Fixed(f64),
}

/// How more than two classes are handled; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Multiclass {
    /// MNE-Python's scheme: joint diagonalisation, mutual-information order.
    JointDiagonalization,
    /// Each class against the rest, `n_components` filters per class.
    OneVsRest,
}

/// CSP hyper-parameters. The defaults are `mne.decoding.CSP()`'s: 4 components, log-variance,
/// no trace normalisation, no shrinkage, `n − 1` normalisation, MNE's multiclass scheme.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CspParams {
    /// Features kept: in total for two classes and joint diagonalisation, per class for
    /// one-vs-rest.
    pub n_components: usize,
    /// `log(mean power)` features; plain mean power when false (MNE then also z-scores; here
    /// scaling is left to the classifier's feature scaler).
    pub log: bool,
    /// Divide each class covariance by its trace (Koles 1990; MNE `norm_trace`).
    pub norm_trace: bool,
    pub shrinkage: Shrinkage,
    /// Normalise covariances by `n − 1` samples (MNE) rather than `n` (textbook). Only the
    /// relative weight of classes with different trial counts changes.
    pub unbiased: bool,
    pub multiclass: Multiclass,
}

impl Default for CspParams {
    fn default() -> Self {
        CspParams {
            n_components: 4,
            log: true,
            norm_trace: false,
            shrinkage: Shrinkage::None,
            unbiased: true,
            multiclass: Multiclass::JointDiagonalization,
        }
    }
}

impl CspParams {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn n_components(mut self, n: usize) -> Self {
        self.n_components = n;
        self
    }

    pub fn log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }

    pub fn norm_trace(mut self, norm_trace: bool) -> Self {
        self.norm_trace = norm_trace;
        self
    }

    pub fn shrinkage(mut self, shrinkage: Shrinkage) -> Self {
        self.shrinkage = shrinkage;
        self
    }

    pub fn unbiased(mut self, unbiased: bool) -> Self {
        self.unbiased = unbiased;
        self
    }

    pub fn multiclass(mut self, multiclass: Multiclass) -> Self {
        self.multiclass = multiclass;
        self
    }

    /// Checks the parameters against data with `n_channels` channels. The fits call it; a
    /// sweep can call it to reject candidates before any work.
    pub fn check(&self, n_channels: usize) -> Result<()> {
        if self.n_components == 0 {
            return Err(Error::Invalid(
                "csp `n_components` must be at least 1".into(),
            ));
        }
        if let Shrinkage::Fixed(s) = self.shrinkage {
            if !(0.0..=1.0).contains(&s) {
                return Err(Error::Invalid(format!(
                    "csp shrinkage `{s}` must be between 0 and 1"
                )));
            }
        }
        if n_channels == 0 {
            return Err(Error::Data(
                "csp needs at least one channel, got `0`".into(),
            ));
        }
        if self.n_components > n_channels {
            return Err(Error::Data(format!(
                "csp `n_components` = `{}` exceeds the `{n_channels}` channels",
                self.n_components
            )));
        }
        Ok(())
    }
}

/// Sufficient statistics of some samples for every covariance estimate CSP makes. Additive:
/// the scatter of a set of trials is the sum of theirs.
#[derive(Clone, Debug, PartialEq)]
pub struct Scatter {
    /// `Σₜ xₜ xₜᵀ` (channels × channels), neither normalised nor demeaned.
    pub outer: Array2<f64>,
    /// Number of samples `t` summed.
    pub n_samples: usize,
    /// `Σₜ ‖xₜ‖⁴`, which Ledoit–Wolf needs besides `outer`.
    pub fourth: f64,
}

impl Scatter {
    pub fn zeros(n_channels: usize) -> Self {
        Scatter {
            outer: Array2::zeros((n_channels, n_channels)),
            n_samples: 0,
            fourth: 0.0,
        }
    }

    /// The scatter of one trial (channels × samples). Non-finite samples make `outer`'s
    /// diagonal non-finite; [`Scatter::is_finite`] tells.
    pub fn of_trial<T: Sample>(trial: ArrayView2<T>) -> Self {
        let z = T::to_f64(trial);
        // ndarray's `dot` runs matrixmultiply's GEMM, which picks AVX/FMA at run time: for
        // 22 × 750 it takes 55 µs against 51 µs for a loop over the upper triangle only
        // (compiled for baseline x86-64), so the simpler code stays.
        let outer = z.dot(&z.t());
        let mut sq_norms = Array1::<f64>::zeros(z.ncols());
        for row in z.rows() {
            Zip::from(&mut sq_norms)
                .and(&row)
                .for_each(|acc, &v| *acc += v * v);
        }
        Scatter {
            outer,
            n_samples: z.ncols(),
            fourth: sq_norms.iter().map(|s| s * s).sum(),
        }
    }

    pub fn n_channels(&self) -> usize {
        self.outer.nrows()
    }

    /// False if any summed sample was non-finite (or squares overflowed).
    pub fn is_finite(&self) -> bool {
        self.fourth.is_finite() && self.outer.diag().iter().all(|v| v.is_finite())
    }

    /// The Ledoit–Wolf shrinkage coefficient of these samples taken as centred; the same
    /// arithmetic as scikit-learn's `ledoit_wolf_shrinkage(X, assume_centered=True)`, from the
    /// sums instead of the samples.
    pub fn ledoit_wolf_shrinkage(&self) -> f64 {
        let p = self.n_channels();
        if p <= 1 || self.n_samples == 0 {
            return 0.0;
        }
        let n = self.n_samples as f64;
        let pf = p as f64;
        let emp = &self.outer / n;
        let mu = emp.diag().sum() / pf;
        // ‖emp‖²_F: sklearn's `delta_`.
        let emp_sq: f64 = emp.iter().map(|v| v * v).sum();
        // sklearn: beta = (Σₜ‖xₜ‖⁴ / n − ‖emp‖²_F) / (p n); delta = ‖emp − μI‖²_F / p.
        let beta = (self.fourth / n - emp_sq) / (pf * n);
        let dev_sq: f64 = emp
            .indexed_iter()
            .map(|((i, j), &v)| {
                let d = if i == j { v - mu } else { v };
                d * d
            })
            .sum();
        let delta = dev_sq / pf;
        let beta = beta.min(delta);
        if beta == 0.0 {
            0.0
        } else {
            beta / delta
        }
    }

    /// The covariance estimate `params` asks for: empirical, shrunk, rescaled to `n − 1` if
    /// unbiased, trace-normalised if asked — in MNE's order.
    pub fn covariance(&self, params: &CspParams) -> Array2<f64> {
        let p = self.n_channels();
        let n = self.n_samples.max(1) as f64;
        let mut cov = &self.outer / n;
        let s = match params.shrinkage {
            Shrinkage::None => 0.0,
            Shrinkage::Fixed(s) => s,
            Shrinkage::Auto => self.ledoit_wolf_shrinkage(),
        };
        if s > 0.0 {
            let mu = cov.diag().sum() / p as f64;
            cov *= 1.0 - s;
            cov.diag_mut().mapv_inplace(|d| d + s * mu);
        }
        if params.unbiased {
            cov *= n / (n - 1.0).max(1.0);
        }
        if params.norm_trace {
            let trace = cov.diag().sum();
            if trace > 0.0 {
                cov /= trace;
            }
        }
        cov
    }
}

impl AddAssign<&Scatter> for Scatter {
    fn add_assign(&mut self, other: &Scatter) {
        assert_eq!(
            self.n_channels(),
            other.n_channels(),
            "scatters of different channel counts"
        );
        self.outer += &other.outer;
        self.n_samples += other.n_samples;
        self.fourth += other.fourth;
    }
}

/// One [`Scatter`] per trial of `x` (trials × channels × samples).
pub fn trial_scatters<T: Sample>(x: ArrayView3<T>) -> Result<Vec<Scatter>> {
    if x.len_of(Axis(2)) == 0 {
        return Err(Error::Data("csp trials have `0` samples".into()));
    }
    x.outer_iter()
        .enumerate()
        .map(|(i, trial)| {
            let s = Scatter::of_trial(trial);
            if s.is_finite() {
                Ok(s)
            } else {
                Err(Error::Data(format!("trial `{i}` has non-finite values")))
            }
        })
        .collect()
}

/// Sums trial scatters per class. `trials` pairs each scatter with its class index, which
/// must be below `n_classes`; every class needs at least one trial (a fold that lost a class
/// is an error, not a smaller model).
pub fn class_scatters<'a>(
    n_classes: usize,
    trials: impl IntoIterator<Item = (&'a Scatter, usize)>,
) -> Result<Vec<Scatter>> {
    let mut classes: Vec<Option<Scatter>> = vec![None; n_classes];
    for (scatter, class) in trials {
        let slot = classes.get_mut(class).ok_or_else(|| {
            Error::Data(format!(
                "class index `{class}` is out of range for `{n_classes}` classes"
            ))
        })?;
        match slot {
            Some(sum) => {
                if sum.n_channels() != scatter.n_channels() {
                    return Err(Error::Data(format!(
                        "trials have `{}` and `{}` channels",
                        sum.n_channels(),
                        scatter.n_channels()
                    )));
                }
                *sum += scatter;
            }
            None => *slot = Some(scatter.clone()),
        }
    }
    check_class_count(n_classes)?;
    classes
        .into_iter()
        .enumerate()
        .map(|(k, c)| c.ok_or_else(|| no_trials(k)))
        .collect()
}

fn check_class_count(n_classes: usize) -> Result<()> {
    if n_classes < 2 {
        return Err(Error::Data(format!(
            "csp needs at least 2 classes, got `{n_classes}`"
        )));
    }
    Ok(())
}

fn no_trials(class: usize) -> Error {
    Error::Data(format!("class `{class}` has no trials"))
}

/// How the components of a fitted [`Csp`] were found, with the numbers that ranked them
/// (one per feature, in feature order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decomposition {
    /// `λ` of `C₀ w = λ (C₀ + C₁) w`: class 0's share of the variance along each filter.
    TwoClass { eigenvalues: Array1<f64> },
    /// `classes[i]` is the class whose one-vs-rest problem gave feature `i`; `eigenvalues[i]`
    /// that class's share of the variance against the rest.
    OneVsRest {
        eigenvalues: Array1<f64>,
        classes: Vec<usize>,
    },
    /// The mutual-information score MNE orders components by.
    JointDiagonalization { mutual_info: Array1<f64> },
}

/// A fitted CSP: spatial filters and their patterns, one per feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Csp {
    n_classes: usize,
    log: bool,
    /// features × channels; feature `i` is the power of `filters.row(i) · x`.
    filters: Array2<f64>,
    /// features × channels: the spatial patterns (forward model) of the filters, rows of the
    /// inverse of the full filter matrix as MNE's `patterns_`; what topographic maps show.
    patterns: Array2<f64>,
    decomposition: Decomposition,
}

/// Filters (rows), patterns (rows) and eigenvalues of one two-class problem, all components,
/// ordered by `|λ − 0.5|` descending.
struct Pair {
    filters: Array2<f64>,
    patterns: Array2<f64>,
    eigenvalues: Array1<f64>,
}

impl Csp {
    /// Fits CSP to `x` (trials × channels × samples) with class indices `y` (`0..n_classes`,
    /// every class present).
    pub fn fit<T: Sample>(x: ArrayView3<T>, y: &[usize], params: &CspParams) -> Result<Csp> {
        let (n_trials, n_channels, _) = x.dim();
        if y.len() != n_trials {
            return Err(Error::Data(format!(
                "`{}` labels for `{n_trials}` trials",
                y.len()
            )));
        }
        params.check(n_channels)?;
        let n_classes = y.iter().max().map_or(0, |&m| m + 1);
        check_class_count(n_classes)?;
        let trials = trial_scatters(x)?;
        let classes = class_scatters(n_classes, trials.iter().zip(y.iter().copied()))?;
        Self::fit_from_scatters(&classes, params)
    }

    /// Fits CSP from per-class scatters (class `k` at index `k`), e.g. from
    /// [`class_scatters`].
    pub fn fit_from_scatters(classes: &[Scatter], params: &CspParams) -> Result<Csp> {
        check_class_count(classes.len())?;
        let n_channels = classes[0].n_channels();
        if let Some(c) = classes.iter().find(|c| c.n_channels() != n_channels) {
            return Err(Error::Data(format!(
                "class scatters have `{n_channels}` and `{}` channels",
                c.n_channels()
            )));
        }
        params.check(n_channels)?;
        for (k, c) in classes.iter().enumerate() {
            if c.n_samples == 0 {
                return Err(no_trials(k));
            }
            if !c.is_finite() {
                return Err(Error::Data(format!("class `{k}` has non-finite values")));
            }
        }
        let covs: Vec<Array2<f64>> = classes.iter().map(|c| c.covariance(params)).collect();
        for (k, cov) in covs.iter().enumerate() {
            check_positive_definite(cov, &format!("class `{k}`"))?;
        }
        let n = params.n_components;
        if classes.len() == 2 {
            let pair = two_class(&covs[0], &covs[1])?;
            return Ok(Csp {
                n_classes: 2,
                log: params.log,
                filters: pair
                    .filters
                    .slice_axis(Axis(0), Slice::from(..n))
                    .to_owned(),
                patterns: pair
                    .patterns
                    .slice_axis(Axis(0), Slice::from(..n))
                    .to_owned(),
                decomposition: Decomposition::TwoClass {
                    eigenvalues: pair
                        .eigenvalues
                        .slice_axis(Axis(0), Slice::from(..n))
                        .to_owned(),
                },
            });
        }
        match params.multiclass {
            Multiclass::OneVsRest => one_vs_rest(classes, &covs, params),
            Multiclass::JointDiagonalization => joint(&covs, params),
        }
    }

    /// Features of each trial of `x` (trials × channels × samples): trials × features.
    pub fn transform<T: Sample>(&self, x: ArrayView3<T>) -> Result<Array2<f64>> {
        let mut out = Array2::zeros((x.len_of(Axis(0)), self.n_features()));
        for (i, (trial, mut row)) in x.outer_iter().zip(out.rows_mut()).enumerate() {
            self.features_into(trial, row.as_slice_mut().expect("standard layout"))
                .map_err(|e| Error::Data(format!("trial `{i}`: {e}")))?;
        }
        Ok(out)
    }

    /// Features of trials given by their scatters (as [`trial_scatters`] makes them): the same
    /// numbers as [`Csp::transform`] up to rounding, since `mean_t((w·x_t)²) = wᵀ(Σₜ xₜxₜᵀ)w / n`,
    /// but `channels²` instead of `channels × samples` work per filter — what lets a sweep
    /// transform every trial under many CSP fits for almost nothing.
    pub fn transform_scatters(&self, scatters: &[Scatter]) -> Result<Array2<f64>> {
        let mut out = Array2::zeros((scatters.len(), self.n_features()));
        for (i, (scatter, mut row)) in scatters.iter().zip(out.rows_mut()).enumerate() {
            if scatter.n_channels() != self.n_channels() {
                return Err(Error::Data(format!(
                    "trial `{i}`: `{}` channels where the csp model has `{}`",
                    scatter.n_channels(),
                    self.n_channels()
                )));
            }
            let n = scatter.n_samples.max(1) as f64;
            for (w, value) in self.filters.rows().into_iter().zip(row.iter_mut()) {
                let power = w.dot(&scatter.outer.dot(&w)) / n;
                *value = if self.log { power.ln() } else { power };
                if !value.is_finite() {
                    return Err(Error::Data(format!(
                        "trial `{i}`: feature `{value}` is not finite: non-finite samples or no power along a filter"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Features of one trial (channels × samples), for serving.
    pub fn transform_trial<T: Sample>(&self, trial: ArrayView2<T>) -> Result<Array1<f64>> {
        let mut out = vec![0.0; self.n_features()];
        self.features_into(trial, &mut out).map_err(Error::Data)?;
        Ok(Array1::from_vec(out))
    }

    /// Mean power of each filter's output, logged if asked.
    fn features_into<T: Sample>(
        &self,
        trial: ArrayView2<T>,
        out: &mut [f64],
    ) -> std::result::Result<(), String> {
        let (n_channels, n_times) = trial.dim();
        if n_channels != self.n_channels() {
            return Err(format!(
                "`{n_channels}` channels where the csp model has `{}`",
                self.n_channels()
            ));
        }
        if n_times == 0 {
            return Err("`0` samples".into());
        }
        filter_powers(self.filters.view(), trial, out);
        for value in out.iter_mut() {
            if self.log {
                *value = value.ln();
            }
            // Catches non-finite samples too: they propagate into every filter's output.
            if !value.is_finite() {
                return Err(format!(
                    "feature `{value}` is not finite: non-finite samples or no power along a filter"
                ));
            }
        }
        Ok(())
    }

    pub fn n_channels(&self) -> usize {
        self.filters.ncols()
    }

    pub fn n_features(&self) -> usize {
        self.filters.nrows()
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Whether features are log-powers.
    pub fn log(&self) -> bool {
        self.log
    }

    /// features × channels.
    pub fn filters(&self) -> &Array2<f64> {
        &self.filters
    }

    /// features × channels.
    pub fn patterns(&self) -> &Array2<f64> {
        &self.patterns
    }

    pub fn decomposition(&self) -> &Decomposition {
        &self.decomposition
    }
}

/// `out[k] = mean_t((filters[k] · x_t)²)` for a trial (channels × samples).
///
/// Register-blocked: 4 filters × 8 samples of outputs are accumulated while each channel's
/// 8 samples are loaded once. About 1.7× faster than one axpy per filter and channel (16 µs
/// against 28 µs for 4 filters on 22 × 750), and faster than `dot`, whose packing costs more
/// than the product at this size.
fn filter_powers<T: Sample>(filters: ArrayView2<f64>, trial: ArrayView2<T>, out: &mut [f64]) {
    const F: usize = 4;
    const B: usize = 8;
    let (n_channels, n_times) = trial.dim();
    let trial = trial.as_standard_layout();
    let data = trial.as_slice().expect("standard layout");
    let mut weights = vec![[0.0_f64; F]; n_channels];
    for (f0, out) in (0..filters.nrows()).step_by(F).zip(out.chunks_mut(F)) {
        let nf = out.len();
        for (c, w) in weights.iter_mut().enumerate() {
            for (j, wj) in w.iter_mut().enumerate() {
                *wj = if j < nf { filters[[f0 + j, c]] } else { 0.0 };
            }
        }
        let mut power = [0.0_f64; F];
        let mut t = 0;
        while t + B <= n_times {
            let mut acc = [[0.0_f64; B]; F];
            for (c, w) in weights.iter().enumerate() {
                let x = &data[c * n_times + t..c * n_times + t + B];
                for (accj, &wj) in acc.iter_mut().zip(w) {
                    for (a, &v) in accj.iter_mut().zip(x) {
                        *a += wj * v.into();
                    }
                }
            }
            for (p, accj) in power.iter_mut().zip(&acc) {
                *p += accj.iter().map(|a| a * a).sum::<f64>();
            }
            t += B;
        }
        for t in t..n_times {
            let mut acc = [0.0_f64; F];
            for (c, w) in weights.iter().enumerate() {
                let v: f64 = data[c * n_times + t].into();
                for (a, &wj) in acc.iter_mut().zip(w) {
                    *a += wj * v;
                }
            }
            for (p, a) in power.iter_mut().zip(&acc) {
                *p += a * a;
            }
        }
        for (o, p) in out.iter_mut().zip(&power) {
            *o = p / n_times as f64;
        }
    }
}

fn check_positive_definite(cov: &Array2<f64>, what: &str) -> Result<()> {
    linalg::cholesky(cov.view(), PD_REL_TOL)
        .map(|_| ())
        .map_err(|_| {
            Error::Data(format!(
                "covariance of {what} is not positive definite (rank-deficient data, e.g. \
             average-referenced or fewer samples than channels); hint: use shrinkage \
             (`auto` or a fixed value)"
            ))
        })
}

/// Two-class CSP of covariances `a` (the class λ refers to) and `b`.
fn two_class(a: &Array2<f64>, b: &Array2<f64>) -> Result<Pair> {
    let sum = a + b;
    let l = linalg::cholesky(sum.view(), PD_REL_TOL)
        .map_err(|_| Error::Numerical("csp: sum of class covariances is singular".into()))?;
    let m = linalg::whiten(l.view(), a.view());
    let (evals, v) = linalg::eigh(m.view())
        .ok_or_else(|| Error::Numerical("csp: eigendecomposition did not converge".into()))?;
    // Filters W = L⁻ᵀ V satisfy Wᵀ (A + B) W = I; their patterns, the rows of W⁻¹ = Vᵀ Lᵀ,
    // are the columns of L V: (A + B) w for each filter w, with no inverse to compute.
    let mut w = v.clone();
    linalg::solve_lower_transpose_in_place(l.view(), &mut w);
    let p = l.dot(&v);
    let mut order: Vec<usize> = (0..evals.len()).collect();
    order.sort_by(|&i, &j| (evals[j] - 0.5).abs().total_cmp(&(evals[i] - 0.5).abs()));
    Ok(Pair {
        filters: w.select(Axis(1), &order).reversed_axes(),
        patterns: p.select(Axis(1), &order).reversed_axes(),
        eigenvalues: evals.select(Axis(0), &order),
    })
}

fn one_vs_rest(classes: &[Scatter], covs: &[Array2<f64>], params: &CspParams) -> Result<Csp> {
    let n = params.n_components;
    let n_classes = classes.len();
    let n_channels = classes[0].n_channels();
    let mut filters = Array2::zeros((n * n_classes, n_channels));
    let mut patterns = Array2::zeros((n * n_classes, n_channels));
    let mut eigenvalues = Array1::zeros(n * n_classes);
    for (k, cov) in covs.iter().enumerate() {
        let mut rest = Scatter::zeros(n_channels);
        for (j, c) in classes.iter().enumerate() {
            if j != k {
                rest += c;
            }
        }
        let rest_cov = rest.covariance(params);
        check_positive_definite(&rest_cov, &format!("the classes other than `{k}`"))?;
        let pair = two_class(cov, &rest_cov)?;
        // Slices by `slice_axis`, not `s!`: its expansion says `allow(unsafe_code)`, which was
        // refused while the crate forbade unsafe code (Cargo.toml now says `deny`).
        let rows = Slice::from(k * n..(k + 1) * n);
        let first = Slice::from(..n);
        filters
            .slice_axis_mut(Axis(0), rows)
            .assign(&pair.filters.slice_axis(Axis(0), first));
        patterns
            .slice_axis_mut(Axis(0), rows)
            .assign(&pair.patterns.slice_axis(Axis(0), first));
        eigenvalues
            .slice_axis_mut(Axis(0), rows)
            .assign(&pair.eigenvalues.slice_axis(Axis(0), first));
    }
    Ok(Csp {
        n_classes,
        log: params.log,
        filters,
        patterns,
        decomposition: Decomposition::OneVsRest {
            eigenvalues,
            classes: (0..n_classes)
                .flat_map(|k| std::iter::repeat_n(k, n))
                .collect(),
        },
    })
}

/// MNE's multiclass CSP (`_smart_ajd` + `_csp_mod` for full-rank data with concatenated
/// covariances, whose class weights MNE sets all equal).
fn joint(covs: &[Array2<f64>], params: &CspParams) -> Result<Csp> {
    let n_classes = covs.len();
    let prior = 1.0 / n_classes as f64;
    let mut b = linalg::ajd_pham(covs);
    let mean: Array2<f64> = covs
        .iter()
        .fold(Array2::zeros(covs[0].raw_dim()), |acc, c| acc + c)
        * prior;
    // Normalise each filter to unit variance under the mean covariance.
    for mut w in b.rows_mut() {
        let var = w.dot(&mean.dot(&w));
        if var.is_nan() || var <= 0.0 {
            return Err(Error::Numerical(
                "csp: joint diagonalisation gave a degenerate filter".into(),
            ));
        }
        w /= var.sqrt();
    }
    // Mutual information approximation (Grosse-Wentrup & Buss 2008, eq. 11), as MNE.
    let mutual_info: Array1<f64> = b
        .rows()
        .into_iter()
        .map(|w| {
            let (mut aa, mut bb) = (0.0, 0.0);
            for c in covs {
                let v = w.dot(&c.dot(&w));
                aa += prior * v.sqrt().ln();
                bb += prior * (v * v - 1.0);
            }
            -(aa + (3.0 / 16.0) * bb * bb)
        })
        .collect();
    let inv = linalg::inverse(b.t()).ok_or_else(|| {
        Error::Numerical("csp: joint diagonalisation gave a singular filter matrix".into())
    })?;
    let mut order: Vec<usize> = (0..mutual_info.len()).collect();
    order.sort_by(|&i, &j| mutual_info[j].total_cmp(&mutual_info[i]));
    if mutual_info.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical(
            "csp: non-finite mutual information in joint diagonalisation".into(),
        ));
    }
    order.truncate(params.n_components);
    Ok(Csp {
        n_classes,
        log: params.log,
        filters: b.select(Axis(0), &order),
        patterns: inv.select(Axis(0), &order),
        decomposition: Decomposition::JointDiagonalization {
            mutual_info: mutual_info.select(Axis(0), &order),
        },
    })
}
