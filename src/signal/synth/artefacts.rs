//! Artefacts: blinks and saccades leaking from the EOG into frontal channels, and the muscle
//! bursts of expert-rejected trials.

use std::f64::consts::PI;

use ndarray::Array2;
use rand::Rng;
use rand_distr::{Distribution, Exp};

use crate::signal::montage;

use super::person::Person;
use super::plan::{samples, Plan};
use super::render::{arc, EYES_POS};
use super::sources::{bump, smoothstep};
use super::{normal, CUE_S, IMAGERY_END_S};

/// Blinks (100–300 µV at the EOG) and horizontal saccades, with their leak into frontal EEG,
/// at random times; fewer during imagery, none with eyes closed.
pub(super) fn add_eye_artefacts(
    data: &mut Array2<f64>,
    person: &Person,
    plan: &Plan,
    rate: f64,
    chan3: &[[f64; 3]],
    rng: &mut impl Rng,
) {
    let n = plan.n_samples;
    let eyes = montage::unproject(EYES_POS);
    let fz = montage::position_3d("Fz").expect("Fz is a 10-20 name");
    let fz_arc = arc(fz, eyes);
    let blink_gain: Vec<f64> = chan3
        .iter()
        .enumerate()
        .map(|(i, &e)| match i {
            22 | 24 => 0.8,
            23 => 1.0,
            _ => (0.12 * (-(arc(e, eyes) - fz_arc) / 0.45).exp()).min(0.2),
        })
        .collect();
    let saccade_gain: Vec<f64> = chan3
        .iter()
        .enumerate()
        .map(|(i, &e)| match i {
            22 => 1.0,
            23 => 0.1,
            24 => -1.0,
            _ => -0.5 * e[0] * blink_gain[i],
        })
        .collect();
    let suppression = |t: usize| -> f64 {
        if plan.eyes_closed.contains(&t) {
            return 0.0;
        }
        match plan.trial_at(t) {
            Some(tr) => {
                let ts = (t - tr.start) as f64 / rate;
                if (CUE_S..IMAGERY_END_S).contains(&ts) {
                    0.25
                } else {
                    1.0
                }
            }
            None => 1.0,
        }
    };
    let add = |data: &mut Array2<f64>, start: usize, shape: &[f64], gain: &[f64]| {
        for (i, mut row) in data.rows_mut().into_iter().enumerate() {
            for (k, v) in shape.iter().enumerate() {
                if let Some(x) = row.get_mut(start + k) {
                    *x += gain[i] * v;
                }
            }
        }
    };
    let blink_gap = Exp::new(person.blinks_per_s).expect("positive rate");
    let mut t = 0.0;
    loop {
        t += blink_gap.sample(rng).max(0.4);
        let start = (t * rate) as usize;
        if start >= n {
            break;
        }
        let keep = rng.gen::<f64>() < suppression(start);
        let (rise, fall) = (rng.gen_range(0.08..0.12), rng.gen_range(0.15..0.25));
        let amp = rng.gen_range(100.0..300.0);
        if keep {
            let len = samples(rise + fall, rate);
            let shape: Vec<f64> = (0..len)
                .map(|k| {
                    let s = k as f64 / rate;
                    amp * if s < rise {
                        smoothstep(s, 0.0, rise)
                    } else {
                        1.0 - smoothstep(s, rise, rise + fall)
                    }
                })
                .collect();
            add(data, start, &shape, &blink_gain);
        }
    }
    let saccade_gap = Exp::new(3.0 / 60.0).expect("positive rate");
    let mut t = 0.0;
    loop {
        t += saccade_gap.sample(rng);
        let start = (t * rate) as usize;
        if start >= n {
            break;
        }
        let amp = rng.gen_range(30.0..80.0) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        let hold = rng.gen_range(0.3..1.2);
        if suppression(start) == 1.0 {
            let len = samples(hold + 0.08, rate);
            let shape: Vec<f64> = (0..len)
                .map(|k| {
                    let s = k as f64 / rate;
                    amp * (smoothstep(s, 0.0, 0.04) - smoothstep(s, hold + 0.04, hold + 0.08))
                })
                .collect();
            add(data, start, &shape, &saccade_gain);
        }
    }
}

/// A random point around the outer ring, where scalp and neck muscles are.
pub(super) fn random_rim_point(rng: &mut impl Rng) -> [f64; 3] {
    let phi: f64 = rng.gen_range(0.0..2.0 * PI);
    let r: f64 = rng.gen_range(0.8..1.2);
    montage::unproject([r * phi.cos(), r * phi.sin()])
}

/// What gets a trial rejected: a burst of muscle activity, often with a movement swing.
pub(super) fn add_rejection_artefact(
    data: &mut Array2<f64>,
    trial_start: usize,
    rate: f64,
    chan3: &[[f64; 3]],
    rng: &mut impl Rng,
) {
    let n = data.ncols();
    let muscle = random_rim_point(rng);
    let start = trial_start + samples(rng.gen_range(0.5..5.5), rate);
    let len = samples(rng.gen_range(0.6..1.5), rate);
    let level = rng.gen_range(15.0..35.0);
    for (i, mut row) in data.rows_mut().into_iter().enumerate() {
        let gain = level * (-(arc(chan3[i], muscle) / 0.6).powi(2) / 2.0).exp();
        let mut prev = normal(rng);
        for k in 0..len.min(n.saturating_sub(start)) {
            let w = normal(rng);
            // Differenced white noise: muscle activity is mostly above 20 Hz.
            row[start + k] +=
                gain * bump(k as f64, 0.0, len as f64).sqrt() * (w - prev) / 2f64.sqrt();
            prev = w;
        }
    }
    if rng.gen_bool(0.6) {
        let centre = random_rim_point(rng);
        let start = trial_start + samples(rng.gen_range(0.5..6.0), rate);
        let len = samples(rng.gen_range(0.4..1.0), rate);
        let amp = rng.gen_range(40.0..120.0) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
        for (i, mut row) in data.rows_mut().into_iter().enumerate() {
            let gain = amp * (-(arc(chan3[i], centre) / 0.9).powi(2) / 2.0).exp();
            for k in 0..len.min(n.saturating_sub(start)) {
                row[start + k] += gain * (PI * k as f64 / len as f64).sin();
            }
        }
    }
}
