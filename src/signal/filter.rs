//! Butterworth band-pass design and IIR filtering that reproduce `scipy.signal`.
//!
//! The design follows `scipy.signal.butter(order, [low, high], btype='bandpass', fs=rate)`
//! step by step (analog prototype, band-pass transform, bilinear transform, pole/zero pairing)
//! and copies NumPy's floating-point operation order, including the fused multiply-adds of
//! NumPy's SIMD complex loops and OpenBLAS's dot products. Checked against scipy 1.17 on 409
//! random designs (orders 1 to 20) on an AVX-512 machine: 402 are bit-identical; the others
//! differ by a few ulps because NumPy's vectorised `tan` rounds differently from libm's.
//!
//! Filtering is transposed direct form II with scipy's expression order, so `sosfilt`,
//! `sosfiltfilt` and `lfilter` give scipy's results bit for bit for the same coefficients;
//! `filtfilt` on `ba` agrees to about 1e-11 (its initial-condition solve is ill-conditioned).
//! Multi-channel filtering runs independent channels in the lanes of one SIMD register.
//!
//! ```
//! use bciops::signal::filter::{BandPass, FilterMode, apply};
//! let band = BandPass::new(8.0, 30.0, 4, 250.0)?;
//! let mut x: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.5).sin()).collect();
//! apply(&band.sos(), FilterMode::ZeroPhase, &mut x)?;
//! # Ok::<(), bciops::Error>(())
//! ```

use std::ops::Range;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How a band-pass is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterMode {
    /// Forward and backward (`scipy.signal.sosfiltfilt`): no phase shift, squared magnitude.
    ZeroPhase,
    /// Forward only from a zero state (`scipy.signal.sosfilt` / `lfilter`), what the original
    /// Python pipeline did.
    Causal,
}

impl std::fmt::Display for FilterMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FilterMode::ZeroPhase => "zero-phase",
            FilterMode::Causal => "causal",
        })
    }
}

impl std::str::FromStr for FilterMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zero-phase" => Ok(FilterMode::ZeroPhase),
            "causal" => Ok(FilterMode::Causal),
            other => Err(Error::Invalid(format!(
                "filter mode `{other}` is not `zero-phase` or `causal`"
            ))),
        }
    }
}

/// Highest Butterworth order accepted: beyond it the band-pass poles crowd the unit circle so
/// closely that double precision no longer describes the filter.
pub const MAX_ORDER: usize = 20;

/// A validated Butterworth band-pass design: edges `low` < `high` in Hz, `order` of the
/// low-pass prototype (the band-pass has `2 * order` poles), sampling `rate` in Hz.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBandPass")]
pub struct BandPass {
    low: f64,
    high: f64,
    order: usize,
    rate: f64,
}

/// The unchecked shape of a serialized [`BandPass`]; deserializing goes through
/// [`BandPass::new`], so a hand-edited file cannot smuggle in an invalid band.
#[derive(Deserialize)]
struct RawBandPass {
    low: f64,
    high: f64,
    order: usize,
    rate: f64,
}

impl TryFrom<RawBandPass> for BandPass {
    type Error = Error;

    fn try_from(raw: RawBandPass) -> Result<Self> {
        BandPass::new(raw.low, raw.high, raw.order, raw.rate)
    }
}

impl BandPass {
    /// Checks `0 < low < high < rate / 2`, `1 <= order <= 20` and that all values are finite.
    pub fn new(low: f64, high: f64, order: usize, rate: f64) -> Result<Self> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::Invalid(format!(
                "sampling rate `{rate}` must be a finite number of hertz above 0"
            )));
        }
        for (name, value) in [("low", low), ("high", high)] {
            if !value.is_finite() {
                return Err(Error::Invalid(format!(
                    "band-pass {name} edge `{value}` is not a finite frequency"
                )));
            }
        }
        if low <= 0.0 {
            return Err(Error::Invalid(format!(
                "band-pass low edge `{low}` must be above 0 Hz"
            )));
        }
        if low >= high {
            return Err(Error::Invalid(format!(
                "band-pass low edge `{low}` must be below the high edge `{high}`"
            )));
        }
        let nyquist = rate / 2.0;
        if high >= nyquist {
            return Err(Error::Invalid(format!(
                "band-pass high edge `{high}` must be below the Nyquist frequency `{nyquist}` \
                 (half the sampling rate `{rate}`)"
            )));
        }
        if !(1..=MAX_ORDER).contains(&order) {
            return Err(Error::Invalid(format!(
                "filter order `{order}` must be between 1 and {MAX_ORDER}"
            )));
        }
        Ok(BandPass {
            low,
            high,
            order,
            rate,
        })
    }

    pub fn low(&self) -> f64 {
        self.low
    }

    pub fn high(&self) -> f64 {
        self.high
    }

    pub fn order(&self) -> usize {
        self.order
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Second-order sections, equal to
    /// `scipy.signal.butter(order, [low, high], btype='bandpass', fs=rate, output='sos')`:
    /// same section order and pole/zero pairing, the gain in the first section.
    pub fn sos(&self) -> Vec<[f64; 6]> {
        let (z, p, k) = self.zpk();
        zpk2sos_nearest(&z, &p, k)
    }

    /// Transfer-function coefficients `(b, a)`, equal to `butter(..., output='ba')`.
    /// Prefer [`BandPass::sos`] for filtering: high orders are numerically fragile as `ba`.
    pub fn ba(&self) -> (Vec<f64>, Vec<f64>) {
        let (z, p, k) = self.zpk();
        let b = poly(&z).into_iter().map(|c| k * c.re).collect();
        let a = poly(&p).into_iter().map(|c| c.re).collect();
        (b, a)
    }

    /// Digital zeros, poles and gain, as `butter(..., output='zpk')`.
    fn zpk(&self) -> (Vec<C64>, Vec<C64>, f64) {
        // iirfilter: normalise to Nyquist, then pre-warp for the bilinear transform with fs=2.
        let half_rate = self.rate / 2.0;
        let warp = |f: f64| 4.0 * (std::f64::consts::PI * (f / half_rate) / 2.0).tan();
        let (w_low, w_high) = (warp(self.low), warp(self.high));
        let bw = w_high - w_low;
        let wo = (w_low * w_high).sqrt();
        let p = buttap(self.order);
        let (z, p, k) = lp2bp_zpk(&p, wo, bw);
        bilinear_zpk(&z, &p, k)
    }
}

/// Filters `x` in place through the sections from a zero state (`scipy.signal.sosfilt`).
/// Each section is `[b0, b1, b2, a0, a1, a2]` with `a0 == 1`, as scipy requires (`a0` is not
/// read; [`BandPass::sos`] always gives 1).
pub fn sosfilt(sos: &[[f64; 6]], x: &mut [f64]) {
    let mut state = vec![[[0.0; 1]; 2]; sos.len()];
    cascade(sos, &mut state, x.iter_mut().map(std::array::from_mut));
}

/// Zero-phase filtering as `scipy.signal.sosfiltfilt` with its defaults: odd extension by
/// `padlen = 3 * (2 * sections + 1 - min(#b2 == 0, #a2 == 0))` samples at both ends and
/// steady-state initial conditions (`sosfilt_zi`) scaled by the first sample of each pass.
pub fn sosfiltfilt(sos: &[[f64; 6]], x: &mut [f64]) -> Result<()> {
    ZeroPhasePlan::new(sos, x.len())?.run([x], true, true);
    Ok(())
}

/// Filters `x` through `b / a` from a zero state (`scipy.signal.lfilter`), transposed direct
/// form II, coefficients normalised by `a[0]`.
///
/// # Panics
/// If `b` or `a` is empty or `a[0] == 0`: coefficients come from the library's own designs.
#[track_caller]
pub fn lfilter(b: &[f64], a: &[f64], x: &[f64]) -> Vec<f64> {
    assert!(
        !b.is_empty() && !a.is_empty() && a[0] != 0.0,
        "lfilter needs non-empty coefficients and a[0] != 0"
    );
    let (b, a) = normalised_tf(b, a);
    let mut state = vec![0.0; b.len() - 1];
    let mut y = x.to_vec();
    tf_filter(&b, &a, &mut state, y.iter_mut());
    y
}

/// Zero-phase filtering as `scipy.signal.filtfilt(b, a, x)` with its defaults: odd extension
/// by `padlen = 3 * max(len(a), len(b))` and `lfilter_zi` initial conditions.
pub fn filtfilt(b: &[f64], a: &[f64], x: &[f64]) -> Result<Vec<f64>> {
    if b.is_empty() || a.is_empty() || a[0] == 0.0 {
        return Err(Error::Invalid(format!(
            "transfer function needs non-empty `b` and `a` with `a[0]` not 0, got b = `{b:?}`, \
             a = `{a:?}`"
        )));
    }
    let padlen = 3 * a.len().max(b.len());
    check_length(x.len(), padlen)?;
    let zi = lfilter_zi(b, a)?;
    let (b, a) = normalised_tf(b, a);
    let mut ext = odd_extension(x, padlen);
    let mut state: Vec<f64> = zi.iter().map(|z| z * ext[0]).collect();
    tf_filter(&b, &a, &mut state, ext.iter_mut());
    let last = ext[ext.len() - 1];
    let mut state: Vec<f64> = zi.iter().map(|z| z * last).collect();
    tf_filter(&b, &a, &mut state, ext.iter_mut().rev());
    ext.truncate(padlen + x.len());
    ext.drain(..padlen);
    Ok(ext)
}

