//! The BNCI Horizon 2020 `.mat` files of BCI Competition IV 2a (`A01T.mat` … `A09E.mat`, the
//! files MOABB caches), turned into the same [`Recording`] the GDF reader gives.
//!
//! Each file is MATLAB v5 (compressed) with one variable, `data`: a 1×N cell array of runs,
//! each a struct with `X` (samples × 25, µV: 22 EEG then 3 EOG), `trial` (1-based sample of
//! each trial's start), `y` (class 1–4), `fs`, `classes`, `artifacts` (1 for a trial the
//! experts rejected), `gender`, `age`. The first runs (eye movements, rest) have no trials.
//!
//! The runs are concatenated in order, and the GDF events are rebuilt from the trial table:
//! 32766 at each run's start, 768 at each trial start, 1023 there for an artifact, and the cue
//! [`CUE_OFFSET_S`] after the start, coded 769–772 by `y` or, for an evaluation session, 783
//! with `y` returned as its true labels (as the GDF path reads them from `classlabel`). So the
//! same recording read from GDF or from `.mat` gives the same epochs.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::signal::epochs::{REJECTED, RUN_START, TRIAL_START, UNKNOWN_CUE};
use crate::signal::mat::{self, MatValue};
use crate::signal::montage::BCI_IV_2A_LABELS;
use crate::signal::{Event, Recording};

/// Seconds from a trial's start to its cue in the 2a paradigm.
pub const CUE_OFFSET_S: f64 = 2.0;

/// A BNCI file read as a recording.
#[derive(Debug, Clone)]
pub struct BnciFile {
    pub recording: Recording,
    /// Class (1–4) of every trial in time order, including rejected ones.
    pub labels: Vec<u8>,
    /// How many runs the file holds, and how many of them have trials.
    pub runs: usize,
    pub runs_with_trials: usize,
}

