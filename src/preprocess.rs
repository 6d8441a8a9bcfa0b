//! `preprocess` as a library call: recordings in, an epochs dataset out.
//!
//! One recording is in memory at a time (peak memory is bounded by the largest recording, not
//! the dataset): read, hash, decode the kept channels, fill gaps, band-pass the continuous
//! signal, cut windows around the cues and stream them into `X.npy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::dataset::npy::NpyF32Writer;
use crate::dataset::{self, FilterMeta, LabelsMeta, Meta, SourceMeta, TrialInfo, WindowMeta};
use crate::error::{Error, Result};
use crate::fsutil::{sha256_hex, write_atomic, StagedDir};
use crate::signal::epochs::{self, EpochSpec, GapIndex};
use crate::signal::filter::{self, BandPass, FilterMode};
use crate::signal::{gdf, labels, montage};

/// Everything `preprocess` needs besides its inputs and output.
#[derive(Debug, Clone)]
pub struct PreprocessConfig {
    /// Keep only these subjects (None: all found).
    pub subjects: Option<Vec<u32>>,
    /// Keep only these sessions, e.g. `T`, `E` (None: all found).
    pub sessions: Option<Vec<String>>,
    /// Band edges in Hz and scipy's `N`.
    pub band: (f64, f64),
    pub order: usize,
    pub mode: FilterMode,
    pub epochs: EpochSpec,
    /// Channel labels to keep, as in the file (None: every EEG channel).
    pub channels: Option<Vec<String>>,
    /// Extra directories searched for evaluation-session label files.
    pub labels_dirs: Vec<PathBuf>,
    /// Filter each cut window on its own (as a server sees one raw trial) instead of the
    /// continuous recording.
    pub per_trial: bool,
}

/// A recording to read, with what its name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub subject: u32,
    /// `T`, `E`, or empty when the name does not say.
    pub session: String,
    /// The true-label file for an evaluation session, when one was found.
    pub labels: Option<PathBuf>,
}

/// Reads `A01T` → (1, "T"); other names give subject 0 and no session unless they end in
/// digits followed by one letter.
pub fn parse_name(stem: &str) -> (u32, String) {
    let trimmed = stem.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &stem[trimmed.len()..];
    let digits: String = trimmed
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let subject = digits.parse().unwrap_or(0);
    let session = if suffix.len() == 1 && !digits.is_empty() {
        suffix.to_ascii_uppercase()
    } else {
        String::new()
    };
    (subject, session)
}

fn is_recording(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gdf"))
}

/// Expands files and directories into the recordings to read, in a stable order, and finds
/// each evaluation session's label file (`<stem>.mat`, `<stem>.txt` or `<stem>.labels`).
pub fn discover(inputs: &[PathBuf], config: &PreprocessConfig) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| Error::io("read", input, e))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Error::io("list", input, e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_recording(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if is_recording(input) {
            files.push(input.clone());
        } else {
            return Err(Error::Invalid(format!(
                "`{}` is not a recording bciops reads (expected a `.gdf` file or a directory)",
                input.display()
            )));
        }
    }
    files.dedup();
    let mut sources = Vec::new();
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (subject, session) = parse_name(&stem);
        if let Some(keep) = &config.subjects {
            if !keep.contains(&subject) {
                continue;
            }
        }
        if let Some(keep) = &config.sessions {
            if !keep.iter().any(|s| s.eq_ignore_ascii_case(&session)) {
                continue;
            }
        }
        let mut dirs: Vec<PathBuf> = path.parent().map(Path::to_owned).into_iter().collect();
        dirs.extend(config.labels_dirs.iter().cloned());
        let labels = dirs.iter().find_map(|dir| {
            ["mat", "txt", "labels"]
                .iter()
                .map(|ext| dir.join(format!("{stem}.{ext}")))
                .find(|p| p.is_file())
        });
        sources.push(SourceFile {
            path,
            subject,
            session,
            labels,
        });
    }
    if sources.is_empty() {
        let names: Vec<String> = inputs
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        return Err(Error::Invalid(format!(
            "no recording to read in {} (after the subject and session filters)",
            names.join(", ")
        )));
    }
    Ok(sources)
}

/// Trials written and dropped, by subject, session and class.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub out: String,
    pub trials: usize,
    pub channels: usize,
    pub samples: usize,
    pub rate: f64,
    pub classes: Vec<String>,
    /// subject → session → class → trials.
    pub counts: BTreeMap<u32, BTreeMap<String, BTreeMap<String, usize>>>,
    pub dropped: BTreeMap<String, usize>,
    /// Missing samples found (NaN gaps), over all recordings.
    pub gap_samples: u64,
}

/// Progress callback: called after each recording with its path and trials kept.
pub type OnFile<'a> = dyn FnMut(&SourceFile, usize) + 'a;