/// Applies `sos` to one signal in place: [`sosfiltfilt`] or [`sosfilt`].
pub fn apply(sos: &[[f64; 6]], mode: FilterMode, x: &mut [f64]) -> Result<()> {
    match mode {
        FilterMode::ZeroPhase => sosfiltfilt(sos, x),
        FilterMode::Causal => {
            sosfilt(sos, x);
            Ok(())
        }
    }
}

/// Applies `sos` to every row (channel) of `data`, in place. The result equals [`apply`] on
/// each row, bit for bit; channels are processed [`lanes`] at a time so that the CPU's vector
/// units work on independent channels in parallel.
///
/// A NaN (a recording gap) spreads to the rest of its row, and in zero-phase mode to the whole
/// row, as in scipy: split or fill gaps before filtering.
pub fn filter_rows(sos: &[[f64; 6]], mode: FilterMode, data: &mut Array2<f64>) -> Result<()> {
    let samples = data.ncols();
    // Standard layout makes each row one contiguous slice; anything else gets a copy.
    if !data.is_standard_layout() {
        *data = data.as_standard_layout().into_owned();
    }
    let Some(flat) = data.as_slice_mut() else {
        unreachable!("a standard-layout array is contiguous");
    };
    let whole = std::iter::once(0..samples).collect::<Vec<_>>();
    filter_spans(sos, mode, flat, samples, &whole)
}

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
    super::merge_ranges(windows.into_iter().map(|w| {
        w.start.saturating_sub(settle).min(samples)..w.end.saturating_add(settle).min(samples)
    }))
}

/// Filters only `spans` of each `samples`-long row of `flat` (rows one after another), in
/// place. Where a span touches an end of the recording it is filtered exactly as [`apply`]
/// filters the whole row (scipy's padding and initial conditions); where it starts or ends
/// inside the recording the pass starts from the steady state for the first sample it sees,
/// whose error has decayed below [`SETTLE_TOLERANCE`] after [`settle_samples`] samples — so
/// the caller widens its windows by that much ([`spans_around`]). Samples outside the spans
/// are left as they were.
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
struct Groups<'a> {
    sos: &'a [[f64; 6]],
    zi: &'a [[f64; 2]],
    plan: Option<&'a ZeroPhasePlan<'a>>,
    samples: usize,
    spans: &'a [Range<usize>],
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
    fn run_widest(&self, flat: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if lanes() == 4 {
            // SAFETY: `run_avx2` only needs AVX2, which `lanes` found the CPU to have.
            return unsafe { self.run_avx2(flat) };
        }
        self.run::<LANES>(flat)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&self, flat: &mut [f64]) {
        self.run::<4>(flat)
    }

    /// Filters the rows of `flat` `L` at a time. A last, partial group is topped up with rows
    /// of zeros, as a wide group costs well under two narrow ones; one or two leftover rows
    /// go in a group of 2.
    #[inline(always)]
    fn run<const L: usize>(&self, flat: &mut [f64]) {
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
    fn run_padded<const L: usize>(&self, rows: &mut [f64]) {
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
    fn run_group<const L: usize>(&self, mut rows: [&mut [f64]; L]) {
        for span in self.spans {
            let part = rows.each_mut().map(|r| &mut r[span.clone()]);
            run_span(self.sos, self.zi, self.plan, span, self.samples, part);
        }
    }
}

/// One span of `L` rows: see [`filter_spans`]. This and the functions it calls down to the
/// hot loop are inlined, so that they compile with the caller's target features.
#[inline(always)]
fn run_span<const L: usize>(
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

/// The steady-state delays for a constant input `x0` in every lane.
#[inline(always)]
fn scaled_zi<const L: usize>(zi: &[[f64; 2]], x0: [f64; L]) -> Vec<[[f64; L]; 2]> {
    zi.iter()
        .map(|z| [x0.map(|x| z[0] * x), x0.map(|x| z[1] * x)])
        .collect()
}

/// Channels filtered together on the x86-64 baseline: two doubles fill one SSE2 register.
/// Measured: 2 lanes run a channel about 3× faster than 1, while 4 lanes spill the filter
/// state out of the 16 SSE registers and are slower than 2.
const LANES: usize = 2;

/// Channels [`filter_rows`] and [`filter_spans`] filter together on this CPU: 4 with AVX2,
/// else 2 (the x86-64 baseline's SSE2). The one place the width is decided. Callers that
/// split rows across threads split at multiples of it.
pub fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return 4;
    }
    LANES
}

/// Samples per block when channels are copied into interleaved lanes: the block stays in L1.
const BLOCK: usize = 256;

/// Runs the cascade over equally long `rows` in place, forwards or backwards, through a small
/// interleaved block so that each step loads all lanes at once.
#[inline(always)]
fn filter_in_blocks<const L: usize>(
    sos: &[[f64; 6]],
    state: &mut [[[f64; L]; 2]],
    rows: &mut [&mut [f64]; L],
    backwards: bool,
) {
    let samples = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == samples));
    let mut block = [[0.0; L]; BLOCK];
    let mut done = 0;
    while done < samples {
        let len = BLOCK.min(samples - done);
        let start = if backwards {
            samples - done - len
        } else {
            done
        };
        let frames = &mut block[..len];
        for (lane, row) in rows.iter().enumerate() {
            for (frame, &v) in frames.iter_mut().zip(&row[start..start + len]) {
                frame[lane] = v;
            }
        }
        if backwards {
            cascade(sos, state, frames.iter_mut().rev());
        } else {
            cascade(sos, state, frames.iter_mut());
        }
        for (lane, row) in rows.iter_mut().enumerate() {
            for (v, frame) in row[start..start + len].iter_mut().zip(frames.iter()) {
                *v = frame[lane];
            }
        }
        done += len;
    }
}

/// What `sosfiltfilt` needs besides the signal, computed once per filter and length.
struct ZeroPhasePlan<'a> {
    sos: &'a [[f64; 6]],
    zi: Vec<[f64; 2]>,
    padlen: usize,
}

impl<'a> ZeroPhasePlan<'a> {
    fn new(sos: &'a [[f64; 6]], samples: usize) -> Result<Self> {
        if let Some(section) = sos.iter().find(|s| s[3] != 1.0) {
            return Err(Error::Invalid(format!(
                "second-order section `{section:?}` must have a0 = 1"
            )));
        }
        let zero_b2 = sos.iter().filter(|s| s[2] == 0.0).count();
        let zero_a2 = sos.iter().filter(|s| s[5] == 0.0).count();
        let ntaps = 2 * sos.len() + 1 - zero_b2.min(zero_a2);
        let padlen = 3 * ntaps;
        check_length(samples, padlen)?;
        Ok(ZeroPhasePlan {
            sos,
            zi: sosfilt_zi(sos)?,
            padlen,
        })
    }

    /// Forward-backward filtering of `L` equally long rows in place. Only the padding lives
    /// outside the rows: the forward pass overwrites each row, the backward pass reads it back
    /// and never needs to run over the left padding, whose output scipy discards.
    ///
    /// `at_start` / `at_end` say whether the rows begin / end where the recording does; a
    /// side that does not is an interior edge of a span (see [`filter_spans`]): no padding,
    /// and the pass starts from the steady state of the first sample it meets.
    #[inline(always)]
    fn run<const L: usize>(&self, mut rows: [&mut [f64]; L], at_start: bool, at_end: bool) {
        let samples = rows[0].len();
        let pad = self.padlen;
        assert!(rows.iter().all(|r| r.len() == samples) && samples > 0);
        // scipy's odd_ext: 2 * x[0] - x[pad..0], x, 2 * x[-1] - x[-2..-pad-2].
        let left_pad = if at_start { pad } else { 0 };
        let right_pad = if at_end { pad } else { 0 };
        assert!(
            samples > left_pad.max(right_pad),
            "filter_spans widens edge spans"
        );
        let mut left = vec![[0.0; L]; left_pad];
        let mut right = vec![[0.0; L]; right_pad];
        for (lane, row) in rows.iter().enumerate() {
            let (first, last) = (row[0], row[samples - 1]);
            for (frame, &v) in left.iter_mut().zip(row[1..=left_pad].iter().rev()) {
                frame[lane] = 2.0 * first - v;
            }
            let tail = &row[samples - 1 - right_pad..samples - 1];
            for (frame, &v) in right.iter_mut().zip(tail.iter().rev()) {
                frame[lane] = 2.0 * last - v;
            }
        }
        let first: [f64; L] = match left.first() {
            Some(frame) => *frame,
            None => std::array::from_fn(|lane| rows[lane][0]),
        };
        let mut state = scaled_zi(&self.zi, first);
        cascade(self.sos, &mut state, left.iter_mut());
        filter_in_blocks(self.sos, &mut state, &mut rows, false);
        cascade(self.sos, &mut state, right.iter_mut());
        let last: [f64; L] = match right.last() {
            Some(frame) => *frame,
            None => std::array::from_fn(|lane| rows[lane][samples - 1]),
        };
        let mut state = scaled_zi(&self.zi, last);
        cascade(self.sos, &mut state, right.iter_mut().rev());
        filter_in_blocks(self.sos, &mut state, &mut rows, true);
    }
}