/// Parses a BNCI file held in memory. `evaluation` codes the cues 783 (with `labels` as their
/// true labels), as the evaluation session's GDF file does; otherwise 768 + y.
pub fn parse(bytes: &[u8], name: &str, evaluation: bool) -> Result<BnciFile> {
    let file = mat::parse(bytes, name)?;
    let Some(data) = file.get("data") else {
        let hint = if file.get("classlabel").is_some() {
            ": it holds only true labels (`classlabel`); put it beside its `.gdf` recording"
        } else {
            ""
        };
        return Err(Error::malformed(
            name,
            format!("no variable `data`, so not a BNCI Horizon 2a file{hint}"),
        ));
    };
    let runs: Vec<&MatValue> = match data {
        MatValue::Cell(cell) => cell.items.iter().collect(),
        // A file with a single run may hold the struct itself.
        MatValue::Struct(_) => vec![data],
        other => {
            return Err(Error::malformed(
                name,
                format!(
                    "variable `data` is a {}, a cell array of run structs was expected",
                    kind(other)
                ),
            ))
        }
    };
    if runs.is_empty() {
        return Err(Error::malformed(name, "variable `data` holds no run"));
    }

    // Runs' sample blocks, concatenated once all are checked (one copy of the data at a time).
    let mut blocks: Vec<(&[f64], usize)> = Vec::new();
    let mut events = Vec::new();
    let mut labels = Vec::new();
    let mut rate: Option<f64> = None;
    let mut offset = 0usize;
    let mut runs_with_trials = 0;
    for (r, run) in runs.iter().enumerate() {
        let at = |what: &str| format!("run {} `{what}`", r + 1);
        if !matches!(run, MatValue::Struct(_)) {
            return Err(Error::malformed(
                name,
                format!("run {} is a {}, a struct was expected", r + 1, kind(run)),
            ));
        }
        let field = |f: &str| {
            run.field(f, 0)
                .ok_or_else(|| Error::malformed(name, format!("{} is missing", at(f))))
        };
        let x = numeric(field("X")?, name, &at("X"))?;
        let fs = field("fs")?
            .as_scalar()
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                Error::malformed(name, format!("{} is not a positive number", at("fs")))
            })?;
        match rate {
            None => rate = Some(fs),
            Some(first) if first != fs => {
                return Err(Error::malformed(
                    name,
                    format!(
                        "{} is `{fs}` Hz but run 1 is sampled at `{first}` Hz",
                        at("fs")
                    ),
                ))
            }
            Some(_) => {}
        }
        let (n_samples, n_channels) = match x.dims.as_slice() {
            [s, c] => (*s, *c),
            dims => {
                return Err(Error::malformed(
                    name,
                    format!(
                        "{} has dimensions {dims:?}, samples × channels expected",
                        at("X")
                    ),
                ))
            }
        };
        if n_channels == 0 && n_samples == 0 {
            continue;
        }
        if n_channels != BCI_IV_2A_LABELS.len() {
            return Err(Error::malformed(
                name,
                format!(
                    "{} has `{n_channels}` channels; the 2a layout has {} (22 EEG + 3 EOG)",
                    at("X"),
                    BCI_IV_2A_LABELS.len()
                ),
            ));
        }
        blocks.push((&x.real, n_samples));

        let trials = vector(field("trial")?, name, &at("trial"))?;
        let y = vector(field("y")?, name, &at("y"))?;
        // Older exports leave `artifacts` out of runs without trials.
        let artifacts = match run.field("artifacts", 0) {
            Some(v) => vector(v, name, &at("artifacts"))?,
            None if trials.is_empty() => Vec::new(),
            None => {
                return Err(Error::malformed(
                    name,
                    format!("{} is missing", at("artifacts")),
                ))
            }
        };
        if y.len() != trials.len() || artifacts.len() != trials.len() {
            return Err(Error::malformed(
                name,
                format!(
                    "run {} has {} trial starts, {} labels `y` and {} artifact flags",
                    r + 1,
                    trials.len(),
                    y.len(),
                    artifacts.len()
                ),
            ));
        }
        events.push(event(offset, RUN_START));
        // `fs` comes from the file: a huge one would overflow the cue's position below.
        let cue = (CUE_OFFSET_S * fs).round() as usize;
        for (i, ((&start, &label), &artifact)) in trials.iter().zip(&y).zip(&artifacts).enumerate()
        {
            let valid = start.fract() == 0.0 && start >= 1.0 && start <= n_samples as f64;
            if !valid {
                return Err(Error::malformed(
                    name,
                    format!(
                        "{} {} is `{start}`, not a 1-based sample of the run's {n_samples}",
                        at("trial"),
                        i + 1
                    ),
                ));
            }
            if !(label.fract() == 0.0 && (1.0..=4.0).contains(&label)) {
                return Err(Error::malformed(
                    name,
                    format!(
                        "{} {} is `{label}`, a class 1–4 was expected",
                        at("y"),
                        i + 1
                    ),
                ));
            }
            let label = label as u8;
            let start = offset + start as usize - 1;
            events.push(event(start, TRIAL_START));
            if artifact != 0.0 {
                events.push(event(start, REJECTED));
            }
            let code = if evaluation {
                UNKNOWN_CUE
            } else {
                TRIAL_START + u16::from(label)
            };
            let at_cue = start.checked_add(cue).ok_or_else(|| {
                Error::malformed(
                    name,
                    format!("{} `{fs:e}` Hz puts the cue past any sample", at("fs")),
                )
            })?;
            events.push(event(at_cue, code));
            labels.push(label);
        }
        if !trials.is_empty() {
            runs_with_trials += 1;
        }
        offset += n_samples;
    }
    let Some(rate) = rate.filter(|_| offset > 0) else {
        return Err(Error::malformed(name, "no run holds any sample"));
    };
    let n_channels = BCI_IV_2A_LABELS.len();
    let mut flat = Vec::with_capacity(n_channels * offset);
    for c in 0..n_channels {
        // Column-major samples × channels: channel c of a run is one contiguous stretch.
        for (x, n) in &blocks {
            flat.extend_from_slice(&x[c * n..(c + 1) * n]);
        }
    }
    let data = Array2::from_shape_vec((n_channels, offset), flat)
        .map_err(|e| Error::malformed(name, format!("inconsistent runs: {e}")))?;
    Ok(BnciFile {
        recording: Recording {
            labels: BCI_IV_2A_LABELS.iter().map(|l| l.to_string()).collect(),
            rate,
            data,
            events,
        },
        labels,
        runs: runs.len(),
        runs_with_trials,
    })
}

fn event(position: usize, code: u16) -> Event {
    Event {
        position: position as u64,
        code,
        channel: 0,
        duration: 0,
    }
}

fn kind(value: &MatValue) -> &'static str {
    match value {
        MatValue::Numeric(_) => "numeric array",
        MatValue::Char(_) => "char array",
        MatValue::Cell(_) => "cell array",
        MatValue::Struct(_) => "struct array",
        MatValue::Unsupported { .. } => "array of an unsupported class",
    }
}

fn numeric<'a>(value: &'a MatValue, name: &str, what: &str) -> Result<&'a mat::NumericArray> {
    match value {
        MatValue::Numeric(a) if a.imag.is_none() => Ok(a),
        other => Err(Error::malformed(
            name,
            format!(
                "{what} is a {}, a real numeric array was expected",
                kind(other)
            ),
        )),
    }
}

