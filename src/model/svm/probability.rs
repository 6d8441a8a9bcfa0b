//! Probabilities from decision values, as libsvm computes them: Platt's sigmoid per binary
//! machine (`sigmoid_train`, Lin, Lin & Weng 2007) and pairwise coupling for more than two
//! classes (`multiclass_probability`, Wu, Lin & Weng 2004, method 2).
//!
//! Written here rather than taken from `linfa::platt_scaling`, which builds its targets in
//! `f32`, returns `f32` probabilities and fails outright where libsvm stops at its iteration cap.

use serde::{Deserialize, Serialize};

/// libsvm's bound on pairwise probabilities, so that coupling never meets 0 or 1.
const MIN_PROB: f64 = 1e-7;

/// `P(positive | f) = 1 / (1 + exp(a·f + b))`, libsvm's and sklearn's `probA_` / `probB_` form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub a: f64,
    pub b: f64,
}

impl Platt {
    /// The probability of the positive side for decision value `f`, without overflow.
    pub fn probability(&self, f: f64) -> f64 {
        let f_apb = f * self.a + self.b;
        if f_apb >= 0.0 {
            let e = (-f_apb).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + f_apb.exp())
        }
    }

    /// Fit on decision values and the side each trial truly is on (`true` = positive):
    /// Newton's method with backtracking on Platt's regularised targets, as libsvm's
    /// `sigmoid_train` (100 iterations at most, gradient below 1e-5 to stop).
    pub fn fit(dec: &[f64], positive: &[bool]) -> Platt {
        assert_eq!(dec.len(), positive.len(), "one label per decision value");
        const MAX_ITER: usize = 100;
        const MIN_STEP: f64 = 1e-10;
        const SIGMA: f64 = 1e-12;
        const EPS: f64 = 1e-5;

        let prior1 = positive.iter().filter(|&&p| p).count() as f64;
        let prior0 = positive.len() as f64 - prior1;
        let hi = (prior1 + 1.0) / (prior1 + 2.0);
        let lo = 1.0 / (prior0 + 2.0);
        let t: Vec<f64> = positive.iter().map(|&p| if p { hi } else { lo }).collect();

        let objective = |a: f64, b: f64| -> f64 {
            dec.iter()
                .zip(&t)
                .map(|(&f, &t)| {
                    let f_apb = f * a + b;
                    if f_apb >= 0.0 {
                        t * f_apb + (-f_apb).exp().ln_1p()
                    } else {
                        (t - 1.0) * f_apb + f_apb.exp().ln_1p()
                    }
                })
                .sum()
        };

        let (mut a, mut b) = (0.0, ((prior0 + 1.0) / (prior1 + 1.0)).ln());
        let mut fval = objective(a, b);
        for _ in 0..MAX_ITER {
            let (mut h11, mut h22, mut h21, mut g1, mut g2) = (SIGMA, SIGMA, 0.0, 0.0, 0.0);
            for (&f, &t) in dec.iter().zip(&t) {
                let f_apb = f * a + b;
                let (p, q) = if f_apb >= 0.0 {
                    let e = (-f_apb).exp();
                    (e / (1.0 + e), 1.0 / (1.0 + e))
                } else {
                    let e = f_apb.exp();
                    (1.0 / (1.0 + e), e / (1.0 + e))
                };
                let d2 = p * q;
                h11 += f * f * d2;
                h22 += d2;
                h21 += f * d2;
                let d1 = t - p;
                g1 += f * d1;
                g2 += d1;
            }
            if g1.abs() < EPS && g2.abs() < EPS {
                break;
            }
            let det = h11 * h22 - h21 * h21;
            let da = -(h22 * g1 - h21 * g2) / det;
            let db = -(-h21 * g1 + h11 * g2) / det;
            let gd = g1 * da + g2 * db;
            let mut step = 1.0;
            while step >= MIN_STEP {
                let (na, nb) = (a + step * da, b + step * db);
                let nf = objective(na, nb);
                if nf < fval + 1e-4 * step * gd {
                    (a, b, fval) = (na, nb, nf);
                    break;
                }
                step /= 2.0;
            }
            if step < MIN_STEP {
                // libsvm: "line search fails"; keep the last good point.
                break;
            }
        }
        Platt { a, b }
    }
}

pub(super) fn clamp_pairwise(p: f64) -> f64 {
    p.clamp(MIN_PROB, 1.0 - MIN_PROB)
}

/// Scale non-negative scores to sum to one (uniform if they are all zero).
pub(super) fn normalize(p: &mut [f64]) {
    let sum: f64 = p.iter().sum();
    if sum > 0.0 && sum.is_finite() {
        p.iter_mut().for_each(|v| *v /= sum);
    } else {
        let u = 1.0 / p.len() as f64;
        p.iter_mut().for_each(|v| *v = u);
    }
}

/// Class probabilities `p` (length `k`) from pairwise probabilities `r[i*k + j]` =
/// `P(i | i or j)`: libsvm's `multiclass_probability`, a fixed-point iteration on
/// `min_p pᵀQp` subject to `Σp = 1`.
pub(super) fn couple_pairwise(k: usize, r: &[f64], p: &mut [f64]) {
    assert_eq!(r.len(), k * k, "a k×k pairwise matrix");
    assert_eq!(p.len(), k, "one probability per class");
    let max_iter = 100.max(k);
    let eps = 0.005 / k as f64;
    let mut q = vec![0.0; k * k];
    for t in 0..k {
        p[t] = 1.0 / k as f64;
        for j in 0..k {
            if j != t {
                q[t * k + t] += r[j * k + t] * r[j * k + t];
                q[t * k + j] = -r[j * k + t] * r[t * k + j];
            }
        }
    }
    let mut qp = vec![0.0; k];
    for _ in 0..max_iter {
        // Recomputed every sweep for accuracy, as libsvm does.
        let mut pqp = 0.0;
        for t in 0..k {
            qp[t] = (0..k).map(|j| q[t * k + j] * p[j]).sum();
            pqp += p[t] * qp[t];
        }
        let max_error = qp.iter().map(|v| (v - pqp).abs()).fold(0.0, f64::max);
        if max_error < eps {
            break;
        }
        for t in 0..k {
            let diff = (-qp[t] + pqp) / q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t * k + t] + 2.0 * qp[t])) / (1.0 + diff) / (1.0 + diff);
            for j in 0..k {
                qp[j] = (qp[j] + diff * q[t * k + j]) / (1.0 + diff);
                p[j] /= 1.0 + diff;
            }
        }
    }
}
