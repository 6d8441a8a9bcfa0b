//! The Riemannian families, pyRiemann's pipelines as MOABB publishes them:
//! `ts+svm` — `Covariances` → `TangentSpace(metric="riemann")` → `SVC(kernel="linear")`;
//! `ts+lr` — the same tangent space → `LogisticRegression()`;
//! `mdm` — `Covariances` → `MDM` (minimum distance to the Riemannian class means).
//! Covariances are `oas` by default (MOABB's choice).

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chain::{Chain, Features};
use super::csp_svm::SVM_PARAMS;
use super::{DataShape, Family, Fitted, Kind, ParamSpec, Params, ReportParts, Trials3};
use crate::error::{Error, Result};
use crate::model::logistic::LogisticRegression;
use crate::model::riemann::{covariances, CovEstimator, Mdm, TangentSpace};
use crate::model::svm::SvmModel;
use crate::with_trials;

/// The covariance estimator of every Riemannian family.
pub const ESTIMATOR: ParamSpec = ParamSpec {
    name: "estimator",
    kind: Kind::Choice(&["scm", "lwf", "oas"]),
    default: "oas",
    help: "Covariance estimator (pyRiemann `Covariances`): scm, lwf (Ledoit-Wolf) or oas",
};

#[derive(Deserialize)]
struct EstimatorPart {
    estimator: CovEstimator,
}

/// Trial covariances with the family's estimator; a matrix that is not positive definite is
/// refused with a hint towards the shrinkage estimators.
pub fn trial_covariances(x: Trials3<'_>, est: CovEstimator) -> Result<Array3<f64>> {
    with_trials!(x, v => covariances(v, est)).map_err(|e| rank_hint(e, est))
}

fn rank_hint(e: Error, est: CovEstimator) -> Error {
    let text = e.to_string();
    if est == CovEstimator::Scm && text.contains("positive definite") {
        return Error::Data(format!(
            "{text}: the data are rank-deficient (e.g. re-referenced or fewer samples than \
             channels); `estimator` = `scm` cannot work, use `lwf` or `oas` shrinkage"
        ));
    }
    e
}

/// Covariances → tangent space at their Riemannian mean, as a feature stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tangent {
    pub estimator: CovEstimator,
    #[serde(flatten)]
    pub space: TangentSpace,
}

impl Features for Tangent {
    const STAGE: &'static str = "tangent_space";
    fn fit(
        x: Trials3<'_>,
        _y: &[usize],
        _n_classes: usize,
        params: &Params,
        _data: DataShape,
    ) -> Result<Self> {
        let estimator = params.typed::<EstimatorPart>()?.estimator;
        let covs = trial_covariances(x, estimator)?;
        let space = TangentSpace::fit(covs.view()).map_err(|e| rank_hint(e, estimator))?;
        Ok(Tangent { estimator, space })
    }
    fn transform(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        let covs = trial_covariances(x, self.estimator)?;
        self.space.transform(covs.view())
    }
    fn n_channels(&self) -> usize {
        self.space.n_channels()
    }
    fn n_features(&self) -> usize {
        self.space.n_features()
    }
    fn report(&self, _params: &Params) -> ReportParts {
        ReportParts {
            facts: vec![(
                "tangent space".into(),
                format!(
                    "`{}` covariances, reference = their Riemannian mean, {} features",
                    self.estimator,
                    self.n_features()
                ),
            )],
            // The reference's diagonal: each channel's variance at the tangent point.
            maps: vec![(
                "reference variance".into(),
                self.space.reference.diag().to_vec(),
            )],
            maps_title: "Tangent-space reference".into(),
            maps_note: "The diagonal of the reference covariance (the Riemannian mean of the \
                        training trials): each channel's variance, nose up."
                .into(),
        }
    }
}

pub struct TsSvm;

static TS_SVM_PARAMS: [ParamSpec; 9] = [
    ESTIMATOR,
    SVM_PARAMS[0],
    // MOABB's TS+SVM uses a linear SVC.
    ParamSpec {
        default: "linear",
        ..SVM_PARAMS[1]
    },
    SVM_PARAMS[2],
    SVM_PARAMS[3],
    SVM_PARAMS[4],
    SVM_PARAMS[5],
    SVM_PARAMS[6],
    super::csp_svm::PROBABILITY,
];

/// Typed round trip of a family's values: canonical JSON, every value checked by its type.
pub fn normalize_as<T: Serialize + serde::de::DeserializeOwned>(
    family: &str,
    values: BTreeMap<String, Value>,
) -> std::result::Result<BTreeMap<String, Value>, String> {
    let typed: T = serde_json::from_value(Value::Object(values.clone().into_iter().collect()))
        .map_err(|e| format!("pipeline `{family}`: {e}"))?;
    let Ok(Value::Object(canon)) = serde_json::to_value(&typed) else {
        return Err(format!(
            "internal: pipeline `{family}` parameters are not an object"
        ));
    };
    // The typed struct covers some of the values; the others stay as given.
    let mut out = values;
    out.extend(canon);
    Ok(out)
}

