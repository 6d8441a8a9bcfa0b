//! Who is recorded: a subject's traits, shared by both sessions ([`Person`]), and how one
//! session's cap, noise and rhythms differ from them ([`Head`]).

use std::f64::consts::PI;

use rand::Rng;

use crate::signal::montage::{self, BCI_IV_2A_LABELS};

use super::{lerp, normal, Session};

/// Task sources, in this order: the hand areas (left hemisphere: right hand; right
/// hemisphere: left hand), the feet area, the tongue areas.
pub(super) const HAND_LEFT_HEMI: usize = 0;
pub(super) const HAND_RIGHT_HEMI: usize = 1;
pub(super) const N_TASK: usize = 5;

/// Mu amplitude change per class (rows, labels 1..=4) and task source (columns): positive is
/// desynchronisation (ERD) as a share of the subject's depth, negative synchronisation (ERS).
/// Hand imagery: strong contralateral, weaker ipsilateral ERD; feet: ERD of the deep mesial
/// foot area; tongue: ERD of the lateral-inferior face areas at the edge of the montage; every
/// class desynchronises the hand areas a little (Pfurtscheller et al. 2006).
pub(super) const TASK_WEIGHTS: [[f64; N_TASK]; 4] = [
    [0.3, 1.0, 0.15, 0.1, 0.1],
    [1.0, 0.3, 0.15, 0.1, 0.1],
    [0.1, 0.1, 0.6, 0.05, 0.05],
    [0.1, 0.1, 0.05, 0.5, 0.5],
];

/// Traits of a subject, shared by its two sessions.
pub(super) struct Person {
    /// Mu amplitude reduction at full imagery strength in the contralateral area.
    pub(super) erd: f64,
    /// Share of trials in which the subject did not do the task.
    pub(super) p_null: f64,
    /// Standard deviation of the per-trial imagery strength (mean 1).
    pub(super) trial_sd: f64,
    /// Mu/beta amplitude at the task sources, µV.
    pub(super) mu_uv: f64,
    pub(super) beta_uv: f64,
    /// Posterior alpha amplitude, µV (eyes open).
    pub(super) alpha_uv: f64,
    /// Broadband background level per EEG channel, µV RMS.
    pub(super) background_uv: f64,
    pub(super) mu_hz: [f64; N_TASK],
    pub(super) beta_hz: [f64; N_TASK],
    pub(super) alpha_hz: f64,
    /// Projected positions and depths (radians) of the task sources, then the two alpha ones.
    pub(super) rhythm_pos: Vec<[f64; 2]>,
    pub(super) rhythm_depth: Vec<f64>,
    pub(super) background_pos: Vec<[f64; 2]>,
    pub(super) background_depth: Vec<f64>,
    pub(super) background_amp: Vec<f64>,
    /// Extra ERD factor of each hand area (subjects are rarely symmetric).
    pub(super) side_gain: [f64; 2],
    pub(super) blinks_per_s: f64,
    pub(super) has_gap: bool,
}

impl Person {
    pub(super) fn draw(rng: &mut impl Rng, difficulty: f64) -> Person {
        let d = difficulty;
        let mut jitter = |p: [f64; 2], sd: f64| [p[0] + sd * normal(rng), p[1] + sd * normal(rng)];
        let rhythm_pos = vec![
            jitter([-0.5, 0.05], 0.05),
            jitter([0.5, 0.05], 0.05),
            jitter([0.0, 0.0], 0.04),
            jitter([-0.95, 0.1], 0.05),
            jitter([0.95, 0.1], 0.05),
            jitter([-0.3, -0.95], 0.05),
            jitter([0.3, -0.95], 0.05),
        ];
        let rhythm_depth = vec![0.45, 0.45, 0.7, 0.45, 0.45, 0.5, 0.5];
        let mu_peak = rng.gen_range(9.5..12.0);
        let beta_peak = rng.gen_range(18.0..25.0);
        let mut mu_hz = [0.0; N_TASK];
        let mut beta_hz = [0.0; N_TASK];
        for k in 0..N_TASK {
            mu_hz[k] = mu_peak + rng.gen_range(-0.4..0.4);
            beta_hz[k] = beta_peak + rng.gen_range(-1.0..1.0);
        }
        let n_bg = 64;
        let mut background_pos = Vec::with_capacity(n_bg);
        let mut background_depth = Vec::with_capacity(n_bg);
        let mut background_amp = Vec::with_capacity(n_bg);
        for _ in 0..n_bg {
            let r = 1.15 * rng.gen::<f64>().sqrt();
            let phi = rng.gen_range(0.0..2.0 * PI);
            background_pos.push([r * phi.cos(), r * phi.sin()]);
            background_depth.push(rng.gen_range(0.35..0.6));
            background_amp.push(rng.gen_range(0.6..1.4));
        }
        let asym = rng.gen_range(-0.1..0.1);
        Person {
            erd: lerp(0.8, 0.35, d),
            p_null: lerp(0.03, 0.2, d),
            trial_sd: lerp(0.25, 0.5, d),
            mu_uv: 7.0 * lerp(1.8, 0.8, d) * rng.gen_range(0.9..1.1),
            beta_uv: 2.5 * lerp(1.3, 0.7, d) * rng.gen_range(0.9..1.1),
            alpha_uv: 9.0 * rng.gen_range(0.7..1.3),
            background_uv: 9.0 * rng.gen_range(0.85..1.2),
            mu_hz,
            beta_hz,
            alpha_hz: rng.gen_range(9.0..11.5),
            rhythm_pos,
            rhythm_depth,
            background_pos,
            background_depth,
            background_amp,
            side_gain: [1.0 + asym, 1.0 - asym],
            blinks_per_s: rng.gen_range(8.0..20.0) / 60.0,
            has_gap: rng.gen_bool(0.4),
        }
    }
}

