use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array1, Array2, Array3, Axis};
use ndarray_npy::{read_npy, write_npy};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;
use crate::testutil::{python_or_skip, shared_fixtures};
use crate::Error;

// ---------------------------------------------------------------------------------------
// Data

/// Mixed Gaussian sources with class-dependent gains and per-channel offsets (so that the
/// estimators' centring matters); labels cycle over `0..n_classes`.
fn random_trials(
    n_trials: usize,
    n_channels: usize,
    n_times: usize,
    n_classes: usize,
    seed: u64,
) -> (Array3<f64>, Vec<usize>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut normal = || -> f64 { StandardNormal.sample(&mut rng) };
    let mixing = Array2::from_shape_fn((n_channels, n_channels), |_| normal());
    let offsets = Array1::from_shape_fn(n_channels, |_| 50.0 * normal());
    let y: Vec<usize> = (0..n_trials).map(|i| i % n_classes).collect();
    let mut x = Array3::zeros((n_trials, n_channels, n_times));
    for (i, mut trial) in x.outer_iter_mut().enumerate() {
        let sources = Array2::from_shape_fn((n_channels, n_times), |(c, _)| {
            let gain = if c % n_classes == y[i] { 2.5 } else { 1.0 };
            gain * normal()
        });
        let mut mixed = mixing.dot(&sources);
        for (mut row, &o) in mixed.rows_mut().into_iter().zip(&offsets) {
            row += o;
        }
        trial.assign(&mixed);
    }
    (x, y)
}

/// The shared reference epochs (40 × 22 × 750, band-passed µV); labels 1, 2 → 0, 1.
fn reference_epochs() -> (Array3<f64>, Vec<usize>) {
    let dir = shared_fixtures().join("reference");
    let x: Array3<f64> = read_npy(dir.join("csp_X.npy")).unwrap();
    let y: Array1<i64> = read_npy(dir.join("csp_y.npy")).unwrap();
    (x, y.iter().map(|&v| v as usize - 1).collect())
}

/// The CSP tests' small 4-class float32 epochs (24 × 8 × 150).
fn four_class_epochs() -> (Array3<f32>, Vec<usize>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/csp");
    let x: Array3<f32> = read_npy(dir.join("X.npy")).unwrap();
    let y: Array1<i64> = read_npy(dir.join("y.npy")).unwrap();
    (x, y.iter().map(|&v| v as usize).collect())
}

fn max_abs(a: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// `max |got − want| / max |want|`.
fn rel_err<D: ndarray::Dimension>(
    got: &ndarray::Array<f64, D>,
    want: &ndarray::Array<f64, D>,
) -> f64 {
    assert_eq!(got.shape(), want.shape());
    let diff = max_abs(got.iter().zip(want).map(|(a, b)| a - b));
    diff / max_abs(want.iter().copied())
}

/// The worst of `max_row |got − want| / max_row |want|` over rows (matrices of a stack).
fn rel_err_per<D: ndarray::RemoveAxis>(
    got: &ndarray::Array<f64, D>,
    want: &ndarray::Array<f64, D>,
) -> f64 {
    assert_eq!(got.shape(), want.shape());
    got.outer_iter()
        .zip(want.outer_iter())
        .map(|(g, w)| {
            let diff = max_abs(g.iter().zip(w.iter()).map(|(a, b)| a - b));
            diff / max_abs(w.iter().copied())
        })
        .fold(0.0_f64, f64::max)
}

fn random_spd(n: usize, seed: u64) -> Array2<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let z = Array2::from_shape_fn((n, 3 * n), |_| -> f64 { StandardNormal.sample(&mut rng) });
    z.dot(&z.t()) / (3 * n) as f64
}

// ---------------------------------------------------------------------------------------
// pyRiemann parity: the peer runs at test time on the same data.

/// What pyRiemann computes on `x`, `y` (written to `dir`): covariances for each estimator;
/// with the `oas` ones of the trials in `train`: `mean_riemann` (plain and weighted by
/// `weights`), `TangentSpace(metric="riemann")` reference and vectors of every trial, `MDM`
/// means, distances (`transform`) and predictions of every trial.
const PYRIEMANN: &str = r#"
import sys
import warnings
import numpy as np
import pyriemann
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from pyriemann.classification import MDM
from pyriemann.geometry.mean import mean_riemann

