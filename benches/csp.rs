//! CSP speed on BCI IV 2a-sized data: 160 trials × 22 channels × 750 samples (3 s at 250 Hz).
//! `cargo bench --bench csp`

use bciops::model::csp::{class_scatters, trial_scatters, Csp, CspParams};
use bciops::model::linalg;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ndarray::{Array2, Array3, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Mixed Gaussian sources, class-dependent gains on two of them; labels 0..n_classes.
fn data(n_classes: usize) -> (Array3<f64>, Vec<usize>) {
    let (n_trials, n_ch, n_t) = (160, 22, 750);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let mixing = Array2::from_shape_fn((n_ch, n_ch), |_| normal());
    let y: Vec<usize> = (0..n_trials).map(|i| i % n_classes).collect();
    let mut x = Array3::zeros((n_trials, n_ch, n_t));
    for (i, mut trial) in x.outer_iter_mut().enumerate() {
        let s = Array2::from_shape_fn((n_ch, n_t), |(c, _)| {
            (if c == y[i] { 3.0 } else { 1.0 }) * normal()
        });
        trial.assign(&mixing.dot(&s));
    }
    (x, y)
}

fn bench(c: &mut Criterion) {
    let (x, y) = data(2);
    let x32 = x.mapv(|v| v as f32);
    let params = CspParams::default();
    c.bench_function("fit 2 classes 160x22x750", |b| {
        b.iter(|| Csp::fit(black_box(x.view()), &y, &params).unwrap())
    });
    c.bench_function("fit 2 classes 160x22x750 f32", |b| {
        b.iter(|| Csp::fit(black_box(x32.view()), &y, &params).unwrap())
    });
    c.bench_function("trial scatters 160x22x750", |b| {
        b.iter(|| trial_scatters(black_box(x.view())).unwrap())
    });
    let trials = trial_scatters(x.view()).unwrap();
    let classes = class_scatters(2, trials.iter().zip(y.iter().copied())).unwrap();
    c.bench_function("fold class scatters 128 of 160 trials", |b| {
        b.iter(|| class_scatters(2, (0..128).map(|i| (&trials[i], y[i]))).unwrap())
    });
    c.bench_function("fit from class scatters 22 ch", |b| {
        b.iter(|| Csp::fit_from_scatters(black_box(&classes), &params).unwrap())
    });
    let cov = classes[0].covariance(&params);
    c.bench_function("jacobi eigh 22x22", |b| {
        b.iter(|| linalg::eigh(black_box(cov.view())).unwrap())
    });

    let (x4, y4) = data(4);
    c.bench_function("fit 4 classes joint 160x22x750", |b| {
        b.iter(|| Csp::fit(black_box(x4.view()), &y4, &params).unwrap())
    });

    let csp = Csp::fit(x.view(), &y, &params).unwrap();
    let trial = x.index_axis(Axis(0), 0);
    let trial32 = x32.index_axis(Axis(0), 0);
    c.bench_function("transform one trial 22x750, 4 filters", |b| {
        b.iter(|| csp.transform_trial(black_box(trial)).unwrap())
    });
    c.bench_function("transform one trial 22x750 f32, 4 filters", |b| {
        b.iter(|| csp.transform_trial(black_box(trial32)).unwrap())
    });
    c.bench_function("transform 160x22x750, 4 filters", |b| {
        b.iter(|| csp.transform(black_box(x.view())).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
