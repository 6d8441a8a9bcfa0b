use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Axis, Slice};
use ndarray_npy::read_npy;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::*;

fn fixture(name: &str) -> PathBuf {
    crate::testutil::shared_fixtures().join(name)
}

/// Small data and MNE outputs made by scripts/fixtures/csp_mne.py.
fn local_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/csp")
        .join(name)
}

fn labels(path: PathBuf) -> Vec<usize> {
    let y: Array1<i64> = read_npy(path).unwrap();
    y.iter().map(|&v| v as usize).collect()
}

/// The reference CSP data: labels 1 and 2 become class indices 0 and 1.
fn reference_data() -> (Array3<f64>, Vec<usize>) {
    let x: Array3<f64> = read_npy(fixture("reference/csp_X.npy")).unwrap();
    let y = labels(fixture("reference/csp_y.npy"))
        .into_iter()
        .map(|v| v - 1)
        .collect();
    (x, y)
}

fn small_data() -> (Array3<f32>, Vec<usize>) {
    (
        read_npy(local_data("X.npy")).unwrap(),
        labels(local_data("y.npy")),
    )
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b)
        .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()))
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// Rows equal up to a per-row sign (eigenvector signs are arbitrary); relative to the row.
fn assert_rows_match_up_to_sign(got: &Array2<f64>, want: &Array2<f64>, rel: f64) {
    assert_eq!(got.dim(), want.dim());
    for (i, (g, w)) in got.rows().into_iter().zip(want.rows()).enumerate() {
        let sign = if g.dot(&w) < 0.0 { -1.0 } else { 1.0 };
        let scale = w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let err = g
            .iter()
            .zip(w)
            .fold(0.0_f64, |m, (a, b)| m.max((sign * a - b).abs()));
        assert!(err <= rel * scale, "row {i}: error {err}, scale {scale}");
    }
}

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
    let y: Vec<usize> = (0..n_trials).map(|i| i % n_classes).collect();
    let mut x = Array3::zeros((n_trials, n_channels, n_times));
    for (i, mut trial) in x.outer_iter_mut().enumerate() {
        let sources = Array2::from_shape_fn((n_channels, n_times), |(c, _)| {
            let gain = if c % n_classes == y[i] { 2.5 } else { 1.0 };
            gain * normal()
        });
        trial.assign(&mixing.dot(&sources));
    }
    (x, y)
}

fn eigenvalues(csp: &Csp) -> &Array1<f64> {
    match csp.decomposition() {
        Decomposition::TwoClass { eigenvalues } => eigenvalues,
        other => panic!("expected a two-class decomposition, got {other:?}"),
    }
}

fn textbook() -> CspParams {
    CspParams::new().unbiased(false)
}

#[test]
fn textbook_eigenvalues_and_filters_match_scipy() {
    let (x, y) = reference_data();
    let csp = Csp::fit(x.view(), &y, &textbook().n_components(22)).unwrap();
    // scipy 1.17 eigh(C0, C0 + C1), fixture reference/csp_evals.npy; 1e-8 abs.
    let want: Array1<f64> = read_npy(fixture("reference/csp_evals.npy")).unwrap();
    let got = eigenvalues(&csp);
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-8, "eigenvalue error {err}");
    // Same fixture's filters (normalised wᵀ(C0+C1)w = 1 by scipy too); 1e-8 relative per row.
    let filters: Array2<f64> = read_npy(fixture("reference/csp_filters.npy")).unwrap();
    assert_rows_match_up_to_sign(csp.filters(), &filters, 1e-8);
}

#[test]
fn textbook_features_match_fixture() {
    let (x, y) = reference_data();
    let csp = Csp::fit(x.view(), &y, &textbook()).unwrap();
    // numpy log(mean((w·x)²)) for the first 4 scipy filters, fixture csp_features.npy; 1e-10 abs.
    let want: Array2<f64> = read_npy(fixture("reference/csp_features.npy")).unwrap();
    let got = csp.transform(x.view()).unwrap();
    assert!(
        max_abs_diff(&got, &want) < 1e-10,
        "{}",
        max_abs_diff(&got, &want)
    );
}