assert pyriemann.__version__.startswith("0.12"), pyriemann.__version__
warnings.simplefilter("error")  # a non-converged mean must not pass silently
d = sys.argv[1]
X = np.load(f"{d}/X.npy").astype(np.float64)
y = np.load(f"{d}/y.npy")
train = np.load(f"{d}/train.npy")
w = np.load(f"{d}/weights.npy")
for est in ["scm", "lwf", "oas"]:
    np.save(f"{d}/cov_{est}.npy", Covariances(estimator=est).fit_transform(X))
C = np.load(f"{d}/cov_oas.npy")
np.save(f"{d}/mean.npy", mean_riemann(C[train]))
np.save(f"{d}/mean_weighted.npy", mean_riemann(C[train], sample_weight=w))
ts = TangentSpace(metric="riemann").fit(C[train])
np.save(f"{d}/ts_reference.npy", ts.reference_)
np.save(f"{d}/ts_vectors.npy", ts.transform(C))
mdm = MDM(metric="riemann").fit(C[train], y[train])
np.save(f"{d}/mdm_means.npy", mdm.covmeans_)
np.save(f"{d}/mdm_distances.npy", mdm.transform(C))
np.save(f"{d}/mdm_predictions.npy", mdm.predict(C).astype(np.int64))
np.save(f"{d}/mdm_proba.npy", mdm.predict_proba(C))
"#;

struct Peer {
    dir: tempfile::TempDir,
}

