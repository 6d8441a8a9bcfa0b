//! Filtering only the spans of a recording that its windows need: how far to widen them, and
//! the rows run in lane groups with the instruction set chosen at run time.

use std::ops::Range;

use crate::{Error, Result};

use super::lanes::{filter_in_blocks, lanes, scaled_zi, ZeroPhasePlan, LANES};
use super::tf::sosfilt_zi;
use super::FilterMode;

/// Samples a filter needs to forget its state: its slowest pole's magnitude `r` raised to this
/// power is below [`SETTLE_TOLERANCE`]. None for an unstable filter (a pole on or outside the
/// unit circle), which never forgets.
pub fn settle_samples(sos: &[[f64; 6]]) -> Option<usize> {
    let mut slowest: f64 = 0.0;
    for s in sos {
        // Poles of z² + a1 z + a2 (a0 = 1).
        let (a1, a2) = (s[4], s[5]);
        let disc = a1 * a1 - 4.0 * a2;
        let r = if disc < 0.0 {
            a2.sqrt()
        } else {
            let root = disc.sqrt();
            ((-a1 + root) / 2.0).abs().max(((-a1 - root) / 2.0).abs())
        };
        slowest = slowest.max(r);
    }
    if slowest.is_nan() || slowest >= 1.0 {
        return None;
    }
    if slowest == 0.0 {
        return Some(1);
    }
    Some((SETTLE_TOLERANCE.ln() / slowest.ln()).ceil() as usize)
}

/// How far a filter's initial state must have decayed before its output is used: far below
/// one ulp of a double (1.1e-16), so that a span filtered from an estimated state differs from
/// the whole recording's filtering only by rounding (≤ 1e-14 of the signal's largest value in
/// the tests; no value of the benchmark's float32 `X.npy` changes).
pub const SETTLE_TOLERANCE: f64 = 1e-20;

/// The spans of a `samples`-long recording that must be filtered so that every window in
/// `windows` comes out as if the whole recording had been: each window widened by `settle`
/// samples on both sides, clipped to the recording, overlapping spans merged. Sorted.
pub fn spans_around(
    windows: impl IntoIterator<Item = Range<usize>>,
    settle: usize,
    samples: usize,
) -> Vec<Range<usize>> {
    crate::signal::merge_ranges(windows.into_iter().map(|w| {
        w.start.saturating_sub(settle).min(samples)..w.end.saturating_add(settle).min(samples)
    }))
}

/// Filters only `spans` of each `samples`-long row of `flat` (rows one after another), in
/// place. Where a span touches an end of the recording it is filtered exactly as
/// [`apply`](super::apply) filters the whole row (scipy's padding and initial conditions);
/// where it starts or ends inside the recording the pass starts from the steady state for the
/// first sample it sees, whose error has decayed below [`SETTLE_TOLERANCE`] after
/// [`settle_samples`] samples — so the caller widens its windows by that much
/// ([`spans_around`]). Samples outside the spans are left as they were.
pub fn filter_spans(
    sos: &[[f64; 6]],
    mode: FilterMode,
    flat: &mut [f64],
    samples: usize,
    spans: &[Range<usize>],
) -> Result<()> {
    let plan = match mode {
        FilterMode::ZeroPhase => Some(ZeroPhasePlan::new(sos, samples)?),
        FilterMode::Causal => None,
    };
    if samples == 0 || flat.is_empty() {
        return Ok(());
    }
    if let Some(bad) = spans.iter().find(|s| s.start >= s.end || s.end > samples) {
        return Err(Error::Invalid(format!(
            "span `{bad:?}` is not within a recording of `{samples}` samples"
        )));
    }
    if let Some(pair) = spans.windows(2).find(|p| p[1].start < p[0].end) {
        return Err(Error::Invalid(format!(
            "spans `{:?}` and `{:?}` overlap or are out of order",
            pair[0], pair[1]
        )));
    }
    // scipy pads an end of the recording with `padlen` samples reflected from inside it: a
    // span at an end must hold them (the recording itself is long enough, checked above).
    let min_len = plan.as_ref().map_or(0, |p| p.padlen + 1);
    let widened: Vec<Range<usize>>;
    let spans = if spans
        .iter()
        .any(|s| (s.start == 0 || s.end == samples) && s.len() < min_len)
    {
        widened = spans_around(
            spans.iter().map(|s| {
                if s.start == 0 {
                    0..s.end.max(min_len)
                } else if s.end == samples {
                    s.start.min(samples - min_len)..samples
                } else {
                    s.clone()
                }
            }),
            0,
            samples,
        );
        &widened[..]
    } else {
        spans
    };
    let zi = sosfilt_zi(sos)?;
    let job = Groups {
        sos,
        zi: &zi,
        plan: plan.as_ref(),
        samples,
        spans,
    };
    job.run_widest(flat);
    Ok(())
}

