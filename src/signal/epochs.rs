//! Finding trials in a recording's event table and cutting fixed windows around their cues.
//!
//! The BCI IV 2a convention: 768 marks a trial start, a cue (769-772 in training sessions, 783
//! "unknown" in evaluation sessions, whose true labels live in a separate file) follows 2 s
//! later, and 1023 at the trial start marks a trial the experts rejected. Windows are taken
//! relative to the cue so that other datasets with other codes work through the event map.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::error::{Error, Result};
use crate::signal::Event;

/// Trial start (fixation cross) in the BCI IV 2a files.
pub const TRIAL_START: u16 = 768;
/// Cue of an evaluation-session trial whose class is only in the true-label file.
pub const UNKNOWN_CUE: u16 = 783;
/// A trial the experts marked as contaminated by artefacts.
pub const REJECTED: u16 = 1023;
/// Start of a run.
pub const RUN_START: u16 = 32766;

/// The BCI IV 2a cue codes and the class names bciops gives them by default.
pub fn default_event_map() -> BTreeMap<u16, String> {
    [
        (769, "left"),
        (770, "right"),
        (771, "feet"),
        (772, "tongue"),
    ]
    .into_iter()
    .map(|(code, name)| (code, name.to_owned()))
    .collect()
}

/// What to cut: which cue codes name which classes, which classes to keep, and the window.
#[derive(Debug, Clone)]
pub struct EpochSpec {
    /// Cue event code → class name.
    pub events: BTreeMap<u16, String>,
    /// Classes to keep, in the order of their index in `y`.
    pub classes: Vec<String>,
    /// Window start relative to the cue, seconds.
    pub tmin: f64,
    /// Window end (exclusive) relative to the cue, seconds.
    pub tmax: f64,
    /// Keep trials marked 1023.
    pub keep_rejected: bool,
}