impl Peer {
    fn run(python: &Path, x: &Array3<f64>, y: &[usize], train: &[usize], weights: &[f64]) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        write_npy(dir.path().join("X.npy"), x).unwrap();
        let y64 = Array1::from_iter(y.iter().map(|&v| v as i64));
        write_npy(dir.path().join("y.npy"), &y64).unwrap();
        let t64 = Array1::from_iter(train.iter().map(|&v| v as i64));
        write_npy(dir.path().join("train.npy"), &t64).unwrap();
        write_npy(
            dir.path().join("weights.npy"),
            &Array1::from_vec(weights.to_vec()),
        )
        .unwrap();
        let out = Command::new(python)
            .arg("-c")
            .arg(PYRIEMANN)
            .arg(dir.path())
            .output()
            .expect("run BCIOPS_PYTHON");
        assert!(
            out.status.success(),
            "pyRiemann failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Peer { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn load<D: ndarray::Dimension>(&self, name: &str) -> ndarray::Array<f64, D>
    where
        ndarray::Array<f64, D>: ndarray_npy::ReadNpyExt,
    {
        read_npy(self.path(name)).unwrap()
    }
}

/// Checks every stage against pyRiemann on one data set; `what` names it in failures.
fn check_against_pyriemann(
    python: &Path,
    what: &str,
    x: &Array3<f64>,
    y: &[usize],
    n_classes: usize,
) {
    let n = x.len_of(Axis(0));
    // Fit on four fifths, evaluate everything on all trials (held-out ones included).
    let train: Vec<usize> = (0..n).filter(|i| i % 5 != 4).collect();
    let weights: Vec<f64> = (0..train.len()).map(|i| 1.0 + (i % 5) as f64).collect();
    let peer = Peer::run(python, x, y, &train, &weights);

    for est in CovEstimator::ALL {
        let got = covariances(x.view(), est).unwrap();
        let want: Array3<f64> = peer.load(&format!("cov_{est}.npy"));
        // pyRiemann 0.12 Covariances(estimator=est) (sklearn 1.9.1 ledoit_wolf / oas), same
        // float64 trials: 1e-8 relative to each matrix's largest entry (the issue's bar).
        let err = rel_err_per(&got, &want);
        assert!(
            err < 1e-8,
            "{what}: `{est}` covariances differ by {err:e} relative"
        );
    }

    let covs = covariances(x.view(), CovEstimator::Oas).unwrap();
    let train_covs = covs.select(Axis(0), &train);
    let mean = mean_riemann(train_covs.view(), None, DEFAULT_TOL, DEFAULT_MAXITER).unwrap();
    // pyRiemann 0.12 geometry.mean.mean_riemann (tol 1e-8, maxiter 50): 1e-8 relative.
    let err = rel_err(&mean, &peer.load("mean.npy"));
    assert!(
        err < 1e-8,
        "{what}: mean_riemann differs by {err:e} relative"
    );
    let weighted = mean_riemann(
        train_covs.view(),
        Some(&weights),
        DEFAULT_TOL,
        DEFAULT_MAXITER,
    )
    .unwrap();
    // Same, with sample_weight: 1e-8 relative.
    let err = rel_err(&weighted, &peer.load("mean_weighted.npy"));
    assert!(
        err < 1e-8,
        "{what}: weighted mean_riemann differs by {err:e} relative"
    );

    let ts = TangentSpace::fit(train_covs.view()).unwrap();
    // pyRiemann 0.12 TangentSpace(metric="riemann").fit(...).reference_: 1e-8 relative.
    let err = rel_err(&ts.reference, &peer.load("ts_reference.npy"));
    assert!(
        err < 1e-8,
        "{what}: tangent-space reference differs by {err:e} relative"
    );
    let vectors = ts.transform(covs.view()).unwrap();
    let want: Array2<f64> = peer.load("ts_vectors.npy");
    // TangentSpace.transform, same layout: 1e-8 relative to each vector's largest entry.
    let err = rel_err_per(&vectors, &want);
    assert!(
        err < 1e-8,
        "{what}: tangent vectors differ by {err:e} relative"
    );
    let one = ts.transform_one(covs.index_axis(Axis(0), 0)).unwrap();
    assert_eq!(one, vectors.row(0), "{what}: one-trial tangent vector");

    let train_y: Vec<usize> = train.iter().map(|&i| y[i]).collect();
    let mdm = Mdm::fit(train_covs.view(), &train_y, n_classes).unwrap();
    // MDM(metric="riemann").covmeans_: 1e-8 relative per class mean.
    let err = rel_err_per(mdm.means(), &peer.load("mdm_means.npy"));
    assert!(
        err < 1e-8,
        "{what}: mdm class means differ by {err:e} relative"
    );
    let distances = mdm.distances(covs.view()).unwrap();
    let want: Array2<f64> = peer.load("mdm_distances.npy");
    // MDM.transform: each distance to 1e-8 relative.
    let err = max_abs(distances.iter().zip(&want).map(|(a, b)| (a - b) / b));
    assert!(
        err < 1e-8,
        "{what}: mdm distances differ by {err:e} relative"
    );
    let proba = mdm.probabilities(covs.view()).unwrap();
    // MDM.predict_proba = softmax(−d²): 1e-8 absolute (probabilities are at most 1).
    let err = max_abs(
        proba
            .iter()
            .zip(&peer.load::<ndarray::Ix2>("mdm_proba.npy"))
            .map(|(a, b)| a - b),
    );
    assert!(err < 1e-8, "{what}: mdm probabilities differ by {err:e}");
    let predictions = mdm.predict(covs.view()).unwrap();
    let want: Array1<i64> = read_npy(peer.path("mdm_predictions.npy")).unwrap();
    let want: Vec<usize> = want.iter().map(|&v| v as usize).collect();
    // MDM.predict: identical labels on every trial (the issue's bar).
    assert_eq!(predictions, want, "{what}: mdm predictions");
    for (i, &p) in predictions.iter().enumerate().take(5) {
        assert_eq!(mdm.predict_one(covs.index_axis(Axis(0), i)).unwrap(), p);
    }
}

#[test]
fn shared_reference_epochs_match_pyriemann() {
    let Some(python) = python_or_skip("shared_reference_epochs_match_pyriemann") else {
        return;
    };
    let (x, y) = reference_epochs();
    check_against_pyriemann(&python, "reference/csp_X", &x, &y, 2);
}

#[test]
fn four_class_float32_epochs_match_pyriemann() {
    let Some(python) = python_or_skip("four_class_float32_epochs_match_pyriemann") else {
        return;
    };
    let (x, y) = four_class_epochs();
    // pyRiemann gets the float64 values of the float32 samples; bciops reads float32.
    let x64 = x.mapv(f64::from);
    check_against_pyriemann(&python, "tests/data/csp four classes", &x64, &y, 4);
    for est in CovEstimator::ALL {
        assert_eq!(
            covariances(x.view(), est).unwrap(),
            covariances(x64.view(), est).unwrap()
        );
    }
}

#[test]
fn offset_random_epochs_match_pyriemann() {
    let Some(python) = python_or_skip("offset_random_epochs_match_pyriemann") else {
        return;
    };
    // Channel offsets 50× the signal: the estimators must centre each trial.
    let (x, y) = random_trials(60, 12, 200, 3, 11);
    check_against_pyriemann(&python, "random with offsets", &x, &y, 3);
}

// ---------------------------------------------------------------------------------------
// Properties that hold whatever the peer says

#[test]
fn estimator_names_parse_print_and_serialise() {
    for (name, est) in [
        ("scm", CovEstimator::Scm),
        ("lwf", CovEstimator::Lwf),
        ("oas", CovEstimator::Oas),
    ] {
        assert_eq!(name.parse::<CovEstimator>().unwrap(), est);
        assert_eq!(est.to_string(), name);
        assert_eq!(serde_json::to_string(&est).unwrap(), format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<CovEstimator>(&format!("\"{name}\"")).unwrap(),
            est
        );
    }
    let err = "ledoit".parse::<CovEstimator>().unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("`ledoit`"), "{err}");
    assert!(serde_json::from_str::<CovEstimator>("\"SCM\"").is_err());
}

