//! Riemannian kernels on BCI IV 2a-sized data: covariances, Riemannian mean, tangent space and
//! MDM on 142 × 22 × 750 (one subject) and 1278 × 22 × 750 (nine subjects), float32 trials as
//! epochs datasets hold them. `cargo bench --bench riemann`

use bciops::model::linalg;
use bciops::model::riemann::{covariances, mean_riemann, CovEstimator, Eig, Mdm, TangentSpace};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ndarray::{Array2, Array3, Axis};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Mixed Gaussian sources, class-dependent gains on four of them; labels 0..4.
fn data(n_trials: usize) -> (Array3<f32>, Vec<usize>) {
    let (n_ch, n_t) = (22, 750);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(42);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let mixing = Array2::from_shape_fn((n_ch, n_ch), |_| normal());
    let y: Vec<usize> = (0..n_trials).map(|i| i % 4).collect();
    let mut x = Array3::zeros((n_trials, n_ch, n_t));
    for (i, mut trial) in x.outer_iter_mut().enumerate() {
        let s = Array2::from_shape_fn((n_ch, n_t), |(c, _)| {
            (if c == y[i] { 2.0 } else { 1.0 }) * normal()
        });
        trial.assign(&mixing.dot(&s).mapv(|v| v as f32));
    }
    (x, y)
}

/// The kernels inside every stage, on one 22 × 22 covariance.
fn kernels(c: &mut Criterion) {
    let (x, _) = data(8);
    let covs = covariances(x.view(), CovEstimator::Oas).unwrap();
    let a = covs.index_axis(Axis(0), 0).to_owned();
    let b = covs.index_axis(Axis(0), 1).to_owned();
    let mut out = Array2::<f64>::zeros((22, 22));
    c.bench_function("kernel matmul 22x22", |bch| {
        bch.iter(|| ndarray::linalg::general_mat_mul(1.0, black_box(&a), &b, 0.0, &mut out))
    });
    let mut eig = Eig::new(22);
    c.bench_function("kernel eig 22x22 (tridiagonal QL)", |bch| {
        bch.iter(|| eig.decompose(black_box(a.view())))
    });
    c.bench_function("kernel eigenvalues only 22x22", |bch| {
        bch.iter(|| eig.eigenvalues_only(black_box(a.view())))
    });
    c.bench_function("kernel jacobi eigh 22x22 (linalg::eigh)", |bch| {
        bch.iter(|| linalg::eigh(black_box(a.view())).unwrap())
    });
    eig.decompose(a.view());
    c.bench_function("kernel reconstruct V f(L) Vt 22x22", |bch| {
        bch.iter(|| eig.reconstruct_into(f64::ln, out.view_mut()))
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("riemann");
    group.sample_size(10);
    for n in [142, 1278] {
        let (x, y) = data(n);
        group.bench_function(format!("covariances oas {n}x22x750 f32"), |b| {
            b.iter(|| covariances(black_box(x.view()), CovEstimator::Oas).unwrap())
        });
        let covs = covariances(x.view(), CovEstimator::Oas).unwrap();
        group.bench_function(format!("mean_riemann {n}x22x22"), |b| {
            b.iter(|| mean_riemann(black_box(covs.view()), None, 1e-8, 50).unwrap())
        });
        let ts = TangentSpace::fit(covs.view()).unwrap();
        group.bench_function(format!("tangent space transform {n}x22x22"), |b| {
            b.iter(|| ts.transform(black_box(covs.view())).unwrap())
        });
        group.bench_function(format!("mdm fit 4 classes {n}x22x22"), |b| {
            b.iter(|| Mdm::fit(black_box(covs.view()), &y, 4).unwrap())
        });
        let mdm = Mdm::fit(covs.view(), &y, 4).unwrap();
        group.bench_function(format!("mdm distances 4 classes {n}x22x22"), |b| {
            b.iter(|| mdm.distances(black_box(covs.view())).unwrap())
        });
        // What one fold of a 5-fold CV of ts (without the head) costs: covariances of all
        // trials, reference from 4/5 of them, vectors of all.
        let train: Vec<usize> = (0..n).filter(|i| i % 5 != 0).collect();
        group.bench_function(format!("ts fold: covariances + fit + transform {n}"), |b| {
            b.iter(|| {
                let covs = covariances(black_box(x.view()), CovEstimator::Oas).unwrap();
                let ts = TangentSpace::fit(covs.select(Axis(0), &train).view()).unwrap();
                ts.transform(covs.view()).unwrap()
            })
        });
        if n == 142 {
            let cov = covs.index_axis(Axis(0), 0);
            let projector = ts.projector().unwrap();
            group.bench_function("tangent vector one trial 22x22", |b| {
                b.iter(|| projector.transform_one(black_box(cov)).unwrap())
            });
            group.bench_function("mdm predict one trial 22x22", |b| {
                b.iter(|| mdm.predict_one(black_box(cov)).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernels, bench);
criterion_main!(benches);
