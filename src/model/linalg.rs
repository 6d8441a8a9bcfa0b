//! The few dense decompositions CSP needs, for small symmetric matrices (channels × channels),
//! in pure Rust so the binary links no LAPACK.
//!
//! Cyclic Jacobi is used for the symmetric eigenproblem: for n ≈ 22 it takes tens of
//! microseconds, and it computes eigenvalues to high relative accuracy, which matters for the
//! components with λ near 0 or 1 that CSP ranks first.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Lower-triangular Cholesky factor `L` of a symmetric matrix, `a = L Lᵀ`.
///
/// Fails with the index of the first pivot that is not positive or is at most `rel_tol` times
/// the largest diagonal entry (a numerically singular matrix).
pub fn cholesky(a: ArrayView2<f64>, rel_tol: f64) -> Result<Array2<f64>, usize> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "cholesky needs a square matrix");
    let max_diag = a.diag().iter().fold(0.0_f64, |m, &d| m.max(d));
    let floor = rel_tol * max_diag;
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= l[[j, k]] * l[[j, k]];
        }
        if d.is_nan() || d <= floor || max_diag <= 0.0 {
            return Err(j);
        }
        let ljj = d.sqrt();
        l[[j, j]] = ljj;
        for i in j + 1..n {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            l[[i, j]] = s / ljj;
        }
    }
    Ok(l)
}

/// Solves `L X = B` for lower-triangular `L`, overwriting `b` with `X`.
pub fn solve_lower_in_place(l: ArrayView2<f64>, b: &mut Array2<f64>) {
    let n = l.nrows();
    assert_eq!(n, b.nrows(), "solve_lower: shape mismatch");
    for i in 0..n {
        for k in 0..i {
            let lik = l[[i, k]];
            if lik != 0.0 {
                let (done, mut rest) = b.view_mut().split_at(Axis(0), i);
                rest.row_mut(0).scaled_add(-lik, &done.row(k));
            }
        }
        let lii = l[[i, i]];
        b.row_mut(i).mapv_inplace(|v| v / lii);
    }
}

/// Solves `Lᵀ X = B` for lower-triangular `L` (so `Lᵀ` is upper), overwriting `b` with `X`.
pub fn solve_lower_transpose_in_place(l: ArrayView2<f64>, b: &mut Array2<f64>) {
    let n = l.nrows();
    assert_eq!(n, b.nrows(), "solve_lower_transpose: shape mismatch");
    for i in (0..n).rev() {
        for k in i + 1..n {
            let lki = l[[k, i]];
            if lki != 0.0 {
                let (mut head, tail) = b.view_mut().split_at(Axis(0), i + 1);
                head.row_mut(i).scaled_add(-lki, &tail.row(k - i - 1));
            }
        }
        let lii = l[[i, i]];
        b.row_mut(i).mapv_inplace(|v| v / lii);
    }
}

/// `L⁻¹ A L⁻ᵀ` for symmetric `A`, symmetrised exactly.
pub fn whiten(l: ArrayView2<f64>, a: ArrayView2<f64>) -> Array2<f64> {
    let mut y = a.to_owned();
    solve_lower_in_place(l, &mut y); // L⁻¹ A
    let mut m = y.t().to_owned(); // (L⁻¹ A)ᵀ = A L⁻ᵀ
    solve_lower_in_place(l, &mut m); // L⁻¹ A L⁻ᵀ
    symmetrise(&mut m);
    m
}

/// Replaces `a` by `(a + aᵀ) / 2`.
pub fn symmetrise(a: &mut Array2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in i + 1..n {
            let v = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = v;
            a[[j, i]] = v;
        }
    }
}

/// Eigendecomposition of a symmetric matrix by cyclic Jacobi rotations: `a = V diag(λ) Vᵀ`,
/// eigenvectors in the columns of `V`, eigenvalues in no particular order.
///
/// Returns `None` if it has not converged after 100 sweeps (it needs fewer than 15 for any
/// finite input of the sizes used here; non-finite input never converges).
pub fn eigh(a: ArrayView2<f64>) -> Option<(Array1<f64>, Array2<f64>)> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "eigh needs a square matrix");
    if a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    // Row-major working copies: indexing a flat Vec keeps the inner loops simple and fast.
    let mut m: Vec<f64> = a.iter().copied().collect();
    let mut vt = vec![0.0; n * n];
    for i in 0..n {
        vt[i * n + i] = 1.0;
    }
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                // Skip entries already negligible relative to their diagonal (Demmel–Veselić
                // criterion): this is what gives small eigenvalues full relative accuracy.
                if apq == 0.0 || apq.abs() <= f64::EPSILON * (app * aqq).abs().sqrt() {
                    continue;
                }
                rotated = true;
                let tau = (aqq - app) / (2.0 * apq);
                let t = if tau >= 0.0 {
                    1.0 / (tau + (1.0 + tau * tau).sqrt())
                } else {
                    -1.0 / (-tau + (1.0 + tau * tau).sqrt())
                };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                // B = Jᵀ A J touches rows and columns p, q only; symmetry lets us update the
                // columns and mirror them, and the 2 × 2 block has a closed form.
                m[p * n + p] = app - t * apq;
                m[q * n + q] = aqq + t * apq;
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
                for k in (0..n).filter(|&k| k != p && k != q) {
                    let akp = m[k * n + p];
                    let akq = m[k * n + q];
                    let new_p = c * akp - s * akq;
                    let new_q = s * akp + c * akq;
                    m[k * n + p] = new_p;
                    m[p * n + k] = new_p;
                    m[k * n + q] = new_q;
                    m[q * n + k] = new_q;
                }
                // Eigenvectors kept as rows of `vt`, so this update is on contiguous rows.
                for k in 0..n {
                    let vpk = vt[p * n + k];
                    let vqk = vt[q * n + k];
                    vt[p * n + k] = c * vpk - s * vqk;
                    vt[q * n + k] = s * vpk + c * vqk;
                }
            }
        }
        if !rotated {
            let evals = Array1::from_iter((0..n).map(|i| m[i * n + i]));
            let vt = Array2::from_shape_vec((n, n), vt).expect("n × n");
            return Some((evals, vt.reversed_axes().as_standard_layout().into_owned()));
        }
    }
    None
}

