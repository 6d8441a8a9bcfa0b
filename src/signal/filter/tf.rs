//! Transfer-function (`b`, `a`) filtering, and the steady-state initial conditions
//! (`lfilter_zi`, `sosfilt_zi`) that zero-phase filtering starts from, rounded as scipy and
//! OpenBLAS round them.

use crate::{Error, Result};

use super::lanes::check_length;

/// Filters `x` through `b / a` from a zero state (`scipy.signal.lfilter`), transposed direct
/// form II, coefficients normalised by `a[0]`.
///
/// # Panics
/// If `b` or `a` is empty or `a[0] == 0`: coefficients come from the library's own designs.
#[track_caller]
pub fn lfilter(b: &[f64], a: &[f64], x: &[f64]) -> Vec<f64> {
    assert!(
        !b.is_empty() && !a.is_empty() && a[0] != 0.0,
        "lfilter needs non-empty coefficients and a[0] != 0"
    );
    let (b, a) = normalised_tf(b, a);
    let mut state = vec![0.0; b.len() - 1];
    let mut y = x.to_vec();
    tf_filter(&b, &a, &mut state, y.iter_mut());
    y
}

/// Zero-phase filtering as `scipy.signal.filtfilt(b, a, x)` with its defaults: odd extension
/// by `padlen = 3 * max(len(a), len(b))` and `lfilter_zi` initial conditions.
pub fn filtfilt(b: &[f64], a: &[f64], x: &[f64]) -> Result<Vec<f64>> {
    if b.is_empty() || a.is_empty() || a[0] == 0.0 {
        return Err(Error::Invalid(format!(
            "transfer function needs non-empty `b` and `a` with `a[0]` not 0, got b = `{b:?}`, \
             a = `{a:?}`"
        )));
    }
    let padlen = 3 * a.len().max(b.len());
    check_length(x.len(), padlen)?;
    let zi = lfilter_zi(b, a)?;
    let (b, a) = normalised_tf(b, a);
    let mut ext = odd_extension(x, padlen);
    let mut state: Vec<f64> = zi.iter().map(|z| z * ext[0]).collect();
    tf_filter(&b, &a, &mut state, ext.iter_mut());
    let last = ext[ext.len() - 1];
    let mut state: Vec<f64> = zi.iter().map(|z| z * last).collect();
    tf_filter(&b, &a, &mut state, ext.iter_mut().rev());
    ext.truncate(padlen + x.len());
    ext.drain(..padlen);
    Ok(ext)
}

/// `b` and `a` padded to one length and divided by `a[0]`, as scipy's `lfilter` does in C.
pub(super) fn normalised_tf(b: &[f64], a: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = a.len().max(b.len());
    let a0 = a[0];
    let pad = |c: &[f64]| -> Vec<f64> {
        let mut v: Vec<f64> = c.iter().map(|x| x / a0).collect();
        v.resize(n, 0.0);
        v
    };
    (pad(b), pad(a))
}

/// Transposed direct form II with normalised, equally long `b` and `a` (scipy's `lfilter`
/// inner loop, same expression order).
pub(super) fn tf_filter<'x>(
    b: &[f64],
    a: &[f64],
    state: &mut [f64],
    samples: impl Iterator<Item = &'x mut f64>,
) {
    let n = b.len();
    assert!(a.len() == n && state.len() + 1 == n);
    if n == 1 {
        for x in samples {
            *x *= b[0];
        }
        return;
    }
    let (b0, b_rest) = (b[0], &b[1..]);
    let a_rest = &a[1..];
    for x in samples {
        let xn = *x;
        let yn = state[0] + b0 * xn;
        for i in 0..n - 2 {
            state[i] = state[i + 1] + xn * b_rest[i] - yn * a_rest[i];
        }
        state[n - 2] = xn * b_rest[n - 2] - yn * a_rest[n - 2];
        *x = yn;
    }
}

/// scipy's `odd_ext`: the signal with `pad` samples point-reflected about each end.
pub(super) fn odd_extension(x: &[f64], pad: usize) -> Vec<f64> {
    let n = x.len();
    let mut ext = Vec::with_capacity(n + 2 * pad);
    ext.extend(x[1..=pad].iter().rev().map(|v| 2.0 * x[0] - v));
    ext.extend_from_slice(x);
    ext.extend(
        x[n - 1 - pad..n - 1]
            .iter()
            .rev()
            .map(|v| 2.0 * x[n - 1] - v),
    );
    ext
}