#[test]
fn mean_of_commuting_matrices_is_their_geometric_mean() {
    // Diagonal matrices commute: the Riemannian mean is the entrywise geometric mean.
    let diags = [[1.0, 4.0, 0.5], [4.0, 1.0, 2.0], [2.0, 2.0, 8.0]];
    let covs = Array3::from_shape_fn(
        (3, 3, 3),
        |(k, i, j)| if i == j { diags[k][i] } else { 0.0 },
    );
    let mean = mean_riemann(covs.view(), None, 1e-12, 100).unwrap();
    for i in 0..3 {
        let geo = (diags[0][i] * diags[1][i] * diags[2][i]).powf(1.0 / 3.0);
        assert!((mean[[i, i]] - geo).abs() < 1e-12 * geo, "{mean}");
    }
    // One matrix is its own mean, after one step.
    let one = random_spd(5, 1).insert_axis(Axis(0));
    let report = mean_riemann_report(one.view(), None, DEFAULT_TOL, DEFAULT_MAXITER).unwrap();
    assert!(rel_err(&report.mean, &one.index_axis(Axis(0), 0).to_owned()) < 1e-13);
    assert!(report.converged && report.iterations == 1, "{report:?}");
}

#[test]
fn mean_is_affine_invariant() {
    // mean(A Cᵢ Aᵀ) = A mean(Cᵢ) Aᵀ for any invertible A.
    let covs = Array3::from_shape_fn((7, 6, 6), |(k, i, j)| random_spd(6, 10 + k as u64)[[i, j]]);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let a = Array2::from_shape_fn((6, 6), |(i, j)| {
        let v: f64 = StandardNormal.sample(&mut rng);
        if i == j {
            3.0 + v
        } else {
            v
        }
    });
    let moved = Array3::from_shape_fn((7, 6, 6), |(k, i, j)| {
        a.dot(&covs.index_axis(Axis(0), k)).dot(&a.t())[[i, j]]
    });
    let m = mean_riemann(covs.view(), None, 1e-12, 100).unwrap();
    let mm = mean_riemann(moved.view(), None, 1e-12, 100).unwrap();
    // Both converge to 1e-12; conditioning of A amplifies rounding: 1e-9 relative.
    let err = rel_err(&mm, &a.dot(&m).dot(&a.t()));
    assert!(err < 1e-9, "{err:e}");
}