/// Runs `preprocess` and writes the dataset to `out` (replacing it only when complete).
pub fn run(
    sources: &[SourceFile],
    config: &PreprocessConfig,
    out: &Path,
    on_file: &mut OnFile<'_>,
) -> Result<Summary> {
    config.epochs.check()?;
    let staged = StagedDir::new(out)?;
    let mut writer: Option<NpyF32Writer> = None;
    let mut y: Vec<i64> = Vec::new();
    let mut trials: Vec<TrialInfo> = Vec::new();
    let mut source_meta: Vec<SourceMeta> = Vec::new();
    let mut layout: Option<(Vec<String>, f64)> = None;
    let mut sos: Vec<[f64; 6]> = Vec::new();
    let mut summary = Summary {
        out: out.display().to_string(),
        classes: config.epochs.classes.clone(),
        ..Summary::default()
    };
    let mut dropped = epochs::Dropped::default();

    for source in sources {
        let bytes = std::fs::read(&source.path).map_err(|e| Error::io("read", &source.path, e))?;
        let sha256 = sha256_hex(&bytes);
        let name = source.path.display().to_string();
        // Decode only the channels kept, so memory holds one copy of what is used.
        let wanted: Option<&Vec<String>> = layout.as_ref().map(|(l, _)| l).or(config.channels.as_ref());
        let keep = |label: &str| match wanted {
            Some(list) => list.iter().any(|l| l == label),
            None => montage::is_eeg(label),
        };
        let file = match gdf::parse_channels(&bytes, &name, keep) {
            Err(Error::Invalid(_)) => {
                return Err(Error::Data(format!(
                    "`{name}` has none of the channels asked for; pick some with `--channels` \
                     (it has: {})",
                    all_labels(&bytes, &name)
                )))
            }
            other => other?,
        };
        let rec = file.recording;

        // The first recording fixes the channels and rate; every other one must match them.
        let (labels_kept, rate) = match &layout {
            Some(l) => l.clone(),
            None => {
                let kept = config.channels.clone().unwrap_or_else(|| rec.labels.clone());
                let band = BandPass::new(config.band.0, config.band.1, config.order, rec.rate)?;
                sos = band.sos();
                layout = Some((kept.clone(), rec.rate));
                (kept, rec.rate)
            }
        };
        if rec.rate != rate {
            return Err(Error::Data(format!(
                "`{name}` is sampled at {} Hz but earlier recordings at {rate} Hz",
                rec.rate
            )));
        }
        if let Some(missing) = labels_kept.iter().find(|l| !rec.labels.contains(l)) {
            return Err(Error::Data(format!(
                "`{name}` has no channel `{missing}` (it has: {})",
                all_labels(&bytes, &name)
            )));
        }
        drop(bytes);
        let mut data: Array2<f64> = if rec.labels == labels_kept {
            rec.data
        } else {
            let rows: Vec<usize> = labels_kept
                .iter()
                .filter_map(|label| rec.labels.iter().position(|l| l == label))
                .collect();
            rec.data.select(Axis(0), &rows)
        };
        let n_samples = data.ncols();

        let row_slices: Vec<&[f64]> = data
            .rows()
            .into_iter()
            .filter_map(|r| r.to_slice())
            .collect();
        let gaps = GapIndex::new(&row_slices, n_samples);
        summary.gap_samples += gaps.total() as u64;
        if gaps.total() > 0 {
            for mut row in data.rows_mut() {
                if let Some(slice) = row.as_slice_mut() {
                    epochs::fill_gaps(slice);
                }
            }
        }

        let (labels_file, true_labels) = match &source.labels {
            Some(path) if rec.events.iter().any(|e| e.code == epochs::UNKNOWN_CUE) => {
                let raw = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
                let values = labels::read_labels(path)?;
                (
                    Some(LabelsMeta {
                        path: path.display().to_string(),
                        sha256: sha256_hex(&raw),
                    }),
                    Some(values),
                )
            }
            _ => (None, None),
        };
        let located = epochs::locate(
            &name,
            &rec.events,
            n_samples,
            rate,
            &config.epochs,
            true_labels.as_deref(),
            |start, len| gaps.has_gap(start, len),
        )?;

        if !config.per_trial {
            filter_rows_parallel(&sos, config.mode, &mut data)?;
        }

        let window = config.epochs.window_samples(rate);
        let w = match &mut writer {
            Some(w) => w,
            None => writer.insert(NpyF32Writer::create(
                &staged.path().join("X.npy"),
                &[labels_kept.len(), window],
            )?),
        };
        let source_index = source_meta.len();
        for t in &located.trials {
            let cut = data.slice_axis(Axis(1), ndarray::Slice::from(t.start..t.start + window));
            if config.per_trial {
                let mut trial = cut.to_owned();
                filter::filter_rows(&sos, config.mode, &mut trial)?;
                w.push(trial.iter().copied())?;
            } else {
                w.push(cut.iter().copied())?;
            }
            y.push(t.class as i64);
            trials.push(TrialInfo {
                subject: source.subject,
                session: source.session.clone(),
                run: t.run,
                trial: t.trial,
                event: t.code,
                source: source_index,
            });
            *summary
                .counts
                .entry(source.subject)
                .or_default()
                .entry(source.session.clone())
                .or_default()
                .entry(config.epochs.classes[t.class].clone())
                .or_default() += 1;
        }
        dropped.rejected += located.dropped.rejected;
        dropped.gaps += located.dropped.gaps;
        dropped.out_of_range += located.dropped.out_of_range;
        dropped.other_class += located.dropped.other_class;
        source_meta.push(SourceMeta {
            path: name,
            sha256,
            subject: source.subject,
            session: source.session.clone(),
            trials: located.trials.len(),
            labels: labels_file,
        });
        on_file(source, located.trials.len());
    }

    let (channels, rate) = layout.unwrap_or_default();
    let window = config.epochs.window_samples(rate);
    let n = match writer {
        Some(w) => w.finish()?,
        None => 0,
    };
    if n == 0 {
        return Err(Error::Data(format!(
            "no trial of classes `{}` was found in {} recording(s)",
            config.epochs.classes.join(","),
            sources.len()
        )));
    }
    ndarray_npy::write_npy(
        staged.path().join("y.npy"),
        &ndarray::Array1::from(y.clone()),
    )
    .map_err(|e| {
        Error::io(
            "write",
            staged.path().join("y.npy"),
            std::io::Error::other(e),
        )
    })?;
    write_atomic(
        &staged.path().join("trials.csv"),
        dataset::trials_csv(&trials, &y, &config.epochs.classes).as_bytes(),
    )?;
    summary.dropped = BTreeMap::from([
        ("rejected".to_owned(), dropped.rejected),
        ("gaps".to_owned(), dropped.gaps),
        ("out_of_range".to_owned(), dropped.out_of_range),
        ("other_class".to_owned(), dropped.other_class),
    ]);
    let meta = Meta {
        format: dataset::FORMAT.to_owned(),
        format_version: dataset::FORMAT_VERSION,
        bciops_version: env!("CARGO_PKG_VERSION").to_owned(),
        classes: config.epochs.classes.clone(),
        channels: channels.clone(),
        rate,
        unit: "uV".to_owned(),
        n_trials: n,
        window: WindowMeta {
            tmin: config.epochs.tmin,
            tmax: config.epochs.tmax,
            samples: window,
        },
        filter: FilterMeta {
            kind: "butterworth".to_owned(),
            order: config.order,
            band: [config.band.0, config.band.1],
            mode: config.mode.to_string(),
            per_trial: config.per_trial,
            sos,
        },
        events: config.epochs.events.clone(),
        keep_rejected: config.epochs.keep_rejected,
        sources: source_meta,
        dropped: summary.dropped.clone(),
    };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| Error::Invalid(e.to_string()))?;
    write_atomic(&staged.path().join("meta.json"), json.as_bytes())?;
    staged.commit()?;

    summary.trials = n;
    summary.channels = channels.len();
    summary.samples = window;
    summary.rate = rate;
    Ok(summary)
}

