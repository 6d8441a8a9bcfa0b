//! Decoding the original's payload, one 22 × 750 trial as JSON (numbers as Python's
//! `X.tolist()` writes float32 data: up to 17 significant digits), three ways:
//! serde_json into `Vec<Vec<Vec<f32>>>`, into `Vec<Vec<Vec<f64>>>` (then flattened), serde_json
//! with the server's flattening visitor (what V2 bodies use), and the server's scanner (what
//! `/classify` uses) on one thread and cut in two. Then the number parser alone: the
//! server's, `lexical-core` (JSON number format, partial parse), against `fast-float2` and the
//! standard library, each walking the same 16 500 numbers (the hand-written parser it replaced
//! measured the same as lexical-core here: see `serve::tensor::number`).
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

    let mut g = c.benchmark_group(format!("numbers of json 1x22x750 ({} bytes)", body.len()));
    let reference = walk(&body, lexical);
    assert_eq!(walk(&body, fast_float), reference);
    assert_eq!(walk(&body, std_parse), reference);
    g.bench_function("lexical-core, JSON format, partial (the server's)", |b| {
        b.iter(|| walk(black_box(&body), lexical))
    });
    g.bench_function("fast-float2, partial", |b| {
        b.iter(|| walk(black_box(&body), fast_float))
    });
    g.bench_function("std str::parse on the token", |b| {
        b.iter(|| walk(black_box(&body), std_parse))
    });
    g.finish();
}

/// Parses every number of `body` with `parse` (the brackets, commas and spaces between them
/// skipped the same way for all), returning the bits of their sum and their count.
fn walk(body: &[u8], parse: impl Fn(&[u8], usize) -> Result<(f64, usize), String>) -> (u64, usize) {
    let (mut sum, mut count, mut pos) = (0.0f64, 0, 0);
    while pos < body.len() {
        match body[pos] {
            b'-' | b'0'..=b'9' => {
                let (v, end) = parse(body, pos).unwrap();
                sum += v;
                count += 1;
                pos = end;
            }
            _ => pos += 1,
        }
    }
    (sum.to_bits(), count)
}

const JSON: u128 = lexical_core::format::JSON;
const LEXICAL: lexical_core::ParseFloatOptions = lexical_core::ParseFloatOptions::new();

fn lexical(s: &[u8], start: usize) -> Result<(f64, usize), String> {
    lexical_core::parse_partial_with_options::<f64, JSON>(&s[start..], &LEXICAL)
        .map(|(v, n)| (v, start + n))
        .map_err(|e| e.to_string())
}

fn fast_float(s: &[u8], start: usize) -> Result<(f64, usize), String> {
    fast_float2::parse_partial::<f64, _>(&s[start..])
        .map(|(v, n)| (v, start + n))
        .map_err(|e| e.to_string())
}

fn std_parse(s: &[u8], start: usize) -> Result<(f64, usize), String> {
    let end = start
        + s[start..]
            .iter()
            .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(s.len() - start);
    let token = std::str::from_utf8(&s[start..end]).map_err(|e| e.to_string())?;
    token.parse().map(|v| (v, end)).map_err(|e| format!("{e}"))
}

criterion_group!(benches, bench);
criterion_main!(benches);