fn check_length(samples: usize, padlen: usize) -> Result<()> {
    if samples <= padlen {
        return Err(Error::Data(format!(
            "signal of `{samples}` samples is too short for zero-phase filtering: it must be \
             longer than the padding of `{padlen}` samples"
        )));
    }
    Ok(())
}

/// The hot loop: each frame holds one sample of `L` independent channels; `state[s]` holds
/// section `s`'s two delays per lane. The expression order is scipy's `_sosfilt`, so results
/// agree bit for bit; the per-lane loops vectorise across channels.
///
/// Common section counts get a copy with the count known at compile time, so that the
/// sections unroll and the delays live in registers instead of memory (about 1.5× faster).
#[inline(always)]
fn cascade<'x, const L: usize>(
    sos: &[[f64; 6]],
    state: &mut [[[f64; L]; 2]],
    frames: impl Iterator<Item = &'x mut [f64; L]>,
) {
    assert_eq!(sos.len(), state.len());
    macro_rules! dispatch {
        ($($n:literal)*) => {
            match sos.len() {
                $($n => {
                    if let (Ok(sos), Ok(state)) = (<&[[f64; 6]; $n]>::try_from(sos),
                                                   <&mut [[[f64; L]; 2]; $n]>::try_from(state)) {
                        cascade_fixed(sos, state, frames);
                    }
                })*
                _ => cascade_any(sos, state, frames),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10);
}

#[inline(always)]
fn cascade_fixed<'x, const S: usize, const L: usize>(
    sos: &[[f64; 6]; S],
    state: &mut [[[f64; L]; 2]; S],
    frames: impl Iterator<Item = &'x mut [f64; L]>,
) {
    let mut z = *state;
    let c = *sos;
    for frame in frames {
        let mut cur = *frame;
        for s in 0..S {
            let mut new = [0.0; L];
            for l in 0..L {
                new[l] = c[s][0] * cur[l] + z[s][0][l];
                z[s][0][l] = c[s][1] * cur[l] - c[s][4] * new[l] + z[s][1][l];
                z[s][1][l] = c[s][2] * cur[l] - c[s][5] * new[l];
            }
            cur = new;
        }
        *frame = cur;
    }
    *state = z;
}

#[inline(always)]
fn cascade_any<'x, const L: usize>(
    sos: &[[f64; 6]],
    state: &mut [[[f64; L]; 2]],
    frames: impl Iterator<Item = &'x mut [f64; L]>,
) {
    for frame in frames {
        let mut cur = *frame;
        for (s, z) in sos.iter().zip(state.iter_mut()) {
            let mut new = [0.0; L];
            for l in 0..L {
                new[l] = s[0] * cur[l] + z[0][l];
                z[0][l] = s[1] * cur[l] - s[4] * new[l] + z[1][l];
                z[1][l] = s[2] * cur[l] - s[5] * new[l];
            }
            cur = new;
        }
        *frame = cur;
    }
}

/// `b` and `a` padded to one length and divided by `a[0]`, as scipy's `lfilter` does in C.
fn normalised_tf(b: &[f64], a: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = a.len().max(b.len());
    let a0 = a[0];
    let pad = |c: &[f64]| -> Vec<f64> {
        let mut v: Vec<f64> = c.iter().map(|x| x / a0).collect();
        v.resize(n, 0.0);
        v
    };
    (pad(b), pad(a))
}

/// Transposed direct form II with normalised, equally long `b` and `a` (scipy's `lfilter`
/// inner loop, same expression order).
fn tf_filter<'x>(
    b: &[f64],
    a: &[f64],
    state: &mut [f64],
    samples: impl Iterator<Item = &'x mut f64>,
) {
    let n = b.len();
    assert!(a.len() == n && state.len() + 1 == n);
    if n == 1 {
        for x in samples {
            *x *= b[0];
        }
        return;
    }
    let (b0, b_rest) = (b[0], &b[1..]);
    let a_rest = &a[1..];
    for x in samples {
        let xn = *x;
        let yn = state[0] + b0 * xn;
        for i in 0..n - 2 {
            state[i] = state[i + 1] + xn * b_rest[i] - yn * a_rest[i];
        }
        state[n - 2] = xn * b_rest[n - 2] - yn * a_rest[n - 2];
        *x = yn;
    }
}

/// scipy's `odd_ext`: the signal with `pad` samples point-reflected about each end.
fn odd_extension(x: &[f64], pad: usize) -> Vec<f64> {
    let n = x.len();
    let mut ext = Vec::with_capacity(n + 2 * pad);
    ext.extend(x[1..=pad].iter().rev().map(|v| 2.0 * x[0] - v));
    ext.extend_from_slice(x);
    ext.extend(
        x[n - 1 - pad..n - 1]
            .iter()
            .rev()
            .map(|v| 2.0 * x[n - 1] - v),
    );
    ext
}

/// scipy's `lfilter_zi`: the state of `b / a` after a unit step has settled, solving
/// `(I - companion(a)ᵀ) zi = b[1:] - a[1:] b[0]`.
fn lfilter_zi(b: &[f64], a: &[f64]) -> Result<Vec<f64>> {
    let mut a = a;
    while a.len() > 1 && a[0] == 0.0 {
        a = &a[1..];
    }
    if a[0] == 0.0 {
        return Err(Error::Invalid(
            "transfer function needs a nonzero `a` coefficient".to_string(),
        ));
    }
    let (mut b, mut a) = (b.to_vec(), a.to_vec());
    if a[0] != 1.0 {
        let a0 = a[0];
        b.iter_mut().for_each(|v| *v /= a0);
        a.iter_mut().for_each(|v| *v /= a0);
    }
    let n = a.len().max(b.len());
    a.resize(n, 0.0);
    b.resize(n, 0.0);
    let m = n - 1;
    let mut matrix = vec![vec![0.0; m]; m];
    for (i, row) in matrix.iter_mut().enumerate() {
        // eye(m) - companion(a).T, entry by entry as NumPy subtracts them: companion's first
        // row is -a[1:] / a[0] (a[0] is 1 here), below it a shifted identity.
        row[i] = 1.0;
        row[0] -= -a[i + 1];
        if i + 1 < m {
            row[i + 1] -= 1.0;
        }
    }
    let rhs: Vec<f64> = (1..n).map(|i| b[i] - a[i] * b[0]).collect();
    solve(matrix, rhs)
}

/// LU with partial pivoting and two triangular solves, rounded as OpenBLAS's `dgesv` (which
/// NumPy's `solve` calls) rounds them for the 2 × 2 systems of second-order sections: pivot
/// column scaled by the reciprocal pivot, substitutions as fused `axpy` updates. Larger
/// systems (`filtfilt` on `ba`) agree to rounding.
fn solve(mut m: Vec<Vec<f64>>, mut rhs: Vec<f64>) -> Result<Vec<f64>> {
    let n = rhs.len();
    for j in 0..n {
        // IAMAX: the first entry of largest magnitude.
        let pivot = (j..n).fold(j, |p, i| if m[i][j].abs() > m[p][j].abs() { i } else { p });
        if m[pivot][j] == 0.0 || !m[pivot][j].is_finite() {
            return Err(Error::Numerical(format!(
                "filter initial conditions: singular system at column `{j}` (a pole at z = 1?)"
            )));
        }
        m.swap(j, pivot);
        rhs.swap(j, pivot);
        let (top, bottom) = m.split_at_mut(j + 1);
        let pivot_row = &top[j];
        let inverse = 1.0 / pivot_row[j];
        for row in bottom {
            let factor = row[j] * inverse;
            row[j] = factor;
            for (x, p) in row[j + 1..].iter_mut().zip(&pivot_row[j + 1..]) {
                *x -= factor * p;
            }
        }
    }
    // Unit lower triangle, then upper triangle, column by column.
    for i in 0..n {
        let (head, tail) = rhs.split_at_mut(i + 1);
        let scale = -head[i];
        for (r, row) in tail.iter_mut().zip(&m[i + 1..]) {
            *r = scale.mul_add(row[i], *r);
        }
    }
    for i in (0..n).rev() {
        rhs[i] /= m[i][i];
        let (head, tail) = rhs.split_at_mut(i);
        let scale = -tail[0];
        for (r, row) in head.iter_mut().zip(&m[..i]) {
            *r = scale.mul_add(row[i], *r);
        }
    }
    Ok(rhs)
}

