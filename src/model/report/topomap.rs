//! Topographic maps in the style of MNE's `plot_topomap`: each map's values interpolated by a
//! thin-plate spline ([`super::spline`]) on a fine grid over the head, drawn as an embedded PNG
//! (a data URI, so the page stays one file) clipped to the head circle, with the head outline
//! (circle, nose, ears), the electrodes as dots, and one colour scale shared by every map so
//! that maps can be compared.

use std::fmt::Write as _;

use base64::Engine as _;

use super::colour::{self, hex};
use super::esc;
use super::spline::ThinPlate;

/// Drawn radius of the head circle, px.
const R: f64 = 72.0;
/// Raster pixels per drawn pixel: 2 keeps print and high-density screens smooth.
const OVERSAMPLE: usize = 2;
/// Width and height of one map's cell, px (head, ears, nose, title).
const CELL_W: f64 = 2.0 * R + 36.0;
const CELL_H: f64 = 2.0 * R + 50.0;
const PER_ROW: usize = 5;
/// Anchors on a circle outside the head, so that the surface levels off towards the rim instead
/// of following the spline's linear term (MNE's `extrapolate='head'` with `border='mean'` does
/// the same with points on the head circle).
const ANCHORS: usize = 24;
const ANCHOR_RADIUS: f64 = 1.2;
const ANCHOR_NEIGHBOURS: usize = 4;

/// The whole figure: every map in rows, and the shared colour bar. `None` when no channel has
/// a known position.
pub fn maps_svg(
    maps: &[(String, Vec<f64>)],
    positions: &[Option<[f64; 2]>],
    names: &[String],
    unit: &str,
) -> Option<String> {
    let sensors: Vec<(usize, [f64; 2])> = positions
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (i, p)))
        .collect();
    if sensors.is_empty() || maps.is_empty() {
        return None;
    }
    // One scale for all maps: symmetric around zero, up to the largest electrode value.
    let vmax = maps
        .iter()
        .flat_map(|(_, v)| sensors.iter().filter_map(|&(i, _)| v.get(i)))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, |m, v| m.max(v.abs()));
    let vmax = if vmax > 0.0 { vmax } else { 1.0 };
    let cols = maps.len().min(PER_ROW);
    let rows = maps.len().div_ceil(PER_ROW);
    let bar_x = cols as f64 * CELL_W + 14.0;
    let width = bar_x + 110.0;
    let height = rows as f64 * CELL_H + 8.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="topographic maps" font-family="inherit">"#
    );
    for (k, (title, values)) in maps.iter().enumerate() {
        let ox = (k % PER_ROW) as f64 * CELL_W;
        let oy = (k / PER_ROW) as f64 * CELL_H;
        map(&mut s, k, ox, oy, title, values, &sensors, names, vmax);
    }
    colour_bar(&mut s, bar_x, 30.0, 2.0 * R, vmax, unit);
    s.push_str("</svg>");
    Some(s)
}

#[allow(clippy::too_many_arguments)]
fn map(
    s: &mut String,
    k: usize,
    ox: f64,
    oy: f64,
    title: &str,
    values: &[f64],
    sensors: &[(usize, [f64; 2])],
    names: &[String],
    vmax: f64,
) {
    let (cx, cy) = (ox + CELL_W / 2.0, oy + 30.0 + R);
    let _ = write!(
        s,
        r#"<text x="{cx}" y="{}" font-size="14" text-anchor="middle">{}</text>"#,
        oy + 14.0,
        esc(title)
    );
    let known: Vec<([f64; 2], f64)> = sensors
        .iter()
        .filter_map(|&(i, p)| values.get(i).filter(|v| v.is_finite()).map(|&v| (p, v)))
        .collect();
    if let Some(png) = raster(&known, vmax) {
        let _ = write!(
            s,
            r#"<clipPath id="head{k}"><circle cx="{cx}" cy="{cy}" r="{R}"/></clipPath><image x="{}" y="{}" width="{}" height="{}" preserveAspectRatio="none" clip-path="url(#head{k})" href="data:image/png;base64,{}"/>"#,
            cx - R,
            cy - R,
            2.0 * R,
            2.0 * R,
            base64::engine::general_purpose::STANDARD.encode(png)
        );
    }
    // Head outline: circle, nose pointing up, ears; drawn over the raster's edge.
    let nose = R * 0.12;
    let _ = write!(
        s,
        r##"<g fill="none" stroke="#222" stroke-width="1.4"><circle cx="{cx}" cy="{cy}" r="{R}"/><path d="M{:.1} {:.1} L{cx} {:.1} L{:.1} {:.1}"/><path d="M{:.1} {:.1} q{:.1} {:.1} 0 {:.1}"/><path d="M{:.1} {:.1} q{:.1} {:.1} 0 {:.1}"/></g>"##,
        cx - nose,
        cy - R * 0.99,
        cy - R - nose * 1.3,
        cx + nose,
        cy - R * 0.99,
        cx - R,
        cy - R * 0.18,
        -R * 0.16,
        R * 0.18,
        R * 0.36,
        cx + R,
        cy - R * 0.18,
        R * 0.16,
        R * 0.18,
        R * 0.36,
    );
    for &(i, p) in sensors {
        let name = names.get(i).map_or("", String::as_str);
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#111" stroke="#fff" stroke-width="0.6"><title>{}</title></circle>"##,
            cx + p[0] * R,
            cy - p[1] * R,
            esc(name)
        );
    }
}