/// Every channel label of a GDF file, for error messages.
fn all_labels(bytes: &[u8], name: &str) -> String {
    gdf::parse(bytes, name)
        .map(|f| f.recording.labels.join(", "))
        .unwrap_or_default()
}

/// Filters every row, splitting the channels over the machine's cores.
fn filter_rows_parallel(sos: &[[f64; 6]], mode: FilterMode, data: &mut Array2<f64>) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows = data.nrows().max(1);
    let per = rows.div_ceil(threads.min(rows));
    std::thread::scope(|scope| {
        let handles: Vec<_> = data
            .axis_chunks_iter_mut(Axis(0), per)
            .map(|mut chunk| {
                scope.spawn(move || -> Result<()> {
                    for mut row in chunk.rows_mut() {
                        match row.as_slice_mut() {
                            Some(slice) => filter::apply(sos, mode, slice)?,
                            None => {
                                let mut owned = row.to_vec();
                                filter::apply(sos, mode, &mut owned)?;
                                row.assign(&ndarray::Array1::from(owned));
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Numerical("a filter thread panicked".into())))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_subject_and_session() {
        assert_eq!(parse_name("A01T"), (1, "T".to_owned()));
        assert_eq!(parse_name("A09E"), (9, "E".to_owned()));
        assert_eq!(parse_name("B0503T"), (503, "T".to_owned()));
        assert_eq!(parse_name("session"), (0, String::new()));
        assert_eq!(parse_name("rec12"), (12, String::new()));
    }
}