/// scipy's `sosfilt_zi`: each section's `lfilter_zi`, scaled by the DC gain of the sections
/// before it.
fn sosfilt_zi(sos: &[[f64; 6]]) -> Result<Vec<[f64; 2]>> {
    let mut scale = 1.0;
    let mut zi = Vec::with_capacity(sos.len());
    for s in sos {
        let (b, a) = (&s[..3], &s[3..]);
        let z = lfilter_zi(b, a)?;
        zi.push([scale * z[0], scale * z[1]]);
        // NumPy sums three elements left to right.
        scale *= (b[0] + b[1] + b[2]) / (a[0] + a[1] + a[2]);
    }
    Ok(zi)
}

// ---------------------------------------------------------------------------------------------
// Design. Each step mirrors scipy's `_filter_design.py`; comments name the NumPy operation a
// line reproduces when its rounding matters.

/// A complex number whose operations round like NumPy's.
#[derive(Debug, Clone, Copy, PartialEq)]
struct C64 {
    re: f64,
    im: f64,
}

impl C64 {
    const fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }

    /// A real scalar promoted to complex, as NumPy does before mixed arithmetic.
    const fn real(re: f64) -> Self {
        C64 { re, im: 0.0 }
    }

    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }

    fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }

    fn neg(self) -> C64 {
        C64::new(-self.re, -self.im)
    }

    fn conj(self) -> C64 {
        C64::new(self.re, -self.im)
    }

    /// Element-wise array multiply: NumPy's SIMD loop (AVX2/AVX-512 builds) fuses one
    /// product into each part.
    fn mul_simd(self, o: C64) -> C64 {
        C64::new(
            self.re.mul_add(o.re, -(self.im * o.im)),
            self.re.mul_add(o.im, self.im * o.re),
        )
    }

    /// The textbook product, as NumPy's `prod` reduction and OpenBLAS's one-term dot give it.
    fn mul_plain(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }

    /// `z ** 2` (NumPy's `square` loop, fused real part).
    fn square(self) -> C64 {
        C64::new(
            self.re.mul_add(self.re, -(self.im * self.im)),
            self.re * self.im + self.im * self.re,
        )
    }

    /// NumPy's complex division (Smith's algorithm with a reciprocal).
    fn div(self, o: C64) -> C64 {
        let (a, b, c, d) = (self.re, self.im, o.re, o.im);
        if c.abs() >= d.abs() {
            let rat = d / c;
            let scl = 1.0 / (c + d * rat);
            C64::new((a + b * rat) * scl, (b - a * rat) * scl)
        } else {
            let rat = c / d;
            let scl = 1.0 / (d + c * rat);
            C64::new((a * rat + b) * scl, (b * rat - a) * scl)
        }
    }

    fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// glibc's `csqrt` (which NumPy calls) for finite arguments.
    fn sqrt(self) -> C64 {
        let (x, y) = (self.re, self.im);
        if y == 0.0 {
            return if x < 0.0 {
                C64::new(0.0, (-x).sqrt().copysign(y))
            } else {
                C64::new(x.sqrt().abs(), 0.0_f64.copysign(y))
            };
        }
        if x == 0.0 {
            let r = (0.5 * y.abs()).sqrt();
            return C64::new(r, r.copysign(y));
        }
        let d = x.hypot(y);
        let (r, s) = if x > 0.0 {
            let r = (0.5 * (d + x)).sqrt();
            (r, 0.5 * (y / r))
        } else {
            let s = (0.5 * (d - x)).sqrt();
            ((0.5 * (y / s)).abs(), s)
        };
        C64::new(r, s.copysign(y))
    }

    /// glibc's `cexp` for finite arguments.
    fn exp(self) -> C64 {
        let (sin, cos) = if self.im.abs() > f64::MIN_POSITIVE {
            self.im.sin_cos()
        } else {
            (self.im, 1.0)
        };
        let e = self.re.exp();
        C64::new(e * cos, e * sin)
    }

    fn is_real(self) -> bool {
        self.im == 0.0
    }
}

/// `buttap(N)`: poles `-exp(1j * pi * arange(-N + 1, N, 2) / (2 * N))`, no zeros, gain 1.
fn buttap(order: usize) -> Vec<C64> {
    let j_pi = C64::new(0.0, std::f64::consts::PI); // Python's `1j * pi`
    let two_n = C64::real((2 * order) as f64);
    (0..order)
        .map(|i| {
            let m = (2 * i) as f64 - (order as f64 - 1.0);
            j_pi.mul_simd(C64::real(m)).div(two_n).exp().neg()
        })
        .collect()
}

/// `lp2bp_zpk(z=[], p, k=1, wo, bw)`: zeros `(0,)*N`, poles `p_lp ± sqrt(p_lp² - wo²)`.
fn lp2bp_zpk(p: &[C64], wo: f64, bw: f64) -> (Vec<C64>, Vec<C64>, f64) {
    let degree = p.len();
    let p_lp: Vec<C64> = p
        .iter()
        .map(|&p| p.mul_simd(C64::real(bw)).div(C64::real(2.0)))
        .collect();
    let wo2 = C64::real(wo * wo);
    let roots: Vec<C64> = p_lp.iter().map(|p| p.square().sub(wo2).sqrt()).collect();
    let mut p_bp: Vec<C64> = p_lp.iter().zip(&roots).map(|(p, r)| p.add(*r)).collect();
    p_bp.extend(p_lp.iter().zip(&roots).map(|(p, r)| p.sub(*r)));
    let z_bp = vec![C64::real(0.0); degree];
    // `bw ** degree` is C's pow (Rust's powf calls the same libm), not repeated products.
    let k_bp = bw.powf(degree as f64);
    (z_bp, p_bp, k_bp)
}

/// `bilinear_zpk(z, p, k, fs=2)`: `(4 + s) / (4 - s)`, extra zeros at -1.
fn bilinear_zpk(z: &[C64], p: &[C64], k: f64) -> (Vec<C64>, Vec<C64>, f64) {
    let fs2 = C64::real(4.0);
    let degree = p.len() - z.len();
    let map = |s: &C64| fs2.add(*s).div(fs2.sub(*s));
    let mut z_z: Vec<C64> = z.iter().map(map).collect();
    z_z.extend(std::iter::repeat_n(C64::real(-1.0), degree));
    let p_z: Vec<C64> = p.iter().map(map).collect();
    // np.prod multiplies left to right with the plain product.
    let prod = |v: &[C64]| {
        v.iter()
            .map(|s| fs2.sub(*s))
            .reduce(C64::mul_plain)
            .unwrap_or(C64::real(1.0))
    };
    let k_z = k * prod(z).div(prod(p)).re;
    (z_z, p_z, k_z)
}

/// `np.poly(roots)` as scipy computes it: repeated `np.convolve(a, [1, -r])`, whose complex
/// dot products OpenBLAS's `zdotu` evaluates with fused accumulation. The imaginary parts are
/// returned too; for conjugate-symmetric roots scipy keeps only the real parts.
fn poly(roots: &[C64]) -> Vec<C64> {
    let mut a = vec![C64::real(1.0)];
    for r in roots {
        let q = r.neg();
        let mut next = Vec::with_capacity(a.len() + 1);
        next.push(a[0]);
        for k in 1..a.len() {
            let (x0, x1) = (a[k - 1], a[k]);
            // zdotu over ([x0, x1], [q, 1]): four running sums, each updated with an fma.
            let d0 = x1.re.mul_add(1.0, x0.re * q.re);
            let d1 = x1.im.mul_add(0.0, x0.im * q.im);
            let d2 = x1.re.mul_add(0.0, x0.re * q.im);
            let d3 = x1.im.mul_add(1.0, x0.im * q.re);
            next.push(C64::new(d0 - d1, d2 + d3));
        }
        next.push(a[a.len() - 1].mul_plain(q));
        a = next;
    }
    a
}

/// `_cplxreal`: complex roots merged into one representative per conjugate pair (positive
/// imaginary part, averaged), and the real roots, each sorted as scipy sorts them.
fn cplxreal(z: &[C64]) -> (Vec<C64>, Vec<f64>) {
    let tol = 100.0 * f64::EPSILON;
    let mut sorted = z.to_vec();
    // np.lexsort((abs(imag), real)) is stable.
    sorted.sort_by(|a, b| {
        a.re.total_cmp(&b.re)
            .then(a.im.abs().total_cmp(&b.im.abs()))
    });
    let is_real = |c: &C64| c.im.abs() <= tol * c.abs();
    let reals: Vec<f64> = sorted.iter().filter(|c| is_real(c)).map(|c| c.re).collect();
    let complex: Vec<C64> = sorted.iter().filter(|c| !is_real(c)).copied().collect();
    let mut zp: Vec<C64> = complex.iter().filter(|c| c.im > 0.0).copied().collect();
    let mut zn: Vec<C64> = complex.iter().filter(|c| c.im < 0.0).copied().collect();
    // The design produces exact conjugate pairs; a mismatch here would be a bug in this file.
    assert_eq!(zp.len(), zn.len(), "unpaired complex root");
    // Runs of (nearly) equal real parts are re-sorted by |imag| so that pairs line up.
    let mut start = 0;
    while start < zp.len() {
        let mut stop = start;
        while stop + 1 < zp.len() && zp[stop + 1].re - zp[stop].re <= tol * zp[stop].abs() {
            stop += 1;
        }
        if stop > start {
            for chunk in [&mut zp[start..=stop], &mut zn[start..=stop]] {
                chunk.sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
            }
        }
        start = stop + 1;
    }
    let zc = zp
        .iter()
        .zip(&zn)
        .map(|(p, n)| p.add(n.conj()).div(C64::real(2.0)))
        .collect();
    (zc, reals)
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Real,
    Complex,
    Any,
}