/// The interpolated map as a PNG, `2R·OVERSAMPLE` pixels square over the unit disk; `None` when
/// fewer than three electrodes are known or the spline cannot be fitted.
fn raster(known: &[([f64; 2], f64)], vmax: f64) -> Option<Vec<u8>> {
    let spline = fit_with_anchors(known)?;
    let n = (2.0 * R) as usize * OVERSAMPLE;
    let mut rgb = Vec::with_capacity(n * n * 3);
    for gy in 0..n {
        for gx in 0..n {
            let x = -1.0 + (gx as f64 + 0.5) * 2.0 / n as f64;
            let y = 1.0 - (gy as f64 + 0.5) * 2.0 / n as f64;
            rgb.extend_from_slice(&colour::diverging(spline.eval([x, y]) / vmax));
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, n as u32, n as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&rgb).ok()?;
    writer.finish().ok()?;
    Some(out)
}

fn fit_with_anchors(known: &[([f64; 2], f64)]) -> Option<ThinPlate> {
    if known.len() < 3 {
        return None;
    }
    let mut points: Vec<[f64; 2]> = known.iter().map(|k| k.0).collect();
    let mut values: Vec<f64> = known.iter().map(|k| k.1).collect();
    for a in 0..ANCHORS {
        let t = a as f64 * std::f64::consts::TAU / ANCHORS as f64;
        let p = [ANCHOR_RADIUS * t.cos(), ANCHOR_RADIUS * t.sin()];
        let mut by_distance: Vec<(f64, f64)> = known
            .iter()
            .map(|(q, v)| ((q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2), *v))
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
        let near = &by_distance[..ANCHOR_NEIGHBOURS.min(by_distance.len())];
        values.push(near.iter().map(|n| n.1).sum::<f64>() / near.len() as f64);
        points.push(p);
    }
    ThinPlate::fit(&points, &values).or_else(|| {
        let (p, v): (Vec<_>, Vec<_>) = known.iter().copied().unzip();
        ThinPlate::fit(&p, &v)
    })
}

/// A vertical colour bar for -vmax..vmax with round ticks and the unit as its label.
fn colour_bar(s: &mut String, x: f64, y: f64, h: f64, vmax: f64, unit: &str) {
    let w = 14.0;
    s.push_str(r#"<linearGradient id="divergent" x1="0" y1="1" x2="0" y2="0">"#);
    for i in 0..=20 {
        let t = i as f64 / 20.0;
        let _ = write!(
            s,
            r#"<stop offset="{t}" stop-color="{}"/>"#,
            hex(colour::diverging(2.0 * t - 1.0))
        );
    }
    let _ = write!(
        s,
        r##"</linearGradient><rect x="{x}" y="{y}" width="{w}" height="{h}" fill="url(#divergent)" stroke="#222" stroke-width="0.8"/>"##
    );
    let step = colour::nice_step(vmax, 2);
    let mut v = -(vmax / step).floor() * step;
    while v <= vmax * (1.0 + 1e-9) {
        let ty = y + h * (1.0 - (v + vmax) / (2.0 * vmax));
        let _ = write!(
            s,
            r##"<line x1="{}" x2="{}" y1="{ty:.1}" y2="{ty:.1}" stroke="#222"/><text x="{}" y="{:.1}" font-size="12">{}</text>"##,
            x + w,
            x + w + 4.0,
            x + w + 7.0,
            ty + 4.0,
            colour::tick_label(v, step)
        );
        v += step;
    }
    let unit = if unit.is_empty() { "a.u." } else { unit };
    let (lx, ly) = (x + w + 62.0, y + h / 2.0);
    let _ = write!(
        s,
        r#"<text x="{lx}" y="{ly}" font-size="13" text-anchor="middle" transform="rotate(90 {lx} {ly})">{}</text>"#,
        esc(unit)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_share_one_scale_and_embed_a_raster_each() {
        let positions = vec![
            Some([0.0, 0.0]),
            Some([-0.5, 0.0]),
            Some([0.5, 0.0]),
            Some([0.0, 0.5]),
            None,
        ];
        let names: Vec<String> = ["Cz", "C3", "C4", "Fz", "X"].map(String::from).into();
        let maps = vec![
            ("a".to_owned(), vec![1.0, -2.0, 0.5, 0.0, 99.0]),
            ("b".to_owned(), vec![0.1, 0.2, -0.1, 0.0, 99.0]),
        ];
        let svg = maps_svg(&maps, &positions, &names, "µV").unwrap();
        assert_eq!(svg.matches("data:image/png;base64,").count(), 2);
        assert_eq!(svg.matches("<linearGradient").count(), 1, "one shared bar");
        // The scale spans the largest |value| of a placed electrode (2), not the unplaced 99.
        assert!(
            svg.contains(">−2</text>") && svg.contains(">2</text>"),
            "{svg}"
        );
        assert!(svg.contains("<title>C3</title>") && !svg.contains("<title>X</title>"));
        assert!(svg.contains(">µV</text>"));
        assert!(maps_svg(&maps, &[None; 5], &names, "").is_none());
    }

    #[test]
    fn the_raster_follows_the_values() {
        let known = [
            ([-0.5, 0.0], -1.0),
            ([0.5, 0.0], 1.0),
            ([0.0, 0.5], 0.0),
            ([0.0, -0.5], 0.0),
        ];
        let png = raster(&known, 1.0).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let n = info.width as usize;
        let at = |x: usize, y: usize| &buf[(y * n + x) * 3..(y * n + x) * 3 + 3];
        let (left, right) = (at(n / 4, n / 2), at(3 * n / 4, n / 2));
        assert!(left[2] > left[0], "negative (C3-like) is blue: {left:?}");
        assert!(right[0] > right[2], "positive is red: {right:?}");
    }
}