impl EpochSpec {
    /// Checks the spec once: every kept class has a cue code, the window is not empty.
    pub fn check(&self) -> Result<()> {
        if self.classes.is_empty() {
            return Err(Error::Invalid("no class to keep".into()));
        }
        for class in &self.classes {
            if !self.events.values().any(|name| name == class) {
                let known: Vec<&str> = self.events.values().map(String::as_str).collect();
                return Err(Error::setting(
                    "event",
                    Some(&format!("CODE={class}")),
                    format!(
                        "class `{class}` has no event code (known: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        if !(self.tmin.is_finite() && self.tmax.is_finite() && self.tmin < self.tmax) {
            return Err(Error::Invalid(format!(
                "window `{},{}` is empty: the start must be below the end",
                self.tmin, self.tmax
            )));
        }
        Ok(())
    }

    /// Window length in samples at `rate`: at least one sample, and no more than a recording
    /// could hold (so that a window typed in the wrong unit is refused before any allocation).
    pub fn window_samples(&self, rate: f64) -> Result<usize> {
        /// An hour at 1 kHz per channel: far beyond any motor-imagery trial.
        const MAX_WINDOW: f64 = 3_600_000.0;
        let samples = ((self.tmax - self.tmin) * rate).round();
        if samples.is_nan() || samples < 1.0 {
            return Err(Error::Invalid(format!(
                "window `{},{}` is shorter than one sample at {rate} Hz: widen it to at least {:.4} s",
                self.tmin,
                self.tmax,
                1.0 / rate
            )));
        }
        if samples > MAX_WINDOW {
            return Err(Error::Invalid(format!(
                "window `{},{}` is {samples} samples at {rate} Hz, more than {MAX_WINDOW}: \
                 the window is given in seconds",
                self.tmin, self.tmax
            )));
        }
        Ok(samples as usize)
    }

    /// Window start offset from the cue in samples at `rate` (may be negative).
    pub fn offset_samples(&self, rate: f64) -> i64 {
        (self.tmin * rate).round() as i64
    }
}

/// One trial to cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialRef {
    /// 0-based index of the trial among the recording's cues (before any is dropped).
    pub trial: usize,
    /// Run number: how many run starts (32766) precede the trial; 0 when the file marks none.
    pub run: usize,
    /// The cue code in the file (783 for evaluation trials).
    pub code: u16,
    /// Class index into `EpochSpec::classes`.
    pub class: usize,
    /// First sample of the window.
    pub start: usize,
}

/// Why trials were left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Marked 1023 (kept with `keep_rejected`).
    pub rejected: usize,
    /// The window holds missing samples.
    pub gaps: usize,
    /// The window runs past either end of the recording.
    pub out_of_range: usize,
    /// The cue's class is not among those kept.
    pub other_class: usize,
}

/// Trials found in one recording.
#[derive(Debug, Clone, Default)]
pub struct Located {
    pub trials: Vec<TrialRef>,
    pub dropped: Dropped,
}

/// Finds the trials of one recording.
///
/// `labels` are the true labels (1-based, 1 = code 769) of the recording's unknown cues (783),
/// in time order; `has_gap(start, len)` says whether a window holds missing samples.
pub fn locate(
    name: &str,
    events: &[Event],
    n_samples: usize,
    rate: f64,
    spec: &EpochSpec,
    labels: Option<&[u8]>,
    has_gap: impl Fn(usize, usize) -> bool,
) -> Result<Located> {
    let mut sorted: Vec<Event> = events.to_vec();
    // Stable: events at one position keep their file order.
    sorted.sort_by_key(|e| e.position);

    let unknown = sorted.iter().filter(|e| e.code == UNKNOWN_CUE).count();
    if unknown > 0 {
        match labels {
            None => {
                return Err(Error::setting(
                    "labels",
                    Some("DIR"),
                    format!(
                        "`{name}` has {unknown} evaluation cues (783) but no true labels: put \
                         the labels file (e.g. `A01E.mat`) beside it or name its directory"
                    ),
                ))
            }
            Some(l) if l.len() != unknown => {
                return Err(Error::Data(format!(
                "`{name}` has {unknown} evaluation cues (783) but its labels file holds {} labels",
                l.len()
            )))
            }
            Some(_) => {}
        }
    }

    let window = spec.window_samples(rate)?;
    let offset = spec.offset_samples(rate);
    let mut out = Located::default();
    let (mut run, mut trial_start, mut rejected_at) = (0usize, None::<u64>, None::<u64>);
    let (mut trial, mut unknown_seen) = (0usize, 0usize);
    for event in &sorted {
        let code = match event.code {
            RUN_START => {
                run += 1;
                continue;
            }
            TRIAL_START => {
                trial_start = Some(event.position);
                continue;
            }
            REJECTED => {
                rejected_at = Some(event.position);
                continue;
            }
            UNKNOWN_CUE => {
                // Safe: the count was checked above.
                let label = labels.map_or(0, |l| l[unknown_seen]);
                unknown_seen += 1;
                if label == 0 {
                    return Err(Error::Data(format!(
                        "`{name}`: label of evaluation trial {unknown_seen} is 0; labels are 1-based"
                    )));
                }
                (TRIAL_START as u32 + label as u32, UNKNOWN_CUE)
            }
            code if spec.events.contains_key(&code) => (code as u32, code),
            _ => continue,
        };
        let (class_code, file_code) = code;
        let index = trial;
        trial += 1;

        // A 1023 belongs to the trial whose start it shares (or, without trial starts, the cue).
        let start_of_trial = trial_start.unwrap_or(event.position);
        let rejected = rejected_at.is_some_and(|p| p >= start_of_trial && p <= event.position);

        let class = u16::try_from(class_code)
            .ok()
            .and_then(|c| spec.events.get(&c))
            .and_then(|name| spec.classes.iter().position(|k| k == name));
        let Some(class) = class else {
            out.dropped.other_class += 1;
            continue;
        };
        if rejected && !spec.keep_rejected {
            out.dropped.rejected += 1;
            continue;
        }
        // Positions come from files (a GDF event rescaled to a tiny event rate saturates
        // near u64::MAX): checked, so that one never wraps into the recording.
        let start = i64::try_from(event.position)
            .ok()
            .and_then(|p| p.checked_add(offset))
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| {
                (s as u64)
                    .checked_add(window as u64)
                    .is_some_and(|end| end <= n_samples as u64)
            });
        let Some(start) = start else {
            out.dropped.out_of_range += 1;
            continue;
        };
        if has_gap(start, window) {
            out.dropped.gaps += 1;
            continue;
        }
        out.trials.push(TrialRef {
            trial: index,
            run,
            code: file_code,
            class,
            start,
        });
    }
    Ok(out)
}

/// The samples missing in any channel, as sorted disjoint runs, so a window is checked with a
/// binary search.
#[derive(Debug, Clone, Default)]
pub struct GapIndex {
    runs: Vec<Range<usize>>,
}

impl GapIndex {
    /// Builds the index from channels × samples data where NaN marks a missing sample.
    pub fn new(rows: &[&[f64]]) -> Self {
        GapIndex::from_runs(rows.iter().flat_map(|row| nan_runs(row)))
    }

    /// The index of runs of missing samples, in any order, possibly overlapping (one channel's
    /// run may overlap another's).
    pub fn from_runs(runs: impl IntoIterator<Item = Range<usize>>) -> Self {
        GapIndex {
            runs: super::merge_ranges(runs),
        }
    }