#[test]
fn default_params_match_mne_features() {
    let (x, y) = reference_data();
    let want: Array2<f64> = read_npy(fixture("reference/csp_mne_features.npy")).unwrap();
    // MNE 1.13 CSP(n_components=4, reg=None, log=True, norm_trace=False), fixture
    // csp_mne_features.npy. MNE divides by n − 1 (`unbiased`, the default): 1e-10 abs.
    let mne = Csp::fit(x.view(), &y, &CspParams::default()).unwrap();
    let err = max_abs_diff(&mne.transform(x.view()).unwrap(), &want);
    assert!(err < 1e-10, "unbiased error {err}");
    // The textbook `/ n` estimate is within the 1e-4 the fixture README documents.
    let plain = Csp::fit(x.view(), &y, &textbook()).unwrap();
    let err = max_abs_diff(&plain.transform(x.view()).unwrap(), &want);
    assert!(err < 1e-4, "textbook error {err}");
}

#[test]
fn float32_trials_give_the_same_model_as_their_float64_values() {
    let (x, y) = small_data();
    let x64 = x.mapv(f64::from);
    let y2: Vec<usize> = y.iter().map(|&v| v % 2).collect();
    let params = CspParams::new();
    let a = Csp::fit(x.view(), &y2, &params).unwrap();
    let b = Csp::fit(x64.view(), &y2, &params).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a.transform(x.view()).unwrap(),
        b.transform(x64.view()).unwrap()
    );
}

#[test]
fn generalized_eigenvector_properties_hold_on_random_data() {
    for (seed, n_ch, n_t) in [(1, 3, 40), (2, 8, 100), (3, 22, 300), (4, 30, 500)] {
        let (x, y) = random_trials(10, n_ch, n_t, 2, seed);
        for params in [
            textbook(),
            CspParams::new().shrinkage(Shrinkage::Auto),
            CspParams::new().norm_trace(true),
        ] {
            let params = params.n_components(n_ch);
            let csp = Csp::fit(x.view(), &y, &params).unwrap();
            let scatters = trial_scatters(x.view()).unwrap();
            let classes = class_scatters(2, scatters.iter().zip(y.iter().copied())).unwrap();
            let c0 = classes[0].covariance(&params);
            let c1 = classes[1].covariance(&params);
            let w = csp.filters();
            // Tolerances scale with n_ch (backward error of Cholesky + Jacobi ~ n ε cond).
            let tol = 1e-12 * n_ch as f64;
            let whitened = w.dot(&(&c0 + &c1)).dot(&w.t());
            let eye = Array2::<f64>::eye(n_ch);
            assert!(
                max_abs_diff(&whitened, &eye) < tol,
                "Wᵀ(C₀+C₁)W ≠ I, seed {seed}"
            );
            let d = w.dot(&c0).dot(&w.t());
            let evals = eigenvalues(&csp);
            assert!(
                max_abs_diff(&d, &Array2::from_diag(evals)) < tol,
                "WᵀC₀W, seed {seed}"
            );
            // Ordered by |λ − 0.5| descending.
            assert!(evals
                .windows(2)
                .into_iter()
                .all(|p| (p[0] - 0.5).abs() >= (p[1] - 0.5).abs()));
            // Patterns are the inverse of the filters: P Wᵀ = I.
            let pw = csp.patterns().dot(&w.t());
            assert!(max_abs_diff(&pw, &eye) < tol, "PWᵀ ≠ I, seed {seed}");
        }
    }
}

