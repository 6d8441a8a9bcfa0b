//! `csp+lda` and `csp+lr`: CSP → log-variance → [standardise] → a linear head, scikit-learn's
//! `LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")` (the textbook baseline) or
//! `LogisticRegression()` (L2, lbfgs, `C` = 1).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::chain::{Chain, CspPart, LdaPart, LrPart};
use super::csp_svm::{CSP_PARAMS, SVM_PARAMS};
use super::riemannian::normalize_as;
use super::{DataShape, Family, Fitted, Kind, ParamSpec, Params, Trials3};
use crate::error::Result;
use crate::model::csp::Csp;
use crate::model::lda::Lda;
use crate::model::logistic::LogisticRegression;

/// LDA's shrinkage (its own name: `shrinkage` is CSP's).
pub const LDA_SHRINKAGE: ParamSpec = ParamSpec {
    name: "lda_shrinkage",
    kind: Kind::WordOrFloat {
        words: &["none", "auto", "ledoit_wolf"],
        min: 0.0,
        max: 1.0,
        open_min: false,
    },
    default: "auto",
    help: "LDA covariance shrinkage (scikit-learn `shrinkage`): `auto` (Ledoit-Wolf), `none` \
           or a number in 0..1",
};

/// Logistic regression's parameters besides `c` (scikit-learn `LogisticRegression()`).
pub const LR_PARAMS: [ParamSpec; 3] = [
    SVM_PARAMS[2],
    ParamSpec {
        name: "max_iter",
        kind: Kind::Int {
            min: 1,
            max: 1_000_000,
        },
        default: "100",
        help: "Logistic regression: L-BFGS iterations at most (scikit-learn `max_iter`)",
    },
    ParamSpec {
        name: "tol",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: "0.0001",
        help: "Logistic regression: stopping tolerance (scikit-learn `tol`)",
    },
];

pub struct CspLda;

static CSP_LDA_PARAMS: [ParamSpec; 6] = [
    CSP_PARAMS[0],
    CSP_PARAMS[1],
    CSP_PARAMS[2],
    CSP_PARAMS[3],
    SVM_PARAMS[0],
    LDA_SHRINKAGE,
];

fn check_csp(params: &Params, data: DataShape) -> Result<()> {
    super::chain::csp_params(params)?.check(data.n_channels)
}

impl Family for CspLda {
    fn name(&self) -> &'static str {
        "csp+lda"
    }
    fn stages(&self) -> &'static str {
        "CSP → log-variance → [standardise] → shrinkage LDA (scikit-learn lsqr, auto)"
    }
    fn scores_doc(&self) -> &'static str {
        "LDA decision values, as scikit-learn `LinearDiscriminantAnalysis.decision_function`: \
         one column for two classes (positive: the second class), else one per class"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &CSP_LDA_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        let values = normalize_as::<CspPart>(self.name(), values)?;
        normalize_as::<LdaPart>(self.name(), values)
    }
    fn check(&self, params: &Params, data: DataShape) -> Result<()> {
        check_csp(params, data)
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<Csp, Lda>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<Csp, Lda>::from_json(fitted)?))
    }
}

pub struct CspLr;

static CSP_LR_PARAMS: [ParamSpec; 8] = [
    CSP_PARAMS[0],
    CSP_PARAMS[1],
    CSP_PARAMS[2],
    CSP_PARAMS[3],
    SVM_PARAMS[0],
    LR_PARAMS[0],
    LR_PARAMS[1],
    LR_PARAMS[2],
];

impl Family for CspLr {
    fn name(&self) -> &'static str {
        "csp+lr"
    }
    fn stages(&self) -> &'static str {
        "CSP → log-variance → [standardise] → logistic regression (scikit-learn, L2, lbfgs)"
    }
    fn scores_doc(&self) -> &'static str {
        "Logistic-regression decision values (log-odds), as scikit-learn \
         `LogisticRegression.decision_function`: one column for two classes, else one per class"
    }
    fn params(&self) -> &'static [ParamSpec] {
        &CSP_LR_PARAMS
    }
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String> {
        let values = normalize_as::<CspPart>(self.name(), values)?;
        normalize_as::<LrPart>(self.name(), values)
    }
    fn check(&self, params: &Params, data: DataShape) -> Result<()> {
        check_csp(params, data)
    }
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>> {
        Ok(Arc::new(Chain::<Csp, LogisticRegression>::fit(
            x, y, n_classes, params, data,
        )?))
    }
    fn load(
        &self,
        fitted: Value,
        _params: &Params,
    ) -> std::result::Result<Arc<dyn Fitted>, String> {
        Ok(Arc::new(Chain::<Csp, LogisticRegression>::from_json(
            fitted,
        )?))
    }
}
