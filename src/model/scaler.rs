//! Feature standardisation with scikit-learn `StandardScaler` semantics.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Per-feature `(x - mean) / scale`: population standard deviation as the scale, and a scale
/// of 1 for (near-)constant features, as sklearn decides them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardScaler {
    pub mean: Array1<f64>,
    pub scale: Array1<f64>,
}

impl StandardScaler {
    /// Learn mean and scale from `x` (trials × features).
    pub fn fit(x: ArrayView2<f64>) -> Result<Self> {
        let (n, n_features) = x.dim();
        if n == 0 || n_features == 0 {
            return Err(Error::Data(format!(
                "cannot fit a scaler on `{n}` trials × `{n_features}` features"
            )));
        }
        check_finite(x)?;
        let nf = n as f64;
        let mut mean = Array1::zeros(n_features);
        let mut scale = Array1::zeros(n_features);
        for (j, col) in x.axis_iter(Axis(1)).enumerate() {
            let m = col.sum() / nf;
            // sklearn's `_incremental_mean_and_var`: two passes plus the rounding correction
            // Σ(x - m), which makes the result exact for data whose mean is not representable.
            let (mut correction, mut sq) = (0.0, 0.0);
            for &v in col {
                correction += v - m;
                sq += (v - m) * (v - m);
            }
            let var = (sq - correction * correction / nf) / nf;
            // sklearn's `_is_constant_feature`: variance within the error bound of its own
            // computation (Chan, Golub & LeVeque) means constant.
            let eps = f64::EPSILON;
            let bound = nf * eps * var + (nf * m * eps).powi(2);
            mean[j] = m;
            scale[j] = if var <= bound { 1.0 } else { var.sqrt() };
        }
        Ok(StandardScaler { mean, scale })
    }

    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Standardised copy of `x`.
    pub fn transform(&self, x: ArrayView2<f64>) -> Result<Array2<f64>> {
        self.check_width(x.ncols())?;
        check_finite(x)?;
        let mut out = x.to_owned();
        for mut row in out.outer_iter_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        Ok(out)
    }

    /// Standardise one trial in place (serving: no allocation).
    pub fn transform_one(&self, x: &mut [f64]) -> Result<()> {
        self.check_width(x.len())?;
        if let Some(j) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "feature `{j}` is `{}`: features must be finite",
                x[j]
            )));
        }
        for ((v, m), s) in x.iter_mut().zip(&self.mean).zip(&self.scale) {
            *v = (*v - m) / s;
        }
        Ok(())
    }

    /// Reject a scaler read from a file whose parts do not fit together.
    pub fn validate(&self) -> Result<()> {
        if self.mean.len() != self.scale.len() {
            return Err(Error::Invalid(format!(
                "scaler has `{}` means but `{}` scales",
                self.mean.len(),
                self.scale.len()
            )));
        }
        if self.mean.iter().any(|v| !v.is_finite())
            || self.scale.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::Invalid(
                "scaler means must be finite and scales positive and finite".into(),
            ));
        }
        Ok(())
    }

    fn check_width(&self, n_features: usize) -> Result<()> {
        if n_features != self.n_features() {
            return Err(Error::Data(format!(
                "scaler expects `{}` features per trial, got `{n_features}`",
                self.n_features()
            )));
        }
        Ok(())
    }
}

fn check_finite(x: ArrayView2<f64>) -> Result<()> {
    match x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((i, j), v)) => Err(Error::Data(format!(
            "feature `{j}` of trial `{i}` is `{v}`: features must be finite"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};
    use serde_json::Value;

    fn fixture() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/svm/scaler_csp.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("read scaler fixture"))
            .expect("parse scaler fixture")
    }

    fn matrix(v: &Value) -> Array2<f64> {
        let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
        let (n, m) = (rows.len(), rows[0].len());
        Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).unwrap()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1.0)
    }

    #[test]
    fn matches_sklearn_standard_scaler() {
        // scikit-learn 1.9.1 StandardScaler on the CSP features plus a constant and a
        // near-constant (spread 4e-19) column; tests/data/svm/scaler_csp.json.
        let f = fixture();
        let x = matrix(&f["x"]);
        let s = StandardScaler::fit(x.view()).unwrap();
        let mean: Vec<f64> = serde_json::from_value(f["mean"].clone()).unwrap();
        let scale: Vec<f64> = serde_json::from_value(f["scale"].clone()).unwrap();
        // 1e-12 relative: same formulas, summation order differs (numpy sums pairwise).
        for j in 0..x.ncols() {
            assert!(close(s.mean[j], mean[j], 1e-12), "mean {j}");
            assert!(close(s.scale[j], scale[j], 1e-12), "scale {j}");
        }
        // Constant and near-constant columns get scale exactly 1, as sklearn's.
        assert_eq!(s.scale[4], 1.0);
        assert_eq!(s.scale[5], 1.0);
        let t = s.transform(x.view()).unwrap();
        let expected = matrix(&f["transformed"]);
        // 1e-10 absolute on values of order 1: the mean/scale differences above, amplified.
        for (a, b) in t.iter().zip(expected.iter()) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        let mut one = x.row(3).to_vec();
        s.transform_one(&mut one).unwrap();
        assert_eq!(one.as_slice(), t.row(3).as_slice().unwrap());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            StandardScaler::fit(Array2::<f64>::zeros((0, 3)).view()),
            Err(Error::Data(_))
        ));
        let bad = array![[1.0, f64::NAN], [2.0, 3.0]];
        let err = StandardScaler::fit(bad.view()).unwrap_err().to_string();
        assert!(err.contains("`NaN`"), "{err}");
        let s = StandardScaler::fit(array![[1.0, 2.0], [3.0, 5.0]].view()).unwrap();
        assert!(s.transform(array![[1.0, 2.0, 3.0]].view()).is_err());
        assert!(s.transform_one(&mut [1.0]).is_err());
        assert!(s.transform_one(&mut [1.0, f64::INFINITY]).is_err());
        let json = serde_json::to_string(&s).unwrap();
        let back: StandardScaler = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        back.validate().unwrap();
    }
}
