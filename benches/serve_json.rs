//! Decoding the original's payload, one 22 × 750 trial as JSON (numbers as Python's
//! `X.tolist()` writes float32 data: up to 17 significant digits), three ways:
//! serde_json into `Vec<Vec<Vec<f32>>>`, into `Vec<Vec<Vec<f64>>>` (then flattened), serde_json
//! with the server's flattening visitor (what V2 bodies use), and the server's scanner (what
//! `/classify` uses) on one thread and cut in two.
//! `cargo bench --bench serve_json`

use bciops::serve::tensor::Nested;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_xoshiro::Xoshiro256PlusPlus;

fn payload() -> Vec<u8> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let normal = Normal::new(0.0, 12.0).unwrap();
    let trial: Vec<Vec<f64>> = (0..22)
        .map(|_| {
            (0..750)
                .map(|_| f64::from(normal.sample(&mut rng) as f32))
                .collect()
        })
        .collect();
    serde_json::to_vec(&vec![trial]).unwrap()
}

fn bench(c: &mut Criterion) {
    let body = payload();
    let mut g = c.benchmark_group(format!("json 1x22x750 ({} bytes)", body.len()));
    g.bench_function("serde_json Vec<Vec<Vec<f32>>>", |b| {
        b.iter(|| {
            let v: Vec<Vec<Vec<f32>>> = serde_json::from_slice(black_box(&body)).unwrap();
            v
        })
    });
    g.bench_function("serde_json Vec<Vec<Vec<f64>>> + flatten", |b| {
        b.iter(|| {
            let v: Vec<Vec<Vec<f64>>> = serde_json::from_slice(black_box(&body)).unwrap();
            v.into_iter().flatten().flatten().collect::<Vec<f64>>()
        })
    });
    g.bench_function("serde_json + flattening visitor (V2)", |b| {
        b.iter(|| {
            let mut de = serde_json::Deserializer::from_slice(black_box(&body));
            Nested::deserialize_from(&mut de).unwrap()
        })
    });
    g.bench_function("scanner (/classify), 1 thread", |b| {
        b.iter(|| Nested::from_json(black_box(&body)).unwrap())
    });
    g.bench_function(
        "scanner (/classify), 2 pieces, a new thread for the second",
        |b| {
            let body = bytes::Bytes::from(body.clone());
            let spawn = |job: Box<dyn FnOnce() + Send>| {
                std::thread::spawn(job);
            };
            b.iter(|| Nested::from_json_on(black_box(&body), 2, &spawn).unwrap())
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