#[test]
fn ledoit_wolf_matches_sklearn() {
    // scikit-learn 1.9.1: ledoit_wolf(X, assume_centered=True) on this X (samples × features)
    // gives shrinkage 0.7412768694420112 and the covariance below; 1e-14 rel.
    let x = ndarray::array![
        [1.0, 2.0, -0.5],
        [0.3, -1.2, 0.8],
        [-2.0, 0.5, 1.1],
        [0.7, 0.9, -1.4],
        [1.5, -0.3, 0.2],
        [-0.4, -1.8, 0.6]
    ];
    let want_cov = ndarray::array![
        [1.2620690050357224, 0.06640560350988378, -0.145747363547667],
        [0.06640560350988378, 1.3414107650735057, -0.1642891879043229],
        [-0.145747363547667, -0.1642891879043229, 1.1098535632241058]
    ];
    let scatter = Scatter::of_trial(x.t());
    let s = scatter.ledoit_wolf_shrinkage();
    assert!((s - 0.7412768694420112).abs() < 1e-14, "shrinkage {s}");
    let cov = scatter.covariance(&textbook().shrinkage(Shrinkage::Auto));
    assert!(max_abs_diff(&cov, &want_cov) < 1e-14 * max_abs(&want_cov));
    // Additivity: two halves summed give the same statistics.
    let mut halves = Scatter::of_trial(x.slice_axis(Axis(0), Slice::from(..2)).t());
    halves += &Scatter::of_trial(x.slice_axis(Axis(0), Slice::from(2..)).t());
    assert!((halves.ledoit_wolf_shrinkage() - s).abs() < 1e-14);
}

#[test]
fn four_classes_match_mne_joint_diagonalisation() {
    let (x, y) = small_data();
    let csp = Csp::fit(x.view(), &y, &CspParams::default()).unwrap();
    assert_eq!(csp.n_features(), 4);
    assert!(matches!(
        csp.decomposition(),
        Decomposition::JointDiagonalization { .. }
    ));
    // MNE 1.13 CSP(n_components=4, reg=None, log=True) on tests/data/csp (Pham AJD, mutual
    // information order), scripts/fixtures/csp_mne.py. Same iteration as MNE: 1e-9 abs on
    // features (~1), 1e-8 relative on filters and patterns.
    let want: Array2<f64> = read_npy(local_data("mne4_features.npy")).unwrap();
    let got = csp.transform(x.view()).unwrap();
    assert!(
        max_abs_diff(&got, &want) < 1e-9,
        "{}",
        max_abs_diff(&got, &want)
    );
    let filters: Array2<f64> = read_npy(local_data("mne4_filters.npy")).unwrap();
    assert_rows_match_up_to_sign(csp.filters(), &filters, 1e-8);
    let patterns: Array2<f64> = read_npy(local_data("mne4_patterns.npy")).unwrap();
    assert_rows_match_up_to_sign(csp.patterns(), &patterns, 1e-8);

    // reg='ledoit_wolf', same script; 1e-9 abs.
    let lw = Csp::fit(x.view(), &y, &CspParams::new().shrinkage(Shrinkage::Auto)).unwrap();
    let want: Array2<f64> = read_npy(local_data("mne4_lw_features.npy")).unwrap();
    let err = max_abs_diff(&lw.transform(x.view()).unwrap(), &want);
    assert!(err < 1e-9, "ledoit-wolf error {err}");
}

/// Classes 0 and 1 of the small data, as the fixture script selects them.
fn two_class_small() -> (Array3<f32>, Vec<usize>) {
    let (x, y) = small_data();
    let keep: Vec<usize> = (0..y.len()).filter(|&i| y[i] < 2).collect();
    (
        x.select(Axis(0), &keep),
        keep.iter().map(|&i| y[i]).collect(),
    )
}

#[test]
fn two_class_options_match_mne() {
    let (x, y) = two_class_small();
    // All from scripts/fixtures/csp_mne.py (MNE 1.13); 1e-9 abs.
    let cases = [
        // reg='ledoit_wolf'
        (
            CspParams::new().shrinkage(Shrinkage::Auto),
            "mne2_lw_features.npy",
        ),
        // n_components=3, reg=0.1, norm_trace=True
        (
            CspParams::new()
                .n_components(3)
                .shrinkage(Shrinkage::Fixed(0.1))
                .norm_trace(true),
            "mne2_fixed_trace_features.npy",
        ),
        // mean power through MNE's first 4 filters, without log
        (CspParams::new().log(false), "mne2_power_features.npy"),
    ];
    for (params, file) in cases {
        let csp = Csp::fit(x.view(), &y, &params).unwrap();
        let want: Array2<f64> = read_npy(local_data(file)).unwrap();
        let got = csp.transform(x.view()).unwrap();
        // Powers are ~1e2; compare relative to the largest.
        let err = max_abs_diff(&got, &want) / max_abs(&want).max(1.0);
        assert!(err < 1e-9, "{file}: error {err}");
    }
}

