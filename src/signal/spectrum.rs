//! Power spectral density by Welch's method, as `scipy.signal.welch` computes it with its
//! defaults: a periodic Hann window of `nperseg` samples, 50 % overlap, each segment's mean
//! removed (`detrend='constant'`), one-sided density scaling (units²/Hz), the mean over
//! segments. The reports draw per-class spectra with it, where motor imagery's ERD shows.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// A planned Welch estimator for signals at one sampling rate and segment length, so that the
/// FFT plan and the window are made once for many trials.
pub struct Welch {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    rate: f64,
    /// `1 / (rate · Σ w²)`: scipy's `scaling='density'`.
    scale: f64,
}

impl Welch {
    /// `nperseg` samples per segment (at least 2) at `rate` Hz.
    pub fn new(nperseg: usize, rate: f64) -> Self {
        assert!(nperseg >= 2, "a Welch segment needs two samples");
        let window: Vec<f64> = (0..nperseg)
            // scipy's `get_window('hann', n)` is periodic (`sym=False`): n + 1 points, the last
            // dropped.
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nperseg as f64).cos())
            .collect();
        let scale = 1.0 / (rate * window.iter().map(|w| w * w).sum::<f64>());
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nperseg);
        Self {
            fft,
            window,
            rate,
            scale,
        }
    }

    pub fn nperseg(&self) -> usize {
        self.window.len()
    }

    /// The frequencies of [`Welch::psd`]'s bins, Hz: `0, rate/nperseg, …, rate/2`.
    pub fn freqs(&self) -> Vec<f64> {
        // numpy's `rfftfreq(n, 1 / rate)`, operation for operation.
        let step = 1.0 / (self.nperseg() as f64 * (1.0 / self.rate));
        (0..=self.nperseg() / 2).map(|k| k as f64 * step).collect()
    }

    /// The one-sided PSD of `x` (units²/Hz), one value per [`Welch::freqs`] bin; `None` when `x`
    /// is shorter than one segment (scipy would shorten the segment; the reports do not need it).
    pub fn psd(&self, x: &[f64]) -> Option<Vec<f64>> {
        let n = self.nperseg();
        if x.len() < n {
            return None;
        }
        let step = n - n / 2;
        let n_segments = (x.len() - n) / step + 1;
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut sum = vec![0.0; n / 2 + 1];
        for s in 0..n_segments {
            let segment = &x[s * step..s * step + n];
            let mean = segment.iter().sum::<f64>() / n as f64;
            for ((i, &v), w) in input.iter_mut().zip(segment).zip(&self.window) {
                *i = (v - mean) * w;
            }
            self.fft
                .process(&mut input, &mut spectrum)
                .expect("buffers made by the plan");
            for (acc, c) in sum.iter_mut().zip(&spectrum) {
                *acc += c.norm_sqr();
            }
        }
        let last = sum.len() - 1;
        for (k, v) in sum.iter_mut().enumerate() {
            *v *= self.scale / n_segments as f64;
            // One-sided: the negative frequencies' power folds onto the positive ones, except
            // at DC and, for an even segment, at Nyquist, which have no mirror.
            if k != 0 && !(n % 2 == 0 && k == last) {
                *v *= 2.0;
            }
        }
        Some(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::python_or_skip;

    /// A deterministic test signal: two sines, a DC offset and a slow ramp (which the
    /// per-segment mean removal must not fully hide), plus pseudo-random noise.
    fn signal(n: usize, rate: f64) -> Vec<f64> {
        let mut state = 12345u64;
        (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                let t = i as f64 / rate;
                3.0 + 0.01 * i as f64
                    + 5.0 * (2.0 * std::f64::consts::PI * 10.0 * t).sin()
                    + 2.0 * (2.0 * std::f64::consts::PI * 23.5 * t + 0.3).cos()
                    + noise
            })
            .collect()
    }

    #[test]
    fn a_sine_puts_its_power_at_its_frequency_and_parseval_holds() {
        let rate = 250.0;
        let welch = Welch::new(250, rate);
        let x: Vec<f64> = (0..750)
            .map(|i| 4.0 * (2.0 * std::f64::consts::PI * 12.0 * i as f64 / rate).sin())
            .collect();
        let psd = welch.psd(&x).unwrap();
        let freqs = welch.freqs();
        assert_eq!(psd.len(), 126);
        let peak = (0..psd.len())
            .max_by(|&a, &b| psd[a].total_cmp(&psd[b]))
            .unwrap();
        assert_eq!(freqs[peak], 12.0);
        // The integral of the density is the signal's variance, A²/2 = 8 (the Hann window
        // spreads the line over three bins, all inside the sum).
        let power: f64 = psd.iter().sum::<f64>() * rate / 250.0;
        assert!((power - 8.0).abs() < 0.05, "{power}");
        assert!(welch.psd(&x[..249]).is_none(), "shorter than one segment");
    }

    #[test]
    fn matches_scipy_welch() {
        let Some(python) = python_or_skip("matches_scipy_welch") else {
            return;
        };
        for (n, nperseg, rate) in [(750, 250, 250.0), (1001, 128, 160.0), (300, 75, 100.0)] {
            let x = signal(n, rate);
            let welch = Welch::new(nperseg, rate);
            let ours = welch.psd(&x).unwrap();
            let csv: Vec<String> = x.iter().map(|v| format!("{v:e}")).collect();
            let out = std::process::Command::new(&python)
                .arg("-c")
                .arg(
                    "import sys, numpy as np, scipy.signal as s\n\
                     x = np.array([float(v) for v in sys.stdin.read().split(',')])\n\
                     f, p = s.welch(x, fs=float(sys.argv[1]), nperseg=int(sys.argv[2]))\n\
                     print(','.join(repr(float(v)) for v in f)); print(','.join(repr(float(v)) for v in p))",
                )
                .arg(rate.to_string())
                .arg(nperseg.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child
                        .stdin
                        .take()
                        .unwrap()
                        .write_all(csv.join(",").as_bytes())?;
                    child.wait_with_output()
                })
                .expect("run BCIOPS_PYTHON");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            let mut lines = text.lines().map(|l| {
                l.split(',')
                    .map(|v| v.parse::<f64>().unwrap())
                    .collect::<Vec<f64>>()
            });
            let (freqs, theirs) = (lines.next().unwrap(), lines.next().unwrap());
            assert_eq!(freqs.len(), welch.freqs().len());
            for (a, b) in welch.freqs().iter().zip(&freqs) {
                assert!(
                    (a - b).abs() <= 1e-12 * rate,
                    "frequency bins: {a} vs scipy {b}"
                );
            }
            let peak = theirs.iter().cloned().fold(0.0, f64::max);
            for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                // Reference: scipy.signal.welch (scipy 1.17, pocketfft) with its defaults. Both
                // sum the same products in a different FFT order, so they agree to rounding:
                // 1e-12 of the spectrum's peak (measured about 1e-16).
                assert!(
                    (a - b).abs() <= 1e-12 * peak,
                    "n {n} nperseg {nperseg} bin {k}: {a} vs scipy {b}"
                );
            }
            assert_eq!(ours.len(), theirs.len());
        }
    }
}