/// `_nearest_real_complex_idx`: index of the element of `from` nearest to `to` among the
/// real, complex or all elements (first one on ties).
fn nearest(from: &[C64], to: C64, which: Which) -> usize {
    let mut order: Vec<usize> = (0..from.len()).collect();
    order.sort_by(|&i, &j| from[i].sub(to).abs().total_cmp(&from[j].sub(to).abs()));
    let wanted = |i: &usize| match which {
        Which::Any => true,
        Which::Real => from[*i].is_real(),
        Which::Complex => !from[*i].is_real(),
    };
    *order
        .iter()
        .find(|i| wanted(i))
        .expect("zpk2sos pairing found no candidate zero")
}

/// Index of the pole nearest the unit circle (`np.argmin(abs(1 - abs(p)))`), optionally among
/// a subset.
fn worst(p: &[C64], among: impl Iterator<Item = usize>) -> usize {
    let distance = |i: usize| (1.0 - p[i].abs()).abs();
    among
        .reduce(|best, i| {
            if distance(i) < distance(best) {
                i
            } else {
                best
            }
        })
        .expect("zpk2sos pairing ran out of poles")
}

/// `_single_zpksos`: one section from up to two zeros and poles, right-aligned.
fn single_section(z: &[C64], p: &[C64]) -> [f64; 6] {
    let mut section = [0.0; 6];
    let b = poly(z);
    let a = poly(p);
    for (slot, c) in section[3 - b.len()..3].iter_mut().zip(&b) {
        *slot = c.re;
    }
    for (slot, c) in section[6 - a.len()..6].iter_mut().zip(&a) {
        *slot = c.re;
    }
    section
}

