//! Test data for the heads: CSP log-variance features of simulated motor-imagery trials, and
//! a bridge to the scikit-learn peer (`$BCIOPS_PYTHON`).

use ndarray::{Array2, Array3};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde_json::Value;

use crate::model::csp::{Csp, CspParams};

/// CSP features (MNE's scheme, `n_components`) of simulated trials: 22 channels mixing 22
/// sources through a random matrix, 200 samples each; every trial's source powers vary
/// log-normally, and class `k` lowers the power of sources `2k` and `2k + 1` (an ERD), weakly
/// enough that classes overlap as on real data. `counts[k]` trials of class `k`, shuffled.
pub fn csp_features(counts: &[usize], n_components: usize, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let (n_ch, n_s) = (22, 200);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).expect("valid normal");
    let mixing = Array2::from_shape_fn((n_ch, n_ch), |(i, j)| {
        normal.sample(&mut rng) + if i == j { 2.0 } else { 0.0 }
    });
    let mut y: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &c)| std::iter::repeat_n(k, c))
        .collect();
    y.shuffle(&mut rng);
    let mut x = Array3::<f64>::zeros((y.len(), n_ch, n_s));
    for (mut trial, &k) in x.outer_iter_mut().zip(&y) {
        let gains: Vec<f64> = (0..n_ch)
            .map(|j| {
                let erd: f64 = if j / 2 == k { -0.45 } else { 0.0 };
                (0.5 * normal.sample(&mut rng) + erd).exp()
            })
            .collect();
        let sources =
            Array2::from_shape_fn((n_ch, n_s), |(j, _)| gains[j] * normal.sample(&mut rng));
        trial.assign(&mixing.dot(&sources));
    }
    let csp = Csp::fit(x.view(), &y, &CspParams::new().n_components(n_components))
        .expect("CSP of simulated trials");
    (csp.transform(x.view()).expect("CSP features"), y)
}

/// The shared fixture's CSP features (40 trials × 4, two classes, scipy/MNE-made).
pub fn fixture_features() -> (Array2<f64>, Vec<usize>) {
    let dir = crate::testutil::shared_fixtures().join("reference");
    let x: Array2<f64> =
        ndarray_npy::read_npy(dir.join("csp_features.npy")).expect("csp_features.npy");
    let y: ndarray::Array1<i64> = ndarray_npy::read_npy(dir.join("csp_y.npy")).expect("csp_y.npy");
    let min = *y.iter().min().expect("labels");
    (x, y.iter().map(|&v| (v - min) as usize).collect())
}

/// Runs `script` in the Python peer with `input` as JSON on stdin and returns its JSON stdout.
pub fn run_python(python: &std::path::Path, script: &str, input: &Value) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run BCIOPS_PYTHON");
    let body = serde_json::to_vec(input).expect("encode input");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait for python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python's JSON")
}

pub fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("a matrix");
    let (n, m) = (rows.len(), rows.first().map_or(0, Vec::len));
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).expect("rectangular")
}

pub fn floats(v: &Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).expect("floats")
}

pub fn indices(v: &Value) -> Vec<usize> {
    serde_json::from_value(v.clone()).expect("indices")
}

pub fn to_json(x: &Array2<f64>) -> Value {
    Value::from(x.outer_iter().map(|r| r.to_vec()).collect::<Vec<_>>())
}

/// Largest |a − b| over max(1, max |b|).
pub fn scaled_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths");
    let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / scale
}

/// Rows `idx` of `x` and their labels.
pub fn take(x: &Array2<f64>, y: &[usize], idx: &[usize]) -> (Array2<f64>, Vec<usize>) {
    (
        x.select(ndarray::Axis(0), idx),
        idx.iter().map(|&i| y[i]).collect(),
    )
}