#[test]
fn one_vs_rest_fits_each_class_against_the_pooled_rest() {
    let (x, y) = random_trials(24, 6, 200, 3, 11);
    let params = CspParams::new()
        .n_components(2)
        .unbiased(false)
        .multiclass(Multiclass::OneVsRest);
    let csp = Csp::fit(x.view(), &y, &params).unwrap();
    assert_eq!(csp.n_features(), 6);
    let Decomposition::OneVsRest {
        eigenvalues,
        classes,
    } = csp.decomposition()
    else {
        panic!("expected one-vs-rest");
    };
    assert_eq!(classes, &vec![0, 0, 1, 1, 2, 2]);
    let scatters = trial_scatters(x.view()).unwrap();
    for k in 0..3 {
        // The rest is every other trial, relabelled as class 1 of a two-class problem.
        let y_k: Vec<usize> = y.iter().map(|&c| usize::from(c != k)).collect();
        let per = class_scatters(2, scatters.iter().zip(y_k.iter().copied())).unwrap();
        let pair = Csp::fit_from_scatters(&per, &params).unwrap();
        let rows = Slice::from(2 * k..2 * k + 2);
        let got = csp.filters().slice_axis(Axis(0), rows).to_owned();
        assert_rows_match_up_to_sign(&got, pair.filters(), 1e-12);
        let want = eigenvalues.slice_axis(Axis(0), rows).to_owned();
        assert!(
            max_abs_diff(
                &want.insert_axis(Axis(0)),
                &super::tests::eigenvalues(&pair)
                    .clone()
                    .insert_axis(Axis(0))
            ) < 1e-14
        );
    }
    // Two classes ignore the multiclass setting.
    let (x2, y2) = random_trials(10, 4, 100, 2, 12);
    let a = Csp::fit(x2.view(), &y2, &params).unwrap();
    let b = Csp::fit(
        x2.view(),
        &y2,
        &params.clone().multiclass(Multiclass::JointDiagonalization),
    )
    .unwrap();
    assert_eq!(a, b);
}

#[test]
fn shared_scatters_give_the_same_model_as_fit() {
    let (x, y) = reference_data();
    let params = CspParams::new().n_components(6);
    let direct = Csp::fit(x.view(), &y, &params).unwrap();
    let trials = trial_scatters(x.view()).unwrap();
    let classes = class_scatters(2, trials.iter().zip(y.iter().copied())).unwrap();
    let shared = Csp::fit_from_scatters(&classes, &params).unwrap();
    assert_eq!(direct, shared);
    // A fold: the scatters of a subset of trials.
    let fold: Vec<usize> = (0..y.len()).filter(|i| i % 5 != 0).collect();
    let from_fold = class_scatters(2, fold.iter().map(|&i| (&trials[i], y[i]))).unwrap();
    let x_fold = x.select(Axis(0), &fold);
    let y_fold: Vec<usize> = fold.iter().map(|&i| y[i]).collect();
    let a = Csp::fit_from_scatters(&from_fold, &params).unwrap();
    let b = Csp::fit(x_fold.view(), &y_fold, &params).unwrap();
    assert!(max_abs_diff(a.filters(), b.filters()) < 1e-12 * max_abs(b.filters()));
}

#[test]
fn transform_trial_equals_transform_and_survives_serde() {
    let (x, y) = reference_data();
    let csp = Csp::fit(x.view(), &y, &CspParams::new()).unwrap();
    let all = csp.transform(x.view()).unwrap();
    for i in [0, 17, 39] {
        let one = csp.transform_trial(x.index_axis(Axis(0), i)).unwrap();
        assert_eq!(one, all.row(i));
    }
    let json = serde_json::to_string(&csp).unwrap();
    let back: Csp = serde_json::from_str(&json).unwrap();
    // serde_json round-trips f64 exactly.
    assert_eq!(back, csp);
    assert_eq!(back.transform(x.view()).unwrap(), all);
}

