use super::*;

use std::f64::consts::PI;

use ndarray::Array2;

use crate::signal::{montage, Event};

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        trials_per_class: 12,
        runs: 2,
        classes: 4,
        eye_seconds: 4.0,
        ..SynthConfig::default()
    }
}

fn same_bits(a: &Array2<f64>, b: &Array2<f64>) -> bool {
    a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn same_seed_same_session_other_seed_other_data() {
    let cfg = small(7);
    let a = generate(&cfg, 3, Session::T).unwrap();
    let b = generate(&cfg, 3, Session::T).unwrap();
    assert!(same_bits(&a.recording.data, &b.recording.data));
    assert_eq!(a.recording.events, b.recording.events);
    assert_eq!(a.labels, b.labels);
    let c = generate(&small(8), 3, Session::T).unwrap();
    assert!(!same_bits(&a.recording.data, &c.recording.data));
    assert_ne!(a.labels, c.labels);
    // Sessions and subjects have their own streams.
    let e = generate(&cfg, 3, Session::E).unwrap();
    let other = generate(&cfg, 4, Session::T).unwrap();
    assert_ne!(a.labels, e.labels);
    assert!(!same_bits(&a.recording.data, &other.recording.data));
}

fn count(rec: &Recording, code: u16) -> usize {
    rec.events.iter().filter(|e| e.code == code).count()
}

#[test]
fn events_follow_the_2a_layout() {
    let cfg = SynthConfig {
        trials_per_class: 24,
        runs: 3,
        ..small(1)
    };
    for session in [Session::T, Session::E] {
        let s = generate(&cfg, 5, session).unwrap();
        let rec = &s.recording;
        assert_eq!(rec.labels, BCI_IV_2A_LABELS);
        assert_eq!(rec.rate, 250.0);
        assert_eq!(s.labels.len(), 96);
        for class in 1..=4u8 {
            assert_eq!(s.labels.iter().filter(|&&c| c == class).count(), 24);
            // Balanced within each run of 32 trials.
            for run in s.labels.chunks(32) {
                assert_eq!(run.iter().filter(|&&c| c == class).count(), 8);
            }
        }
        assert_eq!(count(rec, EVENT_RUN_START), 4);
        assert_eq!(rec.events[0].code, EVENT_RUN_START);
        assert_eq!((rec.events[1].code, rec.events[1].duration), (276, 1000));
        assert_eq!(
            (
                rec.events[2].code,
                rec.events[2].position,
                rec.events[2].duration
            ),
            (277, 1000, 1000)
        );
        let starts: Vec<u64> = rec
            .events
            .iter()
            .filter(|e| e.code == EVENT_TRIAL_START)
            .map(|e| e.position)
            .collect();
        let cues: Vec<&Event> = rec
            .events
            .iter()
            .filter(|e| (769..=772).contains(&e.code) || e.code == 783)
            .collect();
        assert_eq!(starts.len(), 96);
        assert_eq!(cues.len(), 96);
        for ((start, cue), label) in starts.iter().zip(&cues).zip(&s.labels) {
            assert_eq!(cue.position, start + 500, "cue 2 s after the 768");
            assert_eq!(cue.duration, 312);
            let expected = match session {
                Session::T => 768 + u16::from(*label),
                Session::E => 783,
            };
            assert_eq!(cue.code, expected);
        }
        let rejected: Vec<&Event> = rec
            .events
            .iter()
            .filter(|e| e.code == EVENT_REJECTED)
            .collect();
        assert!((1..=3).contains(&rejected.len()), "{}", rejected.len());
        for r in rejected {
            assert!(starts.contains(&r.position));
            assert_eq!(r.duration, 1875);
        }
        assert!(rec
            .events
            .windows(2)
            .all(|w| w[0].position <= w[1].position));
        let last = starts.last().unwrap() + 1875;
        assert!(rec.n_samples() as u64 >= last);
    }
}

#[test]
fn invalid_configs_are_errors() {
    let ok = small(0);
    let bad = [
        SynthConfig {
            trials_per_class: 0,
            ..ok.clone()
        },
        SynthConfig {
            runs: 0,
            ..ok.clone()
        },
        SynthConfig {
            trials_per_class: 10,
            runs: 3,
            ..ok.clone()
        },
        SynthConfig {
            classes: 1,
            ..ok.clone()
        },
        SynthConfig {
            classes: 5,
            ..ok.clone()
        },
        SynthConfig {
            difficulty: Some(1.5),
            ..ok.clone()
        },
        SynthConfig {
            difficulty: Some(f64::NAN),
            ..ok.clone()
        },
        SynthConfig {
            rate: f64::NAN,
            ..ok.clone()
        },
        SynthConfig {
            rate: 0.0,
            ..ok.clone()
        },
        SynthConfig {
            eye_seconds: -1.0,
            ..ok.clone()
        },
        SynthConfig {
            trials_per_class: 1_000_000,
            runs: 1,
            ..ok.clone()
        },
    ];
    for cfg in bad {
        let err = generate(&cfg, 1, Session::T).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{cfg:?}");
        assert!(err.to_string().contains('`'), "{err}");
    }
    assert!(generate(&ok, 0, Session::T).is_err());
    assert!("X".parse::<Session>().is_err());
    assert_eq!("e".parse::<Session>().unwrap(), Session::E);
}

#[test]
fn two_classes_without_eye_runs() {
    let cfg = SynthConfig {
        classes: 2,
        eye_seconds: 0.0,
        gaps: false,
        ..small(3)
    };
    let s = generate(&cfg, 2, Session::T).unwrap();
    assert_eq!(s.labels.len(), 24);
    assert!(s.labels.iter().all(|&c| c == 1 || c == 2));
    assert_eq!(count(&s.recording, 276), 0);
    assert_eq!(count(&s.recording, EVENT_RUN_START), 2);
    assert_eq!(s.recording.events[0].position, 0);
    assert!(s.recording.data.iter().all(|x| x.is_finite()));
}

#[test]
fn eeg_stays_mostly_within_the_physical_range() {
    for subject in [2, 3] {
        let s = generate(&small(11), subject, Session::E).unwrap();
        for (label, row) in s.recording.labels.iter().zip(s.recording.data.rows()) {
            let (lo, hi) = montage::physical_range(label);
            let finite: Vec<f64> = row.iter().copied().filter(|x| x.is_finite()).collect();
            let outside = finite.iter().filter(|&&x| x < lo || x > hi).count();
            // Only artefacts of the rejected trials may clip: under 0.1 % of samples.
            assert!(
                (outside as f64) < 1e-3 * finite.len() as f64,
                "{label}: {outside} of {}",
                finite.len()
            );
            let rms = (finite.iter().map(|x| x * x).sum::<f64>() / finite.len() as f64).sqrt();
            if montage::is_eeg(label) {
                assert!((4.0..40.0).contains(&rms), "{label}: rms {rms} µV");
            }
        }
    }
}

/// Power in 8–13 Hz: a 4th-order Butterworth-like cascade of RBJ biquads (2 high-pass at
/// 8 Hz, 2 low-pass at 13 Hz), enough to compare powers.
fn mu_band(x: &[f64], rate: f64) -> Vec<f64> {
    let biquad = |x: &[f64], f0: f64, high: bool| -> Vec<f64> {
        let w = 2.0 * PI * f0 / rate;
        let alpha = w.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let c = w.cos();
        let (b0, b1, b2) = if high {
            ((1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0)
        } else {
            ((1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0)
        };
        let (a0, a1, a2) = (1.0 + alpha, -2.0 * c, 1.0 - alpha);
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        x.iter()
            .map(|&x0| {
                let y = (b0 * x0 + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
                (x2, x1, y2, y1) = (x1, x0, y1, y);
                y
            })
            .collect()
    };
    let mut y = x.to_vec();
    for (f, high) in [(8.0, true), (8.0, true), (13.0, false), (13.0, false)] {
        y = biquad(&y, f, high);
    }
    y
}

#[test]
fn contralateral_mu_power_drops_during_imagery() {
    let cfg = SynthConfig {
        trials_per_class: 30,
        runs: 1,
        classes: 2,
        gaps: false,
        difficulty: Some(0.3),
        ..small(5)
    };
    let s = generate(&cfg, 1, Session::T).unwrap();
    let rec = &s.recording;
    let (c3, c4) = (7, 11);
    let band: Vec<Vec<f64>> = [c3, c4]
        .iter()
        .map(|&i| mu_band(rec.data.row(i).as_slice().unwrap(), rec.rate))
        .collect();
    let power = |x: &[f64], a: u64, b: u64| {
        x[a as usize..b as usize].iter().map(|v| v * v).sum::<f64>() / (b - a) as f64
    };
    // Mean log ratio imagery (3.5–5.5 s) / baseline (0.5–1.5 s), per class and channel.
    let mut ratio = [[0.0; 2]; 2];
    let starts = rec.events.iter().filter(|e| e.code == EVENT_TRIAL_START);
    for (start, &label) in starts.zip(&s.labels) {
        let t0 = start.position;
        for (ch, x) in band.iter().enumerate() {
            let r = (power(x, t0 + 875, t0 + 1375) / power(x, t0 + 125, t0 + 375)).ln();
            ratio[usize::from(label - 1)][ch] += r / 30.0;
        }
    }
    let [[left_c3, left_c4], [right_c3, right_c4]] = ratio;
    // Fixed seed; measured: right hand at C3 -1.27, left hand at C4 -0.83 (contralateral),
    // left at C3 -0.21, right at C4 -0.25 (ipsilateral). Thresholds leave room for changes
    // of the random stream but not for a missing or misplaced ERD.
    assert!(right_c3 < -0.5, "right hand at C3: {right_c3}");
    assert!(left_c4 < -0.5, "left hand at C4: {left_c4}");
    assert!(
        right_c3 < left_c3 - 0.3,
        "C3: right {right_c3} vs left {left_c3}"
    );
    assert!(
        left_c4 < right_c4 - 0.3,
        "C4: left {left_c4} vs right {right_c4}"
    );
}

/// Writes subjects 1–9, both sessions, as .npy for `scripts/dev/check_synth.py`:
/// `BCIOPS_SYNTH_NPY_DIR=/tmp/synth cargo test --release --lib signal::synth -- --ignored`
/// (`BCIOPS_SYNTH_SEED` picks another seed than 0).
#[test]
#[ignore = "writes about 1 GB; run by hand for the Python check"]
fn write_npy_for_python_check() {
    use ndarray_npy::write_npy;
    let dir = std::env::var("BCIOPS_SYNTH_NPY_DIR").expect("set BCIOPS_SYNTH_NPY_DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let seed = std::env::var("BCIOPS_SYNTH_SEED").map_or(0, |s| s.parse().unwrap());
    let cfg = SynthConfig {
        seed,
        ..SynthConfig::default()
    };
    for subject in 1..=9u8 {
        for session in [Session::T, Session::E] {
            let t = std::time::Instant::now();
            let s = generate(&cfg, subject, session).unwrap();
            let elapsed = t.elapsed();
            let name = format!("{dir}/A{subject:02}{session}");
            let data = s.recording.data.mapv(|x| x as f32);
            write_npy(format!("{name}_data.npy"), &data).unwrap();
            let ev = Array2::from_shape_fn((s.recording.events.len(), 4), |(i, k)| {
                let e = s.recording.events[i];
                [
                    e.position as i64,
                    i64::from(e.code),
                    i64::from(e.channel),
                    i64::from(e.duration),
                ][k]
            });
            write_npy(format!("{name}_events.npy"), &ev).unwrap();
            let labels = ndarray::Array1::from_iter(s.labels.iter().map(|&c| i64::from(c)));
            write_npy(format!("{name}_labels.npy"), &labels).unwrap();
            eprintln!(
                "{name}: {} samples, difficulty {}, {:.2?}",
                s.recording.n_samples(),
                s.difficulty,
                elapsed
            );
        }
    }
}