impl Family for TsSvm {
    fn name(&self) -> &'static str {
        "ts+svm"
    }
    fn stages(&self) -> &'static str {
        "covariances → tangent space at the Riemannian mean → [standardise] → SVM"
    }
    fn scores_doc(&self) -> &'static str {
        "SVM decision values (scikit-learn `SVC.decision_function`), as for csp+svm"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &TS_SVM_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        normalize_as::<super::chain::SvmPart>(self.name(), values)
    }
    fn check(&self, params: &Params, _data: DataShape) -> Result<()> {
        params.typed::<EstimatorPart>().map(|_| ())
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<Tangent, SvmModel>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<Tangent, SvmModel>::from_json(fitted)?))
    }
}

pub struct MdmFamily;

static MDM_PARAMS: [ParamSpec; 1] = [ESTIMATOR];

/// A fitted MDM with the covariance estimator it was fitted with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MdmModel {
    pub estimator: CovEstimator,
    pub mdm: Mdm,
}

impl Family for MdmFamily {
    fn name(&self) -> &'static str {
        "mdm"
    }
    fn stages(&self) -> &'static str {
        "covariances → minimum distance to the Riemannian class means (pyRiemann MDM)"
    }
    fn scores_doc(&self) -> &'static str {
        "Riemannian distance of each trial's covariance to each class mean (trials × classes, \
         pyRiemann `MDM.transform`); the label is the nearest"
    }
    fn score_columns(&self, n_classes: usize) -> usize {
        n_classes
    }
    fn params(&self) -> &'static [ParamSpec] {
        &MDM_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        #[derive(Serialize, Deserialize)]
        struct P {
            estimator: CovEstimator,
        }
        normalize_as::<P>(self.name(), values)
    }
    fn check(&self, params: &Params, _data: DataShape) -> Result<()> {
        params.typed::<EstimatorPart>().map(|_| ())
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        _data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        let estimator = params.typed::<EstimatorPart>()?.estimator;
        let covs = trial_covariances(x, estimator)?;
        let mdm = Mdm::fit(covs.view(), y, n_classes).map_err(|e| rank_hint(e, estimator))?;
        Ok(Arc::new(MdmModel { estimator, mdm }))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        let m: MdmModel =
            serde_json::from_value(fitted).map_err(|e| format!("stage `mdm`: {e}"))?;
        Ok(Arc::new(m))
    }
}

impl Fitted for MdmModel {
    fn to_json(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| Error::encode("the fitted model", e))
    }
    fn n_channels(&self) -> usize {
        self.mdm.n_channels()
    }
    fn predict(&self, x: Trials3<'_>) -> Result<Vec<usize>> {
        super::check_channels(self, &x)?;
        self.mdm
            .predict(trial_covariances(x, self.estimator)?.view())
    }
    fn scores(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        super::check_channels(self, &x)?;
        self.mdm
            .distances(trial_covariances(x, self.estimator)?.view())
    }
    fn predict_proba(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        super::check_channels(self, &x)?;
        self.mdm
            .probabilities(trial_covariances(x, self.estimator)?.view())
    }
    fn report(&self, _params: &Params) -> ReportParts {
        ReportParts {
            facts: vec![(
                "MDM".into(),
                format!(
                    "`{}` covariances, {} class means (Riemannian)",
                    self.estimator,
                    self.mdm.n_classes()
                ),
            )],
            // Each class mean's diagonal: per-channel variance of the class.
            maps: self
                .mdm
                .means()
                .outer_iter()
                .enumerate()
                .map(|(k, m)| (format!("class {} mean variance", k + 1), m.diag().to_vec()))
                .collect(),
            maps_title: "Class-mean covariances".into(),
            maps_note: "The diagonal of each class's Riemannian mean covariance: each \
                        channel's variance in that class, nose up; compare the classes."
                .into(),
        }
    }
}

pub struct TsLr;

static TS_LR_PARAMS: [ParamSpec; 5] = [
    ESTIMATOR,
    SVM_PARAMS[0],
    super::csp_linear::LR_PARAMS[0],
    super::csp_linear::LR_PARAMS[1],
    super::csp_linear::LR_PARAMS[2],
];

impl Family for TsLr {
    fn name(&self) -> &'static str {
        "ts+lr"
    }
    fn stages(&self) -> &'static str {
        "covariances → tangent space at the Riemannian mean → [standardise] → logistic regression"
    }
    fn scores_doc(&self) -> &'static str {
        "Logistic-regression decision values (log-odds), as for csp+lr"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &TS_LR_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        normalize_as::<super::chain::LrPart>(self.name(), values)
    }
    fn check(&self, params: &Params, _data: DataShape) -> Result<()> {
        params.typed::<EstimatorPart>().map(|_| ())
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<Tangent, LogisticRegression>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<Tangent, LogisticRegression>::from_json(
            fitted,
        )?))
    }
}
