//! Mutual information between each continuous feature and a discrete class label, as
//! scikit-learn 1.9's `mutual_info_classif(X, y, n_neighbors=3)`, and the choice of the `k`
//! best features as `SelectKBest(mutual_info_classif, k=k)` makes it (filter-bank CSP's
//! feature selection, Ang et al. 2008).
//!
//! The estimator is Ross's (PLoS ONE 9(2), 2014), a k-nearest-neighbour (KSG-style) estimate:
//! for each trial, `r` is the distance to its `k`-th nearest neighbour among the trials of its
//! own class (`k = min(n_neighbors, class size − 1)`), and `m` counts the trials of the whole
//! sample closer than `r` (itself included); then
//! `MI = ψ(N) + ⟨ψ(k)⟩ − ⟨ψ(N_class)⟩ − ⟨ψ(m)⟩`, clipped at 0, where trials of one-trial classes
//! are left out. scikit-learn's arithmetic is followed to the comparison: `r` one float step
//! below the neighbour's distance, counts by comparing squared differences, features scaled
//! by their standard deviation first.
//!
//! **Noise.** scikit-learn also adds `1e-10 · max(1, mean |x|)` Gaussian noise to every scaled
//! feature, drawn afresh on every call unless `random_state` is fixed, to break exact ties.
//! This module adds none: on continuous features (CSP log-variances) a count changes only if
//! two distances from one trial lie within ~1e-10 of each other, so the noise changes no count
//! and the estimate is scikit-learn's for any of its seeds (the tests check this on several).
//! On features with exact ties (repeated values) the two differ: scikit-learn breaks ties at
//! random; here tied values count as equally far, deterministically.
//!
//! Classes of at most `2 · n_neighbors + 1` trials are searched by brute force in
//! scikit-learn, whose distances then carry ~1e-14 of rounding; its counts there can differ by
//! one from the exact ones computed here.

use ndarray::ArrayView2;

use crate::{Error, Result};

/// The mutual information (nats) of every column of `x` (trials × features) with the labels
/// `y` (any `usize` values, one per trial), estimated with `n_neighbors` neighbours (≥ 1;
/// scikit-learn's default is 3).
pub fn mutual_info_classif(
    x: ArrayView2<f64>,
    y: &[usize],
    n_neighbors: usize,
) -> Result<Vec<f64>> {
    let (n, p) = x.dim();
    if y.len() != n {
        return Err(Error::Data(format!(
            "mutual information: `{n}` trials but `{}` labels",
            y.len()
        )));
    }
    if n_neighbors == 0 {
        return Err(Error::Invalid(
            "mutual information `n_neighbors` must be at least 1, got `0`".into(),
        ));
    }
    for (i, row) in x.outer_iter().enumerate() {
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "mutual information: feature `{j}` of trial `{i}` is `{}`: features must be finite",
                row[j]
            )));
        }
    }

    // Classes (in label order) and the trials kept: those of classes with ≥ 2 trials.
    let mut labels: Vec<usize> = y.to_vec();
    labels.sort_unstable();
    labels.dedup();
    let class_of = |label: usize| labels.binary_search(&label).expect("a label of y");
    let mut sizes = vec![0usize; labels.len()];
    for &l in y {
        sizes[class_of(l)] += 1;
    }
    let kept: Vec<usize> = (0..n).filter(|&i| sizes[class_of(y[i])] > 1).collect();
    if kept.is_empty() {
        return Err(Error::Data(
            "mutual information needs a class with at least 2 trials".into(),
        ));
    }
    let kept_class: Vec<usize> = kept.iter().map(|&i| class_of(y[i])).collect();
    let n_kept = kept.len();

    // The label-only terms are the same for every feature.
    let digamma_n = digamma(n_kept);
    let mut mean_digamma_k = 0.0;
    let mut mean_digamma_class = 0.0;
    for &c in &kept_class {
        mean_digamma_k += digamma(n_neighbors.min(sizes[c] - 1));
        mean_digamma_class += digamma(sizes[c]);
    }
    mean_digamma_k /= n_kept as f64;
    mean_digamma_class /= n_kept as f64;

    // Work buffers, reused across features.
    let mut values = vec![0.0; n_kept];
    let mut sorted = vec![0.0; n_kept];
    let mut by_class: Vec<Vec<f64>> = sizes
        .iter()
        .map(|&s| Vec::with_capacity(if s > 1 { s } else { 0 }))
        .collect();
    let mut radius = vec![0.0; n_kept];

    let mut scores = Vec::with_capacity(p);
    for column in x.columns() {
        let scale = deviation(column.iter().copied());
        for (v, &i) in values.iter_mut().zip(&kept) {
            *v = column[i] / scale;
        }
        for b in &mut by_class {
            b.clear();
        }
        for (&v, &c) in values.iter().zip(&kept_class) {
            by_class[c].push(v);
        }
        for b in &mut by_class {
            b.sort_unstable_by(f64::total_cmp);
        }
        // Radius of each kept trial: just below its k-th within-class neighbour's distance.
        for ((r, &v), &c) in radius.iter_mut().zip(&values).zip(&kept_class) {
            let class = &by_class[c];
            let k = n_neighbors.min(class.len() - 1);
            *r = below(kth_neighbour_distance(class, v, k));
        }
        sorted.copy_from_slice(&values);
        sorted.sort_unstable_by(f64::total_cmp);
        let mut mean_digamma_m = 0.0;
        for (&v, &r) in values.iter().zip(&radius) {
            mean_digamma_m += digamma(count_within(&sorted, v, r));
        }
        mean_digamma_m /= n_kept as f64;
        let mi = digamma_n + mean_digamma_k - mean_digamma_class - mean_digamma_m;
        scores.push(mi.max(0.0));
    }
    Ok(scores)
}

