//! A self-contained HTML report (inline SVG, no scripts, no external files): people would rather
//! look than read. Confusion matrix, per-fold and per-subject accuracy, and spatial patterns
//! drawn as topographic maps on the electrode montage.

use std::fmt::Write as _;

/// What the report shows; everything is plain data so any step can fill it.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub title: String,
    /// Key facts shown as a table at the top (e.g. accuracy, kappa, parameters).
    pub facts: Vec<(String, String)>,
    pub classes: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    /// Bars: (label, accuracy in 0..1), e.g. per fold.
    pub folds: Vec<(String, f64)>,
    /// Bars: (label, accuracy in 0..1), e.g. per subject.
    pub subjects: Vec<(String, f64)>,
    /// Chance level drawn on the bar charts.
    pub chance: f64,
    /// Topographic maps: (title, one value per channel).
    pub maps: Vec<(String, Vec<f64>)>,
    /// The maps' heading and what they show (empty: CSP spatial patterns).
    pub maps_title: String,
    pub maps_note: String,
    /// Channel positions on the unit disk (azimuthal projection), `None` when unknown.
    pub positions: Vec<Option<[f64; 2]>>,
    pub channel_names: Vec<String>,
}

const CSP_HEADING: &str = "CSP spatial patterns";
const CSP_NOTE: &str = "Each map shows one component's spatial pattern (its forward model: how the source the filter extracts projects onto the electrodes), nose up; red and blue are opposite signs, the scale is per map.";

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A diverging blue-white-red colour for v in -1..1.
fn diverging(v: f64) -> String {
    let v = v.clamp(-1.0, 1.0);
    let (r, g, b) = if v >= 0.0 {
        (255.0, 255.0 * (1.0 - v), 255.0 * (1.0 - v))
    } else {
        (255.0 * (1.0 + v), 255.0 * (1.0 + v), 255.0)
    };
    format!("rgb({:.0},{:.0},{:.0})", r, g, b)
}

/// A white-to-blue colour for v in 0..1.
fn sequential(v: f64) -> String {
    let v = v.clamp(0.0, 1.0);
    format!(
        "rgb({:.0},{:.0},{:.0})",
        255.0 - 200.0 * v,
        255.0 - 150.0 * v,
        255.0 - 60.0 * v
    )
}

fn confusion_svg(classes: &[String], m: &[Vec<usize>]) -> String {
    let n = classes.len();
    let cell = 56.0;
    let left = 90.0;
    let top = 40.0;
    let width = left + cell * n as f64 + 20.0;
    let height = top + cell * n as f64 + 40.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="confusion matrix">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="14" font-size="12" text-anchor="middle">predicted</text>"#,
        left + cell * n as f64 / 2.0
    );
    for (j, c) in classes.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="32" font-size="11" text-anchor="middle">{}</text>"#,
            left + cell * (j as f64 + 0.5),
            esc(c)
        );
    }
    for (i, row) in m.iter().enumerate() {
        let total: usize = row.iter().sum::<usize>().max(1);
        let y = top + cell * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + cell / 2.0 + 4.0,
            esc(classes.get(i).map_or("", String::as_str))
        );
        for (j, &v) in row.iter().enumerate() {
            let x = left + cell * j as f64;
            let frac = v as f64 / total as f64;
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{}" stroke="#888"/>"##,
                sequential(frac)
            );
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{v}</text>"#,
                x + cell / 2.0,
                y + cell / 2.0 + 5.0
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="10" y="{}" font-size="12">true ↓</text></svg>"#,
        top + 12.0
    );
    s
}

fn bars_svg(bars: &[(String, f64)], chance: f64, label: &str) -> String {
    let bw = 34.0;
    let h = 160.0;
    let left = 40.0;
    let width = left + bw * bars.len() as f64 + 20.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" role="img" aria-label="{}">"#,
        h + 50.0,
        esc(label)
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = 10.0 + h * (1.0 - tick);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" font-size="10" text-anchor="end">{:.0}%</text>"##,
            width - 10.0,
            left - 4.0,
            y + 3.0,
            tick * 100.0
        );
    }
    for (i, (name, acc)) in bars.iter().enumerate() {
        let x = left + bw * i as f64 + 4.0;
        let bh = h * acc.clamp(0.0, 1.0);
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="{}" height="{bh}" fill="#4a7bb7"><title>{}: {:.1}%</title></rect>"##,
            10.0 + h - bh,
            bw - 8.0,
            esc(name),
            acc * 100.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            x + (bw - 8.0) / 2.0,
            h + 24.0,
            esc(name)
        );
    }
    let cy = 10.0 + h * (1.0 - chance);
    let _ = write!(
        s,
        r##"<line x1="{left}" x2="{}" y1="{cy}" y2="{cy}" stroke="#c33" stroke-dasharray="4 3"/><text x="{}" y="{}" font-size="10" fill="#c33" text-anchor="end">chance</text></svg>"##,
        width - 10.0,
        width - 10.0,
        cy - 3.0
    );
    s
}

