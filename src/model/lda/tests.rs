use ndarray::{array, Array2};
use serde_json::{json, Value};

use super::*;
use crate::model::linear::testdata::{
    csp_features, fixture_features, floats, indices, matrix, run_python, scaled_error, take,
    to_json,
};
use crate::testutil::python_or_skip;

/// scikit-learn 1.9.1 `LinearDiscriminantAnalysis(solver="lsqr", shrinkage=…)` on 5 stratified
/// folds (and on all trials): coefficients, intercepts, scores, probabilities, labels.
const PEER: &str = r#"
import json, sys
import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.model_selection import StratifiedKFold
d = json.load(sys.stdin)
X, y = np.array(d["x"]), np.array(d["y"])
shrinkage = d["shrinkage"]
folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
folds.append((np.arange(len(y)), np.arange(len(y))))
out = []
for train, test in folds:
    m = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage).fit(X[train], y[train])
    dec = m.decision_function(X[test])
    out.append({
        "train": train.tolist(), "test": test.tolist(),
        "coef": m.coef_.tolist(), "intercept": m.intercept_.tolist(),
        "priors": m.priors_.tolist(), "means": m.means_.tolist(),
        "decision": dec.reshape(len(test), -1).tolist(),
        "proba": m.predict_proba(X[test]).tolist(),
        "predict": m.predict(X[test]).tolist(),
    })
print(json.dumps(out))
"#;

fn shrinkage_json(s: Shrinkage) -> Value {
    match s {
        Shrinkage::None => Value::Null,
        Shrinkage::Auto => json!("auto"),
        Shrinkage::Fixed(v) => json!(v),
    }
}

/// Compares every fold's fit with scikit-learn's; returns the largest scaled coefficient error.
fn compare(
    python: &std::path::Path,
    x: &Array2<f64>,
    y: &[usize],
    n_classes: usize,
    shrinkage: Shrinkage,
    what: &str,
) -> f64 {
    let peer = run_python(
        python,
        PEER,
        &json!({"x": to_json(x), "y": y, "shrinkage": shrinkage_json(shrinkage)}),
    );
    let params = LdaParams::default().shrinkage(shrinkage);
    let mut worst = 0.0_f64;
    for (f, fold) in peer.as_array().unwrap().iter().enumerate() {
        let (xtr, ytr) = take(x, y, &indices(&fold["train"]));
        let (xte, _) = take(x, y, &indices(&fold["test"]));
        let lda = Lda::fit(xtr.view(), &ytr, n_classes, &params).unwrap();
        let coef = lda.linear.coef.iter().copied().collect::<Vec<_>>();
        let sk_coef: Vec<f64> = matrix(&fold["coef"]).iter().copied().collect();
        let e_coef = scaled_error(&coef, &sk_coef);
        let e_int = scaled_error(
            lda.linear.intercept.as_slice().unwrap(),
            &floats(&fold["intercept"]),
        );
        let e_means = scaled_error(
            lda.means.as_slice().unwrap(),
            matrix(&fold["means"]).as_slice().unwrap(),
        );
        assert_eq!(
            lda.priors,
            floats(&fold["priors"]),
            "{what} fold {f}: priors"
        );
        // Source: scikit-learn 1.9.1 (lsqr: LAPACK gelsd on the same covariance). Tolerance
        // 1e-9 of max(1, |value|): coefficients pass through a solve with the covariance's
        // condition number (~1e3 here); measured ≤ 4e-12.
        assert!(e_coef < 1e-9, "{what} fold {f}: coef differ by {e_coef:e}");
        assert!(
            e_int < 1e-9,
            "{what} fold {f}: intercept differ by {e_int:e}"
        );
        assert!(
            e_means < 1e-12,
            "{what} fold {f}: means differ by {e_means:e}"
        );
        let dec = lda.decision_function(xte.view()).unwrap();
        let sk_dec = matrix(&fold["decision"]);
        assert_eq!(
            dec.dim(),
            sk_dec.dim(),
            "{what}: decision shape (one column for two classes)"
        );
        let e_dec = scaled_error(dec.as_slice().unwrap(), sk_dec.as_slice().unwrap());
        // Same source; scores are coef · x + b with |x| ~ 1–10: 1e-9 scaled (measured ≤ 2e-11).
        assert!(
            e_dec < 1e-9,
            "{what} fold {f}: decision differ by {e_dec:e}"
        );
        let proba = lda.predict_proba(xte.view()).unwrap();
        let e_p = scaled_error(
            proba.as_slice().unwrap(),
            matrix(&fold["proba"]).as_slice().unwrap(),
        );
        assert!(e_p < 1e-9, "{what} fold {f}: proba differ by {e_p:e}");
        // Labels identical (same source; no score is within rounding of a tie here).
        let pred = lda.predict(xte.view()).unwrap();
        let sk_pred = indices(&fold["predict"]);
        for (i, (a, b)) in pred.iter().zip(&sk_pred).enumerate() {
            assert_eq!(a, b, "{what} fold {f}: trial {i} predicted differently");
        }
        for (i, row) in xte.outer_iter().enumerate() {
            assert_eq!(lda.predict_one(row.as_slice().unwrap()).unwrap(), pred[i]);
        }
        worst = worst.max(e_coef).max(e_int).max(e_dec);
    }
    eprintln!("{what}: largest scaled difference from scikit-learn {worst:e}");
    worst
}

