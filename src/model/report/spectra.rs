//! Per-class power spectra over the sensorimotor cortex: the mean Welch PSD of each class's
//! trials at C3 and C4, in dB, one panel per channel on a shared scale. Imagining one hand's
//! movement lowers mu (8–12 Hz) and beta power over the opposite hemisphere (event-related
//! desynchronisation), which is what CSP picks up: the curves show whether the data hold it.

use std::fmt::Write as _;

use ndarray::{ArrayView3, Axis};

use super::colour::{self, DASHES, LINES};
use super::{esc, Spectra};
use crate::signal::montage;
use crate::signal::spectrum::Welch;

/// The channels drawn, by 10-10 name: the hand areas of the left and right motor cortex.
const CHANNELS: [&str; 2] = ["C3", "C4"];

impl Spectra {
    /// Mean PSD per class of `x` (trials × channels × samples, µV) at C3 and C4, by Welch's
    /// method with 1 s Hann segments (scipy's defaults otherwise). `None` when neither channel
    /// is present, no class has a trial, or the trials are shorter than a quarter second.
    pub fn of_trials(
        x: ArrayView3<f32>,
        y: &[usize],
        n_classes: usize,
        channel_names: &[String],
        rate: f64,
        band: Option<[f64; 2]>,
    ) -> Option<Spectra> {
        let (_, _, n_times) = x.dim();
        let nperseg = (rate.round() as usize).min(n_times);
        if !rate.is_finite() || rate <= 0.0 || (nperseg as f64) < rate / 4.0 || nperseg < 2 {
            return None;
        }
        let welch = Welch::new(nperseg, rate);
        let n_bins = welch.freqs().len();
        let mut channels = Vec::new();
        for wanted in CHANNELS {
            let Some(c) = channel_names
                .iter()
                .position(|n| montage::standard_name(n) == Some(wanted))
            else {
                continue;
            };
            let mut sums = vec![vec![0.0; n_bins]; n_classes];
            let mut counts = vec![0usize; n_classes];
            let mut buf = vec![0.0; n_times];
            for (trial, &class) in x.axis_iter(Axis(0)).zip(y) {
                if class >= n_classes {
                    continue;
                }
                for (b, v) in buf.iter_mut().zip(trial.row(c)) {
                    *b = f64::from(*v);
                }
                if let Some(psd) = welch.psd(&buf) {
                    for (s, p) in sums[class].iter_mut().zip(psd) {
                        *s += p;
                    }
                    counts[class] += 1;
                }
            }
            if counts.iter().all(|&n| n == 0) {
                return None;
            }
            for (s, &n) in sums.iter_mut().zip(&counts) {
                s.iter_mut().for_each(|v| *v /= n.max(1) as f64);
            }
            channels.push((wanted.to_owned(), sums));
        }
        if channels.is_empty() {
            return None;
        }
        Some(Spectra {
            freqs: welch.freqs(),
            channels,
            band,
            method: format!(
                "Welch's method: Hann windows of {nperseg} samples ({:.2} s, {:.2} Hz resolution), 50 % overlap, mean over each class's trials",
                nperseg as f64 / rate,
                rate / nperseg as f64
            ),
        })
    }
}

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 200.0;
const LEFT: f64 = 64.0;
const TOP: f64 = 28.0;
const GAP: f64 = 50.0;