/// A topographic map: values at electrode positions interpolated (inverse distance weighting)
/// over a grid clipped to the head circle, with a nose and electrode dots.
fn topomap_svg(
    title: &str,
    values: &[f64],
    positions: &[Option<[f64; 2]>],
    names: &[String],
) -> String {
    let size = 150.0;
    let r = 60.0;
    let (cx, cy) = (size / 2.0, size / 2.0 + 6.0);
    let known: Vec<([f64; 2], f64, &str)> = positions
        .iter()
        .zip(values)
        .zip(names)
        .filter_map(|((p, v), n)| p.map(|p| (p, *v, n.as_str())))
        .collect();
    let scale = known
        .iter()
        .map(|k| k.1.abs())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{}" role="img" aria-label="{}">"#,
        size + 14.0,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{cx}" y="12" font-size="11" text-anchor="middle">{}</text>"#,
        esc(title)
    );
    let n = 40;
    let step = 2.0 * r / n as f64;
    for gy in 0..n {
        for gx in 0..n {
            let x = -1.0 + (gx as f64 + 0.5) * 2.0 / n as f64;
            let y = 1.0 - (gy as f64 + 0.5) * 2.0 / n as f64;
            if x * x + y * y > 1.0 {
                continue;
            }
            let (mut num, mut den) = (0.0, 0.0);
            for (p, v, _) in &known {
                let d2 = (p[0] - x).powi(2) + (p[1] - y).powi(2) + 1e-6;
                let w = 1.0 / (d2 * d2);
                num += w * v;
                den += w;
            }
            let v = if den > 0.0 { num / den / scale } else { 0.0 };
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                cx - r + gx as f64 * step,
                cy - r + gy as f64 * step,
                step + 0.3,
                step + 0.3,
                diverging(v)
            );
        }
    }
    let _ = write!(
        s,
        r#"<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="black"/><path d="M{} {} L{cx} {} L{} {}" fill="none" stroke="black"/>"#,
        cx - 8.0,
        cy - r + 1.0,
        cy - r - 9.0,
        cx + 8.0,
        cy - r + 1.0
    );
    for (p, _, name) in &known {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="black"><title>{}</title></circle>"#,
            cx + p[0] * r,
            cy - p[1] * r,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

impl Report {
    /// Renders the whole page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>",
            esc(&self.title)
        );
        h.push_str("<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}section{margin:1.5em 0}.maps svg{margin-right:6px}</style></head><body>");
        let _ = write!(h, "<h1>{}</h1><table>", esc(&self.title));
        for (k, v) in &self.facts {
            let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        h.push_str("</table>");
        if !self.confusion.is_empty() {
            let _ = write!(
                h,
                "<section><h2>Confusion matrix</h2>{}</section>",
                confusion_svg(&self.classes, &self.confusion)
            );
        }
        if !self.folds.is_empty() {
            let _ = write!(
                h,
                "<section><h2>Accuracy per fold</h2>{}</section>",
                bars_svg(&self.folds, self.chance, "accuracy per fold")
            );
        }
        if self.subjects.len() > 1 {
            let _ = write!(
                h,
                "<section><h2>Accuracy per subject</h2>{}</section>",
                bars_svg(&self.subjects, self.chance, "accuracy per subject")
            );
        }
        if !self.maps.is_empty() {
            let (heading, note) = if self.maps_title.is_empty() {
                (CSP_HEADING, CSP_NOTE)
            } else {
                (self.maps_title.as_str(), self.maps_note.as_str())
            };
            let heading = esc(heading);
            if self.positions.iter().any(Option::is_some) {
                let _ = write!(
                    h,
                    "<section class=\"maps\"><h2>{heading}</h2><p>{}</p>",
                    esc(note)
                );
                for (title, values) in &self.maps {
                    h.push_str(&topomap_svg(
                        title,
                        values,
                        &self.positions,
                        &self.channel_names,
                    ));
                }
                h.push_str("</section>");
            } else {
                let _ = write!(h, "<section><h2>{heading}</h2><p>Channel positions are unknown for this montage, so the maps are not drawn.</p></section>");
            }
        }
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_self_contained_and_shows_everything() {
        let report = Report {
            title: "model <A&B>".into(),
            facts: vec![("accuracy".into(), "81.0%".into())],
            classes: vec!["left".into(), "right".into()],
            confusion: vec![vec![40, 10], vec![9, 41]],
            folds: vec![("1".into(), 0.8), ("2".into(), 0.82)],
            subjects: vec![("S1".into(), 0.9), ("S2".into(), 0.7)],
            chance: 0.5,
            maps: vec![("CSP 1".into(), vec![1.0, -1.0, 0.5])],
            positions: vec![Some([0.0, 0.0]), Some([-0.5, 0.0]), None],
            channel_names: vec!["Cz".into(), "C3".into(), "X".into()],
            ..Report::default()
        };
        let html = report.to_html();
        assert!(html.contains("model &lt;A&amp;B&gt;"), "titles are escaped");
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no external resources");
        assert_eq!(
            html.matches("<svg").count(),
            4,
            "confusion, folds, subjects, one map"
        );
        assert!(html.contains(">41<"));
        assert!(
            html.contains("<title>C3</title>"),
            "electrodes are labelled"
        );
    }
}
