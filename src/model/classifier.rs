//! The fitted pipeline: CSP → optional standardisation → SVM, and the flat hyper-parameter set
//! that `train` flags, `--params` files and sweeps all build.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2, ArrayView3};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::model::csp::{self, Csp, CspParams, Shrinkage};
use crate::model::scaler::StandardScaler;
use crate::model::svm::{CheckedSvmParams, Gamma, Kernel, Multiclass, SvmModel, SvmParams};

/// CSP shrinkage as users write it: `none`, `auto` (Ledoit-Wolf) or a number in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShrinkageSpec(pub Shrinkage);

impl fmt::Display for ShrinkageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Shrinkage::None => f.write_str("none"),
            Shrinkage::Auto => f.write_str("auto"),
            Shrinkage::Fixed(v) => write!(f, "{v}"),
        }
    }
}

impl FromStr for ShrinkageSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "none" => Ok(ShrinkageSpec(Shrinkage::None)),
            "auto" | "ledoit_wolf" => Ok(ShrinkageSpec(Shrinkage::Auto)),
            other => match other.parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Ok(ShrinkageSpec(Shrinkage::Fixed(v))),
                _ => Err(Error::Invalid(format!(
                    "shrinkage `{s}` is not `none`, `auto` or a number between 0 and 1"
                ))),
            },
        }
    }
}

impl Serialize for ShrinkageSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Shrinkage::Fixed(v) => s.serialize_f64(v),
            _ => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for ShrinkageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        crate::model::svm::number_or_text(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Every hyper-parameter of the model, flat, as `train` flags, `best.json` and sweeps name
/// them. Defaults: MNE `CSP()` (4 components, log-variance) and scikit-learn `SVC()` (RBF,
/// C = 1, gamma = `scale`, one-vs-one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelParams {
    pub n_components: usize,
    pub log: bool,
    pub norm_trace: bool,
    pub shrinkage: ShrinkageSpec,
    /// Standardise the CSP features before the SVM (always done without `log`, as MNE does).
    pub standardize: bool,
    pub kernel: Kernel,
    pub c: f64,
    pub gamma: Gamma,
    pub degree: u32,
    pub coef0: f64,
    /// More than two classes: `ovo` or `ovr`.
    pub multiclass: Multiclass,
    /// Fit Platt scaling so the model can give class probabilities.
    pub probability: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        let svm = SvmParams::default();
        let csp = CspParams::default();
        ModelParams {
            n_components: csp.n_components,
            log: csp.log,
            norm_trace: csp.norm_trace,
            shrinkage: ShrinkageSpec(csp.shrinkage),
            standardize: false,
            kernel: svm.kernel,
            c: svm.c,
            gamma: svm.gamma,
            degree: svm.degree,
            coef0: svm.coef0,
            multiclass: svm.multiclass,
            probability: false,
        }
    }
}

/// Parameters checked once against the data's channel count; only these can fit.
#[derive(Debug, Clone)]
pub struct CheckedParams {
    pub params: ModelParams,
    pub csp: CspParams,
    pub svm: CheckedSvmParams,
}

impl ModelParams {
    pub fn csp_params(&self) -> CspParams {
        CspParams::default()
            .n_components(self.n_components)
            .log(self.log)
            .norm_trace(self.norm_trace)
            .shrinkage(self.shrinkage.0)
    }

    pub fn svm_params(&self) -> SvmParams {
        SvmParams::default()
            .kernel(self.kernel)
            .c(self.c)
            .gamma(self.gamma)
            .degree(self.degree)
            .coef0(self.coef0)
            .multiclass(self.multiclass)
            .probability(self.probability)
    }

    /// Validates the whole set for data with `n_channels` channels.
    pub fn check(&self, n_channels: usize) -> Result<CheckedParams> {
        let csp = self.csp_params();
        csp.check(n_channels)?;
        let svm = self.svm_params().check()?;
        Ok(CheckedParams {
            params: self.clone(),
            csp,
            svm,
        })
    }
}

/// A fitted CSP + scaler + SVM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub csp: Csp,
    pub scaler: Option<StandardScaler>,
    pub svm: SvmModel,
}

/// Fits the pipeline on `x` (trials × channels × samples) with classes `y`.
pub fn fit<T: csp::Sample>(
    x: ArrayView3<T>,
    y: &[usize],
    params: &CheckedParams,
) -> Result<Fitted> {
    let csp = Csp::fit(x, y, &params.csp)?;
    let features = csp.transform(x)?;
    fit_on_features(csp, features, y, params)
}