    /// Whether any sample in `start..start + len` is missing.
    pub fn has_gap(&self, start: usize, len: usize) -> bool {
        let i = self.runs.partition_point(|r| r.end <= start);
        self.runs
            .get(i)
            .is_some_and(|r| r.start < start.saturating_add(len) && len > 0)
    }

    /// Total missing samples (over the union of channels).
    pub fn total(&self) -> u32 {
        let total: usize = self.runs.iter().map(|r| r.len()).sum();
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// The maximal runs of NaN in `row`.
pub fn nan_runs(row: &[f64]) -> Vec<Range<usize>> {
    // `v != v` is NaN's only property; the common gap-free row is one vectorised scan.
    #[allow(clippy::eq_op)]
    if !row.iter().fold(false, |acc, &v| acc | (v != v)) {
        return Vec::new();
    }
    let mut runs = Vec::new();
    let mut i = 0;
    while i < row.len() {
        if row[i].is_nan() {
            let start = i;
            while i < row.len() && row[i].is_nan() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    runs
}

/// Replaces NaN runs by straight lines between their neighbours (constant at the edges), so a
/// filter run over the whole recording is not poisoned by one gap. Returns the samples filled.
pub fn fill_gaps(row: &mut [f64]) -> usize {
    let runs = nan_runs(row);
    fill_runs(row, &runs)
}

/// [`fill_gaps`] for runs already known (maximal NaN runs of `row`, as [`nan_runs`] finds
/// them), without scanning the row.
pub fn fill_runs(row: &mut [f64], runs: &[Range<usize>]) -> usize {
    let n = row.len();
    let mut filled = 0;
    for run in runs {
        let (start, end) = (run.start.min(n), run.end.min(n));
        let before = start.checked_sub(1).map(|j| row[j]);
        let after = (end < n).then(|| row[end]);
        let (a, b) = match (before, after) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, a),
            (None, Some(b)) => (b, b),
            (None, None) => (0.0, 0.0),
        };
        let span = (end - start + 1) as f64;
        for (k, v) in row[start..end].iter_mut().enumerate() {
            let t = (k + 1) as f64 / span;
            *v = a + (b - a) * t;
        }
        filled += end - start;
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(position: u64, code: u16) -> Event {
        Event {
            position,
            code,
            channel: 0,
            duration: 0,
        }
    }

    fn spec(classes: &[&str]) -> EpochSpec {
        EpochSpec {
            events: default_event_map(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            tmin: 0.0,
            tmax: 3.0,
            keep_rejected: false,
        }
    }

    #[test]
    fn training_session_trials_rejections_and_classes() {
        let events = [
            ev(0, RUN_START),
            ev(1000, TRIAL_START),
            ev(1500, 769),
            ev(3000, TRIAL_START),
            ev(3000, REJECTED),
            ev(3500, 770),
            ev(5000, TRIAL_START),
            ev(5500, 771),
            ev(7000, TRIAL_START),
            ev(7500, 770),
        ];
        let got = locate(
            "t",
            &events,
            10_000,
            250.0,
            &spec(&["left", "right"]),
            None,
            |_, _| false,
        )
        .unwrap();
        let starts: Vec<(usize, usize, usize)> = got
            .trials
            .iter()
            .map(|t| (t.trial, t.class, t.start))
            .collect();
        assert_eq!(starts, vec![(0, 0, 1500), (3, 1, 7500)]);
        assert_eq!(got.trials[0].run, 1);
        assert_eq!(
            got.dropped,
            Dropped {
                rejected: 1,
                gaps: 0,
                out_of_range: 0,
                other_class: 1
            }
        );

        let mut keep = spec(&["left", "right"]);
        keep.keep_rejected = true;
        let got = locate("t", &events, 10_000, 250.0, &keep, None, |_, _| false).unwrap();
        assert_eq!(got.trials.len(), 3);
    }

    proptest::proptest! {
        /// Positions and rates from a hostile file (a GDF event rescaled by a tiny event rate
        /// saturates near u64::MAX): dropped as out of range, never wrapped into the
        /// recording (the old `position as i64 + offset` overflowed near i64::MAX).
        #[test]
        fn hostile_positions_and_rates_are_out_of_range_not_overflows(
            positions in proptest::collection::vec(crate::testutil::hostile_size(), 1..8),
            rate in proptest::sample::select(vec![250.0, 1e12, 1e300, f64::MAX]),
            tmin in proptest::sample::select(vec![-1.0, 0.0, 0.5]),
        ) {
            let events: Vec<Event> = positions.iter().map(|&p| ev(p, 769)).collect();
            let mut s = spec(&["left"]);
            s.tmin = tmin;
            let got = locate("t", &events, 10_000, rate, &s, None, |_, _| false);
            // A window of more samples than any recording holds is refused up front.
            let Ok(window) = s.window_samples(rate) else {
                proptest::prop_assert!(got.is_err());
                return Ok(());
            };
            for t in &got.unwrap().trials {
                proptest::prop_assert!(t.start as u64 + window as u64 <= 10_000);
            }
        }
    }

    #[test]
    fn window_past_the_end_and_gaps_are_dropped() {
        let events = [ev(100, 769), ev(9500, 770), ev(5000, 770)];
        let got = locate(
            "t",
            &events,
            10_000,
            250.0,
            &spec(&["left", "right"]),
            None,
            |s, _| s == 5000,
        )
        .unwrap();
        assert_eq!(got.trials.len(), 1);
        assert_eq!(got.dropped.out_of_range, 1);
        assert_eq!(got.dropped.gaps, 1);
    }

    #[test]
    fn evaluation_session_takes_labels_in_order() {
        let events = [ev(0, 768), ev(500, 783), ev(2000, 768), ev(2500, 783)];
        let got = locate(
            "e",
            &events,
            10_000,
            250.0,
            &spec(&["left", "right"]),
            Some(&[2, 1]),
            |_, _| false,
        )
        .unwrap();
        let classes: Vec<usize> = got.trials.iter().map(|t| t.class).collect();
        assert_eq!(classes, vec![1, 0]);
        assert_eq!(got.trials[0].code, UNKNOWN_CUE);

        let err = locate(
            "e",
            &events,
            10_000,
            250.0,
            &spec(&["left"]),
            None,
            |_, _| false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no true labels"), "{err}");
        let err = locate(
            "e",
            &events,
            10_000,
            250.0,
            &spec(&["left"]),
            Some(&[1]),
            |_, _| false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1 labels"), "{err}");
    }

    #[test]
    fn spec_check_names_the_problem() {
        let mut s = spec(&["left", "elbow"]);
        assert!(s.check().unwrap_err().to_string().contains("`elbow`"));
        s = spec(&["left"]);
        s.tmax = -1.0;
        assert!(s.check().unwrap_err().to_string().contains("empty"));
        assert_eq!(spec(&["left"]).window_samples(250.0).unwrap(), 750);
        // Shorter than one sample (issue 16: `--window 0,0.001` panicked in preprocess).
        for (tmin, tmax) in [(0.0, 0.001), (0.5, 0.501)] {
            let short = EpochSpec {
                tmin,
                tmax,
                ..spec(&["left"])
            };
            let err = short.window_samples(250.0).unwrap_err().to_string();
            assert!(err.contains(&format!("`{tmin},{tmax}`")), "{err}");
        }
        let long = EpochSpec {
            tmax: 1e9,
            ..spec(&["left"])
        };
        assert!(long.window_samples(250.0).is_err());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one run is the case under test
    fn gaps_are_indexed_and_filled() {
        let a = [1.0, f64::NAN, f64::NAN, 4.0, 5.0];
        let b = [0.0, 0.0, 0.0, 0.0, f64::NAN];
        let index = GapIndex::new(&[&a, &b]);
        assert!(index.has_gap(0, 2));
        assert!(!index.has_gap(3, 1));
        assert!(index.has_gap(3, 2));
        assert!(!index.has_gap(0, 1));
        assert!(!index.has_gap(1, 0));
        assert_eq!(index.total(), 3);
        // Overlapping runs of two channels count once; windows around and between them.
        let runs = GapIndex::from_runs([10..20, 15..25, 40..41, 5..6]);
        assert_eq!(runs.total(), 1 + 15 + 1);
        assert!(!runs.has_gap(6, 4) && runs.has_gap(6, 5) && runs.has_gap(24, 1));
        assert!(!runs.has_gap(25, 15) && runs.has_gap(25, 16) && !runs.has_gap(41, 100));
        assert_eq!(nan_runs(&a), vec![1..3]);
        assert!(nan_runs(&[1.0, 2.0]).is_empty());

        let mut row = a;
        assert_eq!(fill_gaps(&mut row), 2);
        assert_eq!(row, [1.0, 2.0, 3.0, 4.0, 5.0]);
        let mut edge = [f64::NAN, 2.0, f64::NAN];
        fill_gaps(&mut edge);
        assert_eq!(edge, [2.0, 2.0, 2.0]);
        let mut all = [f64::NAN; 3];
        fill_gaps(&mut all);
        assert_eq!(all, [0.0; 3]);
    }
}