#[test]
fn tangent_vector_norm_is_the_distance_to_the_reference() {
    let (x, _) = random_trials(20, 8, 300, 2, 5);
    let covs = covariances(x.view(), CovEstimator::Scm).unwrap();
    let ts = TangentSpace::fit(covs.view()).unwrap();
    assert_eq!(ts.n_features(), 36);
    let vectors = ts.transform(covs.view()).unwrap();
    for (c, v) in covs.outer_iter().zip(vectors.rows()) {
        let d = spd::distance(c, ts.reference.view()).unwrap();
        let norm = v.dot(&v).sqrt();
        assert!((norm - d).abs() < 1e-12 * d, "‖v‖ {norm} vs d {d}");
    }
    // The reference itself maps to zero; the vectors average to about zero (the mean is
    // where the sum of logarithms vanishes, to the iteration's tolerance).
    let at_ref = ts.transform_one(ts.reference.view()).unwrap();
    assert!(max_abs(at_ref.iter().copied()) < 1e-12);
    let centre = vectors.mean_axis(Axis(0)).unwrap();
    assert!(max_abs(centre.iter().copied()) < 1e-7, "{centre}");
}

#[test]
fn matrix_functions_invert_each_other() {
    let a = random_spd(22, 7);
    let s = spd::sqrtm(a.view()).unwrap();
    assert!(rel_err(&s.dot(&s), &a) < 1e-13);
    let is = spd::invsqrtm(a.view()).unwrap();
    assert!(rel_err(&is.dot(&a).dot(&is), &Array2::eye(22)) < 1e-12);
    let l = spd::logm(a.view()).unwrap();
    assert!(rel_err(&spd::expm(l.view()).unwrap(), &a) < 1e-12);
    // d(A, B) = d(B, A), d(A, A) = 0.
    let b = random_spd(22, 8);
    let (dab, dba) = (
        spd::distance(a.view(), b.view()).unwrap(),
        spd::distance(b.view(), a.view()).unwrap(),
    );
    assert!((dab - dba).abs() < 1e-12 * dab);
    assert!(spd::distance(a.view(), a.view()).unwrap() < 1e-12);
}

#[test]
fn mdm_separates_classes_and_round_trips_through_json() {
    let (x, y) = random_trials(40, 6, 400, 2, 9);
    let covs = covariances(x.view(), CovEstimator::Lwf).unwrap();
    let mdm = Mdm::fit(covs.view(), &y, 2).unwrap();
    let pred = mdm.predict(covs.view()).unwrap();
    let correct = pred.iter().zip(&y).filter(|(p, t)| p == t).count();
    assert!(correct >= 36, "{correct}/40");
    let json = serde_json::to_string(&mdm).unwrap();
    assert!(!json.contains("whiteners"), "derived state is not stored");
    let back: Mdm = serde_json::from_str(&json).unwrap();
    assert_eq!(back.means(), mdm.means());
    assert_eq!(back.predict(covs.view()).unwrap(), pred);
    // A file whose mean is not positive definite is refused on loading.
    let mut bad = serde_json::to_value(&mdm).unwrap();
    bad["means"]["data"][0] = serde_json::json!(-1.0);
    let err = serde_json::from_value::<Mdm>(bad).unwrap_err();
    assert!(err.to_string().contains("class `0`"), "{err}");
    let ts = TangentSpace::fit(covs.view()).unwrap();
    let back: TangentSpace = serde_json::from_str(&serde_json::to_string(&ts).unwrap()).unwrap();
    assert_eq!(back, ts);
}

// ---------------------------------------------------------------------------------------
// Bad input: one-line errors naming the value, never a panic

fn message(e: Error) -> String {
    let m = e.to_string();
    assert!(!m.contains('\n'), "multi-line error: {m}");
    m
}

