//! `csp+svm`: CSP → log-variance → optional standardisation → SVM, the original pipeline.
//! The typed parameters and the fitted chain are [`crate::model::classifier`]'s; this module
//! declares the parameters and plugs the chain into the seam. Its evaluation shares every
//! trial's CSP scatter across the folds (`model/evaluate.rs`), and tune shares whole CSP fits
//! across candidates (`tune/runner.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use serde_json::Value;

use super::{DataShape, Family, Fitted, Kind, Labelled, ParamSpec, Params, ReportParts, Trials3};
use crate::error::{Error, Result};
use crate::model::classifier::{self, ModelParams};
use crate::with_trials;

pub struct CspSvm;

/// CSP's parameters, shared by every family with a CSP stage.
pub const CSP_PARAMS: [ParamSpec; 4] = [
    ParamSpec {
        name: "n_components",
        kind: Kind::Int { min: 1, max: 1024 },
        default: "4",
        help: "CSP components kept (features)",
    },
    ParamSpec {
        name: "log",
        kind: Kind::Bool,
        default: "true",
        help: "Log-variance CSP features (`--no-log`: plain variance, then z-scored, as MNE does)",
    },
    ParamSpec {
        name: "norm_trace",
        kind: Kind::Bool,
        default: "false",
        help: "Normalise each class covariance by its trace",
    },
    ParamSpec {
        name: "shrinkage",
        kind: Kind::WordOrFloat {
            words: &["none", "auto", "ledoit_wolf"],
            min: 0.0,
            max: 1.0,
            open_min: false,
        },
        default: "none",
        help: "CSP covariance shrinkage: `none`, `auto` (Ledoit-Wolf) or a number in 0..1",
    },
];

/// The SVM's parameters (scikit-learn `SVC()` defaults), shared by every family with an SVM
/// head.
pub const SVM_PARAMS: [ParamSpec; 7] = [
    ParamSpec {
        name: "standardize",
        kind: Kind::Bool,
        default: "false",
        help: "Standardise the features before the head",
    },
    ParamSpec {
        name: "kernel",
        kind: Kind::Choice(&["linear", "rbf", "poly", "sigmoid"]),
        default: "rbf",
        help: "SVM kernel: linear, rbf, poly or sigmoid (as scikit-learn)",
    },
    ParamSpec {
        name: "c",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: "1.0",
        help: "Regularisation C (> 0) of the SVM or logistic regression",
    },
    ParamSpec {
        name: "gamma",
        kind: Kind::WordOrFloat {
            words: &["scale", "auto"],
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: "scale",
        help: "Kernel coefficient: `scale`, `auto` or a positive number (as scikit-learn)",
    },
    ParamSpec {
        name: "degree",
        kind: Kind::Int { min: 0, max: 64 },
        default: "3",
        help: "Polynomial kernel degree",
    },
    ParamSpec {
        name: "coef0",
        kind: Kind::Float {
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            open_min: false,
        },
        default: "0.0",
        help: "Independent term of the poly and sigmoid kernels",
    },
    ParamSpec {
        name: "multiclass",
        kind: Kind::Choice(&["ovo", "ovr", "one-vs-one", "one-vs-rest"]),
        default: "ovo",
        help: "More than two classes: `ovo` (one-vs-one, as SVC) or `ovr`",
    },
];

pub const PROBABILITY: ParamSpec = ParamSpec {
    name: "probability",
    kind: Kind::Bool,
    default: "false",
    help: "Fit Platt scaling so `predict --proba` can give class probabilities",
};

/// The declaration, in `ModelParams`' field order (the order `model.json` has always had).
static PARAMS: [ParamSpec; 12] = [
    CSP_PARAMS[0],
    CSP_PARAMS[1],
    CSP_PARAMS[2],
    CSP_PARAMS[3],
    SVM_PARAMS[0],
    SVM_PARAMS[1],
    SVM_PARAMS[2],
    SVM_PARAMS[3],
    SVM_PARAMS[4],
    SVM_PARAMS[5],
    SVM_PARAMS[6],
    PROBABILITY,
];

impl CspSvm {
    /// The typed parameters of a `csp+svm` [`Params`].
    pub fn typed(p: &Params) -> Result<ModelParams> {
        p.typed()
    }
}

/// A typed `ModelParams` as seam parameters.
pub fn params_of(m: &ModelParams) -> Params {
    let mut p = Params::defaults(&CspSvm);
    if let Ok(Value::Object(map)) = serde_json::to_value(m) {
        // Values a ModelParams serializes are always valid.
        let _ = p.merge_json(&map);
    }
    p
}

impl Family for CspSvm {
    fn name(&self) -> &'static str {
        "csp+svm"
    }
    fn stages(&self) -> &'static str {
        "CSP → log-variance → [standardise] → SVM (scikit-learn SVC)"
    }
    fn scores_doc(&self) -> &'static str {
        "SVM decision values, as scikit-learn `SVC.decision_function`: one column for two \
         classes, else one per class (ovr shape)"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        let typed: ModelParams =
            serde_json::from_value(Value::Object(values.into_iter().collect()))
                .map_err(|e| format!("pipeline `csp+svm`: {e}"))?;
        match serde_json::to_value(&typed) {
            Ok(Value::Object(m)) => Ok(m.into_iter().collect()),
            _ => Err("internal: csp+svm parameters are not an object".into()),
        }
    }
    fn check(&self, params: &Params, data: DataShape) -> Result<()> {
        CspSvm::typed(params)?.check(data.n_channels).map(|_| ())
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        _n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        let checked = CspSvm::typed(params)?.check(data.n_channels)?;
        let fitted = with_trials!(x, v => classifier::fit(v, y, &checked))?;
        Ok(Arc::new(fitted))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        let f: classifier::Fitted = serde_json::from_value(fitted).map_err(|e| e.to_string())?;
        f.svm.validate().map_err(|e| format!("stage `svm`: {e}"))?;
        if f.csp.n_features() != f.svm.n_features {
            return Err(format!(
                "stage `svm`: csp gives {} features but the svm takes {}",
                f.csp.n_features(),
                f.svm.n_features
            ));
        }
        Ok(Arc::new(f))
    }
    fn evaluate_folds(
        &self,
        set: Labelled<'_>,
        params: &Params,
        splits: &[crate::model::cv::Split],
        on_fold: &(dyn Fn(usize, &[usize], f64) + Sync),
    ) -> Vec<Result<(Vec<usize>, f64)>> {
        let Labelled {
            x,
            y,
            n_classes,
            data,
        } = set;
        let checked = match CspSvm::typed(params).and_then(|p| p.check(data.n_channels)) {
            Ok(c) => c,
            Err(e) => return vec![Err(e)],
        };
        with_trials!(x, v => crate::model::evaluate::csp_svm_folds(v, y, n_classes, &checked, splits, on_fold))
    }
}

