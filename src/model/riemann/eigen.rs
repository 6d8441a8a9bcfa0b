//! The symmetric eigendecomposition behind every Riemannian operation, with its buffers kept
//! in a reusable workspace ([`Eig`]), and the small dense products around it.
//!
//! Householder tridiagonalisation followed by the implicit QL method with Wilkinson shifts
//! (EISPACK's `tred2` + `tql2`, in the form of the public-domain JAMA library): about
//! `9 n³` flops with eigenvectors, against roughly `40 n³` for the cyclic Jacobi of
//! [`crate::model::linalg::eigh`] at n = 22, and `4/3 n³` for eigenvalues alone, which is all
//! a Riemannian distance needs. Backward stable like LAPACK's `syevd` (what NumPy and so
//! pyRiemann call); the absolute accuracy of small eigenvalues is `ε ‖A‖`, which keeps their
//! logarithms within about `ε cond(A)` — 1e-10 for the condition numbers of EEG covariances.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// QL iterations allowed per eigenvalue before giving up (LAPACK allows 30).
const MAX_QL_ITER: usize = 60;

/// Eigendecomposition workspace for `n × n` symmetric matrices: eigenvalues ascending (as
/// LAPACK's `syevd`), eigenvectors as the rows of `vt`.
#[derive(Clone, Debug)]
pub struct Eig {
    n: usize,
    /// Eigenvalues, ascending once a decomposition finished.
    d: Vec<f64>,
    /// Off-diagonal of the tridiagonal matrix, then scratch.
    e: Vec<f64>,
    /// Scratch for the accumulation of the Householder transformations.
    g: Vec<f64>,
    /// Row-major `n × n`: the Householder reduction's matrix `V` (eigenvectors in columns),
    /// transposed before QL so that its rotations and the result run along rows.
    v: Vec<f64>,
    /// Eigenvectors as rows (`Vᵀ`), in the order of `d`.
    vt: Array2<f64>,
    /// `diag(f(λ)) Vᵀ` for reconstructions.
    scaled: Array2<f64>,
    scratch: Array2<f64>,
    order: Vec<usize>,
}

impl Eig {
    pub fn new(n: usize) -> Self {
        Eig {
            n,
            d: vec![0.0; n],
            e: vec![0.0; n],
            g: vec![0.0; n],
            v: vec![0.0; n * n],
            vt: Array2::zeros((n, n)),
            scaled: Array2::zeros((n, n)),
            scratch: Array2::zeros((n, n)),
            order: (0..n).collect(),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Decomposes symmetric `a` (the lower triangle is read); false if QL did not converge,
    /// which happens only for non-finite input.
    pub fn decompose(&mut self, a: ArrayView2<f64>) -> bool {
        let n = self.n;
        assert_eq!(a.dim(), (n, n), "eig workspace of another size");
        if n == 0 {
            return true;
        }
        self.load(a);
        tred2(n, &mut self.v, &mut self.d, &mut self.e, &mut self.g);
        // V (eigenvectors of the tridiagonal problem in columns) → rows, for QL's rotations.
        for i in 0..n {
            for j in i + 1..n {
                self.v.swap(i * n + j, j * n + i);
            }
        }
        if !tql(n, &mut self.d, &mut self.e, Some(&mut self.v)) {
            return false;
        }
        self.sort();
        let vt = self.vt.as_slice_mut().expect("standard layout");
        for (k, &i) in self.order.iter().enumerate() {
            vt[k * n..(k + 1) * n].copy_from_slice(&self.v[i * n..(i + 1) * n]);
        }
        true
    }

    /// Eigenvalues of symmetric `a` only, ascending; false if QL did not converge.
    pub fn eigenvalues_only(&mut self, a: ArrayView2<f64>) -> bool {
        let n = self.n;
        assert_eq!(a.dim(), (n, n), "eig workspace of another size");
        if n == 0 {
            return true;
        }
        self.load(a);
        tred1(n, &mut self.v, &mut self.d, &mut self.e);
        if !tql(n, &mut self.d, &mut self.e, None) {
            return false;
        }
        self.d.sort_by(f64::total_cmp);
        true
    }

    fn load(&mut self, a: ArrayView2<f64>) {
        let n = self.n;
        for (i, row) in a.rows().into_iter().enumerate() {
            for (j, &x) in row.iter().enumerate() {
                self.v[i * n + j] = x;
            }
        }
    }

    /// Orders eigenvalues ascending, remembering where each came from in `order`.
    fn sort(&mut self) {
        let d = &self.d;
        self.order.clear();
        self.order.extend(0..self.n);
        self.order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
        for (k, &i) in self.order.iter().enumerate() {
            self.e[k] = self.d[i];
        }
        self.d.copy_from_slice(&self.e);
    }

    /// Eigenvalues of the last decomposition, ascending.
    pub fn values(&self) -> &[f64] {
        &self.d
    }

    /// Eigenvectors of the last [`Eig::decompose`], as rows, in the order of [`Eig::values`].
    pub fn vectors_as_rows(&self) -> ArrayView2<'_, f64> {
        self.vt.view()
    }

    /// `out = V diag(f(λ)) Vᵀ` of the last [`Eig::decompose`], symmetric exactly.
    pub fn reconstruct_into(&mut self, f: impl Fn(f64) -> f64, mut out: ArrayViewMut2<f64>) {
        for ((mut s, v), &l) in self
            .scaled
            .rows_mut()
            .into_iter()
            .zip(self.vt.rows())
            .zip(&self.d)
        {
            let fl = f(l);
            s.zip_mut_with(&v, |s, &v| *s = v * fl);
        }
        general_mat_mul(1.0, &self.vt.t(), &self.scaled, 0.0, &mut out);
        symmetrise(out);
    }

    /// An `n × n` matrix the caller may overwrite between decompositions.
    pub fn scratch(&mut self) -> &mut Array2<f64> {
        &mut self.scratch
    }
}

/// Householder reduction of the symmetric matrix in `v` (row-major `n × n`) to tridiagonal
/// form, accumulating the transformations: on return `v` holds the orthogonal `V` with
/// `A = V T Vᵀ`, `d` the diagonal of `T` and `e[1..]` its sub-diagonal (JAMA's `tred2`);
/// `g` is scratch of length `n`.
fn tred2(n: usize, v: &mut [f64], d: &mut [f64], e: &mut [f64], g: &mut [f64]) {
    reduce(n, v, d, e);
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[(n - 1) * n + i] = v[i * n + i];
        v[i * n + i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k * n + i + 1] / h;
            }
            // V[..=i, ..=i] −= d gᵀ with g = V[..=i, ..=i]ᵀ V[..=i, i + 1], computed along
            // rows (JAMA loops down columns; rows are contiguous here, and this is 2× faster).
            let g = &mut g[..=i];
            g.fill(0.0);
            for k in 0..=i {
                let u = v[k * n + i + 1];
                for (gj, &vkj) in g.iter_mut().zip(&v[k * n..=k * n + i]) {
                    *gj += u * vkj;
                }
            }
            for (k, &dk) in d[..=i].iter().enumerate() {
                for (vkj, &gj) in v[k * n..=k * n + i].iter_mut().zip(g.iter()) {
                    *vkj -= gj * dk;
                }
            }
        }
        for k in 0..=i {
            v[k * n + i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[(n - 1) * n + j];
        v[(n - 1) * n + j] = 0.0;
    }
    v[(n - 1) * n + n - 1] = 1.0;
    e[0] = 0.0;
}