#[test]
fn rank_deficient_trials_are_refused_with_a_shrinkage_hint() {
    // Average reference: the channels sum to zero, so every covariance is singular.
    let (mut x, _) = random_trials(6, 8, 200, 2, 4);
    for mut trial in x.outer_iter_mut() {
        let mean = trial.mean_axis(Axis(0)).unwrap();
        for mut row in trial.rows_mut() {
            row -= &mean;
        }
    }
    let m = message(covariances(x.view(), CovEstimator::Scm).unwrap_err());
    assert!(
        m.contains("trial `0`") && m.contains("not positive definite"),
        "{m}"
    );
    assert!(m.contains("`lwf`") && m.contains("`oas`"), "{m}");
    // Shrinkage makes them definite.
    for est in [CovEstimator::Lwf, CovEstimator::Oas] {
        let covs = covariances(x.view(), est).unwrap();
        TangentSpace::fit(covs.view()).unwrap();
    }
    // Fewer samples than channels.
    let (short, _) = random_trials(3, 8, 5, 2, 4);
    let m = message(covariances(short.view(), CovEstimator::Scm).unwrap_err());
    assert!(m.contains("not positive definite"), "{m}");
    // A singular matrix handed straight to the geometry is named too.
    let mut covs = covariances(x.view(), CovEstimator::Oas).unwrap();
    covs.index_axis_mut(Axis(0), 2).fill(1.0);
    let m = message(mean_riemann(covs.view(), None, DEFAULT_TOL, DEFAULT_MAXITER).unwrap_err());
    assert!(
        m.contains("matrix `2`") && m.contains("not positive definite"),
        "{m}"
    );
    let good = covariances(random_trials(6, 8, 200, 2, 5).0.view(), CovEstimator::Oas).unwrap();
    let ts = TangentSpace::fit(good.view()).unwrap();
    let m = message(ts.transform(covs.view()).unwrap_err());
    assert!(
        m.contains("trial `2`") && m.contains("not positive definite"),
        "{m}"
    );
    let mdm = Mdm::fit(good.view(), &[0, 1, 0, 1, 0, 1], 2).unwrap();
    let m = message(mdm.distances(covs.view()).unwrap_err());
    assert!(
        m.contains("trial `2`") && m.contains("not positive definite"),
        "{m}"
    );
}

#[test]
fn non_finite_samples_name_the_trial() {
    let (mut x, _) = random_trials(5, 4, 50, 2, 6);
    for (value, trial) in [(f64::NAN, 3), (f64::INFINITY, 1)] {
        let mut bad = x.clone();
        bad[[trial, 2, 17]] = value;
        for est in CovEstimator::ALL {
            let m = message(covariances(bad.view(), est).unwrap_err());
            assert!(
                m.contains(&format!("trial `{trial}`")) && m.contains("non-finite"),
                "{m}"
            );
        }
    }
    x[[0, 0, 0]] = f64::MAX;
    let m = message(covariances(x.view(), CovEstimator::Scm).unwrap_err());
    assert!(m.contains("trial `0`"), "{m}");
    let mut covs = covariances(random_trials(5, 4, 50, 2, 6).0.view(), CovEstimator::Oas).unwrap();
    covs[[4, 1, 1]] = f64::NAN;
    let m = message(mean_riemann(covs.view(), None, DEFAULT_TOL, DEFAULT_MAXITER).unwrap_err());
    assert!(m.contains("matrix `4`") && m.contains("non-finite"), "{m}");
}

