//! Functions of symmetric positive definite (SPD) matrices through their eigendecomposition
//! `C = V diag(λ) Vᵀ`: `f(C) = V diag(f(λ)) Vᵀ`, as pyRiemann's `_matrix_operator`, and the
//! affine-invariant distance `‖log(B^{-1/2} A B^{-1/2})‖_F`.
//!
//! The functions work on one matrix at a time and take an [`Eig`] workspace, so that loops
//! over trials allocate once per thread rather than once per matrix.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use super::eigen::{self, Eig};

/// Why an SPD function refused a matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpdError {
    /// An entry is NaN or infinite.
    NonFinite,
    /// The eigensolver did not converge (it always does for finite symmetric input).
    NoConvergence,
    /// An eigenvalue is not positive: the value of the smallest one.
    NotPositive(f64),
}

impl SpdError {
    /// The reason as words, to follow "matrix `i` ".
    pub fn describe(self) -> String {
        match self {
            SpdError::NonFinite => "has non-finite values".into(),
            SpdError::NoConvergence => "defeated the eigensolver".into(),
            SpdError::NotPositive(v) => {
                format!("is not positive definite (smallest eigenvalue `{v:e}`)")
            }
        }
    }
}

/// Decomposes symmetric `a` into `ws` (eigenvalues ascending) and checks every eigenvalue is
/// positive.
pub fn decompose_spd(a: ArrayView2<f64>, ws: &mut Eig) -> Result<(), SpdError> {
    if a.iter().any(|v| !v.is_finite()) {
        return Err(SpdError::NonFinite);
    }
    if !ws.decompose(a) {
        return Err(SpdError::NoConvergence);
    }
    let smallest = ws.values().first().copied().unwrap_or(1.0);
    if smallest.is_nan() || smallest <= 0.0 {
        return Err(SpdError::NotPositive(smallest));
    }
    Ok(())
}

/// `out = V diag(f(λ)) Vᵀ` of SPD `a`.
pub fn apply_into(
    a: ArrayView2<f64>,
    f: impl Fn(f64) -> f64,
    ws: &mut Eig,
    out: ArrayViewMut2<f64>,
) -> Result<(), SpdError> {
    decompose_spd(a, ws)?;
    ws.reconstruct_into(f, out);
    Ok(())
}

fn apply(a: ArrayView2<f64>, f: impl Fn(f64) -> f64) -> Result<Array2<f64>, SpdError> {
    let n = a.nrows();
    let mut ws = Eig::new(n);
    let mut out = Array2::zeros((n, n));
    apply_into(a, f, &mut ws, out.view_mut())?;
    Ok(out)
}

/// Matrix square root of an SPD matrix.
pub fn sqrtm(a: ArrayView2<f64>) -> Result<Array2<f64>, SpdError> {
    apply(a, f64::sqrt)
}

/// Inverse matrix square root of an SPD matrix.
pub fn invsqrtm(a: ArrayView2<f64>) -> Result<Array2<f64>, SpdError> {
    apply(a, |l| 1.0 / l.sqrt())
}

/// Matrix logarithm of an SPD matrix.
pub fn logm(a: ArrayView2<f64>) -> Result<Array2<f64>, SpdError> {
    apply(a, f64::ln)
}

/// Matrix exponential of a symmetric matrix (any real eigenvalues).
pub fn expm(a: ArrayView2<f64>) -> Result<Array2<f64>, SpdError> {
    if a.iter().any(|v| !v.is_finite()) {
        return Err(SpdError::NonFinite);
    }
    let n = a.nrows();
    let mut ws = Eig::new(n);
    if !ws.decompose(a) {
        return Err(SpdError::NoConvergence);
    }
    let mut out = Array2::zeros((n, n));
    ws.reconstruct_into(f64::exp, out.view_mut());
    Ok(out)
}

/// Affine-invariant Riemannian distance `sqrt(Σ log² λᵢ)` over the eigenvalues of
/// `W A W`, where `whitener` is `W = B^{-1/2}` of the other matrix `B` (they are the
/// generalised eigenvalues of `(A, B)`, what pyRiemann's `distance_riemann` sums).
/// `tmp` is an `n × n` scratch matrix.
pub fn distance_whitened(
    a: ArrayView2<f64>,
    whitener: ArrayView2<f64>,
    ws: &mut Eig,
    tmp: &mut Array2<f64>,
) -> Result<f64, SpdError> {
    congruence_into(whitener, a, ws.scratch(), tmp.view_mut());
    if tmp.iter().any(|v| !v.is_finite()) {
        return Err(SpdError::NonFinite);
    }
    if !ws.eigenvalues_only(tmp.view()) {
        return Err(SpdError::NoConvergence);
    }
    let smallest = ws.values().first().copied().unwrap_or(1.0);
    if smallest.is_nan() || smallest <= 0.0 {
        return Err(SpdError::NotPositive(smallest));
    }
    Ok(ws
        .values()
        .iter()
        .map(|l| l.ln().powi(2))
        .sum::<f64>()
        .sqrt())
}

/// Affine-invariant Riemannian distance between SPD matrices `a` and `b`.
pub fn distance(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Result<f64, SpdError> {
    let n = a.nrows();
    let w = invsqrtm(b)?;
    let mut ws = Eig::new(n);
    let mut tmp = Array2::zeros((n, n));
    distance_whitened(a, w.view(), &mut ws, &mut tmp)
}

/// `out = W A W` for symmetric `W` and `A`, symmetrised exactly. `scratch` is `n × n`.
pub fn congruence_into(
    w: ArrayView2<f64>,
    a: ArrayView2<f64>,
    scratch: &mut Array2<f64>,
    mut out: ArrayViewMut2<f64>,
) {
    eigen::matmul_into(w, a, scratch.view_mut());
    eigen::matmul_into(scratch.view(), w, out.view_mut());
    eigen::symmetrise(out);
}