/// Fits scaler and SVM on features a fitted CSP produced (lets a sweep share the CSP).
pub fn fit_on_features(
    csp: Csp,
    features: Array2<f64>,
    y: &[usize],
    params: &CheckedParams,
) -> Result<Fitted> {
    let Head { scaler, svm } = Head::fit(features, y, params)?;
    Ok(Fitted { csp, scaler, svm })
}

/// The stages after CSP: optional standardisation and the SVM.
#[derive(Debug, Clone)]
pub struct Head {
    pub scaler: Option<StandardScaler>,
    pub svm: SvmModel,
}

impl Head {
    /// Fits the head on CSP features (trials × features) with classes `y`.
    pub fn fit(mut features: Array2<f64>, y: &[usize], params: &CheckedParams) -> Result<Head> {
        // Plain-power features (no log) span orders of magnitude; MNE z-scores them in that
        // case, and without it the SMO solver needs far more iterations on such badly scaled data.
        let scaler = if params.params.standardize || !params.params.log {
            let scaler = StandardScaler::fit(features.view())?;
            features = scaler.transform(features.view())?;
            Some(scaler)
        } else {
            None
        };
        let labels = ndarray::Array1::from_iter(y.iter().map(|&c| c as i64));
        let svm = params.svm.fit(features.view(), labels.view())?;
        Ok(Head { scaler, svm })
    }

    /// Class indices of CSP features.
    pub fn predict(&self, features: Array2<f64>) -> Result<Vec<usize>> {
        let features = match &self.scaler {
            Some(s) => s.transform(features.view())?,
            None => features,
        };
        Ok(self
            .svm
            .predict(features.view())?
            .iter()
            .map(|&l| l.max(0) as usize)
            .collect())
    }
}

impl Fitted {
    /// CSP features, standardised when the pipeline standardises.
    pub fn features<T: csp::Sample>(&self, x: ArrayView3<T>) -> Result<Array2<f64>> {
        let f = self.csp.transform(x)?;
        match &self.scaler {
            Some(s) => s.transform(f.view()),
            None => Ok(f),
        }
    }

    /// Class indices of each trial.
    pub fn predict<T: csp::Sample>(&self, x: ArrayView3<T>) -> Result<Vec<usize>> {
        let f = self.features(x)?;
        let labels = self.svm.predict(f.view())?;
        Ok(labels.iter().map(|&l| l.max(0) as usize).collect())
    }

    /// Decision values (trials × machines, as scikit-learn's `decision_function`).
    pub fn decision_function<T: csp::Sample>(&self, x: ArrayView3<T>) -> Result<Array2<f64>> {
        let f = self.features(x)?;
        self.svm.decision_function(f.view())
    }

    /// Class probabilities (trials × classes); the model must have been fitted with
    /// `probability`.
    pub fn predict_proba<T: csp::Sample>(&self, x: ArrayView3<T>) -> Result<Array2<f64>> {
        let f = self.features(x)?;
        self.svm.predict_proba(f.view())
    }

    /// One trial (channels × samples), for serving: no batch allocation.
    pub fn predict_trial<T: csp::Sample>(&self, trial: ArrayView2<T>) -> Result<usize> {
        let mut f = self.csp.transform_trial(trial)?.to_vec();
        if let Some(s) = &self.scaler {
            s.transform_one(&mut f)?;
        }
        Ok(self.svm.predict_one(&f)?.max(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_power_features_are_z_scored_as_mne_does() {
        // Two features of very different scale, as plain CSP powers are.
        let features = Array2::from_shape_fn((40, 2), |(i, j)| {
            let class = (i % 2) as f64;
            (1.0 + class + 0.1 * (i as f64).sin()) * if j == 0 { 1e3 } else { 1e-2 }
        });
        let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let no_log = ModelParams {
            log: false,
            n_components: 2,
            kernel: "linear".parse().unwrap(),
            ..ModelParams::default()
        };
        let head = Head::fit(features.clone(), &y, &no_log.check(2).unwrap()).unwrap();
        let scaler = head.scaler.as_ref().expect("log = false standardises");
        assert!((scaler.mean[0] - features.column(0).mean().unwrap()).abs() < 1e-9);
        assert_eq!(
            head.predict(features.clone()).unwrap(),
            y,
            "separable after scaling"
        );
        let log = ModelParams {
            n_components: 2,
            ..ModelParams::default()
        };
        assert!(Head::fit(features, &y, &log.check(2).unwrap())
            .unwrap()
            .scaler
            .is_none());
    }
}