#[test]
fn mismatched_shapes_and_empty_classes_are_errors() {
    let (x, y) = random_trials(12, 5, 100, 3, 8);
    let covs = covariances(x.view(), CovEstimator::Oas).unwrap();
    // Degenerate trial shapes.
    assert!(message(
        covariances(Array3::<f64>::zeros((2, 0, 10)).view(), CovEstimator::Scm).unwrap_err()
    )
    .contains("`0`"));
    assert!(message(
        covariances(Array3::<f64>::zeros((2, 3, 1)).view(), CovEstimator::Scm).unwrap_err()
    )
    .contains("`1`"));
    assert_eq!(
        covariances(Array3::<f32>::zeros((0, 3, 10)).view(), CovEstimator::Oas)
            .unwrap()
            .dim(),
        (0, 3, 3)
    );
    // Means.
    let m = message(
        mean_riemann(
            Array3::zeros((0, 5, 5)).view(),
            None,
            DEFAULT_TOL,
            DEFAULT_MAXITER,
        )
        .unwrap_err(),
    );
    assert!(m.contains("`0`"), "{m}");
    let m = message(
        mean_riemann(
            Array3::zeros((2, 5, 4)).view(),
            None,
            DEFAULT_TOL,
            DEFAULT_MAXITER,
        )
        .unwrap_err(),
    );
    assert!(m.contains("`5` × `4`"), "{m}");
    let m = message(
        mean_riemann(covs.view(), Some(&[1.0; 3]), DEFAULT_TOL, DEFAULT_MAXITER).unwrap_err(),
    );
    assert!(m.contains("`3` weights for `12`"), "{m}");
    let mut w = vec![1.0; 12];
    w[4] = -2.0;
    let m = message(mean_riemann(covs.view(), Some(&w), DEFAULT_TOL, DEFAULT_MAXITER).unwrap_err());
    assert!(m.contains("`-2`"), "{m}");
    let m = message(
        mean_riemann(covs.view(), Some(&[0.0; 12]), DEFAULT_TOL, DEFAULT_MAXITER).unwrap_err(),
    );
    assert!(m.contains("sum to `0`"), "{m}");
    // Tangent space of another channel count.
    let ts = TangentSpace::fit(covs.view()).unwrap();
    let other = covariances(random_trials(3, 4, 100, 1, 1).0.view(), CovEstimator::Oas).unwrap();
    let m = message(ts.transform(other.view()).unwrap_err());
    assert!(m.contains("`4` × `4`") && m.contains("`5` channels"), "{m}");
    assert!(ts.transform_one(other.index_axis(Axis(0), 0)).is_err());
    let bad_ref = TangentSpace {
        reference: Array2::zeros((5, 5)),
    };
    let m = message(bad_ref.transform(covs.view()).unwrap_err());
    assert!(
        m.contains("reference") && m.contains("not positive definite"),
        "{m}"
    );
    // MDM.
    let m = message(Mdm::fit(covs.view(), &y[..11], 3).unwrap_err());
    assert!(m.contains("`11` labels for `12` trials"), "{m}");
    let m = message(Mdm::fit(covs.view(), &y, 4).unwrap_err());
    assert!(m.contains("class `3` has no trials"), "{m}");
    let m = message(Mdm::fit(covs.view(), &y, 2).unwrap_err());
    assert!(m.contains("class index `2`"), "{m}");
    let m = message(Mdm::fit(covs.view(), &[0; 12], 1).unwrap_err());
    assert!(m.contains("`1`"), "{m}");
    let mdm = Mdm::fit(covs.view(), &y, 3).unwrap();
    let m = message(mdm.distances(other.view()).unwrap_err());
    assert!(m.contains("`5` channels"), "{m}");
    assert!(mdm.predict_one(other.index_axis(Axis(0), 0)).is_err());
}

#[test]
fn one_trial_paths_equal_the_batch() {
    let (x, y) = random_trials(10, 6, 120, 2, 12);
    let x32 = x.mapv(|v| v as f32);
    let covs = covariances(x32.view(), CovEstimator::Oas).unwrap();
    for (i, trial) in x32.outer_iter().enumerate() {
        assert_eq!(
            covariance(trial, CovEstimator::Oas).unwrap(),
            covs.index_axis(Axis(0), i)
        );
    }
    let ts = TangentSpace::fit(covs.view()).unwrap();
    let projector = ts.projector().unwrap();
    let batch = projector.transform(covs.view()).unwrap();
    let mut ws = Workspace::new(6);
    let mut out = vec![0.0; n_features(6)];
    for (c, row) in covs.outer_iter().zip(batch.rows()) {
        projector.vector_into(c, &mut ws, &mut out).unwrap();
        assert_eq!(out.as_slice(), row.as_slice().unwrap());
    }
    let mdm = Mdm::fit(covs.view(), &y, 2).unwrap();
    let d = mdm.distances(covs.view()).unwrap();
    for (c, row) in covs.outer_iter().zip(d.rows()) {
        assert_eq!(mdm.distances_one(c).unwrap(), row);
    }
}