/// The indices of the `k` highest scores, in ascending index order, as scikit-learn's
/// `SelectKBest` keeps them: a stable ascending sort, the last `k` taken (so among equal
/// scores the later features win), NaN below every number. All features if `k` exceeds
/// their number.
pub fn select_k_best(scores: &[f64], k: usize) -> Vec<usize> {
    let clean = |v: f64| if v.is_nan() { f64::MIN } else { v };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // `sort_by` is stable, as numpy's mergesort.
    order.sort_by(|&a, &b| clean(scores[a]).total_cmp(&clean(scores[b])));
    let mut best = order.split_off(order.len().saturating_sub(k));
    best.sort_unstable();
    best
}

/// Population standard deviation, 1 for (near-)constant columns (`sklearn.preprocessing.scale`
/// with `with_mean=False`: `np.nanstd`, then `_handle_zeros_in_scale`).
fn deviation(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (mut n, mut sum) = (0.0, 0.0);
    for v in values.clone() {
        n += 1.0;
        sum += v;
    }
    let mean = sum / n;
    let var = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    if std < 10.0 * f64::EPSILON {
        1.0
    } else {
        std
    }
}

/// Distance from `v` (a member of `class`, sorted ascending) to its `k`-th nearest other
/// member: the nearest are contiguous around it, so walk outwards `k` steps.
fn kth_neighbour_distance(class: &[f64], v: f64, k: usize) -> f64 {
    // Any one position of `v` in the class will do: equal values are at distance 0 either way.
    let at = class.partition_point(|&c| c < v);
    let (mut lo, mut hi) = (at, at + 1); // candidates: class[lo - 1] and class[hi]
    let mut d = 0.0;
    for _ in 0..k {
        let left = (lo > 0).then(|| v - class[lo - 1]);
        let right = class.get(hi).map(|&c| c - v);
        match (left, right) {
            (Some(l), Some(r)) if l <= r => {
                d = l;
                lo -= 1;
            }
            (Some(l), None) => {
                d = l;
                lo -= 1;
            }
            (_, Some(r)) => {
                d = r;
                hi += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// `np.nextafter(d, 0)`: the float just below a positive `d`; 0 stays 0.
fn below(d: f64) -> f64 {
    if d > 0.0 {
        f64::from_bits(d.to_bits() - 1)
    } else {
        d
    }
}

/// How many of `sorted` lie within `r` of `v` (itself included), compared as scikit-learn's
/// KD-tree does at its leaves: squared difference against squared radius.
fn count_within(sorted: &[f64], v: f64, r: f64) -> usize {
    let r2 = r * r;
    let split = sorted.partition_point(|&s| s < v);
    let (left, right) = sorted.split_at(split);
    // Left of `v` the squared difference falls as the index rises; right of it, it grows.
    let first_near = left.partition_point(|&s| (s - v) * (s - v) > r2);
    let near_right = right.partition_point(|&s| (s - v) * (s - v) <= r2);
    (left.len() - first_near) + near_right
}

/// The digamma function at a positive integer: `ψ(m) = −γ + Σ_{j<m} 1/j` for small `m`, the
/// asymptotic series beyond (accurate to ~1e-16 relative for m ≥ 10).
fn digamma(m: usize) -> f64 {
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    debug_assert!(m > 0, "digamma of 0");
    if m < 10 {
        return (1..m).map(|j| 1.0 / j as f64).sum::<f64>() - EULER_GAMMA;
    }
    let x = m as f64;
    let z = 1.0 / (x * x);
    // ln x − 1/(2x) − Σ B₂ₖ / (2k x²ᵏ), k = 1..7.
    let series = z
        * (1.0 / 12.0
            - z * (1.0 / 120.0
                - z * (1.0 / 252.0
                    - z * (1.0 / 240.0 - z * (1.0 / 132.0 - z * (691.0 / 32760.0 - z / 12.0))))));
    x.ln() - 0.5 / x - series
}

#[cfg(test)]
mod tests;
