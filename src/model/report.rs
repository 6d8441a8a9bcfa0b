//! A self-contained HTML report (inline SVG, no scripts, no external files): people would rather
//! look than read. Confusion matrix, per-fold and per-subject accuracy, spatial patterns drawn
//! as topographic maps on the electrode montage, and per-class power spectra. What the report
//! shows is the plain data of [`Report`]; how each figure is drawn lives in `report/`.

mod bars;
mod colour;
mod confusion;
mod page;
mod spectra;
mod spline;
mod topomap;

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
    /// The maps' heading and caption (empty: CSP spatial patterns, with their caption).
    pub maps_title: String,
    pub maps_note: String,
    /// Channel positions on the unit disk (azimuthal projection), `None` when unknown.
    pub positions: Vec<Option<[f64; 2]>>,
    pub channel_names: Vec<String>,
    /// Label of the maps' shared colour scale (what their values measure); empty: "a.u.".
    pub map_unit: String,
    /// Per-class power spectra of a few channels (e.g. C3 and C4), when computed.
    pub spectra: Option<Spectra>,
}

/// Power spectral densities per channel and class, e.g. by [`crate::signal::spectrum::Welch`].
#[derive(Debug, Clone, Default)]
pub struct Spectra {
    /// Frequency of each bin, Hz.
    pub freqs: Vec<f64>,
    /// `(channel, one PSD per class of Report::classes, µV²/Hz per bin)`.
    pub channels: Vec<(String, Vec<Vec<f64>>)>,
    /// The pass band to shade, Hz, when the data were band-passed.
    pub band: Option<[f64; 2]>,
    /// How the spectra were estimated, shown under the figure.
    pub method: String,
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