/// A numeric vector (a row, a column, or empty).
fn vector(value: &MatValue, name: &str, what: &str) -> Result<Vec<f64>> {
    let a = numeric(value, name, what)?;
    if a.dims.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(Error::malformed(
            name,
            format!("{what} has dimensions {:?}, a vector was expected", a.dims),
        ));
    }
    Ok(a.real.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bnci/");
        std::fs::read(format!("{path}{name}")).unwrap()
    }

    #[test]
    fn reads_the_scipy_written_layout() {
        // tests/data/bnci/malformed/valid.mat: scipy.io.savemat, one run of 10 samples, X[s][c]
        // = 25 s + c, one trial starting at sample 2 (1-based), class 1.
        let file = parse(&fixture("malformed/valid.mat"), "valid.mat", false).unwrap();
        let rec = &file.recording;
        assert_eq!(rec.data.dim(), (25, 10));
        assert_eq!(rec.rate, 250.0);
        assert_eq!(rec.data[[3, 4]], 4.0 * 25.0 + 3.0);
        assert_eq!(rec.labels[22], "EOG-left");
        let codes: Vec<(u64, u16)> = rec.events.iter().map(|e| (e.position, e.code)).collect();
        assert_eq!(codes, vec![(0, RUN_START), (1, TRIAL_START), (501, 769)]);
        assert_eq!(file.labels, vec![1]);
        let eval = parse(&fixture("malformed/valid.mat"), "valid.mat", true).unwrap();
        assert_eq!(eval.recording.events[2].code, UNKNOWN_CUE);
    }

    #[test]
    fn concatenates_runs_and_rebuilds_events() {
        // A01T.mat: an eye run without trials, then a run of two trials (one artifact),
        // converted from tests/data/bnci/gdf/A01T.gdf by scripts/fixtures/make_bnci_fixtures.py.
        let file = parse(&fixture("mat/A01T.mat"), "A01T.mat", false).unwrap();
        assert_eq!((file.runs, file.runs_with_trials), (2, 1));
        assert_eq!(file.labels.len(), 2);
        let runs = file
            .recording
            .events
            .iter()
            .filter(|e| e.code == RUN_START)
            .count();
        assert_eq!(runs, 2);
        assert_eq!(
            file.recording
                .events
                .iter()
                .filter(|e| e.code == REJECTED)
                .count(),
            1
        );
    }

    #[test]
    fn malformed_files_are_refused_by_name() {
        let cases = [
            ("no_data", "no variable `data`"),
            ("labels_only", "holds only true labels (`classlabel`)"),
            ("data_numeric", "variable `data` is a numeric array"),
            ("run_not_struct", "run 2 is a char array"),
            ("missing_x", "run 1 `X` is missing"),
            ("x_char", "run 1 `X` is a char array"),
            ("x_22_channels", "has `22` channels"),
            ("trial_beyond_run", "run 1 `trial` 1 is `11`"),
            ("y_out_of_range", "run 1 `y` 1 is `7`"),
            ("y_length", "1 trial starts, 2 labels"),
            ("fs_mismatch", "run 2 `fs` is `100` Hz"),
            ("missing_fs", "run 1 `fs` is missing"),
        ];
        for (name, needle) in cases {
            let bytes = fixture(&format!("malformed/{name}.mat"));
            let e = parse(&bytes, name, false).unwrap_err().to_string();
            assert!(e.contains(needle), "{name}: `{e}` lacks `{needle}`");
            assert!(e.starts_with(&format!("`{name}`")), "{name}: {e}");
        }
    }

    /// `valid.mat` with its sampling rate (the one 250.0 in its data) replaced by `fs`.
    fn with_rate(fs: f64) -> Vec<u8> {
        use std::io::{Read, Write};
        let bytes = fixture("malformed/valid.mat");
        let mut inner = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[136..])
            .read_to_end(&mut inner)
            .unwrap();
        let at = inner
            .windows(8)
            .position(|w| w == 250f64.to_le_bytes())
            .unwrap();
        inner[at..at + 8].copy_from_slice(&fs.to_le_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&inner).unwrap();
        let stream = z.finish().unwrap();
        let mut out = bytes[..132].to_vec();
        out.extend_from_slice(&(stream.len() as u32).to_le_bytes());
        out.extend_from_slice(&stream);
        out
    }

    #[test]
    fn a_rate_that_puts_the_cue_past_any_sample_is_refused() {
        assert_eq!(
            parse(&with_rate(250.0), "v.mat", false)
                .unwrap()
                .recording
                .rate,
            250.0
        );
        // 2 s × 1e300 Hz saturates to usize::MAX samples: the cue's position overflowed.
        let e = parse(&with_rate(1e300), "fs.mat", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run 1 `fs` `1e300` Hz puts the cue past any sample"),
            "{e}"
        );
    }

    #[test]
    fn truncated_and_mutated_files_give_errors_not_panics() {
        use rand::{Rng, SeedableRng};
        let bytes = fixture("malformed/valid.mat");
        for cut in (0..bytes.len()).step_by(7) {
            assert!(
                parse(&bytes[..cut], "cut.mat", false).is_err(),
                "cut at {cut}"
            );
        }
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        for _ in 0..300 {
            let mut m = bytes.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..m.len());
                m[i] = rng.gen();
            }
            let _ = parse(&m, "mutated.mat", rng.gen());
        }
    }
}