fn data_error(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Data(m)) => m,
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn bad_data_is_an_error() {
    let (x, y) = random_trials(8, 4, 50, 2, 21);
    let p = CspParams::new();

    let mut nan = x.clone();
    nan[[3, 1, 7]] = f64::NAN;
    assert!(data_error(Csp::fit(nan.view(), &y, &p)).contains("trial `3`"));
    let mut inf = x.clone();
    inf[[5, 0, 0]] = f64::INFINITY;
    assert!(data_error(Csp::fit(inf.view(), &y, &p)).contains("non-finite"));

    assert!(data_error(Csp::fit(x.view(), &[0; 8], &p)).contains("2 classes"));
    let gap: Vec<usize> = y.iter().map(|&c| c * 2).collect(); // classes 0 and 2, none 1
    assert!(data_error(Csp::fit(x.view(), &gap, &p)).contains("class `1` has no trials"));
    assert!(data_error(Csp::fit(x.view(), &y[..7], &p)).contains("labels"));
    assert!(data_error(Csp::fit(x.view(), &y, &p.clone().n_components(5))).contains("`5`"));
    let empty = Array3::<f64>::zeros((8, 4, 0));
    assert!(data_error(Csp::fit(empty.view(), &y, &p)).contains("samples"));

    assert!(matches!(
        Csp::fit(x.view(), &y, &p.clone().n_components(0)),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        Csp::fit(x.view(), &y, &p.clone().shrinkage(Shrinkage::Fixed(1.5))),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        Csp::fit(
            x.view(),
            &y,
            &p.clone().shrinkage(Shrinkage::Fixed(f64::NAN))
        ),
        Err(Error::Invalid(_))
    ));

    // Average reference makes every covariance singular: an error that suggests shrinkage,
    // which then fixes it.
    let mean = x.mean_axis(Axis(1)).unwrap().insert_axis(Axis(1));
    let car = &x - &mean;
    let msg = data_error(Csp::fit(car.view(), &y, &p));
    assert!(
        msg.contains("not positive definite") && msg.contains("shrinkage"),
        "{msg}"
    );
    for s in [Shrinkage::Auto, Shrinkage::Fixed(0.05)] {
        Csp::fit(car.view(), &y, &p.clone().shrinkage(s)).unwrap();
    }
    // Fewer samples than channels in a class.
    let (short, y_short) = random_trials(8, 6, 1, 2, 22); // 4 samples per class, 6 channels
    assert!(data_error(Csp::fit(short.view(), &y_short, &p)).contains("shrinkage"));

    let csp = Csp::fit(x.view(), &y, &p).unwrap();
    let wrong = Array2::<f64>::zeros((3, 50));
    assert!(data_error(csp.transform_trial(wrong.view())).contains("`3` channels"));
    let mut bad_trial = x.index_axis(Axis(0), 0).to_owned();
    bad_trial[[0, 0]] = f64::NAN;
    assert!(data_error(csp.transform_trial(bad_trial.view())).contains("not finite"));
    let flat = Array3::<f64>::zeros((2, 4, 50));
    assert!(data_error(csp.transform(flat.view())).contains("trial `0`"));
}

#[test]
fn features_from_scatters_equal_features_from_samples() {
    // Same quantity, two summation orders: agreement to rounding (1e-12 relative) is the claim.
    let (x, y) = reference_data();
    for log in [true, false] {
        let params = CspParams::default().n_components(6).log(log);
        let csp = Csp::fit(x.view(), &y, &params).unwrap();
        let direct = csp.transform(x.view()).unwrap();
        let via = csp
            .transform_scatters(&trial_scatters(x.view()).unwrap())
            .unwrap();
        let scale = max_abs(&direct);
        assert!(
            max_abs_diff(&direct, &via) <= 1e-12 * scale,
            "log={log}: {} vs scale {scale}",
            max_abs_diff(&direct, &via)
        );
    }
}
