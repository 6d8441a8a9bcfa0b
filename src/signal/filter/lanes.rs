//! The hot loops: second-order sections run over `L` independent channels at once, one in each
//! lane of a SIMD register, and the zero-phase (forward-backward) passes built on them.

use crate::{Error, Result};

use super::tf::sosfilt_zi;

/// The steady-state delays for a constant input `x0` in every lane.
#[inline(always)]
pub(super) fn scaled_zi<const L: usize>(zi: &[[f64; 2]], x0: [f64; L]) -> Vec<[[f64; L]; 2]> {
    zi.iter()
        .map(|z| [x0.map(|x| z[0] * x), x0.map(|x| z[1] * x)])
        .collect()
}

/// Channels filtered together on the x86-64 baseline: two doubles fill one SSE2 register.
/// Measured: 2 lanes run a channel about 3× faster than 1, while 4 lanes spill the filter
/// state out of the 16 SSE registers and are slower than 2.
pub(super) const LANES: usize = 2;

/// Channels [`filter_rows`](super::filter_rows) and [`filter_spans`](super::filter_spans)
/// filter together on this CPU: 4 with AVX2, else 2 (the x86-64 baseline's SSE2). The one
/// place the width is decided. Callers that split rows across threads split at multiples of it.
pub fn lanes() -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return 4;
    }
    LANES
}

/// Samples per block when channels are copied into interleaved lanes: the block stays in L1.
pub(super) const BLOCK: usize = 256;

/// Runs the cascade over equally long `rows` in place, forwards or backwards, through a small
/// interleaved block so that each step loads all lanes at once.
#[inline(always)]
pub(super) fn filter_in_blocks<const L: usize>(
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
pub(super) struct ZeroPhasePlan<'a> {
    pub(super) sos: &'a [[f64; 6]],
    pub(super) zi: Vec<[f64; 2]>,
    pub(super) padlen: usize,
}

impl<'a> ZeroPhasePlan<'a> {
    pub(super) fn new(sos: &'a [[f64; 6]], samples: usize) -> Result<Self> {
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
    /// side that does not is an interior edge of a span (see
    /// [`filter_spans`](super::filter_spans)): no padding, and the pass starts from the steady
    /// state of the first sample it meets.
    #[inline(always)]
    pub(super) fn run<const L: usize>(
        &self,
        mut rows: [&mut [f64]; L],
        at_start: bool,
        at_end: bool,
    ) {
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

pub(super) fn check_length(samples: usize, padlen: usize) -> Result<()> {
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
pub(super) fn cascade<'x, const L: usize>(
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
pub(super) fn cascade_fixed<'x, const S: usize, const L: usize>(
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
pub(super) fn cascade_any<'x, const L: usize>(
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