/// [`tred2`] without the transformations: `d` and `e` only.
fn tred1(n: usize, v: &mut [f64], d: &mut [f64], e: &mut [f64]) {
    reduce(n, v, d, e);
    for j in 0..n {
        d[j] = v[j * n + j];
    }
    e[0] = 0.0;
}

/// The reduction loop of JAMA's `tred2`, shared by [`tred1`] and [`tred2`]: leaves the
/// Householder vectors in `v`, the tridiagonal's diagonal on `v`'s diagonal, its
/// sub-diagonal in `e[1..]`, and the `h` of each step in `d` for the accumulation.
fn reduce(n: usize, v: &mut [f64], d: &mut [f64], e: &mut [f64]) {
    for j in 0..n {
        d[j] = v[(n - 1) * n + j];
    }
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for &dk in &d[..i] {
            scale += dk.abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[(i - 1) * n + j];
                v[i * n + j] = 0.0;
                v[j * n + i] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in &mut e[..i] {
                *ej = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[j * n + i] = f;
                g = e[j] + v[j * n + j] * f;
                for k in j + 1..i {
                    let vkj = v[k * n + j];
                    g += vkj * d[k];
                    e[k] += vkj * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[k * n + j] -= f * e[k] + g * d[k];
                }
                d[j] = v[(i - 1) * n + j];
                v[i * n + j] = 0.0;
            }
        }
        d[i] = h;
    }
}

