//! SVM hyperparameters: a builder with scikit-learn `SVC` names and defaults, checked once.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The kernel family, named as scikit-learn names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// `x·y`
    Linear,
    /// `exp(-gamma |x-y|²)`
    Rbf,
    /// `(gamma x·y + coef0)^degree`
    Poly,
    /// `tanh(gamma x·y + coef0)`
    Sigmoid,
}

impl Kernel {
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Linear => "linear",
            Kernel::Rbf => "rbf",
            Kernel::Poly => "poly",
            Kernel::Sigmoid => "sigmoid",
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kernel {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "linear" => Ok(Kernel::Linear),
            "rbf" => Ok(Kernel::Rbf),
            "poly" => Ok(Kernel::Poly),
            "sigmoid" => Ok(Kernel::Sigmoid),
            _ => Err(Error::Invalid(format!(
                "unknown kernel `{s}`: expected `linear`, `rbf`, `poly` or `sigmoid`"
            ))),
        }
    }
}

/// Kernel coefficient, as scikit-learn's `gamma`; `Scale` and `Auto` are resolved from the
/// training matrix when fitting (see [`Gamma::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// `1 / (n_features · X.var())`, the variance taken over every element of `X`;
    /// `1` when that variance is zero.
    Scale,
    /// `1 / n_features`
    Auto,
    /// A fixed positive value.
    Value(f64),
}

impl Gamma {
    /// The number scikit-learn stores as `SVC._gamma` for this training matrix.
    pub fn resolve(self, x: ndarray::ArrayView2<f64>) -> f64 {
        let n_features = x.ncols() as f64;
        match self {
            Gamma::Value(g) => g,
            Gamma::Auto => 1.0 / n_features,
            Gamma::Scale => {
                // numpy's `X.var()`: population variance of all elements, two passes.
                let n = x.len() as f64;
                let mean = x.iter().sum::<f64>() / n;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                if var == 0.0 {
                    1.0
                } else {
                    1.0 / (n_features * var)
                }
            }
        }
    }
}

impl fmt::Display for Gamma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gamma::Scale => f.write_str("scale"),
            Gamma::Auto => f.write_str("auto"),
            Gamma::Value(g) => write!(f, "{g}"),
        }
    }
}

impl FromStr for Gamma {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "scale" => Ok(Gamma::Scale),
            "auto" => Ok(Gamma::Auto),
            _ => s.parse::<f64>().map(Gamma::Value).map_err(|_| {
                Error::Invalid(format!(
                    "invalid gamma `{s}`: expected `scale`, `auto` or a positive number"
                ))
            }),
        }
    }
}

// As in sklearn configs and W&B sweeps: the strings "scale" / "auto" or a bare number.
impl Serialize for Gamma {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Gamma::Value(g) => s.serialize_f64(*g),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Gamma {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        number_or_text(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Reads a value written either as a bare number or as a string (`0.5` or `"scale"`), as
/// scikit-learn configs and W&B sweeps write `gamma` and `shrinkage`; numbers come back as
/// their shortest decimal text, which parses back to the same float.
pub(crate) fn number_or_text<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Number(v) => v.to_string(),
        Raw::Text(t) => t,
    })
}

/// How more than two classes are split into binary problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Multiclass {
    /// One machine per pair of classes and majority voting, as libsvm and sklearn `SVC`.
    Ovo,
    /// One machine per class against all others; the largest decision value wins.
    Ovr,
}

impl fmt::Display for Multiclass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Multiclass::Ovo => "ovo",
            Multiclass::Ovr => "ovr",
        })
    }
}

impl FromStr for Multiclass {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ovo" | "one-vs-one" => Ok(Multiclass::Ovo),
            "ovr" | "one-vs-rest" => Ok(Multiclass::Ovr),
            _ => Err(Error::Invalid(format!(
                "unknown multiclass strategy `{s}`: expected `ovo` or `ovr`"
            ))),
        }
    }
}