#[test]
fn matches_scikit_learn_on_csp_features() {
    let Some(python) = python_or_skip("lda::matches_scikit_learn_on_csp_features") else {
        return;
    };
    let (x, y) = fixture_features();
    for s in [Shrinkage::Auto, Shrinkage::None, Shrinkage::Fixed(0.3)] {
        compare(&python, &x, &y, 2, s, &format!("fixture {s:?}"));
    }
    // One subject's left vs right (72 + 70 = 142 trials) and four classes (4 × 72, 8 features).
    let (x2, y2) = csp_features(&[72, 70], 4, 1);
    let (x4, y4) = csp_features(&[72, 72, 72, 72], 8, 2);
    for s in [
        Shrinkage::Auto,
        Shrinkage::None,
        Shrinkage::Fixed(0.3),
        Shrinkage::Fixed(1.0),
    ] {
        compare(&python, &x2, &y2, 2, s, &format!("2 classes {s:?}"));
        compare(&python, &x4, &y4, 4, s, &format!("4 classes {s:?}"));
    }
}

#[test]
fn a_singular_covariance_is_solved_as_lstsq_does() {
    let Some(python) = python_or_skip("lda::a_singular_covariance_is_solved_as_lstsq_does") else {
        return;
    };
    // A constant third feature: without shrinkage the covariance has an exact zero row and
    // column, Cholesky fails, and lstsq's minimum-norm solution gives it a zero coefficient.
    let (x, y) = csp_features(&[40, 40], 4, 3);
    let x = ndarray::concatenate![ndarray::Axis(1), x, Array2::from_elem((80, 1), 0.5)];
    compare(&python, &x, &y, 2, Shrinkage::None, "constant feature");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let x = array![[0.0, 1.0], [0.2, 0.9], [0.1, 1.2], [2.0, 0.1], [2.1, 0.0]];
    let p = LdaParams::default();
    let err = |r: Result<Lda>| r.unwrap_err().to_string();
    assert_eq!(
        err(Lda::fit(x.view(), &[0, 0, 0, 0, 1], 2, &p)),
        "lda: class `1` has `1` trials, at least 2 are needed"
    );
    assert_eq!(
        err(Lda::fit(x.view(), &[0, 0, 0, 1, 1], 3, &p)),
        "lda: class `2` has `0` trials, at least 2 are needed"
    );
    assert_eq!(
        err(Lda::fit(x.view(), &[0, 1], 2, &p)),
        "lda: `5` trials but `2` labels"
    );
    assert_eq!(
        err(Lda::fit(x.view(), &[0, 0, 0, 1, 7], 2, &p)),
        "lda: label `7` of trial `4` is not below the `2` classes"
    );
    let mut nan = x.clone();
    nan[[3, 1]] = f64::NAN;
    assert_eq!(
        err(Lda::fit(nan.view(), &[0, 0, 0, 1, 1], 2, &p)),
        "lda: feature `1` of trial `3` is `NaN`: features must be finite"
    );
    assert_eq!(
        err(Lda::fit(
            x.view(),
            &[0, 0, 0, 1, 1],
            2,
            &LdaParams::default().shrinkage(Shrinkage::Fixed(1.5))
        )),
        "lda shrinkage `1.5` must be between 0 and 1"
    );
    let lda = Lda::fit(x.view(), &[0, 0, 0, 1, 1], 2, &p).unwrap();
    assert_eq!(
        lda.predict(array![[1.0, 2.0, 3.0]].view())
            .unwrap_err()
            .to_string(),
        "lda was fitted on `2` features, got `3`"
    );
    assert_eq!(
        lda.predict_one(&[1.0]).unwrap_err().to_string(),
        "lda was fitted on `2` features, got `1`"
    );
    assert_eq!(
        lda.predict_one(&[1.0, f64::INFINITY])
            .unwrap_err()
            .to_string(),
        "lda: feature `1` is `inf`: features must be finite"
    );
}

#[test]
fn serde_round_trip_predicts_the_same() {
    let (x, y) = csp_features(&[30, 30, 30], 6, 4);
    let lda = Lda::fit(x.view(), &y, 3, &LdaParams::default()).unwrap();
    let json = serde_json::to_string(&lda).unwrap();
    let back: Lda = serde_json::from_str(&json).unwrap();
    assert_eq!(back, lda);
    assert_eq!(
        back.predict(x.view()).unwrap(),
        lda.predict(x.view()).unwrap()
    );
    let mut p = vec![0.0; 3];
    back.proba_one(x.row(0).as_slice().unwrap(), &mut p)
        .unwrap();
    let all = lda.predict_proba(x.view()).unwrap();
    // One row's dot products are summed in order, the batch's by GEMM: equal to rounding.
    assert!(scaled_error(&p, all.row(0).as_slice().unwrap()) < 1e-14);
    // Two classes: one score per trial.
    let (x2, y2) = csp_features(&[20, 20], 4, 6);
    let lda = Lda::fit(x2.view(), &y2, 2, &LdaParams::default()).unwrap();
    assert_eq!(lda.decision_function(x2.view()).unwrap().ncols(), 1);
    let mut d = [0.0];
    lda.decision_one(x2.row(0).as_slice().unwrap(), &mut d)
        .unwrap();
    assert_eq!(
        lda.predict_one(x2.row(0).as_slice().unwrap()).unwrap(),
        usize::from(d[0] > 0.0)
    );
}
