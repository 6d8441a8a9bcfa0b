//! The session's timeline: eye runs, runs of trials with their events and timing, the NaN gap.

use rand::seq::SliceRandom;
use rand::Rng;

use crate::signal::Event;

use super::person::{Head, Person};
use super::{
    normal, Session, SynthConfig, CUE_S, CUE_SHOWN_S, EVENT_CUES, EVENT_CUE_UNKNOWN,
    EVENT_EYES_CLOSED, EVENT_EYES_OPEN, EVENT_REJECTED, EVENT_RUN_START, EVENT_TRIAL_START,
    IMAGERY_END_S, REJECTED_S,
};

/// One trial: its timing, class and how the subject performed it.
pub(super) struct Trial {
    pub(super) start: usize,
    pub(super) class: u8,
    pub(super) rejected: bool,
    /// Imagery strength, 0 when the subject did nothing.
    pub(super) strength: f64,
    /// ERD onset, end of ramp, end of imagery (s from the 768 event).
    pub(super) onset: f64,
    pub(super) ramp: f64,
    pub(super) offset: f64,
    /// Class-independent alpha drop when the cue appears.
    pub(super) alpha_drop: f64,
}

/// The session's timeline: events, trials and special stretches.
pub(super) struct Plan {
    pub(super) n_samples: usize,
    pub(super) eyes_closed: std::ops::Range<usize>,
    pub(super) events: Vec<Event>,
    pub(super) trials: Vec<Trial>,
    /// NaN gap (start, length), if any.
    pub(super) gap: Option<(usize, usize)>,
}

pub(super) fn samples(seconds: f64, rate: f64) -> usize {
    (seconds * rate).round() as usize
}

impl Plan {
    pub(super) fn draw(
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
    pub(super) fn trial_at(&self, t: usize) -> Option<&Trial> {
        let k = self.trials.partition_point(|tr| tr.start <= t);
        k.checked_sub(1).map(|k| &self.trials[k])
    }
}
