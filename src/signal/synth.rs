//! Synthetic BCI Competition IV 2a-like sessions, generated deterministically from a seed.
//!
//! Each session has the layout of the real `A0xT.gdf` / `A0xE.gdf` files: 250 Hz, the 25
//! channels of [`BCI_IV_2A_LABELS`] in µV, a run-start event (32766) and two eye runs (276 eyes
//! open, 277 eyes closed), then `runs` runs of trials balanced over the classes in random order:
//! 768 at trial start, the cue 2 s later (769–772 in `T`, 783 in `E`, 1.25 s long), motor
//! imagery until 6 s, a 1.5–2.5 s break. A few trials carry artefacts and a 1023 mark.
//!
//! The signal is a forward model, cheap enough for about a second per session in release mode
//! (O(samples × sources) with AR(2) resonators and IIR pink noise, no FFT): sources on an
//! idealised spherical head (64 1/f background sources, posterior alpha, mu and beta rhythms
//! over the hand, foot and tongue areas) mixed into every electrode by distance and referenced
//! to the left mastoid, plus independent 1/f and white noise per electrode, blinks and saccades
//! leaking from the EOG into frontal channels, and no line noise. Motor imagery desynchronises
//! (ERD) the mu and beta rhythms of the areas of the imagined body part, starting about 0.5 s
//! after the cue, with a per-trial strength, trials without imagery and a post-imagery beta
//! rebound. Subjects differ in how strong and reliable their ERD is ([`default_difficulty`]),
//! so that left-vs-right CSP + SVM accuracy spans roughly 60–90 % across subjects 1–9
//! (`scripts/dev/check_synth.py`). The evaluation session drifts from the training one: the
//! cap sits a few millimetres off, electrode gains (±1 %) and noise change, rhythm frequencies
//! move, ERD is weaker and idle trials more frequent.
//!
//! Amplitudes: EEG stays within ±100 µV ([`montage::physical_range`]) except for the
//! artefacts of some rejected trials (about 1e-5 of the samples); EOG peaks near 330 µV, within
//! the ±1000 µV assumed for EOG. With [`SynthConfig::gaps`] some subjects get one gap of 3–25
//! NaN samples (all channels) somewhere in a trial, as some real files have.
//!
//! A subject's sessions depend only on `(seed, subject, session)` and the configuration, never
//! on which other subjects are generated.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Axis, Slice};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::signal::montage::{self, BCI_IV_2A_LABELS};
use crate::signal::{Event, Recording};
use crate::{Error, Result};

/// Start of a run (and of the recording).
pub const EVENT_RUN_START: u16 = 32766;
/// Idling with eyes open (a whole eye run, with its duration).
pub const EVENT_EYES_OPEN: u16 = 276;
/// Idling with eyes closed (a whole eye run, with its duration).
pub const EVENT_EYES_CLOSED: u16 = 277;
/// Start of a trial (fixation cross), t = 0.
pub const EVENT_TRIAL_START: u16 = 768;
/// Cue codes of the training session, for classes 1 (left hand) to 4 (tongue).
pub const EVENT_CUES: [u16; 4] = [769, 770, 771, 772];
/// Cue code of the evaluation session, where the class is not revealed.
pub const EVENT_CUE_UNKNOWN: u16 = 783;
/// Trial rejected by an expert (at the position of its 768), lasting the whole trial.
pub const EVENT_REJECTED: u16 = 1023;
/// Class names for labels 1..=4.
pub const CLASS_NAMES: [&str; 4] = ["left", "right", "feet", "tongue"];

/// Longest session, in samples, that [`generate`] accepts (about 11 h at 250 Hz).
const MAX_SAMPLES: f64 = 10_000_000.0;
/// Trial timing in seconds from the 768 event, as in the 2a protocol.
const CUE_S: f64 = 2.0;
const CUE_SHOWN_S: f64 = 1.25;
const IMAGERY_END_S: f64 = 6.0;
const REJECTED_S: f64 = 7.5;

