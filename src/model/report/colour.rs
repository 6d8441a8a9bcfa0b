//! Colour maps that print well and that colour-blind readers can read: ColorBrewer's RdBu
//! (diverging, reversed so that negative is blue, as matplotlib's `RdBu_r` and MNE's topomaps)
//! and Blues (sequential), both designed by Brewer to stay distinct under the common colour
//! vision deficiencies. Okabe & Ito's palette for lines, which also differ by dash pattern.

/// ColorBrewer RdBu (11 classes) from most negative (dark blue) to most positive (dark red).
const RD_BU_R: [[u8; 3]; 11] = [
    [0x05, 0x30, 0x61],
    [0x21, 0x66, 0xac],
    [0x43, 0x93, 0xc3],
    [0x92, 0xc5, 0xde],
    [0xd1, 0xe5, 0xf0],
    [0xf7, 0xf7, 0xf7],
    [0xfd, 0xdb, 0xc7],
    [0xf4, 0xa5, 0x82],
    [0xd6, 0x60, 0x4d],
    [0xb2, 0x18, 0x2b],
    [0x67, 0x00, 0x1f],
];

/// ColorBrewer Blues (9 classes), light to dark.
const BLUES: [[u8; 3]; 9] = [
    [0xf7, 0xfb, 0xff],
    [0xde, 0xeb, 0xf7],
    [0xc6, 0xdb, 0xef],
    [0x9e, 0xca, 0xe1],
    [0x6b, 0xae, 0xd6],
    [0x42, 0x92, 0xc6],
    [0x21, 0x71, 0xb5],
    [0x08, 0x51, 0x9c],
    [0x08, 0x30, 0x6b],
];

/// Okabe & Ito's colour-blind-safe line colours: blue, vermillion, bluish green, reddish
/// purple, orange, sky blue.
pub const LINES: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];

/// Dash patterns paired with [`LINES`], so that lines differ without colour too.
pub const DASHES: [&str; 6] = ["", "7 4", "2 3", "9 3 2 3", "4 2", "1 2"];

/// Linear interpolation through `table` at `t` in 0..1 (clamped; NaN gives the middle).
fn lerp(table: &[[u8; 3]], t: f64) -> [u8; 3] {
    let t = if t.is_nan() { 0.5 } else { t.clamp(0.0, 1.0) };
    let pos = t * (table.len() - 1) as f64;
    let i = (pos.floor() as usize).min(table.len() - 2);
    let f = pos - i as f64;
    let mut out = [0; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let a = f64::from(table[i][c]);
        let b = f64::from(table[i + 1][c]);
        *o = (a + (b - a) * f).round() as u8;
    }
    out
}

/// The diverging colour of `v` in -1..1 (clamped).
pub fn diverging(v: f64) -> [u8; 3] {
    lerp(&RD_BU_R, (v + 1.0) / 2.0)
}

/// The sequential colour of `t` in 0..1 (clamped).
pub fn sequential(t: f64) -> [u8; 3] {
    lerp(&BLUES, t)
}

/// `#rrggbb` for SVG attributes.
pub fn hex([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Whether dark text would be hard to read on `rgb` (relative luminance below ~0.4).
pub fn is_dark([r, g, b]: [u8; 3]) -> bool {
    0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b) < 110.0
}

/// "Nice" round tick values covering 0..=max (1, 2 or 5 × 10^k steps, about `n` of them).
pub fn nice_step(max: f64, n: usize) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let unit = raw / mag;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A tick label without float noise: as many decimals as the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    // "-0" reads as a sign error in print.
    if s.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        s.trim_start_matches('-').to_owned()
    } else {
        s.replace('-', "−")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_hit_their_tables_ends_and_middle() {
        assert_eq!(diverging(-1.0), RD_BU_R[0]);
        assert_eq!(diverging(0.0), RD_BU_R[5]);
        assert_eq!(diverging(5.0), RD_BU_R[10]);
        assert_eq!(sequential(0.0), BLUES[0]);
        assert_eq!(sequential(1.0), BLUES[8]);
        assert_eq!(hex([255, 0, 16]), "#ff0010");
        assert!(is_dark(BLUES[8]) && !is_dark(BLUES[0]));
    }

    #[test]
    fn ticks_are_round_and_clean() {
        assert_eq!(nice_step(1.0, 4), 0.5);
        assert_eq!(nice_step(37.0, 4), 10.0);
        assert!((nice_step(0.013, 2) - 0.01).abs() < 1e-15);
        assert_eq!(tick_label(-0.0, 0.5), "0.0");
        assert_eq!(tick_label(-1e-17, 10.0), "0");
        assert_eq!(tick_label(-0.5, 0.5), "−0.5");
        assert_eq!(tick_label(20.0, 10.0), "20");
    }
}