/// Inverse of a square matrix by Gauss–Jordan elimination with partial pivoting; `None` if a
/// pivot is zero or the result is not finite.
pub fn inverse(a: ArrayView2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "inverse needs a square matrix");
    let mut m = a.to_owned();
    let mut inv = Array2::<f64>::eye(n);
    for col in 0..n {
        let pivot_row = (col..n)
            .max_by(|&i, &j| m[[i, col]].abs().total_cmp(&m[[j, col]].abs()))
            .expect("non-empty range");
        if m[[pivot_row, col]] == 0.0 {
            return None;
        }
        if pivot_row != col {
            for k in 0..n {
                m.swap([pivot_row, k], [col, k]);
                inv.swap([pivot_row, k], [col, k]);
            }
        }
        let p = m[[col, col]];
        m.row_mut(col).mapv_inplace(|v| v / p);
        inv.row_mut(col).mapv_inplace(|v| v / p);
        for r in 0..n {
            if r == col {
                continue;
            }
            let f = m[[r, col]];
            if f != 0.0 {
                for k in 0..n {
                    m[[r, k]] -= f * m[[col, k]];
                    inv[[r, k]] -= f * inv[[col, k]];
                }
            }
        }
    }
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

/// Approximate joint diagonalisation of symmetric positive definite matrices by Pham's
/// algorithm (SIAM J. Matrix Anal. Appl. 22(4), 2001), step for step as MNE-Python's
/// `_ajd_pham` (eps 1e-6, at most 15 sweeps), so that its results can be reproduced.
///
/// Returns `B` with `B Cₖ Bᵀ` approximately diagonal for every `k`.
pub fn ajd_pham(mats: &[Array2<f64>]) -> Array2<f64> {
    const EPS: f64 = 1e-6;
    const MAX_ITER: usize = 15;
    let n = mats[0].nrows();
    let n_mats = mats.len() as f64;
    let mut a: Vec<Array2<f64>> = mats.to_vec();
    let mut b = Array2::<f64>::eye(n);
    let epsilon = (n * n.saturating_sub(1)) as f64 * EPS;
    for _ in 0..MAX_ITER {
        let mut decr = 0.0;
        for i in 1..n {
            for j in 0..i {
                let (mut g12, mut g21, mut omega21, mut omega12) = (0.0, 0.0, 0.0, 0.0);
                for m in &a {
                    let (c1, c2, cij) = (m[[i, i]], m[[j, j]], m[[i, j]]);
                    g12 += cij / c1;
                    g21 += cij / c2;
                    omega21 += c1 / c2;
                    omega12 += c2 / c1;
                }
                g12 /= n_mats;
                g21 /= n_mats;
                omega21 /= n_mats;
                omega12 /= n_mats;
                let omega = (omega12 * omega21).sqrt();
                let tmp = (omega21 / omega12).sqrt();
                let tmp1 = (tmp * g12 + g21) / (omega + 1.0);
                let tmp2 = (tmp * g12 - g21) / (omega - 1.0).max(1e-9);
                let h12 = tmp1 + tmp2;
                let h21 = (tmp1 - tmp2) / tmp;
                decr += n_mats * (g12 * h12 + g21 * h21) / 2.0;
                // MNE takes the real part of 1 + sqrt(1 - h12 h21) in complex arithmetic:
                // the square root of a negative number contributes nothing.
                let den = 1.0 + (1.0 - h12 * h21).max(0.0).sqrt();
                let (t11, t12, t21, t22) = (1.0, -h12 / den, -h21 / den, 1.0);
                for m in a.iter_mut() {
                    // Rows i, j ← τ · rows i, j; then columns i, j ← columns i, j · τᵀ.
                    for k in 0..n {
                        let (ri, rj) = (m[[i, k]], m[[j, k]]);
                        m[[i, k]] = t11 * ri + t12 * rj;
                        m[[j, k]] = t21 * ri + t22 * rj;
                    }
                    for k in 0..n {
                        let (ci, cj) = (m[[k, i]], m[[k, j]]);
                        m[[k, i]] = t11 * ci + t12 * cj;
                        m[[k, j]] = t21 * ci + t22 * cj;
                    }
                }
                for k in 0..n {
                    let (ri, rj) = (b[[i, k]], b[[j, k]]);
                    b[[i, k]] = t11 * ri + t12 * rj;
                    b[[j, k]] = t21 * ri + t22 * rj;
                }
            }
        }
        if decr < epsilon {
            break;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random_spd(n: usize, seed: u64) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let z = Array2::from_shape_fn((n, 3 * n), |_| rng.gen_range(-1.0..1.0));
        z.dot(&z.t())
    }

    fn max_abs(a: &Array2<f64>) -> f64 {
        a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn cholesky_reconstructs_and_rejects_singular() {
        let a = random_spd(22, 1);
        let l = cholesky(a.view(), 1e-12).unwrap();
        // Tolerance: a few ulps of ‖A‖ times n.
        assert!(max_abs(&(&l.dot(&l.t()) - &a)) < 1e-12 * max_abs(&a));
        let singular = array![[1.0, 2.0], [2.0, 4.0]];
        assert_eq!(cholesky(singular.view(), 1e-12), Err(1));
        let indefinite = array![[1.0, 0.0], [0.0, -1.0]];
        assert_eq!(cholesky(indefinite.view(), 0.0), Err(1));
    }

    #[test]
    fn triangular_solves_invert_l() {
        let a = random_spd(9, 2);
        let l = cholesky(a.view(), 0.0).unwrap();
        let mut x = Array2::<f64>::eye(9);
        solve_lower_in_place(l.view(), &mut x);
        assert!(max_abs(&(&l.dot(&x) - &Array2::<f64>::eye(9))) < 1e-12);
        let mut y = Array2::<f64>::eye(9);
        solve_lower_transpose_in_place(l.view(), &mut y);
        assert!(max_abs(&(&l.t().dot(&y) - &Array2::<f64>::eye(9))) < 1e-12);
        let w = whiten(l.view(), a.view());
        assert!(max_abs(&(&w - &Array2::<f64>::eye(9))) < 1e-12);
    }

    #[test]
    fn eigh_reconstructs_with_orthonormal_vectors() {
        for (n, seed) in [(1, 3), (2, 4), (22, 5), (40, 6)] {
            let a = random_spd(n, seed);
            let (evals, evecs) = eigh(a.view()).unwrap();
            let recon = evecs.dot(&Array2::from_diag(&evals)).dot(&evecs.t());
            // Tolerance scales with n and ‖A‖ (backward stable to ~n ε ‖A‖).
            let tol = 1e-14 * n as f64 * max_abs(&a);
            assert!(max_abs(&(&recon - &a)) < tol, "n={n}");
            let gram = evecs.t().dot(&evecs);
            assert!(max_abs(&(&gram - &Array2::<f64>::eye(n))) < 1e-13 * n as f64);
        }
        // Known spectrum.
        let (evals, _) = eigh(array![[2.0, 1.0], [1.0, 2.0]].view()).unwrap();
        let mut e = evals.to_vec();
        e.sort_by(f64::total_cmp);
        assert!((e[0] - 1.0).abs() < 1e-15 && (e[1] - 3.0).abs() < 1e-15);
        assert!(eigh(array![[f64::NAN, 0.0], [0.0, 1.0]].view()).is_none());
    }

    #[test]
    fn inverse_of_random_matrix() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let a = Array2::from_shape_fn((22, 22), |_| rng.gen_range(-1.0..1.0));
        let inv = inverse(a.view()).unwrap();
        assert!(max_abs(&(&a.dot(&inv) - &Array2::<f64>::eye(22))) < 1e-10);
        assert!(inverse(array![[1.0, 2.0], [2.0, 4.0]].view()).is_none());
    }

    #[test]
    fn ajd_pham_diagonalises_exactly_jointly_diagonalisable_matrices() {
        // Cₖ = A Dₖ Aᵀ share the diagonaliser A⁻¹.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
        let n = 6;
        let a = Array2::from_shape_fn((n, n), |(i, j)| {
            if i == j {
                2.0
            } else {
                rng.gen_range(-0.5..0.5)
            }
        });
        let mats: Vec<Array2<f64>> = (0..4)
            .map(|_| {
                let d = Array1::from_shape_fn(n, |_| rng.gen_range(0.5..2.0));
                a.dot(&Array2::from_diag(&d)).dot(&a.t())
            })
            .collect();
        let b = ajd_pham(&mats);
        for c in &mats {
            let d = b.dot(c).dot(&b.t());
            let off = d.indexed_iter().filter(|((i, j), _)| i != j);
            let worst = off.fold(0.0_f64, |m, (_, v)| m.max(v.abs()));
            // Pham stops on eps = 1e-6 of the log-likelihood decrease, so off-diagonals
            // shrink to about sqrt(1e-6) relative, usually far below.
            assert!(worst < 1e-3 * max_abs(&d), "off-diagonal {worst}");
        }
    }
}