/// How a session differs from the subject's average: the cap sits a little differently,
/// electrodes have other gains and noise, rhythms drift; the evaluation day is a bit worse.
pub(super) struct Head {
    pub(super) rhythm_pos: Vec<[f64; 2]>,
    pub(super) background_pos: Vec<[f64; 2]>,
    pub(super) background_amp: Vec<f64>,
    pub(super) channel_gain: Vec<f64>,
    pub(super) sensor_noise_uv: Vec<f64>,
    pub(super) electrode_noise_uv: Vec<f64>,
    pub(super) mu_hz: [f64; N_TASK],
    pub(super) beta_hz: [f64; N_TASK],
    pub(super) erd: f64,
    pub(super) p_null: f64,
}

impl Head {
    pub(super) fn draw(p: &Person, session: Session, rng: &mut impl Rng) -> Head {
        // The cap sits a little differently each day: every source moves by the same offset
        // relative to the electrodes, plus a smaller individual jitter.
        let cap = [0.025 * normal(rng), 0.025 * normal(rng)];
        let mut moved = |v: &[[f64; 2]]| -> Vec<[f64; 2]> {
            v.iter()
                .map(|q| {
                    [
                        q[0] + cap[0] + 0.01 * normal(rng),
                        q[1] + cap[1] + 0.01 * normal(rng),
                    ]
                })
                .collect()
        };
        let rhythm_pos = moved(&p.rhythm_pos);
        let background_pos = moved(&p.background_pos);
        let background_amp = p
            .background_amp
            .iter()
            .map(|a| a * rng.gen_range(0.9..1.1))
            .collect();
        let channel_gain = (0..BCI_IV_2A_LABELS.len())
            .map(|_| 1.0 + 0.01 * normal(rng))
            .collect();
        let (noise_factor, erd_factor, extra_null) = match session {
            Session::T => (1.0, 1.0, 0.0),
            Session::E => (
                rng.gen_range(1.0..1.3),
                rng.gen_range(0.8..0.95),
                rng.gen_range(0.0..0.05),
            ),
        };
        let sensor_noise_uv = BCI_IV_2A_LABELS
            .iter()
            .map(|l| {
                let base = if montage::is_eeg(l) { 0.8 } else { 1.5 };
                base * noise_factor * rng.gen_range(0.7..1.3)
            })
            .collect();
        let electrode_noise_uv = BCI_IV_2A_LABELS
            .iter()
            .map(|l| {
                let base = if montage::is_eeg(l) { 2.5 } else { 4.0 };
                base * noise_factor * rng.gen_range(0.7..1.3)
            })
            .collect();
        let shift = 0.25 * normal(rng);
        Head {
            rhythm_pos,
            background_pos,
            background_amp,
            channel_gain,
            sensor_noise_uv,
            electrode_noise_uv,
            mu_hz: p.mu_hz.map(|f| f + shift),
            beta_hz: p.beta_hz.map(|f| f + 2.0 * shift),
            erd: p.erd * erd_factor,
            p_null: p.p_null + extra_null,
        }
    }
}
