//! The common shape of most families: a feature stage (CSP, tangent space, filter-bank CSP)
//! → optional standardisation → a head (SVM, LDA, logistic regression). A family built this
//! way only says which [`Features`] and which [`Head`] it chains; fitting, predicting,
//! `model.json` (`{"<features>": …, "scaler": …, "<head>": …}`), the check that the stages fit
//! together and the report are done here once.

use std::fmt::Debug;

use ndarray::{Array1, Array2, ArrayView2};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DataShape, Fitted, Params, ReportParts, Trials3};
use crate::error::{Error, Result};
use crate::model::classifier::ShrinkageSpec;
use crate::model::csp::{Csp, CspParams};
use crate::model::lda::{Lda, LdaParams};
use crate::model::logistic::{LogisticParams, LogisticRegression};
use crate::model::scaler::StandardScaler;
use crate::model::svm::{Gamma, Kernel, Multiclass, SvmModel, SvmParams};
use crate::with_trials;

/// A stage that turns trials into a feature matrix (trials × features).
pub trait Features: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    /// Its key in `model.json` and its name in errors.
    const STAGE: &'static str;
    fn fit(
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Self>;
    fn transform(&self, x: Trials3<'_>) -> Result<Array2<f64>>;
    fn n_channels(&self) -> usize;
    fn n_features(&self) -> usize;
    /// The CSP inside, for the ONNX exporter (`src/export/onnx.rs`); `None`: not exported.
    fn as_csp(&self) -> Option<&Csp> {
        None
    }
    /// Facts and scalp maps of this stage for the report.
    fn report(&self, params: &Params) -> ReportParts;
}

/// A classifier on a feature matrix.
pub trait Head: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static {
    const STAGE: &'static str;
    fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, params: &Params) -> Result<Self>;
    fn n_features(&self) -> usize;
    fn predict(&self, x: ArrayView2<f64>) -> Result<Vec<usize>>;
    /// What V2 `scores` return (the family documents which).
    fn scores(&self, x: ArrayView2<f64>) -> Result<Array2<f64>>;
    fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>>;
    /// One line for the report.
    fn fact(&self) -> (String, String);
    /// The linear map inside a linear head, for the ONNX exporter; `None`: not exported.
    fn as_linear(&self) -> Option<&crate::model::linear::Linear> {
        None
    }
    /// Checks the fitted values against each other (on load).
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// A fitted feature stage → optional scaler → head.
#[derive(Debug, Clone)]
pub struct Chain<F, H> {
    pub features: F,
    pub scaler: Option<StandardScaler>,
    pub head: H,
}

#[derive(Deserialize)]
struct Standardize {
    #[serde(default)]
    standardize: bool,
}

impl<F: Features, H: Head> Chain<F, H> {
    /// Fits every stage on `x` with classes `y`; standardises when the parameters say so.
    pub fn fit(
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Self> {
        let features = F::fit(x, y, n_classes, params, data)?;
        let mut f = features.transform(x)?;
        let scaler = if params.typed::<Standardize>()?.standardize {
            let s = StandardScaler::fit(f.view())?;
            f = s.transform(f.view())?;
            Some(s)
        } else {
            None
        };
        let head = H::fit(f.view(), y, n_classes, params)?;
        Ok(Chain {
            features,
            scaler,
            head,
        })
    }

    /// Reads `{"<features>": …, "scaler": …, "<head>": …}`; the error names the stage that is
    /// missing, malformed or does not take what the stage before it gives.
    pub fn from_json(v: Value) -> std::result::Result<Self, String> {
        let Value::Object(mut m) = v else {
            return Err("not an object of stages".into());
        };
        let mut take = |stage: &str| {
            m.remove(stage)
                .ok_or_else(|| format!("stage `{stage}` is missing"))
        };
        let features: F = serde_json::from_value(take(F::STAGE)?)
            .map_err(|e| format!("stage `{}`: {e}", F::STAGE))?;
        let head: H = serde_json::from_value(take(H::STAGE)?)
            .map_err(|e| format!("stage `{}`: {e}", H::STAGE))?;
        head.validate()
            .map_err(|e| format!("stage `{}`: {e}", H::STAGE))?;
        let scaler: Option<StandardScaler> = match m.remove("scaler") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|e| format!("stage `scaler`: {e}"))?),
        };
        let given = features.n_features();
        if let Some(s) = &scaler {
            if s.n_features() != given {
                return Err(format!(
                    "stage `scaler` takes {} features but `{}` gives {given}",
                    s.n_features(),
                    F::STAGE
                ));
            }
        }
        if head.n_features() != given {
            return Err(format!(
                "stage `{}` takes {} features but `{}` gives {given}",
                H::STAGE,
                head.n_features(),
                F::STAGE
            ));
        }
        Ok(Chain {
            features,
            scaler,
            head,
        })
    }

    fn head_input(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        super::check_channels(self, &x)?;
        let f = self.features.transform(x)?;
        match &self.scaler {
            Some(s) => s.transform(f.view()),
            None => Ok(f),
        }
    }
}