/// A recording session of the 2a protocol: `T` (training, cues name the class) or `E`
/// (evaluation, cues are 783 and the classes are kept apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Session {
    T,
    E,
}

impl Session {
    /// The letter used in file names, `A01T.gdf`.
    pub fn letter(self) -> char {
        match self {
            Session::T => 'T',
            Session::E => 'E',
        }
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

impl FromStr for Session {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "T" | "t" => Ok(Session::T),
            "E" | "e" => Ok(Session::E),
            _ => Err(Error::Invalid(format!(
                "unknown session `{s}`, expected `T` or `E`"
            ))),
        }
    }
}

/// What to generate. [`SynthConfig::default`] gives sessions of the real size.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Master seed; each subject and session derives its own stream from it.
    pub seed: u64,
    /// Trials of each class in one session (72 in the real data).
    pub trials_per_class: usize,
    /// Runs per session (6); must divide `trials_per_class` so each run is balanced.
    pub runs: usize,
    /// Number of classes, 2 (left, right) to 4 (left, right, feet, tongue).
    pub classes: usize,
    /// Difficulty override in 0 (easy) ..= 1 (hard); `None` uses [`default_difficulty`].
    pub difficulty: Option<f64>,
    /// Sampling rate in Hz (250).
    pub rate: f64,
    /// Length of each of the two eye runs in seconds (20; the real ones last 2 min and 1 min).
    /// 0 leaves them out.
    pub eye_seconds: f64,
    /// Whether some subjects get one short gap of NaN samples in a trial, as real files have.
    pub gaps: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            trials_per_class: 72,
            runs: 6,
            classes: 4,
            difficulty: None,
            rate: 250.0,
            eye_seconds: 20.0,
            gaps: true,
        }
    }
}

impl SynthConfig {
    /// Checks every field; [`generate`] calls it.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if self.trials_per_class == 0 {
            return invalid("`trials_per_class` must be at least 1, got `0`".into());
        }
        if self.runs == 0 {
            return invalid("`runs` must be at least 1, got `0`".into());
        }
        if self.trials_per_class % self.runs != 0 {
            return invalid(format!(
                "`trials_per_class` (`{}`) must be a multiple of `runs` (`{}`) so that every run is balanced",
                self.trials_per_class, self.runs
            ));
        }
        if !(2..=4).contains(&self.classes) {
            return invalid(format!(
                "`classes` must be 2, 3 or 4, got `{}`",
                self.classes
            ));
        }
        if let Some(d) = self.difficulty {
            if !(0.0..=1.0).contains(&d) {
                return invalid(format!("`difficulty` must be in 0..=1, got `{d}`"));
            }
        }
        if !(100.0..=10_000.0).contains(&self.rate) {
            return invalid(format!(
                "`rate` must be in 100..=10000 Hz, got `{}`",
                self.rate
            ));
        }
        if !(0.0..=600.0).contains(&self.eye_seconds) {
            return invalid(format!(
                "`eye_seconds` must be in 0..=600, got `{}`",
                self.eye_seconds
            ));
        }
        let trials = (self.trials_per_class * self.classes) as f64;
        let longest_s = 2.0 * self.eye_seconds + 2.5 * self.runs as f64 + 8.5 * trials;
        if longest_s * self.rate > MAX_SAMPLES {
            return invalid(format!(
                "a session of `{}` trials at `{}` Hz exceeds `{MAX_SAMPLES}` samples",
                trials, self.rate
            ));
        }
        Ok(())
    }
}

/// One generated session with its true labels.
#[derive(Debug, Clone)]
pub struct SynthSession {
    pub subject: u8,
    pub session: Session,
    /// The continuous recording, channels [`BCI_IV_2A_LABELS`], µV.
    pub recording: Recording,
    /// The class of every trial in time order, 1 left, 2 right, 3 feet, 4 tongue (also the
    /// rejected ones, like the competition's `classlabel`).
    pub labels: Vec<u8>,
    /// The difficulty the subject was generated with, 0 easy ..= 1 hard.
    pub difficulty: f64,
}