/// scipy's `lfilter_zi`: the state of `b / a` after a unit step has settled, solving
/// `(I - companion(a)ᵀ) zi = b[1:] - a[1:] b[0]`.
pub(super) fn lfilter_zi(b: &[f64], a: &[f64]) -> Result<Vec<f64>> {
    let mut a = a;
    while a.len() > 1 && a[0] == 0.0 {
        a = &a[1..];
    }
    if a[0] == 0.0 {
        return Err(Error::Invalid(
            "transfer function needs a nonzero `a` coefficient".to_string(),
        ));
    }
    let (mut b, mut a) = (b.to_vec(), a.to_vec());
    if a[0] != 1.0 {
        let a0 = a[0];
        b.iter_mut().for_each(|v| *v /= a0);
        a.iter_mut().for_each(|v| *v /= a0);
    }
    let n = a.len().max(b.len());
    a.resize(n, 0.0);
    b.resize(n, 0.0);
    let m = n - 1;
    let mut matrix = vec![vec![0.0; m]; m];
    for (i, row) in matrix.iter_mut().enumerate() {
        // eye(m) - companion(a).T, entry by entry as NumPy subtracts them: companion's first
        // row is -a[1:] / a[0] (a[0] is 1 here), below it a shifted identity.
        row[i] = 1.0;
        row[0] -= -a[i + 1];
        if i + 1 < m {
            row[i + 1] -= 1.0;
        }
    }
    let rhs: Vec<f64> = (1..n).map(|i| b[i] - a[i] * b[0]).collect();
    solve(matrix, rhs)
}

/// LU with partial pivoting and two triangular solves, rounded as OpenBLAS's `dgesv` (which
/// NumPy's `solve` calls) rounds them for the 2 × 2 systems of second-order sections: pivot
/// column scaled by the reciprocal pivot, substitutions as fused `axpy` updates. Larger
/// systems (`filtfilt` on `ba`) agree to rounding.
pub(super) fn solve(mut m: Vec<Vec<f64>>, mut rhs: Vec<f64>) -> Result<Vec<f64>> {
    let n = rhs.len();
    for j in 0..n {
        // IAMAX: the first entry of largest magnitude.
        let pivot = (j..n).fold(j, |p, i| if m[i][j].abs() > m[p][j].abs() { i } else { p });
        if m[pivot][j] == 0.0 || !m[pivot][j].is_finite() {
            return Err(Error::Numerical(format!(
                "filter initial conditions: singular system at column `{j}` (a pole at z = 1?)"
            )));
        }
        m.swap(j, pivot);
        rhs.swap(j, pivot);
        let (top, bottom) = m.split_at_mut(j + 1);
        let pivot_row = &top[j];
        let inverse = 1.0 / pivot_row[j];
        for row in bottom {
            let factor = row[j] * inverse;
            row[j] = factor;
            for (x, p) in row[j + 1..].iter_mut().zip(&pivot_row[j + 1..]) {
                *x -= factor * p;
            }
        }
    }
    // Unit lower triangle, then upper triangle, column by column.
    for i in 0..n {
        let (head, tail) = rhs.split_at_mut(i + 1);
        let scale = -head[i];
        for (r, row) in tail.iter_mut().zip(&m[i + 1..]) {
            *r = scale.mul_add(row[i], *r);
        }
    }
    for i in (0..n).rev() {
        rhs[i] /= m[i][i];
        let (head, tail) = rhs.split_at_mut(i);
        let scale = -tail[0];
        for (r, row) in head.iter_mut().zip(&m[..i]) {
            *r = scale.mul_add(row[i], *r);
        }
    }
    Ok(rhs)
}

/// scipy's `sosfilt_zi`: each section's `lfilter_zi`, scaled by the DC gain of the sections
/// before it.
pub(super) fn sosfilt_zi(sos: &[[f64; 6]]) -> Result<Vec<[f64; 2]>> {
    let mut scale = 1.0;
    let mut zi = Vec::with_capacity(sos.len());
    for s in sos {
        let (b, a) = (&s[..3], &s[3..]);
        let z = lfilter_zi(b, a)?;
        zi.push([scale * z[0], scale * z[1]]);
        // NumPy sums three elements left to right.
        scale *= (b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]);
    }
    Ok(zi)
}