impl<F: Features, H: Head> Fitted for Chain<F, H> {
    fn to_json(&self) -> Result<Value> {
        let enc = |e| Error::encode("the fitted model", e);
        let mut m = serde_json::Map::new();
        m.insert(
            F::STAGE.into(),
            serde_json::to_value(&self.features).map_err(enc)?,
        );
        m.insert(
            "scaler".into(),
            serde_json::to_value(&self.scaler).map_err(enc)?,
        );
        m.insert(
            H::STAGE.into(),
            serde_json::to_value(&self.head).map_err(enc)?,
        );
        Ok(Value::Object(m))
    }
    fn n_channels(&self) -> usize {
        self.features.n_channels()
    }
    fn predict(&self, x: Trials3<'_>) -> Result<Vec<usize>> {
        self.head.predict(self.head_input(x)?.view())
    }
    fn scores(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        self.head.scores(self.head_input(x)?.view())
    }
    fn predict_proba(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        self.head.predict_proba(self.head_input(x)?.view())
    }
    fn csp_stages(&self) -> Option<super::CspStages<'_>> {
        Some(super::CspStages {
            csp: self.features.as_csp()?,
            scaler: self.scaler.as_ref(),
            head: super::CspHead::Linear(self.head.as_linear()?),
        })
    }
    fn report(&self, params: &Params) -> ReportParts {
        let mut parts = self.features.report(params);
        parts.facts.push(self.head.fact());
        if self.scaler.is_some() {
            parts
                .facts
                .push(("scaler".into(), "standardised features".into()));
        }
        parts
    }
}

/// CSP's own parameters out of a family's (the names `csp+svm` declares).
#[derive(Serialize, Deserialize)]
pub struct CspPart {
    n_components: usize,
    log: bool,
    norm_trace: bool,
    shrinkage: ShrinkageSpec,
}

/// CSP's typed parameters from a family that declares [`super::csp_svm::CSP_PARAMS`].
pub fn csp_params(params: &Params) -> Result<CspParams> {
    let p: CspPart = params.typed()?;
    Ok(CspParams::default()
        .n_components(p.n_components)
        .log(p.log)
        .norm_trace(p.norm_trace)
        .shrinkage(p.shrinkage.0))
}