impl Fitted for classifier::Fitted {
    fn to_json(&self) -> Result<Value> {
        serde_json::to_value(self).map_err(|e| Error::encode("the fitted model", e))
    }
    fn n_channels(&self) -> usize {
        self.csp.n_channels()
    }
    fn predict(&self, x: Trials3<'_>) -> Result<Vec<usize>> {
        with_trials!(x, v => classifier::Fitted::predict(self, v))
    }
    fn scores(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        with_trials!(x, v => self.decision_function(v))
    }
    fn predict_proba(&self, x: Trials3<'_>) -> Result<Array2<f64>> {
        if !self.svm.has_probability() {
            return Err(Error::setting(
                "probability",
                None,
                "the model was trained without probability estimates: train it again with them",
            ));
        }
        with_trials!(x, v => classifier::Fitted::predict_proba(self, v))
    }
    fn predict_trial(&self, trial: ArrayView2<f64>) -> Result<usize> {
        classifier::Fitted::predict_trial(self, trial)
    }
    fn csp_stages(&self) -> Option<super::CspStages<'_>> {
        Some(super::CspStages {
            csp: &self.csp,
            scaler: self.scaler.as_ref(),
            head: super::CspHead::Svm(&self.svm),
        })
    }
    fn report(&self, params: &Params) -> ReportParts {
        let mut parts = ReportParts::default();
        if let Ok(p) = CspSvm::typed(params) {
            parts.facts = vec![
                (
                    "CSP".into(),
                    format!(
                        "{} components, log {}, trace normalisation {}, shrinkage {}",
                        p.n_components, p.log, p.norm_trace, p.shrinkage
                    ),
                ),
                (
                    "SVM".into(),
                    format!(
                        "kernel {}, C {}, gamma {}, degree {}, coef0 {}, standardize {}",
                        p.kernel.as_str(),
                        p.c,
                        p.gamma,
                        p.degree,
                        p.coef0,
                        p.standardize
                    ),
                ),
            ];
        }
        parts.maps = csp_maps(&self.csp);
        parts
    }
}

/// CSP patterns as scalp maps, for every family with a CSP stage.
pub fn csp_maps(csp: &crate::model::csp::Csp) -> Vec<(String, Vec<f64>)> {
    csp.patterns()
        .outer_iter()
        .enumerate()
        .map(|(i, row)| (format!("CSP {}", i + 1), row.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_model_params_field_for_field() {
        // The declared defaults are MNE CSP() + scikit-learn SVC(), as ModelParams::default().
        let declared = serde_json::to_value(Params::defaults(&CspSvm)).unwrap();
        let typed = serde_json::to_value(ModelParams::default()).unwrap();
        assert_eq!(declared, typed);
        // And in the same order, so model.json keeps its bytes.
        assert_eq!(
            serde_json::to_string(&Params::defaults(&CspSvm)).unwrap(),
            serde_json::to_string(&ModelParams::default()).unwrap()
        );
    }
}