/// Difficulty of subjects 1–9, ordered like the real dataset (3, 8, 9 and 1 easy; 2 and 5
/// hard); other subjects get a value in 0.1..0.9 fixed by their number.
pub fn default_difficulty(subject: u8) -> f64 {
    const TABLE: [f64; 9] = [0.25, 1.0, 0.0, 0.7, 0.9, 0.8, 0.35, 0.0, 0.05];
    match subject {
        1..=9 => TABLE[usize::from(subject - 1)],
        _ => 0.1 + 0.8 * (splitmix64(u64::from(subject)) >> 11) as f64 / (1u64 << 53) as f64,
    }
}

/// Generates one session of one subject (`subject` from 1).
pub fn generate(cfg: &SynthConfig, subject: u8, session: Session) -> Result<SynthSession> {
    cfg.validate()?;
    if subject == 0 {
        return Err(Error::Invalid(
            "`subject` must be at least 1, got `0`".into(),
        ));
    }
    let difficulty = cfg
        .difficulty
        .unwrap_or_else(|| default_difficulty(subject));
    let person = Person::draw(&mut stream(cfg.seed, subject, None), difficulty);
    let mut rng = stream(cfg.seed, subject, Some(session));
    let head = Head::draw(&person, session, &mut rng);
    let plan = Plan::draw(cfg, &person, &head, session, &mut rng);
    let data = render(cfg, &person, &head, &plan, &mut rng);
    let labels = plan.trials.iter().map(|t| t.class).collect();
    Ok(SynthSession {
        subject,
        session,
        recording: Recording {
            labels: BCI_IV_2A_LABELS.iter().map(|l| l.to_string()).collect(),
            rate: cfg.rate,
            data,
            events: plan.events,
        },
        labels,
        difficulty,
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The random stream of a subject (`session` None: traits shared by both sessions) or of one
/// of its sessions.
fn stream(seed: u64, subject: u8, session: Option<Session>) -> Xoshiro256PlusPlus {
    let tag = match session {
        None => 0,
        Some(Session::T) => 1,
        Some(Session::E) => 2,
    };
    let key = splitmix64(splitmix64(splitmix64(seed) ^ u64::from(subject)) ^ tag);
    Xoshiro256PlusPlus::seed_from_u64(key)
}

fn normal(rng: &mut impl Rng) -> f64 {
    StandardNormal.sample(rng)
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

/// Task sources, in this order: the hand areas (left hemisphere: right hand; right
/// hemisphere: left hand), the feet area, the tongue areas.
const HAND_LEFT_HEMI: usize = 0;
const HAND_RIGHT_HEMI: usize = 1;
const N_TASK: usize = 5;

/// Mu amplitude change per class (rows, labels 1..=4) and task source (columns): positive is
/// desynchronisation (ERD) as a share of the subject's depth, negative synchronisation (ERS).
/// Hand imagery: strong contralateral, weaker ipsilateral ERD; feet: ERD of the deep mesial
/// foot area; tongue: ERD of the lateral-inferior face areas at the edge of the montage; every
/// class desynchronises the hand areas a little (Pfurtscheller et al. 2006).
const TASK_WEIGHTS: [[f64; N_TASK]; 4] = [
    [0.3, 1.0, 0.15, 0.1, 0.1],
    [1.0, 0.3, 0.15, 0.1, 0.1],
    [0.1, 0.1, 0.6, 0.05, 0.05],
    [0.1, 0.1, 0.05, 0.5, 0.5],
];

/// Traits of a subject, shared by its two sessions.
struct Person {
    /// Mu amplitude reduction at full imagery strength in the contralateral area.
    erd: f64,
    /// Share of trials in which the subject did not do the task.
    p_null: f64,
    /// Standard deviation of the per-trial imagery strength (mean 1).
    trial_sd: f64,
    /// Mu/beta amplitude at the task sources, µV.
    mu_uv: f64,
    beta_uv: f64,
    /// Posterior alpha amplitude, µV (eyes open).
    alpha_uv: f64,
    /// Broadband background level per EEG channel, µV RMS.
    background_uv: f64,
    mu_hz: [f64; N_TASK],
    beta_hz: [f64; N_TASK],
    alpha_hz: f64,
    /// Projected positions and depths (radians) of the task sources, then the two alpha ones.
    rhythm_pos: Vec<[f64; 2]>,
    rhythm_depth: Vec<f64>,
    background_pos: Vec<[f64; 2]>,
    background_depth: Vec<f64>,
    background_amp: Vec<f64>,
    /// Extra ERD factor of each hand area (subjects are rarely symmetric).
    side_gain: [f64; 2],
    blinks_per_s: f64,
    has_gap: bool,
}

impl Person {
    fn draw(rng: &mut impl Rng, difficulty: f64) -> Person {
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
struct Head {
    rhythm_pos: Vec<[f64; 2]>,
    background_pos: Vec<[f64; 2]>,
    background_amp: Vec<f64>,
    channel_gain: Vec<f64>,
    sensor_noise_uv: Vec<f64>,
    electrode_noise_uv: Vec<f64>,
    mu_hz: [f64; N_TASK],
    beta_hz: [f64; N_TASK],
    erd: f64,
    p_null: f64,
}

impl Head {
    fn draw(p: &Person, session: Session, rng: &mut impl Rng) -> Head {
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

/// One trial: its timing, class and how the subject performed it.
struct Trial {
    start: usize,
    class: u8,
    rejected: bool,
    /// Imagery strength, 0 when the subject did nothing.
    strength: f64,
    /// ERD onset, end of ramp, end of imagery (s from the 768 event).
    onset: f64,
    ramp: f64,
    offset: f64,
    /// Class-independent alpha drop when the cue appears.
    alpha_drop: f64,
}

/// The session's timeline: events, trials and special stretches.
struct Plan {
    n_samples: usize,
    eyes_closed: std::ops::Range<usize>,
    events: Vec<Event>,
    trials: Vec<Trial>,
    /// NaN gap (start, length), if any.
    gap: Option<(usize, usize)>,
}

fn samples(seconds: f64, rate: f64) -> usize {
    (seconds * rate).round() as usize
}

impl Plan {
    fn draw(
        cfg: &SynthConfig,
        person: &Person,
        head: &Head,
        session: Session,
        rng: &mut impl Rng,
    ) -> Plan {
        let rate = cfg.rate;
        let mut events = Vec::new();
        let event = |position: usize, code: u16, duration: usize| Event {
            position: position as u64,
            code,
            channel: 0,
            duration: duration as u32,
        };
        let eye = samples(cfg.eye_seconds, rate);
        if eye > 0 {
            events.push(event(0, EVENT_RUN_START, 0));
            events.push(event(0, EVENT_EYES_OPEN, eye));
            events.push(event(eye, EVENT_EYES_CLOSED, eye));
        }
        let eyes_closed = eye..2 * eye;
        let per_run = cfg.trials_per_class / cfg.runs;
        let n_trials = cfg.trials_per_class * cfg.classes;
        let p_rejected = rng.gen_range(0.01..0.03);
        let n_rejected = ((n_trials as f64 * p_rejected).round() as usize).max(1);
        let mut rejected = vec![false; n_trials];
        for k in rand::seq::index::sample(rng, n_trials, n_rejected) {
            rejected[k] = true;
        }
        let cue_len = (CUE_SHOWN_S * rate).floor() as usize;
        let mut trials = Vec::with_capacity(n_trials);
        let mut pos = 2 * eye;
        for _ in 0..cfg.runs {
            events.push(event(pos, EVENT_RUN_START, 0));
            pos += samples(rng.gen_range(1.5..2.5), rate);
            let mut order: Vec<u8> = (1..=cfg.classes as u8)
                .flat_map(|c| std::iter::repeat_n(c, per_run))
                .collect();
            order.shuffle(rng);
            for class in order {
                let k = trials.len();
                events.push(event(pos, EVENT_TRIAL_START, 0));
                if rejected[k] {
                    events.push(event(pos, EVENT_REJECTED, samples(REJECTED_S, rate)));
                }
                let cue = match session {
                    Session::T => EVENT_CUES[usize::from(class - 1)],
                    Session::E => EVENT_CUE_UNKNOWN,
                };
                events.push(event(pos + samples(CUE_S, rate), cue, cue_len));
                let strength = if rng.gen_bool(head.p_null.clamp(0.0, 1.0)) {
                    0.0
                } else {
                    (1.0 + person.trial_sd * normal(rng)).clamp(0.0, 1.8)
                };
                let onset = (CUE_S + 0.5 + 0.15 * normal(rng)).clamp(2.2, 3.0);
                trials.push(Trial {
                    start: pos,
                    class,
                    rejected: rejected[k],
                    strength,
                    onset,
                    ramp: onset + rng.gen_range(0.5..1.0),
                    offset: IMAGERY_END_S + rng.gen_range(-0.2..0.3),
                    alpha_drop: rng.gen_range(0.1..0.35),
                });
                pos += samples(IMAGERY_END_S + rng.gen_range(1.5..2.5), rate);
            }
        }
        let gap = (cfg.gaps && person.has_gap).then(|| {
            let t = &trials[rng.gen_range(0..trials.len())];
            (
                t.start + samples(rng.gen_range(0.5..7.0), rate),
                rng.gen_range(3..=25),
            )
        });
        Plan {
            n_samples: pos,
            eyes_closed,
            events,
            trials,
            gap,
        }
    }

    /// The last trial that started at or before sample `t`.
    fn trial_at(&self, t: usize) -> Option<&Trial> {
        let k = self.trials.partition_point(|tr| tr.start <= t);
        k.checked_sub(1).map(|k| &self.trials[k])
    }
}

/// Smooth 0 → 1 step between `a` and `b`.
fn smoothstep(t: f64, a: f64, b: f64) -> f64 {
    if t <= a {
        0.0
    } else if t >= b {
        1.0
    } else {
        0.5 - 0.5 * (PI * (t - a) / (b - a)).cos()
    }
}

/// Hann bump over `a..b`, 1 in the middle.
fn bump(t: f64, a: f64, b: f64) -> f64 {
    if t <= a || t >= b {
        0.0
    } else {
        0.5 - 0.5 * (2.0 * PI * (t - a) / (b - a)).cos()
    }
}

/// Narrow-band oscillation: an AR(2) resonator driven by white noise, unit variance.
struct Resonator {
    a1: f64,
    a2: f64,
    drive: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn new(hz: f64, bandwidth_hz: f64, rate: f64) -> Resonator {
        let r = (-PI * bandwidth_hz / rate).exp();
        let a1 = 2.0 * r * (2.0 * PI * hz / rate).cos();
        let a2 = -r * r;
        // Stationary variance of an AR(2) process driven by unit white noise.
        let var = (1.0 - a2) / ((1.0 + a2) * ((1.0 - a2).powi(2) - a1 * a1));
        Resonator {
            a1,
            a2,
            drive: 1.0 / var.sqrt(),
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn step(&mut self, w: f64) -> f64 {
        let y = self.a1 * self.y1 + self.a2 * self.y2 + self.drive * w;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// 1/f noise: Paul Kellet's three-pole filter of white noise, then a 0.5 Hz high-pass like
/// the amplifier's, scaled to unit variance.
#[derive(Clone)]
struct Pink {
    b: [f64; 3],
    hp_a: f64,
    hp_x: f64,
    hp_y: f64,
    drive: f64,
}

impl Pink {
    fn new(rate: f64) -> Pink {
        let mut p = Pink {
            b: [0.0; 3],
            hp_a: (-2.0 * PI * 0.5 / rate).exp(),
            hp_x: 0.0,
            hp_y: 0.0,
            drive: 1.0,
        };
        // Unit variance: the energy of the impulse response is the output variance.
        let mut probe = p.clone();
        let mut energy = probe.step(1.0).powi(2);
        for _ in 0..(200.0 * rate) as usize {
            energy += probe.step(0.0).powi(2);
        }
        p.drive = 1.0 / energy.sqrt();
        p
    }

    fn step(&mut self, w: f64) -> f64 {
        let w = w * self.drive;
        self.b[0] = 0.99765 * self.b[0] + w * 0.099_046;
        self.b[1] = 0.963 * self.b[1] + w * 0.296_516_4;
        self.b[2] = 0.57 * self.b[2] + w * 1.052_691_3;
        let x = self.b[0] + self.b[1] + self.b[2] + w * 0.1848;
        self.hp_y = self.hp_a * (self.hp_y + x - self.hp_x);
        self.hp_x = x;
        self.hp_y
    }
}

enum Oscillator {
    Rhythm(Resonator),
    Background(Pink),
}

/// A source signal: an oscillator, its amplitude (µV) and an optional amplitude envelope.
struct Generator {
    osc: Oscillator,
    amp: f64,
    envelope: Option<Vec<f32>>,
}

/// Potential at an electrode of a radial source `depth` radians under the scalp, relative to
/// the electrode right above it: the half-space dipole law h³/(h² + d²)^{3/2}, with the arc
/// length d between them.
fn conduction(electrode: [f64; 3], source: [f64; 3], depth: f64) -> f64 {
    let cos = electrode[0] * source[0] + electrode[1] * source[1] + electrode[2] * source[2];
    let d = cos.clamp(-1.0, 1.0).acos() / depth;
    (1.0 + d * d).powf(-1.5)
}

/// Projected positions (frame of [`montage::position`]) of the EOG electrodes, the eyes and
/// the left-mastoid reference, which the montage module does not place.
const EOG_POS: [[f64; 2]; 3] = [[-0.75, 1.07], [0.0, 1.2], [0.75, 1.07]];
const EYES_POS: [f64; 2] = [0.0, 1.45];
const REFERENCE_POS: [f64; 2] = [-1.41, -0.51];

fn channel_positions() -> Vec<[f64; 2]> {
    BCI_IV_2A_LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| montage::position(l).unwrap_or(EOG_POS[i.saturating_sub(22).min(2)]))
        .collect()
}

fn render(
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
fn task_factor(
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
fn ou_series(n: usize, tau: f64, sd: f64, rng: &mut impl Rng) -> Vec<f32> {
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

fn arc(a: [f64; 3], b: [f64; 3]) -> f64 {
    (a[0] * b[0] + a[1] * b[1] + a[2] * b[2])
        .clamp(-1.0, 1.0)
        .acos()
}

/// Blinks (100–300 µV at the EOG) and horizontal saccades, with their leak into frontal EEG,
/// at random times; fewer during imagery, none with eyes closed.
fn add_eye_artefacts(
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
fn random_rim_point(rng: &mut impl Rng) -> [f64; 3] {
    let phi: f64 = rng.gen_range(0.0..2.0 * PI);
    let r: f64 = rng.gen_range(0.8..1.2);
    montage::unproject([r * phi.cos(), r * phi.sin()])
}

/// What gets a trial rejected: a burst of muscle activity, often with a movement swing.
fn add_rejection_artefact(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
