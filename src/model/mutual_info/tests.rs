use ndarray::{array, Array2, Axis};
use serde_json::json;

use super::*;
use crate::model::linear::testdata::{csp_features, floats, indices, run_python, to_json};
use crate::testutil::python_or_skip;

/// scikit-learn 1.9.1 `mutual_info_classif` with three noise seeds, and `SelectKBest`'s
/// choices (scipy 1.17 `digamma`).
const PEER: &str = r#"
import json, sys
import numpy as np
from scipy.special import digamma
from sklearn.feature_selection import SelectKBest, mutual_info_classif
d = json.load(sys.stdin)
X, y = np.array(d["x"]), np.array(d["y"])
out = {"mi": [mutual_info_classif(X, y, n_neighbors=d["n_neighbors"], random_state=s).tolist()
              for s in (0, 1, 2)]}
out["kbest"] = {str(k): np.flatnonzero(
    SelectKBest(lambda X, y: mutual_info_classif(X, y, n_neighbors=d["n_neighbors"], random_state=0), k=k)
    .fit(X, y).get_support()).tolist() for k in d["ks"]}
out["digamma"] = digamma(np.arange(1, 2000)).tolist()
print(json.dumps(out))
"#;

/// A filter bank's CSP features: `bands` independent CSP feature sets of 4, side by side.
fn filter_bank_features(counts: &[usize], bands: u64) -> (Array2<f64>, Vec<usize>) {
    let mut y = Vec::new();
    let blocks: Vec<Array2<f64>> = (0..bands)
        .map(|b| {
            // The same seed for the labels' order, other sources per band.
            let (x, yb) = csp_features(counts, 4, 100 + b);
            if y.is_empty() {
                y = yb;
            }
            x
        })
        .collect();
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    (ndarray::concatenate(Axis(1), &views).unwrap(), y)
}

fn compare(python: &std::path::Path, x: &Array2<f64>, y: &[usize], n_neighbors: usize, what: &str) {
    let ks = [1, 4, 8, 12, x.ncols()];
    let peer = run_python(
        python,
        PEER,
        &json!({"x": to_json(x), "y": y, "n_neighbors": n_neighbors, "ks": ks}),
    );
    let ours = mutual_info_classif(x.view(), y, n_neighbors).unwrap();
    let mut worst = 0.0_f64;
    for (seed, theirs) in peer["mi"].as_array().unwrap().iter().enumerate() {
        let theirs = floats(theirs);
        for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            // Source: scikit-learn 1.9.1 mutual_info_classif, noise seeds 0, 1, 2. Tolerance
            // 1e-12 nats: the same neighbour counts, digamma and means to rounding (measured
            // ≤ 1e-15); a single count off by one would move the score by ~1e-4.
            assert!(
                (a - b).abs() < 1e-12,
                "{what}: feature {j}, seed {seed}: {a} vs {b}"
            );
            worst = worst.max((a - b).abs());
        }
    }
    for &k in &ks {
        // Source: SelectKBest(mutual_info_classif, k) of scikit-learn 1.9.1: the same features.
        assert_eq!(
            select_k_best(&ours, k),
            indices(&peer["kbest"][k.to_string()]),
            "{what}: the {k} best features"
        );
    }
    eprintln!("{what}: largest difference from scikit-learn {worst:e} nats");
}

#[test]
fn matches_scikit_learn_on_filter_bank_csp_features() {
    let Some(python) =
        python_or_skip("mutual_info::matches_scikit_learn_on_filter_bank_csp_features")
    else {
        return;
    };
    // 9 bands × 4 CSP features: one subject's left vs right (142 trials), four classes (288).
    let (x2, y2) = filter_bank_features(&[72, 70], 9);
    compare(&python, &x2, &y2, 3, "142 trials, 2 classes");
    let (x4, y4) = filter_bank_features(&[72, 72, 72, 72], 9);
    compare(&python, &x4, &y4, 3, "288 trials, 4 classes");
    compare(&python, &x4, &y4, 1, "288 trials, 4 classes, 1 neighbour");
    // A one-trial class (left out, as scikit-learn does) and a small class.
    let mut y5 = y2.clone();
    y5[0] = 7;
    y5[1] = 9;
    y5[2] = 9;
    y5[3] = 9;
    y5[4] = 9;
    y5[5] = 9;
    y5[6] = 9;
    y5[7] = 9;
    y5[8] = 9;
    compare(&python, &x2, &y5, 3, "one-trial and 8-trial classes");
}

#[test]
fn digamma_matches_scipy() {
    let Some(python) = python_or_skip("mutual_info::digamma_matches_scipy") else {
        return;
    };
    let peer = run_python(
        python.as_path(),
        PEER,
        &json!({"x": [[0.0], [1.0]], "y": [0, 0], "n_neighbors": 1, "ks": [1]}),
    );
    for (m, theirs) in (1..).zip(floats(&peer["digamma"])) {
        let ours = digamma(m);
        // Source: scipy 1.17 `digamma`; 4e-16 relative (a few ulps; measured ≤ 2 ulps).
        assert!(
            (ours - theirs).abs() <= 4e-16 * theirs.abs().max(1.0),
            "digamma({m}): {ours} vs {theirs}"
        );
    }
}

#[test]
fn select_k_best_keeps_later_features_on_ties_and_puts_nan_last() {
    // Ties: a stable ascending sort takes the last k, so the later of equal scores win.
    assert_eq!(select_k_best(&[0.5, 0.1, 0.5, 0.5], 2), vec![2, 3]);
    assert_eq!(select_k_best(&[0.2, f64::NAN, 0.0], 2), vec![0, 2]);
    assert_eq!(select_k_best(&[0.2, 0.3], 5), vec![0, 1]);
    assert_eq!(select_k_best(&[0.2, 0.3], 0), Vec::<usize>::new());
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let x = array![[0.0, 1.0], [0.2, 0.9], [0.1, f64::NAN]];
    assert_eq!(
        mutual_info_classif(x.view(), &[0, 0, 1], 3)
            .unwrap_err()
            .to_string(),
        "mutual information: feature `1` of trial `2` is `NaN`: features must be finite"
    );
    assert_eq!(
        mutual_info_classif(x.view(), &[0, 0], 3)
            .unwrap_err()
            .to_string(),
        "mutual information: `3` trials but `2` labels"
    );
    assert_eq!(
        mutual_info_classif(x.view(), &[0, 0, 1], 0)
            .unwrap_err()
            .to_string(),
        "mutual information `n_neighbors` must be at least 1, got `0`"
    );
    let x = array![[0.0], [1.0]];
    assert_eq!(
        mutual_info_classif(x.view(), &[0, 1], 3)
            .unwrap_err()
            .to_string(),
        "mutual information needs a class with at least 2 trials"
    );
}

#[test]
fn an_informative_feature_scores_above_noise() {
    // Class 1 shifted on feature 0 only.
    let (x, y) = csp_features(&[60, 60], 4, 9);
    let mut x = x;
    for (mut row, &c) in x.outer_iter_mut().zip(&y) {
        row[0] = c as f64 * 3.0 + row[1];
    }
    let mi = mutual_info_classif(x.view(), &y, 3).unwrap();
    assert!(mi[0] > 0.2 && mi[1..].iter().all(|&m| m < mi[0]), "{mi:?}");
    assert_eq!(select_k_best(&mi, 1), vec![0]);
}