/// SVM hyperparameters with scikit-learn `SVC`'s names and defaults. Build, then [`check`]
/// once; only [`CheckedSvmParams`] can fit.
///
/// [`check`]: SvmParams::check
///
/// Deserializing fills missing fields with the defaults, so `{"kernel": "linear"}` is a
/// complete configuration; unknown fields are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvmParams {
    pub kernel: Kernel,
    /// Penalty of margin violations (`C`); both classes get the same.
    pub c: f64,
    pub gamma: Gamma,
    /// Polynomial degree; only `poly` uses it.
    pub degree: u32,
    /// Constant term of the `poly` and `sigmoid` kernels.
    pub coef0: f64,
    /// Stopping tolerance of the SMO solver: the maximal KKT violation, as libsvm's `eps`.
    pub tol: f64,
    pub multiclass: Multiclass,
    /// Fit Platt sigmoids (on 5-fold cross-validated decision values) so that
    /// `predict_proba` works; costs about five more fits per binary machine.
    pub probability: bool,
}

impl Default for SvmParams {
    /// scikit-learn `SVC()`: rbf, `C=1`, `gamma='scale'`, `degree=3`, `coef0=0`, `tol=1e-3`.
    fn default() -> Self {
        SvmParams {
            kernel: Kernel::Rbf,
            c: 1.0,
            gamma: Gamma::Scale,
            degree: 3,
            coef0: 0.0,
            tol: 1e-3,
            multiclass: Multiclass::Ovo,
            probability: false,
        }
    }
}

impl SvmParams {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel;
        self
    }

    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }

    pub fn gamma(mut self, gamma: Gamma) -> Self {
        self.gamma = gamma;
        self
    }

    pub fn degree(mut self, degree: u32) -> Self {
        self.degree = degree;
        self
    }

    pub fn coef0(mut self, coef0: f64) -> Self {
        self.coef0 = coef0;
        self
    }

    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    pub fn multiclass(mut self, multiclass: Multiclass) -> Self {
        self.multiclass = multiclass;
        self
    }

    pub fn probability(mut self, probability: bool) -> Self {
        self.probability = probability;
        self
    }

    /// Validate every parameter once; the result is what fits.
    pub fn check(&self) -> Result<CheckedSvmParams> {
        let p = self;
        if !(p.c.is_finite() && p.c > 0.0) {
            return Err(Error::Invalid(format!(
                "svm `c` must be positive and finite, got `{}`",
                p.c
            )));
        }
        if let Gamma::Value(g) = p.gamma {
            if !(g.is_finite() && g > 0.0) {
                return Err(Error::Invalid(format!(
                    "svm `gamma` must be `scale`, `auto` or positive and finite, got `{g}`"
                )));
            }
        }
        if p.degree < 1 {
            return Err(Error::Invalid(format!(
                "svm `degree` must be at least 1, got `{}`",
                p.degree
            )));
        }
        if !p.coef0.is_finite() {
            return Err(Error::Invalid(format!(
                "svm `coef0` must be finite, got `{}`",
                p.coef0
            )));
        }
        if !(p.tol.is_finite() && p.tol > 0.0) {
            return Err(Error::Invalid(format!(
                "svm `tol` must be positive and finite, got `{}`",
                p.tol
            )));
        }
        // The dual's gradients grow with `c`; past tol / (1000 ε) their rounding is more than
        // a thousandth of the stopping tolerance, and the solver can no longer tell that it is
        // done (`c` = 1e12 ran its whole iteration budget, 45 s, before failing).
        let c_max = p.tol / (1e3 * f64::EPSILON);
        if p.c > c_max {
            return Err(Error::Invalid(format!(
                "svm `c` = `{}` is more than the solver can resolve at `tol` = {} (at most \
                 {c_max:.2e}); on standardised features c beyond 1e3 rarely changes the model",
                p.c, p.tol
            )));
        }
        Ok(CheckedSvmParams(p.clone()))
    }
}

/// Parameters that passed [`SvmParams::check`]; `fit` lives on this type.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSvmParams(pub(super) SvmParams);

impl CheckedSvmParams {
    pub fn params(&self) -> &SvmParams {
        &self.0
    }
}