/// `zpk2sos(z, p, k, pairing='nearest')` for a digital filter with as many zeros as poles.
fn zpk2sos_nearest(z: &[C64], p: &[C64], k: f64) -> Vec<[f64; 6]> {
    assert_eq!(
        z.len(),
        p.len(),
        "band-pass designs have as many zeros as poles"
    );
    let (mut z, mut p) = (z.to_vec(), p.to_vec());
    let n_sections = p.len().div_ceil(2);
    if p.len() % 2 == 1 {
        p.push(C64::real(0.0));
        z.push(C64::real(0.0));
    }
    let flatten = |roots: &[C64]| -> Vec<C64> {
        let (complex, real) = cplxreal(roots);
        complex
            .into_iter()
            .chain(real.into_iter().map(C64::real))
            .collect()
    };
    let mut z = flatten(&z);
    let mut p = flatten(&p);
    let count_real = |v: &[C64]| v.iter().filter(|c| c.is_real()).count();
    let zero = C64::real(0.0);
    let mut sos = vec![[0.0; 6]; n_sections];
    // Sections are built from the last: the poles nearest the unit circle go last.
    for si in (0..n_sections).rev() {
        let p1 = p.remove(worst(&p, 0..p.len()));
        sos[si] = if p1.is_real() && count_real(&p) == 0 {
            let z1 = z.remove(nearest(&z, p1, Which::Real));
            single_section(&[z1, zero], &[p1, zero])
        } else if p.len() + 1 == z.len()
            && !p1.is_real()
            && count_real(&p) == 1
            && count_real(&z) == 1
        {
            // One real pole and one real zero must stay together: pair with a complex zero.
            let z1 = z.remove(nearest(&z, p1, Which::Complex));
            single_section(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                let reals = (0..p.len()).filter(|&i| p[i].is_real());
                p.remove(worst(&p, reals))
            } else {
                p1.conj()
            };
            if z.is_empty() {
                single_section(&[], &[p1, p2])
            } else {
                let z1 = z.remove(nearest(&z, p1, Which::Any));
                if !z1.is_real() {
                    single_section(&[z1, z1.conj()], &[p1, p2])
                } else if !z.is_empty() {
                    let z2 = z.remove(nearest(&z, p1, Which::Real));
                    single_section(&[z1, z2], &[p1, p2])
                } else {
                    single_section(&[z1], &[p1, p2])
                }
            }
        };
    }
    for c in &mut sos[0][..3] {
        *c *= k;
    }
    sos
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        crate::testutil::shared_fixtures()
    }

    fn npy(name: &str) -> Vec<f64> {
        let path = fixtures().join("reference").join(name);
        let array: Array1<f64> = ndarray_npy::read_npy(&path)
            .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
        array.to_vec()
    }

    /// Largest difference relative to the largest magnitude of `want`.
    fn rel_err(got: &[f64], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len(), "length");
        let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(want)
            .fold(0.0_f64, |m, (g, w)| m.max((g - w).abs()));
        diff / scale
    }

    fn flat(sos: &[[f64; 6]]) -> Vec<f64> {
        sos.iter().flatten().copied().collect()
    }

    fn json_vec(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .flat_map(|x| match x.as_array() {
                Some(row) => row.iter().map(|y| y.as_f64().expect("number")).collect(),
                None => vec![x.as_f64().expect("number")],
            })
            .collect()
    }

    // scipy 1.17 butter(N, [8, 30], btype='bandpass', fs=250), fixture
    // butter_8_30_fs250_coeffs.json; 1e-12 relative to the largest coefficient. (They agree to
    // the last bit; the slack covers serde_json's float parsing, which is not always exact.)
    #[test]
    fn design_matches_scipy_fixture() {
        let path = fixtures().join("reference/butter_8_30_fs250_coeffs.json");
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
        for order in [2, 4] {
            let want = &json[format!("butter{order}")];
            let band = BandPass::new(8.0, 30.0, order, 250.0).unwrap();
            let sos = band.sos();
            assert_eq!(sos.len(), order);
            assert!(rel_err(&flat(&sos), &json_vec(&want["sos"])) < 1e-12);
            let (b, a) = band.ba();
            assert!(rel_err(&b, &json_vec(&want["b"])) < 1e-12);
            assert!(rel_err(&a, &json_vec(&want["a"])) < 1e-12);
        }
    }

    fn band_8_30(order: usize) -> BandPass {
        BandPass::new(8.0, 30.0, order, 250.0).unwrap()
    }

    // scipy 1.17 sosfiltfilt(butter(4, [8, 30], fs=250, output='sos'), x), fixtures
    // filter_x.npy -> filter_sosfiltfilt_butter4.npy; 1e-9 relative to max |expected|.
    #[test]
    fn sosfiltfilt_matches_scipy_fixture() {
        let mut x = npy("filter_x.npy");
        sosfiltfilt(&band_8_30(4).sos(), &mut x).unwrap();
        let err = rel_err(&x, &npy("filter_sosfiltfilt_butter4.npy"));
        assert!(err < 1e-9, "relative error {err:e}");
    }

    // scipy 1.17 filtfilt(b, a, x) with butter(4, [8, 30], fs=250) 'ba', fixture
    // filter_filtfilt_butter4.npy; 1e-9 relative (the 'ba' form is ill-conditioned: about
    // 1e-11 here, from the initial-condition solve).
    #[test]
    fn filtfilt_matches_scipy_fixture() {
        let (b, a) = band_8_30(4).ba();
        let y = filtfilt(&b, &a, &npy("filter_x.npy")).unwrap();
        let err = rel_err(&y, &npy("filter_filtfilt_butter4.npy"));
        assert!(err < 1e-9, "relative error {err:e}");
    }

    // scipy 1.17 lfilter(b, a, x) with butter(2, [8, 30], fs=250) 'ba', fixture
    // filter_lfilter_butter2.npy; 1e-9 relative, for lfilter and for the causal sos mode.
    #[test]
    fn lfilter_and_causal_sos_match_scipy_fixture() {
        let x = npy("filter_x.npy");
        let want = npy("filter_lfilter_butter2.npy");
        let band = band_8_30(2);
        let (b, a) = band.ba();
        let err = rel_err(&lfilter(&b, &a, &x), &want);
        assert!(err < 1e-9, "lfilter relative error {err:e}");
        let mut y = x.clone();
        apply(&band.sos(), FilterMode::Causal, &mut y).unwrap();
        let err = rel_err(&y, &want);
        assert!(err < 1e-9, "causal sosfilt relative error {err:e}");
    }

    /// x[n] = ((37 n + 11) mod 29) - 14 + n / 4 for n < 48: exact in binary, so Python and
    /// Rust start from the same numbers.
    fn short_signal() -> Vec<f64> {
        (0..48_u32)
            .map(|n| f64::from((37 * n + 11) % 29) - 14.0 + 0.25 * f64::from(n))
            .collect()
    }

    /// Expected values computed once with scipy 1.17.1 / NumPy 2.4.6 (/work/venv-dev):
    /// `sos = butter(3, [4, 40], btype='bandpass', fs=160, output='sos')`, `b, a = butter(...)`,
    /// `sosfiltfilt(sos, x)`, `sosfilt(sos, x)` with `x` from [`short_signal`].
    struct Reference {
        order: usize,
        band: (f64, f64, f64),
        sos: &'static [[f64; 6]],
        b: &'static [f64],
        a: &'static [f64],
        sosfiltfilt: &'static [f64],
        sosfilt: &'static [f64],
    }

    const ORDER3_4_40_FS160: Reference = Reference {
        order: 3,
        band: (4.0, 40.0, 160.0),
        sos: &SOS3,
        b: &B3,
        a: &A3,
        sosfiltfilt: &SOSFILTFILT3,
        sosfilt: &SOSFILT3,
    };
    const SOS3: [[f64; 6]; 3] = [
        [
            0.13006301175731103,
            0.26012602351462205,
            0.13006301175731103,
            1.0,
            -0.04371559680310561,
            0.3904434654991031,
        ],
        [
            1.0,
            0.0,
            -1.0,
            1.0,
            -0.9212982931753818,
            0.07870170682461844,
        ],
        [1.0, -2.0, 1.0, 1.0, -1.8433234077997107, 0.8678022819670386],
    ];
    const B3: [f64; 7] = [
        0.13006301175731103,
        0.0,
        -0.39018903527193305,
        0.0,
        0.39018903527193305,
        0.0,
        -0.13006301175731103,
    ];
    const A3: [f64; 7] = [
        1.0,
        -2.808337297778198,
        3.156055251259805,
        -2.139622967364505,
        1.1422174778985266,
        -0.37178976364479466,
        0.02666632069720977,
    ];
    const SOSFILTFILT3: [f64; 48] = [
        0.6463065749289294,
        9.556382276619,
        8.684921353995252,
        3.6176282900407135,
        2.074909187092928,
        0.10777633235841577,
        -4.269185624006805,
        -2.9713919241464257,
        3.700777948214845,
        3.988194501320026,
        -2.0471444105279595,
        -1.828991504023056,
        4.878231422081685,
        6.571924244600586,
        2.6457787402165787,
        0.39315268402216064,
        -1.5413189086855263,
        -4.997051732048447,
        -3.6503706445956863,
        2.2777900632302592,
        3.649626031099646,
        0.24121323476426726,
        -1.620573555430362,
        -3.7669228975479507,
        -7.558178909173661,
        -5.717327803033996,
        1.1661813624329427,
        1.6392878651996365,
        -4.093937214395057,
        -3.5813028292561393,
        3.311919026754012,
        5.157528717989164,
        1.5099208758023994,
        -0.4074200312083997,
        -2.303241017547538,
        -5.892231919832195,
        -3.934467605731272,
        3.1613173109618464,
        3.9153213239904625,
        -1.6493517368256543,
        -0.9602775947512243,
        6.4851178756051375,
        8.952727117257766,
        5.050156561546222,
        2.6790208093924903,
        2.59863381587554,
        1.590061864675852,
        0.17674850870070324,
    ];
    const SOSFILT3: [f64; 48] = [
        -0.39018903527193305,
        -0.41295160921237956,
        2.998168511964827,
        5.89685986004612,
        0.35204992645170075,
        -4.800132323855879,
        -1.7702822768821365,
        -2.222263626334115,
        -5.442078745229998,
        0.9427481728347569,
        7.752614500547826,
        1.617077173396878,
        -4.928571735617947,
        2.1457769735557646,
        9.137643548734033,
        1.8106038196430414,
        -5.595333477454587,
        -2.4314680278120786,
        -2.3468172912642045,
        -5.8449247401581825,
        0.15397905604526207,
        6.96306711215366,
        0.94487253215864,
        -5.5807010883799855,
        -2.2707750479165267,
        -2.0263114779775493,
        -5.187202367482154,
        1.0527782135509431,
        7.942131470928192,
        1.9583000530148815,
        -4.537930972991665,
        2.5352614685466612,
        9.546293694579097,
        2.2425962642796997,
        -5.1629127038282885,
        -2.0148583461157283,
        -1.949657623073049,
        -5.471075683527806,
        0.49759770012354876,
        7.271338944205376,
        1.2157378473237948,
        -5.34819498739572,
        1.6946426844642912,
        8.721337830683087,
        1.4588001320607882,
        -5.891769326049069,
        -2.6744011945401818,
        -2.5272405327929346,
    ];

    /// As above with `butter(5, [0.5, 45], btype='bandpass', fs=512)`: a wide band whose poles
    /// include real pairs, and a section with a zero `b1`.
    const ORDER5_05_45_FS512: Reference = Reference {
        order: 5,
        band: (0.5, 45.0, 512.0),
        sos: &SOS5,
        b: &B5,
        a: &A5,
        sosfiltfilt: &SOSFILTFILT5,
        sosfilt: &SOSFILT5,
    };
    const SOS5: [[f64; 6]; 5] = [
        [
            0.0007020029148247298,
            0.0014040058296494596,
            0.0007020029148247298,
            1.0,
            -1.2078758497371722,
            0.4123840192984128,
        ],
        [1.0, 2.0, 1.0, 1.0, -1.470477707095831, 0.7261103638449937],
        [1.0, 0.0, -1.0, 1.0, -1.559733322378849, 0.562447506638826],
        [1.0, -2.0, 1.0, 1.0, -1.9900198726360925, 0.9900584105203243],
        [1.0, -2.0, 1.0, 1.0, -1.9962435959568214, 0.9962813254113362],
    ];
    const B5: [f64; 11] = [
        0.0007020029148247298,
        0.0,
        -0.0035100145741236493,
        0.0,
        0.007020029148247299,
        0.0,
        -0.007020029148247299,
        0.0,
        0.0035100145741236493,
        0.0,
        -0.0007020029148247298,
    ];
    const A5: [f64; 11] = [
        1.0,
        -8.224350347804767,
        30.507648757297957,
        -67.26263882945965,
        97.67103555395319,
        -97.64441322840439,
        68.08211447933648,
        -32.695574110114194,
        10.350497193209428,
        -1.9504422769340333,
        0.16612280892016487,
    ];
    const SOSFILTFILT5: [f64; 48] = [
        0.10998478112488597,
        1.4241806260544845,
        2.519127407744813,
        3.2499602694073193,
        3.5913012046619146,
        3.63662522135206,
        3.555528134802602,
        3.528690065115099,
        3.6864554156876403,
        4.072041819707993,
        4.638341347341666,
        5.274352721275054,
        5.848314480663799,
        6.251058240742871,
        6.42471090524684,
        6.368394726914658,
        6.1225306220954945,
        5.742678928513016,
        5.277737959459695,
        4.763461831429076,
        4.23245149067595,
        3.731343311820757,
        3.331076622443464,
        3.119854023299587,
        3.178259343064112,
        3.5461210091178463,
        4.195837037737713,
        5.024913731009373,
        5.8730898368795375,
        6.560629635613973,
        6.937484760093703,
        6.929105666111598,
        6.564160738697309,
        5.973466587181922,
        5.3581661859027685,
        4.935695375841005,
        4.879736590766357,
        5.271878783648362,
        6.0778367426891124,
        7.152616867748634,
        8.271053596013,
        9.175161774133269,
        9.627443144490472,
        9.458734892791202,
        8.600833839984118,
        7.098395775166358,
        5.100020704283095,
        2.832594972341514,
    ];
    const SOSFILT5: [f64; 48] = [
        -0.0021060087444741893,
        -0.013635038447266344,
        -0.02788287506738491,
        0.021481627285331383,
        0.24813749490854298,
        0.7048446199211672,
        1.3113014091838202,
        1.88803862521234,
        2.214504916239135,
        2.1190020062909816,
        1.6204213154116516,
        0.9575137311534285,
        0.422603641968166,
        0.20674662176520175,
        0.41347386206830555,
        1.0962637705966218,
        2.194585087982285,
        3.494123377979782,
        4.6908821309878626,
        5.473976199607807,
        5.6293247846900805,
        5.181835458652204,
        4.4136613389193045,
        3.6802847571294706,
        3.2168283040352756,
        3.0716052984339695,
        3.1151025629465248,
        3.133769336776204,
        3.013050050697317,
        2.823411474690601,
        2.706230602443786,
        2.7534288473403703,
        3.033352087511871,
        3.6206793979000764,
        4.512371015041833,
        5.563800981302178,
        6.532047056908347,
        7.145625803993916,
        7.204144211798365,
        6.724062795247574,
        5.965178467040653,
        5.256222958869602,
        4.829560425797488,
        4.825281236728147,
        5.322137383725699,
        6.271136984950188,
        7.457088304116425,
        8.566565360801413,
    ];

    // Embedded scipy 1.17.1 values (see `Reference`): sos within 1e-14 relative to the
    // largest coefficient of its section (on this machine they are bit-identical; other libm
    // builds may differ in an ulp of `tan`), ba within 1e-12 relative, sosfiltfilt and sosfilt
    // within 1e-12 relative to max |expected|.
    #[test]
    fn other_designs_match_embedded_scipy_values() {
        for r in [ORDER3_4_40_FS160, ORDER5_05_45_FS512] {
            let (low, high, rate) = r.band;
            let band = BandPass::new(low, high, r.order, rate).unwrap();
            let sos = band.sos();
            assert_eq!(sos.len(), r.sos.len());
            for (got, want) in sos.iter().zip(r.sos) {
                let err = rel_err(got, want);
                assert!(
                    err < 1e-14,
                    "order {}: section {got:?} vs {want:?}",
                    r.order
                );
            }
            let (b, a) = band.ba();
            assert!(rel_err(&b, r.b) < 1e-12 && rel_err(&a, r.a) < 1e-12);
            let mut y = short_signal();
            sosfiltfilt(&sos, &mut y).unwrap();
            assert!(rel_err(&y, r.sosfiltfilt) < 1e-12, "order {}", r.order);
            let mut y = short_signal();
            sosfilt(&sos, &mut y);
            assert!(rel_err(&y, r.sosfilt) < 1e-12, "order {}", r.order);
        }
    }

    /// |H(e^{jw})| of a cascade of sections at `f` Hz.
    fn gain(sos: &[[f64; 6]], f: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * f / rate;
        let z1 = C64::new(w.cos(), -w.sin()); // z^-1
        let z2 = z1.mul_plain(z1);
        sos.iter()
            .map(|s| {
                let num = C64::real(s[0])
                    .add(z1.mul_plain(C64::real(s[1])))
                    .add(z2.mul_plain(C64::real(s[2])));
                let den = C64::real(s[3])
                    .add(z1.mul_plain(C64::real(s[4])))
                    .add(z2.mul_plain(C64::real(s[5])));
                num.abs() / den.abs()
            })
            .product()
    }

    /// The Butterworth magnitude the design must have: with the bilinear pre-warp
    /// `W(f) = 4 tan(pi f / rate)`, `|H| = 1 / sqrt(1 + ((W² - W_lo W_hi) / (W (W_hi - W_lo)))^(2N))`.
    fn butterworth_gain(band: &BandPass, f: f64) -> f64 {
        let warp = |f: f64| 4.0 * (std::f64::consts::PI * f / band.rate()).tan();
        let (lo, hi, w) = (warp(band.low()), warp(band.high()), warp(f));
        let ratio = (w * w - lo * hi) / (w * (hi - lo));
        1.0 / (1.0 + ratio.abs().powi(2 * band.order() as i32)).sqrt()
    }

    fn random_band(rng: &mut Xoshiro256PlusPlus) -> BandPass {
        let rate = rng.gen_range(100.0..2000.0);
        let nyquist = rate / 2.0;
        let low = rng.gen_range(0.01..0.6) * nyquist;
        let high = rng.gen_range(low + 0.05 * nyquist..0.95 * nyquist);
        BandPass::new(low, high, rng.gen_range(1..=8), rate).unwrap()
    }

    // Property, 300 random designs (seed 7): gain 1 at the pre-warped centre and 1/sqrt(2) at
    // both edges within 1e-9; at 20 random frequencies the analytic Butterworth magnitude
    // within 1e-8 absolute.
    #[test]
    fn designs_have_butterworth_magnitude() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..300 {
            let band = random_band(&mut rng);
            let sos = band.sos();
            let rate = band.rate();
            // The geometric centre of the pre-warped edges, mapped back to hertz.
            let warp = |f: f64| (std::f64::consts::PI * f / rate).tan();
            let centre =
                (warp(band.low()) * warp(band.high())).sqrt().atan() * rate / std::f64::consts::PI;
            assert!((gain(&sos, centre, rate) - 1.0).abs() < 1e-9, "{band:?}");
            for edge in [band.low(), band.high()] {
                let g = gain(&sos, edge, rate);
                assert!(
                    (g - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9,
                    "{band:?}"
                );
            }
            for _ in 0..20 {
                let f = rng.gen_range(0.001..0.999) * rate / 2.0;
                let (got, want) = (gain(&sos, f, rate), butterworth_gain(&band, f));
                assert!(
                    (got - want).abs() < 1e-8,
                    "{band:?} at {f} Hz: {got} vs {want}"
                );
            }
        }
    }

    /// A sinusoid of `f` Hz, long enough to settle.
    fn tone(f: f64, rate: f64, samples: usize) -> Vec<f64> {
        (0..samples)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / rate).sin())
            .collect()
    }

    // Property on the project's band (8-30 Hz, order 4, 250 Hz): zero-phase filtering keeps a
    // 15 Hz tone within 1e-3 (|H|² there is 1 - 1e-6) and in phase, and attenuates 2 Hz and
    // 60 Hz tones below 1e-3 of their amplitude, away from the edges.
    #[test]
    fn zero_phase_passes_the_band_and_stops_the_rest() {
        let sos = band_8_30(4).sos();
        let middle = 1000..4000;
        let mut x = tone(15.0, 250.0, 5000);
        let original = x.clone();
        sosfiltfilt(&sos, &mut x).unwrap();
        let worst = middle
            .clone()
            .map(|i| (x[i] - original[i]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "pass band changed by {worst}");
        for f in [2.0, 60.0] {
            let mut x = tone(f, 250.0, 5000);
            sosfiltfilt(&sos, &mut x).unwrap();
            let peak = middle.clone().map(|i| x[i].abs()).fold(0.0, f64::max);
            assert!(peak < 1e-3, "{f} Hz kept {peak}");
        }
    }

    // filter_rows over 5 rows (two lane groups and a single remainder row) equals apply() on
    // each row exactly, in both modes; seed 11.
    #[test]
    fn filter_rows_equals_apply_per_row() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let data = Array2::from_shape_simple_fn((5, 1234), || rng.gen_range(-50.0..50.0));
        for order in [1, 4, 9, 13] {
            let sos = BandPass::new(3.0, 40.0, order, 250.0).unwrap().sos();
            for mode in [FilterMode::ZeroPhase, FilterMode::Causal] {
                let mut rows = data.clone();
                filter_rows(&sos, mode, &mut rows).unwrap();
                for (r, row) in rows.rows().into_iter().enumerate() {
                    let mut one = data.row(r).to_vec();
                    apply(&sos, mode, &mut one).unwrap();
                    assert_eq!(row.to_vec(), one, "order {order} {mode:?} row {r}");
                }
            }
        }
        // Column-major input is filtered the same.
        let sos = band_8_30(4).sos();
        let mut fortran = data.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!fortran.is_standard_layout());
        let mut standard = data.clone();
        filter_rows(&sos, FilterMode::ZeroPhase, &mut fortran).unwrap();
        filter_rows(&sos, FilterMode::ZeroPhase, &mut standard).unwrap();
        assert_eq!(fortran, standard);
    }

    // Every lane width — the baseline's 2, AVX2's 4, and 1 and 8 — gives apply()'s result on
    // each row bit for bit, with full groups and the leftover rows (10 rows leave 2, filtered
    // as a group of 2; 11 leave 3, topped up with zeros), both modes; seed 12. Run here
    // without the wider registers' target features, which change the speed, not the
    // arithmetic.
    #[test]
    fn every_lane_width_equals_apply_per_row() {
        const SAMPLES: usize = 777;
        fn with_lanes<const L: usize>(sos: &[[f64; 6]], mode: FilterMode, flat: &mut [f64]) {
            let samples = SAMPLES;
            let plan = match mode {
                FilterMode::ZeroPhase => Some(ZeroPhasePlan::new(sos, samples).unwrap()),
                FilterMode::Causal => None,
            };
            let zi = sosfilt_zi(sos).unwrap();
            let spans = std::iter::once(0..samples).collect::<Vec<_>>();
            let job = Groups {
                sos,
                zi: &zi,
                plan: plan.as_ref(),
                samples,
                spans: &spans,
            };
            job.run::<L>(flat);
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(12);
        let sos = band_8_30(4).sos();
        for rows in [10, 11] {
            let data = Array2::from_shape_simple_fn((rows, SAMPLES), || rng.gen_range(-50.0..50.0));
            for mode in [FilterMode::ZeroPhase, FilterMode::Causal] {
                let mut want = data.clone();
                for mut row in want.rows_mut() {
                    apply(&sos, mode, row.as_slice_mut().unwrap()).unwrap();
                }
                type Run = fn(&[[f64; 6]], FilterMode, &mut [f64]);
                let runs: [Run; 4] = [
                    with_lanes::<1>,
                    with_lanes::<2>,
                    with_lanes::<4>,
                    with_lanes::<8>,
                ];
                for (run, lanes) in runs.iter().zip([1, 2, 4, 8]) {
                    let mut got = data.clone();
                    run(&sos, mode, got.as_slice_mut().unwrap());
                    assert_eq!(got, want, "{rows} rows, {lanes} lanes, {mode:?}");
                }
                // The width this CPU picks, through the public entry point.
                let mut got = data.clone();
                filter_rows(&sos, mode, &mut got).unwrap();
                assert_eq!(
                    got,
                    want,
                    "{rows} rows, {} lanes (this CPU), {mode:?}",
                    lanes()
                );
            }
        }
    }

    fn invalid(result: Result<BandPass>) -> String {
        match result {
            Err(Error::Invalid(message)) => message,
            other => panic!("expected an invalid-band error, got {other:?}"),
        }
    }

    #[test]
    fn bad_bands_are_errors_naming_the_value() {
        let message = invalid(BandPass::new(30.0, 8.0, 4, 250.0));
        assert!(
            message.contains("`30`") && message.contains("`8`"),
            "{message}"
        );
        assert!(invalid(BandPass::new(8.0, 8.0, 4, 250.0)).contains("`8`"));
        assert!(invalid(BandPass::new(8.0, 125.0, 4, 250.0)).contains("`125`"));
        assert!(invalid(BandPass::new(8.0, 200.0, 4, 250.0)).contains("`200`"));
        assert!(invalid(BandPass::new(f64::NAN, 30.0, 4, 250.0)).contains("`NaN`"));
        assert!(invalid(BandPass::new(8.0, f64::INFINITY, 4, 250.0)).contains("`inf`"));
        assert!(invalid(BandPass::new(0.0, 30.0, 4, 250.0)).contains("`0`"));
        assert!(invalid(BandPass::new(-1.0, 30.0, 4, 250.0)).contains("`-1`"));
        assert!(invalid(BandPass::new(8.0, 30.0, 0, 250.0)).contains("`0`"));
        assert!(invalid(BandPass::new(8.0, 30.0, 21, 250.0)).contains("`21`"));
        assert!(invalid(BandPass::new(8.0, 30.0, 4, f64::NAN)).contains("`NaN`"));
        assert!(invalid(BandPass::new(8.0, 30.0, 4, 0.0)).contains("`0`"));
        // Accepted extremes.
        assert!(BandPass::new(1e-3, 124.999, 20, 250.0).is_ok());
        assert!(BandPass::new(8.0, 30.0, 1, 250.0).is_ok());
    }

    #[test]
    fn short_signals_are_data_errors() {
        let sos = band_8_30(4).sos();
        // padlen = 3 * (2 * 4 + 1) = 27: 27 samples are too few, 28 are enough.
        let mut x = vec![1.0; 27];
        match sosfiltfilt(&sos, &mut x) {
            Err(Error::Data(message)) => {
                assert!(message.contains("`27`"), "{message}");
            }
            other => panic!("expected a data error, got {other:?}"),
        }
        assert!(sosfiltfilt(&sos, &mut [1.0; 28]).is_ok());
        let mut rows = Array2::zeros((3, 10));
        assert!(matches!(
            filter_rows(&sos, FilterMode::ZeroPhase, &mut rows),
            Err(Error::Data(_))
        ));
        assert!(filter_rows(&sos, FilterMode::Causal, &mut rows).is_ok());
        assert!(apply(&sos, FilterMode::ZeroPhase, &mut []).is_err());
        // filtfilt: padlen = 3 * max(len(a), len(b)) = 27 for order 4.
        let (b, a) = band_8_30(4).ba();
        match filtfilt(&b, &a, &[0.0; 27]) {
            Err(Error::Data(message)) => assert!(message.contains("`27`"), "{message}"),
            other => panic!("expected a data error, got {other:?}"),
        }
        assert!(matches!(
            filtfilt(&b, &[0.0, 0.0], &[0.0; 100]),
            Err(Error::Invalid(_))
        ));
        // A section without a0 = 1 is refused rather than silently misfiltered.
        let mut bad = sos.clone();
        bad[1][3] = 2.0;
        assert!(matches!(
            sosfiltfilt(&bad, &mut [0.0; 100]),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn serde_names_and_validation() {
        assert_eq!(
            serde_json::to_string(&FilterMode::ZeroPhase).unwrap(),
            "\"zero-phase\""
        );
        assert_eq!(
            serde_json::from_str::<FilterMode>("\"causal\"").unwrap(),
            FilterMode::Causal
        );
        let band = band_8_30(4);
        let text = serde_json::to_string(&band).unwrap();
        assert_eq!(serde_json::from_str::<BandPass>(&text).unwrap(), band);
        let bad = r#"{"low": 30.0, "high": 8.0, "order": 4, "rate": 250.0}"#;
        let err = serde_json::from_str::<BandPass>(bad).unwrap_err();
        assert!(err.to_string().contains("`30`"), "{err}");
    }

    /// Three channels of a brown-noise + 10 Hz + DC-offset signal, the kind of thing an EEG
    /// amplifier records (the DC offset makes a wrong initial state show).
    fn eeg_like(rows: usize, samples: usize) -> Array2<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let mut data = Array2::zeros((rows, samples));
        for (c, mut row) in data.rows_mut().into_iter().enumerate() {
            let mut walk = 0.0;
            for (i, v) in row.iter_mut().enumerate() {
                walk = 0.995 * walk + rng.gen_range(-5.0..5.0);
                *v = 300.0 * (c as f64 + 1.0) + walk + 20.0 * (i as f64 * 0.25).sin();
            }
        }
        data
    }

    #[test]
    fn spans_reproduce_whole_recording_filtering_bit_for_bit() {
        let samples = 40_000;
        let whole_input = eeg_like(3, samples);
        // Windows at the very start and end, near them, two overlapping, and isolated ones.
        let windows = [
            0..300,
            150..900,
            5_000..5_750,
            5_900..6_650,
            20_000..20_750,
            39_100..39_850,
            39_250..40_000,
        ];
        for (band, order) in [((8.0, 30.0), 4), ((8.0, 30.0), 2), ((4.0, 40.0), 8)] {
            let sos = BandPass::new(band.0, band.1, order, 250.0).unwrap().sos();
            let settle = settle_samples(&sos).unwrap();
            let spans = spans_around(windows.iter().cloned(), settle, samples);
            // The isolated windows stay apart: the test covers interior span edges.
            assert!(spans.len() >= 3, "{spans:?}");
            for mode in [FilterMode::ZeroPhase, FilterMode::Causal] {
                let mut whole = whole_input.clone();
                filter_rows(&sos, mode, &mut whole).unwrap();
                let mut part = whole_input.clone();
                let flat = part.as_slice_mut().unwrap();
                filter_spans(&sos, mode, flat, samples, &spans).unwrap();
                // Relative to the largest input (offset included): the state a span starts
                // from is off by up to that, decayed to rounding level over `settle` samples.
                let scale = whole_input.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
                let mut worst = 0.0_f64;
                for w in &windows {
                    let cols = ndarray::s![.., w.clone()];
                    for (g, e) in part.slice(cols).iter().zip(whole.slice(cols)) {
                        worst = worst.max((g - e).abs() / scale);
                    }
                }
                eprintln!("{band:?}/{order} {mode}: worst {worst:e}");
                // Rounding level (f64 eps is 2.2e-16); the fixtures' tolerance is 1e-9.
                assert!(worst <= 1e-14, "{band:?}/{order} {mode}: {worst:e}");
            }
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one span is the case under test
    fn span_bookkeeping() {
        assert_eq!(
            spans_around([10..20, 15..30, 100..110], 5, 112),
            vec![5..35, 95..112]
        );
        assert_eq!(spans_around([0..5], 0, 3), vec![0..3]);
        assert!(spans_around(Vec::<Range<usize>>::new(), 5, 10).is_empty());
        // 8-30 Hz order 4 at 250 Hz: slowest pole 0.9535 (scipy), 0.95350^968 < 1e-20.
        let sos = band_8_30(4).sos();
        assert_eq!(settle_samples(&sos), Some(968));
        let unstable = [[1.0, 0.0, 0.0, 1.0, 0.0, -1.5]];
        assert_eq!(settle_samples(&unstable), None);
        let mut x = vec![0.0; 100];
        let bad = filter_spans(&sos, FilterMode::Causal, &mut x, 100, &[10..50, 40..60]);
        assert!(matches!(bad, Err(Error::Invalid(m)) if m.contains("overlap")));
        let bad = filter_spans(&sos, FilterMode::Causal, &mut x, 100, &[10..150]);
        assert!(matches!(bad, Err(Error::Invalid(m)) if m.contains("`10..150`")));
    }
}