/// The figure; `None` when there is nothing finite to draw.
pub fn spectra_svg(sp: &Spectra, classes: &[String]) -> Option<String> {
    let fmax = match sp.band {
        Some([_, hi]) if hi.is_finite() => (hi + 15.0).min(60.0),
        _ => 45.0,
    }
    .min(sp.freqs.last().copied().unwrap_or(0.0));
    if fmax <= 0.0 {
        return None;
    }
    let shown: Vec<usize> = (0..sp.freqs.len())
        // From 2 Hz: the lowest bins hold the band-pass filter's edge transients and the
        // segments' mean removal, not brain rhythms.
        .filter(|&k| sp.freqs[k] >= 2.0 && sp.freqs[k] <= fmax)
        .collect();
    let db = |p: f64| 10.0 * p.max(1e-30).log10();
    // The shared y range: from the top of the curves down 40 dB (the filter's stop band falls
    // far below that; those parts are clipped).
    let top = sp
        .channels
        .iter()
        .flat_map(|(_, per_class)| per_class.iter())
        .flat_map(|psd| shown.iter().filter_map(move |&k| psd.get(k)))
        .filter(|p| p.is_finite() && **p > 0.0)
        .map(|&p| db(p))
        .fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return None;
    }
    let ymax = (top / 5.0).ceil() * 5.0 + 5.0;
    let ymin = ymax - 45.0;
    let n = sp.channels.len() as f64;
    let width = LEFT + n * PANEL_W + (n - 1.0) * GAP + 150.0;
    let height = TOP + PANEL_H + 56.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="power spectra" font-family="inherit">"#
    );
    let _ = write!(
        s,
        r#"<clipPath id="spectra-plot"><rect x="0" y="0" width="{PANEL_W}" height="{PANEL_H}"/></clipPath>"#
    );
    let x_of = |f: f64| PANEL_W * f / fmax;
    let y_of = |d: f64| PANEL_H * (ymax - d) / (ymax - ymin);
    for (p, (name, per_class)) in sp.channels.iter().enumerate() {
        let ox = LEFT + p as f64 * (PANEL_W + GAP);
        let _ = write!(
            s,
            r#"<g transform="translate({ox} {TOP})"><text x="{}" y="-10" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"#,
            PANEL_W / 2.0,
            esc(name)
        );
        // The mu and beta bands, where motor imagery desynchronises.
        for (lo, hi, label, fill) in [(8.0, 12.0, "μ", "#e6e6e6"), (13.0, 30.0, "β", "#f2f2f2")] {
            if hi <= fmax {
                let _ = write!(
                    s,
                    r##"<rect x="{:.1}" y="0" width="{:.1}" height="{PANEL_H}" fill="{fill}"/><text x="{:.1}" y="14" font-size="12" text-anchor="middle" fill="#555">{label}</text>"##,
                    x_of(lo),
                    x_of(hi) - x_of(lo),
                    x_of((lo + hi) / 2.0)
                );
            }
        }
        let fstep = colour::nice_step(fmax, 5);
        let mut f = 0.0;
        while f <= fmax + 1e-9 {
            let x = x_of(f);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{PANEL_H}" y2="{}" stroke="#222"/><text x="{x:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"##,
                PANEL_H + 4.0,
                PANEL_H + 17.0,
                colour::tick_label(f, fstep)
            );
            f += fstep;
        }
        let mut d = ymin;
        while d <= ymax + 1e-9 {
            let y = y_of(d);
            let _ = write!(
                s,
                r##"<line x1="0" x2="{PANEL_W}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d0d0" stroke-width="0.6"/><text x="-6" y="{:.1}" font-size="12" text-anchor="end">{}</text>"##,
                y + 4.0,
                colour::tick_label(d, 10.0)
            );
            d += 10.0;
        }
        s.push_str(r#"<g clip-path="url(#spectra-plot)">"#);
        for (c, psd) in per_class.iter().enumerate() {
            let mut path = String::new();
            for &k in &shown {
                let Some(&v) = psd.get(k).filter(|v| v.is_finite()) else {
                    continue;
                };
                let cmd = if path.is_empty() { 'M' } else { 'L' };
                let _ = write!(path, "{cmd}{:.1} {:.1}", x_of(sp.freqs[k]), y_of(db(v)));
            }
            let _ = write!(
                s,
                r#"<path d="{path}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"#,
                LINES[c % LINES.len()],
                DASHES[c % DASHES.len()]
            );
        }
        let _ = write!(
            s,
            r##"</g><rect x="0" y="0" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#222"/><text x="{}" y="{}" font-size="13" text-anchor="middle">frequency (Hz)</text></g>"##,
            PANEL_W / 2.0,
            PANEL_H + 36.0
        );
    }
    let (lx, ly) = (16.0, TOP + PANEL_H / 2.0);
    let _ = write!(
        s,
        r#"<text x="{lx}" y="{ly}" font-size="13" text-anchor="middle" transform="rotate(-90 {lx} {ly})">power (dB re 1 µV²/Hz)</text>"#
    );
    let legend_x = LEFT + n * PANEL_W + (n - 1.0) * GAP + 16.0;
    for (c, class) in classes.iter().enumerate() {
        let y = TOP + 14.0 + 22.0 * c as f64;
        let _ = write!(
            s,
            r#"<line x1="{legend_x}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/><text x="{}" y="{}" font-size="13">{}</text>"#,
            legend_x + 30.0,
            LINES[c % LINES.len()],
            DASHES[c % DASHES.len()],
            legend_x + 36.0,
            y + 4.0,
            esc(class)
        );
    }
    s.push_str("</svg>");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn class_spectra_show_which_class_has_less_mu_at_c3() {
        // Two channels, C3 and C4; class 1 ("right") has a weaker 10 Hz rhythm at C3.
        let rate = 100.0;
        let names: Vec<String> = vec!["EEG-C3".into(), "EEG-C4".into(), "EOG".into()];
        let mut x = Array3::<f32>::zeros((4, 3, 300));
        let y = [0, 1, 0, 1];
        for t in 0..4 {
            for i in 0..300 {
                let s = (2.0 * std::f64::consts::PI * 10.0 * i as f64 / rate).sin();
                let c3 = if y[t] == 1 { 0.3 } else { 1.0 };
                x[[t, 0, i]] = (c3 * s) as f32;
                x[[t, 1, i]] = s as f32;
            }
        }
        let sp = Spectra::of_trials(x.view(), &y, 2, &names, rate, Some([8.0, 30.0])).unwrap();
        assert_eq!(sp.channels.len(), 2);
        assert_eq!(sp.channels[0].0, "C3");
        let k10 = sp.freqs.iter().position(|&f| f == 10.0).unwrap();
        let c3 = &sp.channels[0].1;
        let ratio = c3[1][k10] / c3[0][k10];
        assert!(
            (ratio - 0.09).abs() < 1e-6,
            "power scales with amplitude²: {ratio}"
        );
        let c4 = &sp.channels[1].1;
        assert!((c4[1][k10] / c4[0][k10] - 1.0).abs() < 1e-9);

        let classes: Vec<String> = vec!["left".into(), "right".into()];
        let svg = spectra_svg(&sp, &classes).unwrap();
        assert_eq!(
            svg.matches("<path d=\"M").count(),
            4,
            "2 channels × 2 classes"
        );
        assert!(svg.contains(">frequency (Hz)<") && svg.contains("dB re 1 µV²/Hz"));
        assert!(svg.contains(">right</text>"));
        assert!(Spectra::of_trials(x.view(), &y, 2, &names[2..], rate, None).is_none());
    }
}
