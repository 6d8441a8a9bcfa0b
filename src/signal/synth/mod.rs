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
//! Amplitudes: EEG stays within ±100 µV
//! ([`montage::physical_range`](super::montage::physical_range)) except for the artefacts of
//! some rejected trials (about 1e-5 of the samples); EOG peaks near 330 µV, within the ±1000 µV
//! assumed for EOG. With [`SynthConfig::gaps`] some subjects get one gap of 3–25 NaN samples
//! (all channels) somewhere in a trial, as some real files have.
//!
//! A subject's sessions depend only on `(seed, subject, session)` and the configuration, never
//! on which other subjects are generated.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::signal::montage::BCI_IV_2A_LABELS;
use crate::signal::Recording;
use crate::{Error, Result};

mod artefacts;
mod person;
mod plan;
mod render;
mod sources;
#[cfg(test)]
mod tests;

use person::{Head, Person};
use plan::Plan;
use render::render;

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
