//! `preprocess` as a library call: recordings in, an epochs dataset out.
//!
//! One recording is in memory at a time (peak memory is bounded by the largest recording, not
//! the dataset): read, hash, decode the kept channels, fill gaps, band-pass the continuous
//! signal, cut windows around the cues and stream them into `X.npy`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::npy::NpyF32Writer;
use crate::dataset::{self, FilterMeta, LabelsMeta, Meta, SourceMeta, TrialInfo, WindowMeta};
use crate::error::{Error, Result};
use crate::fsutil::{sha256_hex, write_atomic, Replace, StagedDir};
use crate::signal::epochs::{self, EpochSpec, GapIndex};
use crate::signal::filter::{self, BandPass, FilterMode};
use crate::signal::{bnci, gdf, labels, montage};

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
    /// Replace a directory at the output that is not a dataset bciops wrote (`--force`).
    pub force: bool,
}

/// A recording to read, with what its name says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// What `meta.json` and messages call the recording: its path, or the URI it was
    /// downloaded from (see `storage::Fetched::origin_of`).
    pub name: String,
    pub subject: u32,
    /// `T`, `E`, or empty when the name does not say.
    pub session: String,
    /// The true-label file for an evaluation session, when one was found.
    pub labels: Option<PathBuf>,
    /// What `meta.json` calls the label file (as `name`).
    pub labels_name: Option<String>,
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

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// A GDF file, or a BNCI `.mat` file (given explicitly, or found in a directory without a
/// `.gdf` of the same name, whose true-label file it would be).
fn is_recording(path: &Path, in_directory: bool) -> bool {
    if has_extension(path, "gdf") {
        return true;
    }
    has_extension(path, "mat")
        && (!in_directory
            || !["gdf", "GDF"]
                .iter()
                .any(|ext| path.with_extension(ext).is_file()))
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
                .filter(|p| p.is_file() && is_recording(p, true))
                .collect();
            found.sort();
            files.extend(found);
        } else if is_recording(input, false) {
            files.push(input.clone());
        } else {
            return Err(Error::Invalid(format!(
                "`{}` is not a recording bciops reads (expected a `.gdf` or BNCI `.mat` file, or a directory)",
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
        // A BNCI `.mat` recording carries its own labels.
        let labels = (!has_extension(&path, "mat"))
            .then(|| {
                dirs.iter().find_map(|dir| {
                    ["mat", "txt", "labels"]
                        .iter()
                        .map(|ext| dir.join(format!("{stem}.{ext}")))
                        .find(|p| p.is_file())
                })
            })
            .flatten();
        sources.push(SourceFile {
            name: path.display().to_string(),
            labels_name: labels.as_ref().map(|p| p.display().to_string()),
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
    /// The dataset's digest, as `Dataset::sha256` reads it back.
    pub sha256: String,
    /// The band-pass's second-order sections, as `meta.json` records them.
    #[serde(skip)]
    pub sos: Vec<[f64; 6]>,
}

/// Progress callback: called after each recording with its path and trials kept.
pub type OnFile<'a> = dyn FnMut(&SourceFile, usize) + 'a;

/// What the first recording fixes for all others: channels kept, sampling rate, filter.
#[derive(Debug, Clone)]
struct Layout {
    channels: Vec<String>,
    rate: f64,
    sos: Vec<[f64; 6]>,
}

/// One recording, read, filtered and cut: what the writer needs of it.
struct FileOut {
    layout: Layout,
    located: epochs::Located,
    /// The kept trials' windows, trials × channels × samples, C order.
    cut: Vec<f32>,
    meta: SourceMeta,
    gap_samples: u64,
}

/// Memory a reader thread keeps from one recording to the next: a file's bytes and its
/// decoded signal are 30 and 100+ MB for a 2a recording, and a fresh allocation of that size
/// costs a page fault per 4 KiB (a fifth of the CPU time before it was reused).
#[derive(Default)]
struct Scratch {
    bytes: Vec<u8>,
    data: Vec<f64>,
}

/// Reads one recording and cuts its trials. `layout` is None for the first recording, which
/// then fixes it; `threads` is how many threads the band-pass may use.
fn read_one(
    source: &SourceFile,
    config: &PreprocessConfig,
    layout: Option<&Layout>,
    threads: usize,
    scratch: &mut Scratch,
) -> Result<FileOut> {
    let mut bytes = std::mem::take(&mut scratch.bytes);
    bytes.clear();
    std::fs::File::open(&source.path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .map_err(|e| Error::io("read", &source.path, e))?;
    let sha256 = sha256_hex(&bytes);
    let name = source.name.clone();
    // Decode only the channels kept, so memory holds one copy of what is used.
    let wanted: Option<&Vec<String>> = layout.map(|l| &l.channels).or(config.channels.as_ref());
    let keep = |label: &str| match wanted {
        Some(list) => list.iter().any(|l| l == label),
        None => montage::is_eeg(label),
    };
    let none_kept = |all: String| {
        Error::Data(format!(
            "`{name}` has none of the channels asked for; pick some with `--channels` \
             (it has: {all})"
        ))
    };
    let is_mat = has_extension(&source.path, "mat");
    // A BNCI file of an evaluation session gives its true labels itself.
    let (rec, mat_labels, all, gap_runs) = if is_mat {
        let evaluation = source.session.eq_ignore_ascii_case("E");
        let file = bnci::parse(&bytes, &name, evaluation)?;
        let mut rec = file.recording;
        let all = rec.labels.join(", ");
        let rows: Vec<usize> = (0..rec.labels.len())
            .filter(|&i| keep(&rec.labels[i]))
            .collect();
        if rows.is_empty() {
            return Err(none_kept(all));
        }
        if rows.len() != rec.labels.len() {
            rec.data = rec.data.select(Axis(0), &rows);
            rec.labels = rows.iter().map(|&i| rec.labels[i].clone()).collect();
        }
        let runs = rec
            .data
            .rows()
            .into_iter()
            .enumerate()
            .map(|(i, row)| match row.as_slice() {
                Some(row) => (i, epochs::nan_runs(row)),
                None => (i, epochs::nan_runs(&row.to_vec())),
            })
            .filter(|(_, runs)| !runs.is_empty())
            .collect();
        (rec, evaluation.then_some(file.labels), Some(all), runs)
    } else {
        let buffer = std::mem::take(&mut scratch.data);
        let file = match gdf::parse_channels_into(&bytes, &name, keep, buffer) {
            Err(Error::Invalid(_)) => return Err(none_kept(all_labels(&bytes, &name))),
            other => other?,
        };
        (file.recording, None, None, file.gaps)
    };
    let layout = match layout {
        Some(l) => l.clone(),
        None => Layout {
            channels: config
                .channels
                .clone()
                .unwrap_or_else(|| rec.labels.clone()),
            rate: rec.rate,
            sos: BandPass::new(config.band.0, config.band.1, config.order, rec.rate)?.sos(),
        },
    };
    if rec.rate != layout.rate {
        return Err(Error::Data(format!(
            "`{name}` is sampled at {} Hz but earlier recordings at {} Hz",
            rec.rate, layout.rate
        )));
    }
    if let Some(missing) = layout.channels.iter().find(|l| !rec.labels.contains(l)) {
        return Err(Error::Data(format!(
            "`{name}` has no channel `{missing}` (it has: {})",
            all.clone().unwrap_or_else(|| all_labels(&bytes, &name))
        )));
    }
    scratch.bytes = bytes;
    let mut data: Array2<f64> = if rec.labels == layout.channels {
        rec.data
    } else {
        let rows: Vec<usize> = layout
            .channels
            .iter()
            .filter_map(|label| rec.labels.iter().position(|l| l == label))
            .collect();
        rec.data.select(Axis(0), &rows)
    };
    let n_samples = data.ncols();

    // Gaps as the reader found them, bridged run by run: no 100 MB scan for NaN.
    if !data.is_standard_layout() {
        data = data.as_standard_layout().into_owned();
    }
    let mut all_runs = Vec::new();
    for (r, runs) in &gap_runs {
        let Some(i) = layout.channels.iter().position(|l| *l == rec.labels[*r]) else {
            continue;
        };
        if let Some(slice) = data.row_mut(i).into_slice() {
            epochs::fill_runs(slice, runs);
        }
        all_runs.extend(runs.iter().cloned());
    }
    let gaps = GapIndex::from_runs(all_runs);

    let (labels_file, true_labels) = match &source.labels {
        _ if mat_labels.is_some() => (None, mat_labels),
        Some(path) if rec.events.iter().any(|e| e.code == epochs::UNKNOWN_CUE) => {
            let raw = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
            let values = labels::read_labels(path)?;
            (
                Some(LabelsMeta {
                    path: source
                        .labels_name
                        .clone()
                        .unwrap_or_else(|| path.display().to_string()),
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
        layout.rate,
        &config.epochs,
        true_labels.as_deref(),
        |start, len| gaps.has_gap(start, len),
    )?;

    let window = config.epochs.window_samples(layout.rate)?;
    if !config.per_trial {
        let windows = located.trials.iter().map(|t| t.start..t.start + window);
        filter_rows_parallel(&layout.sos, config.mode, &mut data, windows, threads)?;
    }
    let mut cut = Vec::with_capacity(located.trials.len() * layout.channels.len() * window);
    for t in &located.trials {
        let view = data.slice_axis(Axis(1), ndarray::Slice::from(t.start..t.start + window));
        if config.per_trial {
            let mut trial = view.to_owned();
            filter::filter_rows(&layout.sos, config.mode, &mut trial)?;
            cut.extend(trial.iter().map(|&v| v as f32));
        } else {
            // Row by row: a row is one contiguous slice (`data` was put in standard layout
            // before the gaps were bridged), whose conversion vectorises; the view's own
            // iterator does not.
            for row in view.rows() {
                match row.as_slice() {
                    Some(row) => cut.extend(row.iter().map(|&v| v as f32)),
                    None => cut.extend(row.iter().map(|&v| v as f32)),
                }
            }
        }
    }
    scratch.data = data.into_raw_vec_and_offset().0;
    Ok(FileOut {
        meta: SourceMeta {
            path: name,
            sha256,
            subject: source.subject,
            session: source.session.clone(),
            trials: located.trials.len(),
            labels: labels_file,
        },
        layout,
        located,
        cut,
        gap_samples: gaps.total() as u64,
    })
}

/// Reads `sources` on rayon's pool and hands each result to `sink`, on this thread, in source
/// order. `par_bridge` hands the recordings out in order, one to each free thread, so at most a
/// pool's worth of recordings plus the `workers` results waiting in the channel (and any
/// finished ahead of a slower one) are in memory at once, not the whole list. After an error
/// no further recording is started.
fn read_parallel(
    sources: &[SourceFile],
    config: &PreprocessConfig,
    layout: &Layout,
    workers: usize,
    sink: &mut dyn FnMut(&SourceFile, FileOut) -> Result<()>,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<FileOut>)>(workers);
    // In place: the sink is not `Send`, so it stays on this thread while the reads run on the
    // pool.
    rayon::in_place_scope(|scope| {
        let stop = &stop;
        scope.spawn(move |_| {
            sources
                .iter()
                .enumerate()
                .take_while(|_| !stop.load(Ordering::Relaxed))
                .par_bridge()
                .for_each_init(
                    // One scratch per thread's run of recordings, reused between them.
                    || (tx.clone(), Scratch::default()),
                    |(tx, scratch), (i, source)| {
                        let out = read_one(source, config, Some(layout), 1, scratch);
                        // The receiver is gone only after an error: this read is not needed.
                        let _ = tx.send((i, out));
                    },
                );
        });
        let mut pending: BTreeMap<usize, Result<FileOut>> = BTreeMap::new();
        let mut expected = 0;
        let mut outcome = Ok(());
        for (i, out) in rx.iter() {
            pending.insert(i, out);
            while let Some(out) = pending.remove(&expected) {
                let step = out.and_then(|o| sink(&sources[expected], o));
                expected += 1;
                if let Err(e) = step {
                    stop.store(true, Ordering::Relaxed);
                    outcome = Err(e);
                    break;
                }
            }
            if outcome.is_err() {
                break;
            }
        }
        // Dropping the receiver makes any worker still sending give up.
        drop(rx);
        outcome
    })
}

/// Runs `preprocess` and writes the dataset to `out` (replacing it only when complete).
///
/// The first recording is read alone (it fixes the channels, rate and filter), with the
/// band-pass spread over every core; the others are read one per core, in parallel, and
/// written in order.
pub fn run(
    sources: &[SourceFile],
    config: &PreprocessConfig,
    out: &Path,
    on_file: &mut OnFile<'_>,
) -> Result<Summary> {
    config.epochs.check()?;
    let Some((first_source, rest)) = sources.split_first() else {
        return Err(Error::Invalid("no recording to read".into()));
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let staged = StagedDir::new(
        out,
        Replace {
            kind: dataset::DATASET_DIR,
            force: config.force,
        },
    )?;
    let mut y: Vec<i64> = Vec::new();
    let mut trials: Vec<TrialInfo> = Vec::new();
    let mut source_meta: Vec<SourceMeta> = Vec::new();
    let mut summary = Summary {
        out: out.display().to_string(),
        classes: config.epochs.classes.clone(),
        ..Summary::default()
    };
    let mut dropped = epochs::Dropped::default();

    // With the layout known from the first header, every recording is read in parallel;
    // otherwise the first is read on its own first.
    let (layout, first) = match layout_from_header(first_source, config) {
        Some(layout) => (layout, None),
        None => {
            let first = read_one(first_source, config, None, cores, &mut Scratch::default())?;
            (first.layout.clone(), Some(first))
        }
    };
    let window = config.epochs.window_samples(layout.rate)?;
    let mut writer = NpyF32Writer::create(
        &staged.path().join("X.npy"),
        &[layout.channels.len(), window],
    )?;
    let per_trial = layout.channels.len() * window;
    let mut sink = |source: &SourceFile, file: FileOut| -> Result<()> {
        let source_index = source_meta.len();
        for (t, values) in file
            .located
            .trials
            .iter()
            .zip(file.cut.chunks_exact(per_trial))
        {
            writer.push_f32(values)?;
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
        summary.gap_samples += file.gap_samples;
        let d = &file.located.dropped;
        dropped.rejected += d.rejected;
        dropped.gaps += d.gaps;
        dropped.out_of_range += d.out_of_range;
        dropped.other_class += d.other_class;
        on_file(source, file.located.trials.len());
        source_meta.push(file.meta);
        Ok(())
    };
    let parallel = match first {
        Some(first) => {
            sink(first_source, first)?;
            rest
        }
        None => sources,
    };
    if !parallel.is_empty() {
        read_parallel(
            parallel,
            config,
            &layout,
            cores.min(parallel.len()),
            &mut sink,
        )?;
    }
    let Layout {
        channels,
        rate,
        sos,
    } = layout;
    let n = writer.finish()?;
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
            mode: config.mode,
            per_trial: config.per_trial,
            sos,
        },
        events: config.epochs.events.clone(),
        keep_rejected: config.epochs.keep_rejected,
        sources: source_meta,
        dropped: summary.dropped.clone(),
    };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| Error::encode("meta.json", e))?;
    write_atomic(&staged.path().join("meta.json"), json.as_bytes())?;
    summary.sha256 = dataset::digest(staged.path())?;
    summary.sos = meta.filter.sos;
    staged.commit()?;

    summary.trials = n;
    summary.channels = channels.len();
    summary.samples = window;
    summary.rate = rate;
    Ok(summary)
}

/// Every channel label of a GDF file, for error messages.
/// The layout the first recording fixes, from its GDF header alone (the first 64 KiB hold the
/// headers of up to 250 channels). None for a `.mat` file, or when the quick look fails: the
/// full read then gives the layout or the error.
fn layout_from_header(source: &SourceFile, config: &PreprocessConfig) -> Option<Layout> {
    if has_extension(&source.path, "mat") {
        return None;
    }
    let mut prefix = Vec::with_capacity(64 * 1024);
    let file = std::fs::File::open(&source.path).ok()?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 64 * 1024), &mut prefix).ok()?;
    let keep = |label: &str| match &config.channels {
        Some(list) => list.iter().any(|l| l == label),
        None => montage::is_eeg(label),
    };
    let (labels, rate) = gdf::header_channels(&prefix, &source.name, keep).ok()?;
    let channels = config.channels.clone().unwrap_or(labels);
    let sos = BandPass::new(config.band.0, config.band.1, config.order, rate)
        .ok()?
        .sos();
    Some(Layout {
        channels,
        rate,
        sos,
    })
}

fn all_labels(bytes: &[u8], name: &str) -> String {
    gdf::parse(bytes, name)
        .map(|f| f.recording.labels.join(", "))
        .unwrap_or_default()
}

/// Band-passes `data` in place where `windows` need it (see [`filter::spans_around`]), the
/// rows split over `threads` threads. Filtering only around the kept trials skips the
/// eye-movement recordings, breaks and other-class trials, about half of a 2a recording;
/// the trials equal those of filtering it whole up to rounding (see
/// [`filter::SETTLE_TOLERANCE`]).
fn filter_rows_parallel(
    sos: &[[f64; 6]],
    mode: FilterMode,
    data: &mut Array2<f64>,
    windows: impl Iterator<Item = std::ops::Range<usize>>,
    threads: usize,
) -> Result<()> {
    let samples = data.ncols();
    let spans = match filter::settle_samples(sos) {
        Some(settle) => filter::spans_around(windows, settle, samples),
        None => std::iter::once(0..samples).collect(),
    };
    if spans.is_empty() || samples == 0 {
        return Ok(());
    }
    if !data.is_standard_layout() {
        *data = data.as_standard_layout().into_owned();
    }
    let Some(flat) = data.as_slice_mut() else {
        unreachable!("a standard-layout array is contiguous");
    };
    let rows = flat.len() / samples;
    // Whole lane groups per thread, so that no thread filters a channel on its own.
    let per = rows
        .div_ceil(threads.clamp(1, rows.max(1)))
        .next_multiple_of(filter::lanes());
    let spans = &spans;
    std::thread::scope(|scope| {
        let handles: Vec<_> = flat
            .chunks_mut(per * samples)
            .map(|chunk| {
                scope.spawn(move || filter::filter_spans(sos, mode, chunk, samples, spans))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Internal("a filter thread panicked".into())))
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