impl Features for Csp {
    fn as_csp(&self) -> Option<&Csp> {
        Some(self)
    }
    const STAGE: &'static str = "csp";
    fn fit(
        x: Trials3<'_>,
        y: &[usize],
        _n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Self> {
        let p = csp_params(params)?;
        p.check(data.n_channels)?;
        with_trials!(x, v => Csp::fit(v, y, &p))
    }
    fn transform(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        with_trials!(x, v => Csp::transform(self, v))
    }
    fn n_channels(&self) -> usize {
        Csp::n_channels(self)
    }
    fn n_features(&self) -> usize {
        Csp::n_features(self)
    }
    fn report(&self, params: &Params) -> ReportParts {
        let facts = match params.typed::<CspPart>() {
            Ok(p) => vec![(
                "CSP".into(),
                format!(
                    "{} components, log {}, trace normalisation {}, shrinkage {}",
                    p.n_components, p.log, p.norm_trace, p.shrinkage
                ),
            )],
            Err(_) => Vec::new(),
        };
        ReportParts {
            facts,
            maps: super::csp_svm::csp_maps(self),
            ..ReportParts::default()
        }
    }
}

/// The SVM's own parameters out of a family's (the names `csp+svm` declares).
#[derive(Serialize, Deserialize)]
pub struct SvmPart {
    kernel: Kernel,
    c: f64,
    gamma: Gamma,
    degree: u32,
    coef0: f64,
    multiclass: Multiclass,
    #[serde(default)]
    probability: bool,
}

impl Head for SvmModel {
    const STAGE: &'static str = "svm";
    fn fit(x: ArrayView2<f64>, y: &[usize], _n_classes: usize, params: &Params) -> Result<Self> {
        let p: SvmPart = params.typed()?;
        let checked = SvmParams::default()
            .kernel(p.kernel)
            .c(p.c)
            .gamma(p.gamma)
            .degree(p.degree)
            .coef0(p.coef0)
            .multiclass(p.multiclass)
            .probability(p.probability)
            .check()?;
        let labels = Array1::from_iter(y.iter().map(|&c| c as i64));
        checked.fit(x, labels.view())
    }
    fn n_features(&self) -> usize {
        self.n_features
    }
    fn predict(&self, x: ArrayView2<f64>) -> Result<Vec<usize>> {
        Ok(SvmModel::predict(self, x)?
            .iter()
            .map(|&l| l.max(0) as usize)
            .collect())
    }
    fn scores(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.decision_function(x)
    }
    fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        if !self.has_probability() {
            return Err(Error::setting(
                "probability",
                None,
                "the model was trained without probability estimates: train it again with them",
            ));
        }
        SvmModel::predict_proba(self, x)
    }
    fn validate(&self) -> Result<()> {
        SvmModel::validate(self)
    }
    fn fact(&self) -> (String, String) {
        (
            "SVM".into(),
            format!(
                "{} support vectors over {} features",
                self.n_support().iter().sum::<usize>(),
                self.n_features
            ),
        )
    }
}

/// LDA's own parameters out of a family's.
#[derive(Serialize, Deserialize)]
pub struct LdaPart {
    lda_shrinkage: ShrinkageSpec,
}

impl Head for Lda {
    fn as_linear(&self) -> Option<&crate::model::linear::Linear> {
        Some(&self.linear)
    }
    const STAGE: &'static str = "lda";
    fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, params: &Params) -> Result<Self> {
        let p: LdaPart = params.typed()?;
        Lda::fit(
            x,
            y,
            n_classes,
            &LdaParams::default().shrinkage(p.lda_shrinkage.0),
        )
    }
    fn n_features(&self) -> usize {
        Lda::n_features(self)
    }
    fn predict(&self, x: ArrayView2<f64>) -> Result<Vec<usize>> {
        Lda::predict(self, x)
    }
    fn scores(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.decision_function(x)
    }
    fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        Lda::predict_proba(self, x)
    }
    fn fact(&self) -> (String, String) {
        (
            "LDA".into(),
            format!(
                "lsqr, shrinkage {}, {} classes over {} features",
                ShrinkageSpec(self.params.shrinkage),
                self.n_classes(),
                Lda::n_features(self)
            ),
        )
    }
}

/// Logistic regression's own parameters out of a family's.
#[derive(Serialize, Deserialize)]
pub struct LrPart {
    c: f64,
    max_iter: usize,
    tol: f64,
}

impl Head for LogisticRegression {
    fn as_linear(&self) -> Option<&crate::model::linear::Linear> {
        Some(&self.linear)
    }
    const STAGE: &'static str = "logistic_regression";
    fn fit(x: ArrayView2<f64>, y: &[usize], n_classes: usize, params: &Params) -> Result<Self> {
        let p: LrPart = params.typed()?;
        let lr = LogisticParams::default()
            .c(p.c)
            .max_iter(p.max_iter)
            .tol(p.tol);
        LogisticRegression::fit(x, y, n_classes, &lr)
    }
    fn n_features(&self) -> usize {
        LogisticRegression::n_features(self)
    }
    fn predict(&self, x: ArrayView2<f64>) -> Result<Vec<usize>> {
        LogisticRegression::predict(self, x)
    }
    fn scores(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.decision_function(x)
    }
    fn predict_proba(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        LogisticRegression::predict_proba(self, x)
    }
    fn fact(&self) -> (String, String) {
        (
            "logistic regression".into(),
            format!(
                "L2, C {}, {} L-BFGS iterations{}",
                self.params.c,
                self.n_iter,
                if self.converged {
                    ""
                } else {
                    " (stopped by max_iter before converging)"
                }
            ),
        )
    }
}
