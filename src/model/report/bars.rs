//! Accuracy bar charts: value printed on every bar, labelled axes in percent, and the chance
//! level as a dashed line whose label sits in the right margin, clear of the bars.

use std::fmt::Write as _;

use super::esc;

const PLOT_H: f64 = 180.0;
const TOP: f64 = 24.0;
const LEFT: f64 = 58.0;
/// Room right of the plot for the chance label.
const RIGHT: f64 = 96.0;
const BOTTOM: f64 = 52.0;

/// The chart's SVG; `x_label` names what the bars are (e.g. "fold").
pub fn bars_svg(bars: &[(String, f64)], chance: f64, x_label: &str) -> String {
    let bw = (520.0 / bars.len().max(1) as f64).clamp(26.0, 56.0);
    let plot_w = bw * bars.len() as f64;
    let width = LEFT + plot_w + RIGHT;
    let height = TOP + PLOT_H + BOTTOM;
    let y_of = |v: f64| TOP + PLOT_H * (1.0 - v.clamp(0.0, 1.0));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="accuracy per {}" font-family="inherit">"#,
        esc(x_label)
    );
    for tick in 0..=4 {
        let v = tick as f64 / 4.0;
        let y = y_of(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#d9d9d9"/><text x="{}" y="{}" font-size="12" text-anchor="end">{:.0}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            v * 100.0
        );
    }
    for (i, (name, acc)) in bars.iter().enumerate() {
        let x = LEFT + bw * i as f64 + bw * 0.15;
        let w = bw * 0.7;
        let y = y_of(*acc);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="#4477aa"><title>{}: {:.1} %</title></rect>"##,
            TOP + PLOT_H - y,
            esc(name),
            acc * 100.0
        );
        // The value above the bar (inside it when the bar reaches the top).
        let (ty, fill) = if y - TOP < 16.0 {
            (y + 14.0, "#fff")
        } else {
            (y - 4.0, "#111")
        };
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{ty:.1}" font-size="{}" text-anchor="middle" fill="{fill}">{:.0}</text>"#,
            x + w / 2.0,
            if bw < 34.0 { 10 } else { 12 },
            acc * 100.0
        );
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            x + w / 2.0,
            TOP + PLOT_H + 16.0,
            esc(name)
        );
    }
    let cy = y_of(chance);
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{}" y1="{cy}" y2="{cy}" stroke="#222" stroke-width="1.2" stroke-dasharray="5 4"/><text x="{}" y="{}" font-size="12">chance {:.0} %</text>"##,
        LEFT + plot_w + 4.0,
        LEFT + plot_w + 8.0,
        cy + 4.0,
        chance * 100.0
    );
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#222"/><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#222"/><text x="{}" y="{}" font-size="13" text-anchor="middle">{}</text><text x="16" y="{}" font-size="13" text-anchor="middle" transform="rotate(-90 16 {})">accuracy (%)</text></svg>"##,
        TOP + PLOT_H,
        LEFT + plot_w,
        TOP + PLOT_H,
        TOP + PLOT_H,
        LEFT + plot_w / 2.0,
        TOP + PLOT_H + 40.0,
        esc(x_label),
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number_after(s: &str, key: &str) -> f64 {
        let at = s.find(key).unwrap() + key.len();
        s[at..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn values_axes_and_a_chance_label_clear_of_the_bars() {
        let bars: Vec<(String, f64)> = (1..=12)
            .map(|i| (i.to_string(), 0.4 + 0.05 * i as f64))
            .collect();
        let svg = bars_svg(&bars, 0.5, "fold");
        for (_, v) in &bars {
            assert!(
                svg.contains(&format!(">{:.0}</text>", v * 100.0)),
                "{v} printed"
            );
        }
        assert!(svg.contains(">accuracy (%)</text>") && svg.contains(">fold</text>"));
        // The chance label starts right of the last bar's right edge.
        let last = svg.rfind("<rect").unwrap();
        let right = number_after(&svg[last..], "x=\"") + number_after(&svg[last..], "width=\"");
        let label = svg.find(">chance 50 %<").unwrap();
        let text = svg[..label].rfind("<text").unwrap();
        assert!(number_after(&svg[text..], "x=\"") > right);
    }
}