/// Implicit QL with Wilkinson shifts on the tridiagonal matrix (`d`, `e[1..]`), as JAMA's
/// `tql2`; `vt` (row-major, eigenvectors of the tridiagonal problem's basis as rows) is
/// rotated along if given. Eigenvalues are left unsorted in `d`. False if an eigenvalue
/// needed more than [`MAX_QL_ITER`] iterations.
fn tql(n: usize, d: &mut [f64], e: &mut [f64], mut vt: Option<&mut [f64]>) -> bool {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1 = 0.0_f64;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iter = 0;
            loop {
                iter += 1;
                if iter > MAX_QL_ITER {
                    return false;
                }
                // Shift.
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = pythag(p, 1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..n] {
                    *di -= h;
                }
                f += h;
                // Implicit QL sweep.
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = pythag(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if let Some(vt) = vt.as_deref_mut() {
                        // Rows i and i + 1 of Vᵀ: columns i and i + 1 of JAMA's V.
                        let (head, tail) = vt.split_at_mut((i + 1) * n);
                        let row_i = &mut head[i * n..];
                        let row_i1 = &mut tail[..n];
                        for (a, b) in row_i.iter_mut().zip(row_i1.iter_mut()) {
                            let hk = *b;
                            *b = s * *a + c * hk;
                            *a = c * *a - s * hk;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    d.iter().all(|v| v.is_finite())
}

/// `sqrt(a² + b²)`, directly when that cannot overflow or underflow (always, for the scaled
/// covariances here), else by `hypot`.
fn pythag(a: f64, b: f64) -> f64 {
    let r = (a * a + b * b).sqrt();
    if r.is_finite() && r > 1e-150 {
        r
    } else {
        a.hypot(b)
    }
}

/// `out = a b`.
pub fn matmul_into(a: ArrayView2<f64>, b: ArrayView2<f64>, mut out: ArrayViewMut2<f64>) {
    general_mat_mul(1.0, &a, &b, 0.0, &mut out);
}

/// Replaces `a` by `(a + aᵀ) / 2`.
pub fn symmetrise(mut a: ArrayViewMut2<f64>) {
    let n = a.nrows();
    for i in 0..n {
        for j in i + 1..n {
            let v = 0.5 * (a[[i, j]] + a[[j, i]]);
            a[[i, j]] = v;
            a[[j, i]] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::linalg;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn random_symmetric(n: usize, seed: u64, spd: bool) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let z = Array2::from_shape_fn((n, 2 * n), |_| -> f64 { StandardNormal.sample(&mut rng) });
        if spd {
            z.dot(&z.t())
        } else {
            let a = z
                .slice_axis(ndarray::Axis(1), ndarray::Slice::from(..n))
                .to_owned();
            &a + &a.t()
        }
    }

    fn max_abs(a: &Array2<f64>) -> f64 {
        a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn decomposition_reconstructs_and_matches_jacobi() {
        for (n, seed, spd) in [
            (1, 1, true),
            (2, 2, false),
            (3, 3, true),
            (8, 4, false),
            (22, 5, true),
            (22, 6, false),
            (40, 7, true),
        ] {
            let a = random_symmetric(n, seed, spd);
            let mut eig = Eig::new(n);
            assert!(eig.decompose(a.view()));
            let values = eig.values().to_vec();
            assert!(values.windows(2).all(|w| w[0] <= w[1]), "ascending");
            let mut back = Array2::zeros((n, n));
            eig.reconstruct_into(|l| l, back.view_mut());
            // Backward stable: ~n ε ‖A‖.
            let tol = 1e-14 * n as f64 * max_abs(&a);
            assert!(
                max_abs(&(&back - &a)) < tol,
                "n={n}: {}",
                max_abs(&(&back - &a))
            );
            let vt = eig.vectors_as_rows();
            let gram = vt.dot(&vt.t());
            assert!(max_abs(&(&gram - &Array2::<f64>::eye(n))) < 1e-13 * n as f64);
            // Same eigenvalues as the Jacobi solver, to ~n ε ‖A‖.
            let (jac, _) = linalg::eigh(a.view()).unwrap();
            let mut jac = jac.to_vec();
            jac.sort_by(f64::total_cmp);
            for (x, y) in values.iter().zip(&jac) {
                assert!((x - y).abs() < tol, "n={n}: {x} vs {y}");
            }
            assert!(eig.eigenvalues_only(a.view()));
            for (x, y) in eig.values().iter().zip(&jac) {
                assert!((x - y).abs() < tol, "n={n}: values only {x} vs {y}");
            }
        }
    }

    #[test]
    fn degenerate_and_structured_matrices() {
        // Identity, a zero matrix, repeated eigenvalues, an already diagonal matrix.
        let mut eig = Eig::new(4);
        for a in [
            Array2::<f64>::eye(4),
            Array2::<f64>::zeros((4, 4)),
            Array2::from_diag(&ndarray::arr1(&[3.0, 1.0, 3.0, 2.0])),
            Array2::from_elem((4, 4), 1.0),
        ] {
            assert!(eig.decompose(a.view()));
            let mut back = Array2::zeros((4, 4));
            eig.reconstruct_into(|l| l, back.view_mut());
            assert!(max_abs(&(&back - &a)) < 1e-14, "{a}");
        }
        // All ones: eigenvalues 0, 0, 0, 4.
        assert!((eig.values()[3] - 4.0).abs() < 1e-14);
        assert!(eig.values()[0].abs() < 1e-14);
        let mut bad = Array2::<f64>::eye(4);
        bad[[1, 2]] = f64::NAN;
        bad[[2, 1]] = f64::NAN;
        assert!(!eig.decompose(bad.view()));
        assert!(!eig.eigenvalues_only(bad.view()));
    }
}
