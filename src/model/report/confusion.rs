//! The confusion matrix: counts and row percentages (the recall of each true class) in every
//! cell, shaded by the row percentage, with labelled axes.

use std::fmt::Write as _;

use super::colour::{self, hex};
use super::esc;

/// `m[true][predicted]` as SVG.
pub fn confusion_svg(classes: &[String], m: &[Vec<usize>]) -> String {
    let n = m.len().max(classes.len());
    let cell = 78.0;
    let longest = classes.iter().map(|c| c.chars().count()).max().unwrap_or(1) as f64;
    let left = 40.0 + (longest * 8.0).max(40.0);
    let top = 56.0;
    let width = left + cell * n as f64 + 16.0;
    let height = top + cell * n as f64 + 16.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="confusion matrix" font-family="inherit">"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="16" font-size="13" text-anchor="middle">predicted class</text>"#,
        left + cell * n as f64 / 2.0
    );
    let (lx, ly) = (14.0, top + cell * n as f64 / 2.0);
    let _ = write!(
        s,
        r#"<text x="{lx}" y="{ly}" font-size="13" text-anchor="middle" transform="rotate(-90 {lx} {ly})">true class</text>"#
    );
    for (j, c) in classes.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{}</text>"#,
            left + cell * (j as f64 + 0.5),
            top - 10.0,
            esc(c)
        );
    }
    for (i, row) in m.iter().enumerate() {
        let total: usize = row.iter().sum();
        let y = top + cell * i as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="13" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + cell / 2.0 + 4.0,
            esc(classes.get(i).map_or("", String::as_str))
        );
        for (j, &v) in row.iter().enumerate() {
            let x = left + cell * j as f64;
            let frac = if total > 0 {
                v as f64 / total as f64
            } else {
                0.0
            };
            let fill = colour::sequential(frac);
            let ink = if colour::is_dark(fill) {
                "#fff"
            } else {
                "#111"
            };
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{}" stroke="#fff" stroke-width="2"/><text x="{}" y="{}" font-size="17" font-weight="bold" text-anchor="middle" fill="{ink}">{v}</text><text x="{}" y="{}" font-size="12" text-anchor="middle" fill="{ink}">{:.1} %</text>"##,
                hex(fill),
                x + cell / 2.0,
                y + cell / 2.0 - 2.0,
                x + cell / 2.0,
                y + cell / 2.0 + 16.0,
                frac * 100.0
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_counts_and_row_percentages() {
        let classes: Vec<String> = vec!["left".into(), "right".into()];
        let svg = confusion_svg(&classes, &[vec![30, 10], vec![0, 0]]);
        assert!(svg.contains(">30</text>") && svg.contains(">75.0 %</text>"));
        assert!(svg.contains(">25.0 %</text>"));
        assert_eq!(
            svg.matches(">0.0 %</text>").count(),
            2,
            "an empty row is 0 %"
        );
        assert!(svg.contains(">predicted class<") && svg.contains(">true class<"));
    }
}
