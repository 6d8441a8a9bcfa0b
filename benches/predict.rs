//! The per-trial prediction cost of a served model: band-pass one raw 22 × 750 trial, CSP,
//! SVM. `cargo bench --bench predict`

use bciops::model::classifier::{self, ModelParams};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ndarray::{Array2, Array3};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Mixed Gaussian sources with a class-dependent gain, BCI IV 2a-sized: 144 × 22 × 750.
fn data() -> (Array3<f64>, Vec<usize>) {
    let (n_trials, n_ch, n_t) = (144, 22, 750);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let mixing = Array2::from_shape_fn((n_ch, n_ch), |_| normal());
    let y: Vec<usize> = (0..n_trials).map(|i| i % 2).collect();
    let mut x = Array3::zeros((n_trials, n_ch, n_t));
    for (i, mut trial) in x.outer_iter_mut().enumerate() {
        let s = Array2::from_shape_fn((n_ch, n_t), |(c, _)| {
            (if c == y[i] { 2.0 } else { 1.0 }) * normal()
        });
        trial.assign(&mixing.dot(&s));
    }
    (x, y)
}

fn bench(c: &mut Criterion) {
    let (x, y) = data();
    let sos = bciops::signal::filter::BandPass::new(8.0, 30.0, 4, 250.0)
        .unwrap()
        .sos();
    for kernel in ["linear", "rbf"] {
        let params = ModelParams {
            kernel: kernel.parse().unwrap(),
            ..ModelParams::default()
        };
        let checked = params.check(22).unwrap();
        let fitted = classifier::fit(x.view(), &y, &checked).unwrap();
        let trial = x.index_axis(ndarray::Axis(0), 0).to_owned();
        c.bench_function(
            &format!("csp+svm({kernel}) one filtered 22x750 trial"),
            |b| b.iter(|| fitted.predict_trial(black_box(trial.view())).unwrap()),
        );
        c.bench_function(
            &format!("filter+csp+svm({kernel}) one raw 22x750 trial"),
            |b| {
                b.iter(|| {
                    let mut t = black_box(&trial).clone();
                    bciops::signal::filter::filter_rows(
                        &sos,
                        bciops::signal::filter::FilterMode::ZeroPhase,
                        &mut t,
                    )
                    .unwrap();
                    fitted.predict_trial(t.view()).unwrap()
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
