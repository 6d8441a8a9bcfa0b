//! The forward model: every source mixed into the electrodes by distance on an idealised
//! spherical head and referenced to the left mastoid, motor-imagery ERD, sensor noise.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Axis, Slice};
use rand::Rng;

use crate::signal::montage::{self, BCI_IV_2A_LABELS};

use super::artefacts::{add_eye_artefacts, add_rejection_artefact};
use super::person::{Head, Person, HAND_LEFT_HEMI, HAND_RIGHT_HEMI, N_TASK, TASK_WEIGHTS};
use super::plan::{samples, Plan, Trial};
use super::sources::{bump, smoothstep, Generator, Oscillator, Pink, Resonator};
use super::{normal, SynthConfig, CUE_S, IMAGERY_END_S};

/// Potential at an electrode of a radial source `depth` radians under the scalp, relative to
/// the electrode right above it: the half-space dipole law h³/(h² + d²)^{3/2}, with the arc
/// length d between them.
pub(super) fn conduction(electrode: [f64; 3], source: [f64; 3], depth: f64) -> f64 {
    let cos = electrode[0] * source[0] + electrode[1] * source[1] + electrode[2] * source[2];
    let d = cos.clamp(-1.0, 1.0).acos() / depth;
    (1.0 + d * d).powf(-1.5)
}

/// Projected positions (frame of [`montage::position`]) of the EOG electrodes, the eyes and
/// the left-mastoid reference, which the montage module does not place.
pub(super) const EOG_POS: [[f64; 2]; 3] = [[-0.75, 1.07], [0.0, 1.2], [0.75, 1.07]];
pub(super) const EYES_POS: [f64; 2] = [0.0, 1.45];
pub(super) const REFERENCE_POS: [f64; 2] = [-1.41, -0.51];

pub(super) fn channel_positions() -> Vec<[f64; 2]> {
    BCI_IV_2A_LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| montage::position(l).unwrap_or(EOG_POS[i.saturating_sub(22).min(2)]))
        .collect()
}

