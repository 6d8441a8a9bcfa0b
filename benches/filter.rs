//! Zero-phase band-pass speed on the project's two shapes: one BCI IV 2a trial (22 channels ×
//! 750 samples, 3 s at 250 Hz) and one whole-session channel (672 000 samples, about 45 min).
//! Compare with `scipy.signal.sosfiltfilt` on the same sizes (see docs/performance.md).

use bciops::signal::filter::{filter_rows, sosfiltfilt, BandPass, FilterMode};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ndarray::Array2;

/// A deterministic EEG-like test signal: a few sinusoids and a slow drift, in µV.
fn signal(samples: usize, phase: f64) -> Vec<f64> {
    (0..samples)
        .map(|i| {
            let t = i as f64 / 250.0;
            20.0 * (2.0 * std::f64::consts::PI * 10.0 * t + phase).sin()
                + 5.0 * (2.0 * std::f64::consts::PI * 50.0 * t).sin()
                + 3.0 * (0.37 * t + phase).sin()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let sos = BandPass::new(8.0, 30.0, 4, 250.0)
        .expect("valid band")
        .sos();

    // Only the filtering is timed: each run gets a fresh copy of the input (made untimed),
    // because filtering is in place and filtering the same buffer over and over would decay
    // it into subnormal numbers.
    let trial: Vec<f64> = (0..22).flat_map(|ch| signal(750, ch as f64)).collect();
    let trial = Array2::from_shape_vec((22, 750), trial).expect("22 × 750 values");
    c.bench_function("sosfiltfilt trial 22x750", |b| {
        b.iter_batched_ref(
            || trial.clone(),
            |data| filter_rows(&sos, FilterMode::ZeroPhase, data),
            BatchSize::SmallInput,
        )
    });

    let channel = signal(672_000, 0.0);
    c.bench_function("sosfiltfilt channel 672000", |b| {
        b.iter_batched_ref(
            || channel.clone(),
            |x| sosfiltfilt(&sos, x),
            BatchSize::LargeInput,
        )
    });

    // A whole session as a recording holds it: 25 channels (22 EEG + 3 EOG).
    let recording: Vec<f64> = (0..25).flat_map(|ch| signal(672_000, ch as f64)).collect();
    let recording = Array2::from_shape_vec((25, 672_000), recording).expect("25 rows");
    let mut group = c.benchmark_group("recording");
    group.sample_size(10);
    group.bench_function("filter_rows 25x672000", |b| {
        b.iter_batched_ref(
            || recording.clone(),
            |data| filter_rows(&sos, FilterMode::ZeroPhase, data),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