/// Rows of one recording to filter in lane groups: what [`filter_spans`] has checked.
pub(super) struct Groups<'a> {
    pub(super) sos: &'a [[f64; 6]],
    pub(super) zi: &'a [[f64; 2]],
    pub(super) plan: Option<&'a ZeroPhasePlan<'a>>,
    pub(super) samples: usize,
    pub(super) spans: &'a [Range<usize>],
}

impl Groups<'_> {
    /// Runs [`Groups::run`] in code compiled for AVX2 (4 doubles per register) when the CPU
    /// has it, else for the x86-64 baseline the binary targets (SSE2, 2 doubles), so that the
    /// binary runs anywhere. The lanes are independent channels: the results are the same bit
    /// for bit. Measured: one 22 × 750 trial in 65 instead of 96 µs, a 25 × 672 000 recording
    /// in 95 instead of 117 ms (`cargo bench --bench filter`); `bciops serve` 1380 instead of
    /// 1285 requests/s at one connection. AVX-512 (8 lanes) was no faster in the release
    /// build and slower in the server, where the wide units must wake up for every request
    /// (Server-Timing's inference went from 0.15 to 0.6 ms), so it is not used.
    #[allow(unsafe_code)]
    pub(super) fn run_widest(&self, flat: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if lanes() == 4 {
            // SAFETY: `run_avx2` only needs AVX2, which `lanes` found the CPU to have.
            return unsafe { self.run_avx2(flat) };
        }
        self.run::<LANES>(flat)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) fn run_avx2(&self, flat: &mut [f64]) {
        self.run::<4>(flat)
    }

    /// Filters the rows of `flat` `L` at a time. A last, partial group is topped up with rows
    /// of zeros, as a wide group costs well under two narrow ones; one or two leftover rows
    /// go in a group of 2.
    #[inline(always)]
    pub(super) fn run<const L: usize>(&self, flat: &mut [f64]) {
        let mut groups = flat.chunks_exact_mut(self.samples * L);
        for group in groups.by_ref() {
            self.run_padded::<L>(group);
        }
        let rest = groups.into_remainder();
        if rest.len() <= 2 * self.samples && L > 2 {
            self.run_padded::<2>(rest);
        } else {
            self.run_padded::<L>(rest);
        }
    }

    /// Filters up to `L` rows as one group, lanes without a row filled with zeros.
    #[inline(always)]
    pub(super) fn run_padded<const L: usize>(&self, rows: &mut [f64]) {
        if rows.is_empty() {
            return;
        }
        let samples = self.samples;
        let mut zeros = vec![0.0; (L * samples).saturating_sub(rows.len())];
        let mut rows = rows
            .chunks_exact_mut(samples)
            .chain(zeros.chunks_exact_mut(samples));
        let rows: [&mut [f64]; L] = std::array::from_fn(|_| rows.next().unwrap_or_default());
        self.run_group(rows);
    }

    #[inline(always)]
    pub(super) fn run_group<const L: usize>(&self, mut rows: [&mut [f64]; L]) {
        for span in self.spans {
            let part = rows.each_mut().map(|r| &mut r[span.clone()]);
            run_span(self.sos, self.zi, self.plan, span, self.samples, part);
        }
    }
}

/// One span of `L` rows: see [`filter_spans`]. This and the functions it calls down to the
/// hot loop are inlined, so that they compile with the caller's target features.
#[inline(always)]
pub(super) fn run_span<const L: usize>(
    sos: &[[f64; 6]],
    zi: &[[f64; 2]],
    plan: Option<&ZeroPhasePlan>,
    span: &Range<usize>,
    samples: usize,
    mut rows: [&mut [f64]; L],
) {
    let (at_start, at_end) = (span.start == 0, span.end == samples);
    match plan {
        Some(plan) => plan.run(rows, at_start, at_end),
        None => {
            let mut state = if at_start {
                vec![[[0.0; L]; 2]; sos.len()]
            } else {
                scaled_zi(zi, std::array::from_fn(|lane| rows[lane][0]))
            };
            filter_in_blocks(sos, &mut state, &mut rows, false);
        }
    }
}
