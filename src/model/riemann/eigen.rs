//! The symmetric eigendecomposition behind every Riemannian operation, with its buffers kept
//! in a reusable workspace ([`Eig`]), and the small dense products around it.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::model::linalg;

/// Eigendecomposition workspace for `n × n` symmetric matrices: eigenvalues ascending (as
/// LAPACK's `syevd`, what NumPy's `eigh` calls), eigenvectors in the columns of `vectors`.
#[derive(Clone, Debug)]
pub struct Eig {
    n: usize,
    values: Vec<f64>,
    vectors: Array2<f64>,
    scaled: Array2<f64>,
    scratch: Array2<f64>,
    order: Vec<usize>,
}

impl Eig {
    pub fn new(n: usize) -> Self {
        Eig {
            n,
            values: vec![0.0; n],
            vectors: Array2::zeros((n, n)),
            scaled: Array2::zeros((n, n)),
            scratch: Array2::zeros((n, n)),
            order: (0..n).collect(),
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// Decomposes symmetric `a` (only finite input converges); false if it did not converge.
    pub fn decompose(&mut self, a: ArrayView2<f64>) -> bool {
        assert_eq!(a.dim(), (self.n, self.n), "eig workspace of another size");
        let Some((values, vectors)) = linalg::eigh(a) else {
            return false;
        };
        self.order.clear();
        self.order.extend(0..self.n);
        self.order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        for (k, &i) in self.order.iter().enumerate() {
            self.values[k] = values[i];
            self.vectors.column_mut(k).assign(&vectors.column(i));
        }
        true
    }

    /// Eigenvalues of symmetric `a` only, ascending; false if it did not converge.
    pub fn eigenvalues_only(&mut self, a: ArrayView2<f64>) -> bool {
        self.decompose(a)
    }

    /// Eigenvalues of the last decomposition, ascending.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Eigenvectors of the last decomposition, in columns, in the order of [`Eig::values`].
    pub fn vectors(&self) -> ArrayView2<'_, f64> {
        self.vectors.view()
    }

    /// `out = V diag(f(λ)) Vᵀ` of the last decomposition, symmetric exactly.
    pub fn reconstruct_into(&mut self, f: impl Fn(f64) -> f64, mut out: ArrayViewMut2<f64>) {
        for (k, mut col) in self.scaled.axis_iter_mut(Axis(1)).enumerate() {
            let fk = f(self.values[k]);
            col.zip_mut_with(&self.vectors.column(k), |s, &v| *s = v * fk);
        }
        general_mat_mul(1.0, &self.scaled, &self.vectors.t(), 0.0, &mut out);
        symmetrise(out);
    }

    /// An `n × n` matrix the caller may overwrite between decompositions.
    pub fn scratch(&mut self) -> &mut Array2<f64> {
        &mut self.scratch
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
