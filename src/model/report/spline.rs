//! Thin-plate-spline interpolation of scattered values in the plane: the smoothest surface
//! (least bending energy) through the points, the kernel `r² log r` plus a linear polynomial,
//! as scipy's `RBFInterpolator` builds by default (`kernel='thin_plate_spline'`, `degree=1`,
//! no smoothing). Topomaps draw it on a fine grid; EEGLAB's `topoplot` uses the closely
//! related biharmonic spline, MNE a Clough–Tocher scheme.
//!
//! The system is (n + 3) × (n + 3) for n ≤ a few dozen electrodes, so a dense Gaussian
//! elimination is all it needs.

/// A fitted spline: `f(p) = Σ wᵢ φ(|p − pᵢ|) + c₀ + c₁ x + c₂ y`.
pub struct ThinPlate {
    points: Vec<[f64; 2]>,
    weights: Vec<f64>,
    poly: [f64; 3],
}

fn kernel(r2: f64) -> f64 {
    // r² log r = ½ r² log r², and 0 at r = 0 (its limit).
    if r2 > 0.0 {
        0.5 * r2 * r2.ln()
    } else {
        0.0
    }
}

impl ThinPlate {
    /// Fits the interpolant; `None` when the points are fewer than three, coincide, or are all on
    /// one line (the linear term is then undetermined), or a value is not finite.
    pub fn fit(points: &[[f64; 2]], values: &[f64]) -> Option<Self> {
        assert_eq!(points.len(), values.len(), "one value per point");
        let n = points.len();
        if n < 3
            || values
                .iter()
                .chain(points.iter().flatten())
                .any(|v| !v.is_finite())
        {
            return None;
        }
        let m = n + 3;
        let mut a = vec![vec![0.0; m + 1]; m];
        for i in 0..n {
            for j in 0..n {
                let d2 =
                    (points[i][0] - points[j][0]).powi(2) + (points[i][1] - points[j][1]).powi(2);
                a[i][j] = kernel(d2);
            }
            let p = [1.0, points[i][0], points[i][1]];
            for k in 0..3 {
                a[i][n + k] = p[k];
                a[n + k][i] = p[k];
            }
            a[i][m] = values[i];
        }
        let x = solve(a)?;
        Some(Self {
            points: points.to_vec(),
            weights: x[..n].to_vec(),
            poly: [x[n], x[n + 1], x[n + 2]],
        })
    }

    pub fn eval(&self, p: [f64; 2]) -> f64 {
        let mut v = self.poly[0] + self.poly[1] * p[0] + self.poly[2] * p[1];
        for (q, w) in self.points.iter().zip(&self.weights) {
            v += w * kernel((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2));
        }
        v
    }
}

/// Solves the augmented system `a = [A | b]` by Gaussian elimination with partial pivoting;
/// `None` when it is singular to working precision.
fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let m = a.len();
    let norm = a
        .iter()
        .flat_map(|row| row[..m].iter())
        .fold(0.0_f64, |acc, v| acc.max(v.abs()));
    for col in 0..m {
        let pivot = (col..m).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-12 * norm.max(f64::MIN_POSITIVE) {
            return None;
        }
        a.swap(col, pivot);
        let (done, rest) = a.split_at_mut(col + 1);
        let pivot_row = &done[col];
        for row in rest {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (r, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *r -= f * p;
                }
            }
        }
    }
    let mut x = vec![0.0; m];
    for row in (0..m).rev() {
        let s: f64 = (row + 1..m).map(|k| a[row][k] * x[k]).sum();
        x[row] = (a[row][m] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::python_or_skip;

    /// Electrode-like scattered points on the unit disk and smooth-ish values.
    fn data() -> (Vec<[f64; 2]>, Vec<f64>) {
        let points: Vec<[f64; 2]> = (0..22)
            .map(|i| {
                let r = 0.15 + 0.6 * ((i * 7) % 11) as f64 / 10.0;
                let a = i as f64 * 2.4;
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        let values = points
            .iter()
            .map(|p| (3.0 * p[0]).sin() + p[1] * p[1] - 0.4 * p[0] * p[1])
            .collect();
        (points, values)
    }

    #[test]
    fn interpolates_and_reproduces_planes() {
        let (points, values) = data();
        let s = ThinPlate::fit(&points, &values).unwrap();
        for (p, v) in points.iter().zip(&values) {
            assert!((s.eval(*p) - v).abs() < 1e-9, "passes through its points");
        }
        let plane: Vec<f64> = points.iter().map(|p| 2.0 - p[0] + 3.0 * p[1]).collect();
        let s = ThinPlate::fit(&points, &plane).unwrap();
        let v = s.eval([0.9, -0.8]);
        assert!(
            (v - (2.0 - 0.9 - 2.4)).abs() < 1e-9,
            "a plane is reproduced: {v}"
        );
        let line = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]];
        assert!(
            ThinPlate::fit(&line, &[1.0, 2.0, 3.0]).is_none(),
            "collinear"
        );
        assert!(ThinPlate::fit(&points[..3], &[1.0, f64::NAN, 0.0]).is_none());
    }

    #[test]
    fn matches_scipy_rbf_interpolator() {
        let Some(python) = python_or_skip("matches_scipy_rbf_interpolator") else {
            return;
        };
        let (points, values) = data();
        let queries: Vec<[f64; 2]> = (0..50)
            .map(|i| {
                let a = i as f64 * 0.77;
                let r = (i as f64 / 50.0).sqrt();
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        let fmt = |ps: &[[f64; 2]]| {
            ps.iter()
                .map(|p| format!("{:e} {:e}", p[0], p[1]))
                .collect::<Vec<_>>()
                .join(";")
        };
        let vals = values
            .iter()
            .map(|v| format!("{v:e}"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new(&python)
            .arg("-c")
            .arg(
                "import sys, numpy as np\n\
                 from scipy.interpolate import RBFInterpolator\n\
                 parse = lambda s: np.array([[float(v) for v in p.split()] for p in s.split(';')])\n\
                 pts, q = parse(sys.argv[1]), parse(sys.argv[3])\n\
                 vals = np.array([float(v) for v in sys.argv[2].split()])\n\
                 print(' '.join(repr(float(v)) for v in RBFInterpolator(pts, vals)(q)))",
            )
            .args([fmt(&points), vals, fmt(&queries)])
            .output()
            .expect("run BCIOPS_PYTHON");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<f64> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let s = ThinPlate::fit(&points, &values).unwrap();
        assert_eq!(theirs.len(), queries.len());
        for (q, t) in queries.iter().zip(&theirs) {
            // Reference: scipy.interpolate.RBFInterpolator (scipy 1.17) with its defaults,
            // thin-plate kernel and degree-1 polynomial; scipy solves with LAPACK on shifted and
            // scaled coordinates, so the two agree to rounding of a well-conditioned 25 × 25
            // system: 1e-9 absolute on values of order 1.
            assert!(
                (s.eval(*q) - t).abs() < 1e-9,
                "{q:?}: {} vs scipy {t}",
                s.eval(*q)
            );
        }
    }
}
