//! The page around the figures: one HTML file, light background and print-sized type, each
//! figure numbered with a caption that says how to read it.

use std::fmt::Write as _;

use super::bars::bars_svg;
use super::confusion::confusion_svg;
use super::esc;
use super::spectra::spectra_svg;
use super::topomap::maps_svg;
use super::Report;

const STYLE: &str = "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;font-size:15px;\
line-height:1.4;margin:2em auto;max-width:1100px;padding:0 1em;color:#111;background:#fff}\
h1{font-size:1.6em}h2{font-size:1.2em;margin:0 0 .4em}\
table{border-collapse:collapse}td,th{padding:3px 12px 3px 0;border-bottom:1px solid #ccc;\
text-align:left;vertical-align:top}\
figure{margin:1.6em 0;break-inside:avoid}figcaption{max-width:62em;color:#333;font-size:.93em}\
svg{display:block;max-width:100%;height:auto}text{fill:#111}\
@media print{body{margin:0;max-width:none;font-size:11pt}}";

impl Report {
    /// Renders the whole page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
            esc(&self.title)
        );
        let _ = write!(h, "<h1>{}</h1><table>", esc(&self.title));
        for (k, v) in &self.facts {
            let _ = write!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
        }
        h.push_str("</table>");
        let mut number = 0;
        let mut figure = |h: &mut String, title: &str, svg: &str, caption: &str| {
            number += 1;
            let _ = write!(
                h,
                "<figure><h2>Figure {number}. {}</h2>{svg}<figcaption>{}</figcaption></figure>",
                esc(title),
                esc(caption)
            );
        };
        if !self.confusion.is_empty() {
            figure(
                &mut h,
                "Confusion matrix",
                &confusion_svg(&self.classes, &self.confusion),
                "Test predictions pooled over the evaluation. Each cell: the number of trials of \
                 the true class (row) predicted as the column's class, and its share of the row \
                 (the diagonal is each class's recall). Shading follows the row percentage.",
            );
        }
        let chance = format!(
            "The dashed line is chance level ({:.0} %, one over the number of classes).",
            self.chance * 100.0
        );
        if !self.folds.is_empty() {
            figure(
                &mut h,
                "Accuracy per fold",
                &bars_svg(&self.folds, self.chance, "fold"),
                &format!("Test accuracy of each fold, in percent. {chance}"),
            );
        }
        if self.subjects.len() > 1 {
            figure(
                &mut h,
                "Accuracy per subject",
                &bars_svg(&self.subjects, self.chance, "subject"),
                &format!("Test accuracy over each subject's tested trials, in percent. {chance}"),
            );
        }
        if !self.maps.is_empty() {
            let unit = if self.map_unit.is_empty() {
                "a.u."
            } else {
                &self.map_unit
            };
            let csp_note = format!(
                "Each map is one component's spatial pattern (its forward model: how the \
                 source the filter extracts projects onto the electrodes), seen from \
                 above, nose up, interpolated by a thin-plate spline between the \
                 electrodes (dots). Red and blue are opposite signs; all maps share the \
                 colour scale ({unit}), so their strengths compare; a pattern's overall \
                 sign is arbitrary."
            );
            // A family other than CSP names its own maps (tangent-space reference, class
            // means, selected filter-bank patterns).
            let (heading, note) = if self.maps_title.is_empty() {
                ("CSP spatial patterns", csp_note.as_str())
            } else {
                (self.maps_title.as_str(), self.maps_note.as_str())
            };
            match maps_svg(&self.maps, &self.positions, &self.channel_names, unit) {
                Some(svg) => figure(&mut h, heading, &svg, note),
                None => {
                    let _ = write!(
                        h,
                        "<figure><h2>{}</h2><p>Channel positions are unknown for this \
                         montage, so the maps are not drawn.</p></figure>",
                        esc(heading)
                    );
                }
            }
        }
        if let Some(svg) = self
            .spectra
            .as_ref()
            .and_then(|sp| spectra_svg(sp, &self.classes))
        {
            let method = self.spectra.as_ref().map_or("", |sp| sp.method.as_str());
            figure(
                &mut h,
                "Power spectra per class",
                &svg,
                &format!(
                    "Power spectral density over the left (C3) and right (C4) hand areas of the \
                     motor cortex, per class, in dB on a shared scale. Imagined movement of one \
                     hand lowers mu (μ) and beta (β) power over the opposite hemisphere \
                     (event-related desynchronisation). {method}."
                ),
            );
        }
        h.push_str("</body></html>\n");
        h
    }
}

#[cfg(test)]
mod tests {
    use super::super::Spectra;
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
            maps: vec![("CSP 1".into(), vec![1.0, -1.0, 0.5, 0.2])],
            positions: vec![Some([0.0, 0.0]), Some([-0.5, 0.0]), Some([0.0, 0.5]), None],
            channel_names: vec!["Cz".into(), "C3".into(), "Fz".into(), "X".into()],
            map_unit: String::new(),
            maps_title: String::new(),
            maps_note: String::new(),
            spectra: Some(Spectra {
                freqs: vec![0.0, 10.0, 20.0],
                channels: vec![("C3".into(), vec![vec![1.0, 4.0, 2.0], vec![1.0, 2.0, 2.0]])],
                band: Some([8.0, 30.0]),
                method: "Welch".into(),
            }),
        };
        let html = report.to_html();
        assert!(html.contains("model &lt;A&amp;B&gt;"), "titles are escaped");
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
        assert_eq!(
            html.matches("<svg").count(),
            5,
            "confusion, folds, subjects, maps, spectra"
        );
        assert_eq!(html.matches("<figure>").count(), 5);
        assert!(html.contains(">41<") && html.contains(">82.0 %<"));
        assert!(
            html.contains("<title>C3</title>"),
            "electrodes are labelled"
        );
        assert!(
            html.contains(">a.u.</text>"),
            "the colour scale is labelled"
        );
        assert!(html.contains("data:image/png;base64,"));
    }
}