pub(super) fn render(
    cfg: &SynthConfig,
    person: &Person,
    head: &Head,
    plan: &Plan,
    rng: &mut impl Rng,
) -> Array2<f64> {
    let rate = cfg.rate;
    let n = plan.n_samples;
    let n_ch = BCI_IV_2A_LABELS.len();
    let is_eeg: Vec<bool> = BCI_IV_2A_LABELS
        .iter()
        .map(|l| montage::is_eeg(l))
        .collect();
    let chan3: Vec<[f64; 3]> = channel_positions()
        .into_iter()
        .map(montage::unproject)
        .collect();
    let reference = montage::unproject(REFERENCE_POS);
    let mixing_column = |pos: [f64; 2], depth: f64| -> Vec<f64> {
        let q = montage::unproject(pos);
        let at_ref = conduction(reference, q, depth);
        chan3
            .iter()
            .map(|&e| conduction(e, q, depth) - at_ref)
            .collect()
    };

    // Sources: mu and beta of each task area, posterior alpha, background.
    let mut gens = Vec::new();
    let mut columns = Vec::new();
    let vigilance = ou_series(n, 30.0 * rate, 0.25, rng);
    for k in 0..N_TASK {
        for (hz, bw, amp) in [
            (head.mu_hz[k], 2.5, person.mu_uv),
            (head.beta_hz[k], 4.0, person.beta_uv),
        ] {
            gens.push(Generator {
                osc: Oscillator::Rhythm(Resonator::new(hz, bw, rate)),
                amp,
                envelope: None,
            });
            columns.push(mixing_column(head.rhythm_pos[k], person.rhythm_depth[k]));
        }
    }
    for k in N_TASK..N_TASK + 2 {
        gens.push(Generator {
            osc: Oscillator::Rhythm(Resonator::new(person.alpha_hz, 1.5, rate)),
            amp: person.alpha_uv,
            envelope: None,
        });
        columns.push(mixing_column(head.rhythm_pos[k], person.rhythm_depth[k]));
    }
    let n_rhythms = gens.len();
    let mut bg_columns: Vec<Vec<f64>> = head
        .background_pos
        .iter()
        .zip(&person.background_depth)
        .map(|(&p, &h)| mixing_column(p, h))
        .collect();
    // Scale the background so that an average EEG channel gets the subject's level.
    let mut power = 0.0;
    for (col, a) in bg_columns.iter().zip(&head.background_amp) {
        for i in (0..n_ch).filter(|&i| is_eeg[i]) {
            power += (col[i] * a).powi(2);
        }
    }
    let n_eeg = is_eeg.iter().filter(|&&e| e).count() as f64;
    let scale = person.background_uv / (power / n_eeg).sqrt();
    for (col, a) in bg_columns.drain(..).zip(&head.background_amp) {
        gens.push(Generator {
            osc: Oscillator::Background(Pink::new(rate)),
            amp: a * scale,
            envelope: None,
        });
        columns.push(col);
    }

    // Noise of each electrode (skin potentials, amplifier): independent 1/f per channel.
    for i in 0..n_ch {
        let mut col = vec![0.0; n_ch];
        col[i] = 1.0;
        gens.push(Generator {
            osc: Oscillator::Background(Pink::new(rate)),
            amp: head.electrode_noise_uv[i],
            envelope: None,
        });
        columns.push(col);
    }

    // Envelopes of the rhythms: slow vigilance, own fluctuation, task and eye-state effects.
    for (j, g) in gens.iter_mut().take(n_rhythms).enumerate() {
        let is_alpha = j >= 2 * N_TASK;
        let is_beta = !is_alpha && j % 2 == 1;
        let own = ou_series(n, 1.5 * rate, 0.15, rng);
        let w_vig = if is_beta { 0.5 } else { 1.0 };
        let mut env: Vec<f32> = own
            .iter()
            .zip(&vigilance)
            .map(|(o, v)| (f64::from(*o) + w_vig * f64::from(*v)).exp() as f32)
            .collect();
        let closed_gain = if is_alpha { 2.5 } else { 1.2 };
        for e in &mut env[plan.eyes_closed.clone()] {
            *e *= closed_gain;
        }
        let source = j / 2;
        for trial in &plan.trials {
            let end = (trial.start + samples(IMAGERY_END_S + 2.5, rate)).min(n);
            for (t, e) in (trial.start..end).zip(&mut env[trial.start..end]) {
                let ts = (t - trial.start) as f64 / rate;
                let factor = if is_alpha {
                    1.0 - trial.alpha_drop * bump(ts, CUE_S, CUE_S + 2.5)
                } else {
                    task_factor(head, person, trial, source, is_beta, ts)
                };
                *e *= factor as f32;
            }
        }
        g.envelope = Some(env);
    }

    // Mix sources into channels, a block of samples at a time.
    let n_gen = gens.len();
    let mix = Array2::from_shape_fn((n_ch, n_gen), |(i, j)| columns[j][i]);
    let mut data = Array2::<f64>::zeros((n_ch, n));
    let block = 4096;
    let mut src = Array2::<f64>::zeros((n_gen, block));
    for a in (0..n).step_by(block) {
        let b = (a + block).min(n);
        for (j, g) in gens.iter_mut().enumerate() {
            let mut row = src.row_mut(j);
            for t in a..b {
                let w = normal(rng);
                let x = match &mut g.osc {
                    Oscillator::Rhythm(r) => r.step(w),
                    Oscillator::Background(p) => p.step(w),
                };
                let env = g.envelope.as_ref().map_or(1.0, |e| f64::from(e[t]));
                row[t - a] = g.amp * env * x;
            }
        }
        let mut out = data.slice_axis_mut(Axis(1), Slice::from(a..b));
        general_mat_mul(
            1.0,
            &mix,
            &src.slice_axis(Axis(1), Slice::from(..b - a)),
            0.0,
            &mut out,
        );
    }

    for (i, mut row) in data.rows_mut().into_iter().enumerate() {
        let sd = head.sensor_noise_uv[i];
        row.mapv_inplace(|x| x + sd * normal(rng));
    }
    add_eye_artefacts(&mut data, person, plan, rate, &chan3, rng);
    for trial in plan.trials.iter().filter(|t| t.rejected) {
        add_rejection_artefact(&mut data, trial.start, rate, &chan3, rng);
    }
    for (mut row, g) in data.rows_mut().into_iter().zip(&head.channel_gain) {
        row *= *g;
    }
    if let Some((start, len)) = plan.gap {
        let end = (start + len).min(n);
        data.slice_axis_mut(Axis(1), Slice::from(start..end))
            .fill(f64::NAN);
    }
    data
}

/// Amplitude factor of task source `source` at `ts` seconds into `trial`.
pub(super) fn task_factor(
    head: &Head,
    person: &Person,
    trial: &Trial,
    source: usize,
    is_beta: bool,
    ts: f64,
) -> f64 {
    if trial.strength == 0.0 {
        return 1.0;
    }
    let mut w = TASK_WEIGHTS[usize::from(trial.class - 1)][source];
    if source == HAND_LEFT_HEMI || source == HAND_RIGHT_HEMI {
        w *= person.side_gain[source];
    }
    let depth = head.erd * if is_beta { 0.8 } else { 1.0 } * trial.strength;
    let shape = smoothstep(ts, trial.onset, trial.ramp)
        * (1.0 - smoothstep(ts, trial.offset, trial.offset + 0.6));
    let mut f = 1.0 - (depth * w).min(0.9) * shape;
    if is_beta && w > 0.0 {
        // Post-imagery beta rebound over the areas that desynchronised.
        f += 0.6 * depth * w * bump(ts, trial.offset + 0.2, trial.offset + 1.4);
    }
    f.max(0.05)
}

/// Ornstein–Uhlenbeck log-amplitude series with time constant `tau` samples and standard
/// deviation `sd`.
pub(super) fn ou_series(n: usize, tau: f64, sd: f64, rng: &mut impl Rng) -> Vec<f32> {
    let phi = (-1.0 / tau).exp();
    let kick = sd * (1.0 - phi * phi).sqrt();
    let mut x = sd * normal(rng);
    (0..n)
        .map(|_| {
            x = phi * x + kick * normal(rng);
            x as f32
        })
        .collect()
}

pub(super) fn arc(a: [f64; 3], b: [f64; 3]) -> f64 {
    (a[0] * b[0] + a[1] * b[1] + a[2] * b[2])
        .clamp(-1.0, 1.0)
        .acos()
}
