//! Classifier heads and feature selection on CSP-like features of BCI IV 2a sizes: one
//! subject's left vs right (142 trials), nine subjects' (1278), four classes (576), a filter
//! bank's 36 features and 100 features (the most a head sees here).
//! `cargo bench --bench heads`

use bciops::model::csp::{Csp, CspParams};
use bciops::model::lda::{Lda, LdaParams};
use bciops::model::logistic::{LogisticParams, LogisticRegression};
use bciops::model::mutual_info::{mutual_info_classif, select_k_best};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ndarray::{concatenate, Array2, Array3, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// CSP log-variance features (MNE's scheme) of simulated trials: 22 mixed sources, class `k`
/// lowering the power of sources `2k`, `2k + 1`; `bands` independent sets side by side.
fn features(counts: &[usize], n_components: usize, bands: u64) -> (Array2<f64>, Vec<usize>) {
    let (n_ch, n_s) = (22, 200);
    let mut y: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(k, &c)| std::iter::repeat_n(k, c))
        .collect();
    y.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(7));
    let blocks: Vec<Array2<f64>> = (0..bands)
        .map(|band| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(42 + band);
            let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
            let mixing =
                Array2::from_shape_fn((n_ch, n_ch), |(i, j)| normal() + f64::from(i == j) * 2.0);
            let mut x = Array3::zeros((y.len(), n_ch, n_s));
            for (mut trial, &k) in x.outer_iter_mut().zip(&y) {
                let gains: Vec<f64> = (0..n_ch)
                    .map(|j| (0.5 * normal() - if j / 2 == k { 0.45 } else { 0.0 }).exp())
                    .collect();
                let s = Array2::from_shape_fn((n_ch, n_s), |(j, _)| gains[j] * normal());
                trial.assign(&mixing.dot(&s));
            }
            let params = CspParams::new().n_components(n_components);
            Csp::fit(x.view(), &y, &params)
                .unwrap()
                .transform(x.view())
                .unwrap()
        })
        .collect();
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    (concatenate(Axis(1), &views).unwrap(), y)
}

fn bench(c: &mut Criterion) {
    let cases = [
        ("142x4 2 classes", features(&[72, 70], 4, 1), 2),
        ("1278x4 2 classes", features(&[639, 639], 4, 1), 2),
        ("576x8 4 classes", features(&[144; 4], 8, 1), 4),
        ("1278x36 2 classes", features(&[639, 639], 4, 9), 2),
        ("1278x100 2 classes", features(&[639, 639], 20, 5), 2),
        ("576x100 4 classes", features(&[144; 4], 20, 5), 4),
    ];
    let (lda_params, lr_params) = (LdaParams::default(), LogisticParams::default());
    for (name, (x, y), k) in &cases {
        c.bench_function(&format!("lda fit {name}"), |b| {
            b.iter(|| Lda::fit(black_box(x.view()), y, *k, &lda_params).unwrap())
        });
        c.bench_function(&format!("logistic fit {name}"), |b| {
            b.iter(|| LogisticRegression::fit(black_box(x.view()), y, *k, &lr_params).unwrap())
        });
        let lr = LogisticRegression::fit(x.view(), y, *k, &lr_params).unwrap();
        eprintln!("logistic {name}: {} L-BFGS iterations", lr.n_iter);
    }
    let (x, y) = &cases[3].1;
    c.bench_function("mutual_info_classif 1278x36 + select 8", |b| {
        b.iter(|| select_k_best(&mutual_info_classif(black_box(x.view()), y, 3).unwrap(), 8))
    });
    let (x, y) = &cases[2].1;
    let lda = Lda::fit(x.view(), y, 4, &lda_params).unwrap();
    let row = x.row(0).to_vec();
    c.bench_function("lda predict_one 8 features 4 classes", |b| {
        b.iter(|| lda.predict_one(black_box(&row)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
