//! `bciops preprocess`: recordings → band-pass → trials → epochs dataset.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::{args, progress, track, Global};
use crate::fsutil::Replace;
use crate::preprocess::{self, PreprocessConfig, Summary};
use crate::signal::epochs::{default_event_map, EpochSpec};
use crate::signal::filter::FilterMode;
use crate::storage::{self, Location, OutputDir};

/// Read recordings (GDF, or the BNCI Horizon `.mat` files of BCI IV 2a), band-pass the
/// continuous signal, cut a window around every cue and write an epochs dataset (X.npy, y.npy,
/// trials.csv, meta.json).
///
/// Evaluation sessions (cue 783) take their true labels from `<stem>.mat` (variable
/// `classlabel`) or `<stem>.txt` beside the recording, or from `--labels DIR`; BNCI `.mat`
/// files carry their own. In a directory, a `.mat` beside a `.gdf` of the same name is that
/// recording's label file, any other `.mat` a BNCI recording.
#[derive(Debug, Args)]
pub struct PreprocessArgs {
    /// Recordings (`.gdf`, BNCI `.mat`) or directories holding them: paths, `file://`, `s3://BUCKET/KEY`
    /// or `gs://BUCKET/KEY` (a prefix is read like a directory).
    #[arg(long, short, required = true, num_args = 1.., value_name = "PATH|URI")]
    pub input: Vec<Location>,
    /// Output dataset directory, a path or `s3://` / `gs://` URI (replaced only once complete;
    /// a remote one gets its completion marker last).
    #[arg(long, short, value_name = "DIR|URI")]
    pub out: Location,
    /// Replace an existing output directory even when it holds files bciops did not write
    /// (without it such a directory is refused). Never the current directory or one that holds
    /// an input.
    #[arg(long)]
    pub force: bool,
    /// Subjects to take, e.g. `1,2` or `1-9` (default: all found; from names like `A01T`).
    #[arg(long, value_parser = args::subject_list)]
    pub subjects: Option<args::List<u8>>,
    /// Sessions to take, e.g. `T` or `T,E` (default: all found).
    #[arg(long, value_parser = args::name_list)]
    pub sessions: Option<args::List<String>>,
    /// Classes to keep, in the order of their index in y.npy.
    #[arg(long, default_value = "left,right", value_parser = args::name_list)]
    pub classes: args::List<String>,
    /// Pass band in Hz, `LOW,HIGH`.
    #[arg(long, default_value = "8,30", value_parser = args::pair)]
    pub band: (f64, f64),
    /// Butterworth order N as in scipy's `butter(N, band)` (the band-pass has 2N poles).
    #[arg(long, default_value_t = 4)]
    pub order: usize,
    /// Filter causally (like scipy `lfilter`, what the original pipeline did) instead of
    /// zero-phase forward-backward (`sosfiltfilt`).
    #[arg(long)]
    pub causal: bool,
    /// Filter each cut trial on its own instead of the continuous recording: what a server
    /// that receives one raw trial at a time does, so a model trained this way sees in training
    /// exactly what it sees in service.
    #[arg(long)]
    pub filter_per_trial: bool,
    /// Window in seconds relative to the cue, `START,END` (end exclusive).
    #[arg(long, default_value = "0,3", value_parser = args::pair)]
    pub window: (f64, f64),
    /// Channel labels to keep, as in the file (default: every EEG channel; EOG dropped).
    #[arg(long, value_parser = args::name_list)]
    pub channels: Option<args::List<String>>,
    /// Cue event code → class name, e.g. `--event 769=left` (repeatable; replaces the default
    /// map 769=left 770=right 771=feet 772=tongue when given).
    #[arg(long = "event", value_name = "CODE=NAME", value_parser = args::event)]
    pub events: Vec<(u16, String)>,
    /// Keep trials the experts marked as rejected (event 1023).
    #[arg(long)]
    pub keep_rejected: bool,
    /// Another directory (or `s3://` / `gs://` prefix) to look for evaluation-session label
    /// files in.
    #[arg(long, value_name = "DIR|URI")]
    pub labels: Vec<Location>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub track: track::TrackArgs,
}

pub fn run(args: PreprocessArgs, global: Global) -> Result<()> {
    let events = if args.events.is_empty() {
        default_event_map()
    } else {
        args.events.iter().cloned().collect::<BTreeMap<_, _>>()
    };
    let config = PreprocessConfig {
        subjects: args
            .subjects
            .map(|s| s.0.into_iter().map(u32::from).collect()),
        sessions: args.sessions.map(|s| s.0),
        band: args.band,
        order: args.order,
        mode: if args.causal {
            FilterMode::Causal
        } else {
            FilterMode::ZeroPhase
        },
        epochs: EpochSpec {
            events,
            classes: args.classes.0,
            tmin: args.window.0,
            tmax: args.window.1,
            keep_rejected: args.keep_rejected,
        },
        channels: args.channels.map(|c| c.0),
        labels_dirs: Vec::new(),
        per_trial: args.filter_per_trial,
        force: args.force,
    };
    config.epochs.check()?;
    // Remote inputs are downloaded (streamed to a temporary directory) before the core reads
    // them; the dataset records where they came from.
    let mut config = config;
    let wanted = |name: &str| {
        let lower = name.to_ascii_lowercase();
        [".gdf", ".mat", ".txt", ".labels"]
            .iter()
            .any(|ext| lower.ends_with(ext))
    };
    let replace = Replace {
        kind: crate::dataset::DATASET_DIR,
        force: args.force,
    };
    let given: Vec<&Location> = args.input.iter().chain(&args.labels).collect();
    super::output::check(&args.out, replace, &given)?;
    let inputs = storage::fetch_inputs(&args.input, wanted)?;
    let label_dirs = storage::fetch_inputs(&args.labels, wanted)?;
    config.labels_dirs = label_dirs.iter().map(|f| f.path().to_owned()).collect();
    let paths: Vec<std::path::PathBuf> = inputs.iter().map(|f| f.path().to_owned()).collect();
    let mut sources = preprocess::discover(&paths, &config)?;
    let fetched: Vec<&storage::Fetched> = inputs.iter().chain(&label_dirs).collect();
    let origin = |path: &std::path::Path| {
        fetched
            .iter()
            .map(|f| f.origin_of(path))
            .find(|name| name != &path.display().to_string())
            .unwrap_or_else(|| path.display().to_string())
    };
    for source in &mut sources {
        source.name = origin(&source.path);
        source.labels_name = source.labels.as_deref().map(origin);
    }
    let mut run = args.track.start("preprocess")?;
    run.log_params(&run_params(&args.input, &args.out, &config));
    let out = OutputDir::new(&args.out)?;
    let bar = progress::bar(global, sources.len() as u64, "recordings");
    let mut summary = preprocess::run(&sources, &config, out.path(), &mut |source, _| {
        bar.set_message(source.name.clone());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    // The run logs its artifacts from the local copy when it finishes, so it finishes before
    // a remote output's scratch directory is published and removed.
    if !run.is_off() {
        record(&mut run, &summary, out.path())?;
    }
    args.track.finish(run)?;
    out.publish()?;
    summary.out = args.out.to_string();
    print_summary(&summary);
    if args.json {
        super::emit(&serde_json::to_string_pretty(&summary)?)?;
    }
    Ok(())
}

/// Every setting of the step, as run parameters.
fn run_params(
    input: &[Location],
    out: &Location,
    config: &PreprocessConfig,
) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let list = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    p.insert(
        "input".into(),
        input
            .iter()
            .map(Location::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    p.insert("out".into(), out.to_string());
    p.insert(
        "subjects".into(),
        config.subjects.as_ref().map_or("all".into(), |s| {
            s.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        }),
    );
    p.insert(
        "sessions".into(),
        config
            .sessions
            .as_ref()
            .map_or("all".into(), |s| s.join(",")),
    );
    p.insert("classes".into(), config.epochs.classes.join(","));
    p.insert("filter.band_low_hz".into(), config.band.0.to_string());
    p.insert("filter.band_high_hz".into(), config.band.1.to_string());
    p.insert("filter.order".into(), config.order.to_string());
    p.insert(
        "filter.mode".into(),
        match config.mode {
            FilterMode::Causal => "causal",
            _ => "zero-phase",
        }
        .into(),
    );
    p.insert("filter.per_trial".into(), config.per_trial.to_string());
    p.insert("window.tmin_s".into(), config.epochs.tmin.to_string());
    p.insert("window.tmax_s".into(), config.epochs.tmax.to_string());
    p.insert(
        "channels".into(),
        config
            .channels
            .as_ref()
            .map_or("eeg".into(), |c| c.join(",")),
    );
    p.insert(
        "events".into(),
        config
            .epochs
            .events
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    p.insert(
        "keep_rejected".into(),
        config.epochs.keep_rejected.to_string(),
    );
    p.insert("labels".into(), list(&config.labels_dirs));
    p
}

/// The outcome of the step: counts as metrics, the filter design actually used (from
/// meta.json) as parameters, the dataset digest as a tag, meta.json as an artifact.
fn record(run: &mut crate::tracking::Run, s: &Summary, out: &Path) -> Result<()> {
    run.log_metric("trials", s.trials as f64, 0);
    run.log_metric("channels", s.channels as f64, 0);
    run.log_metric("samples", s.samples as f64, 0);
    run.log_metric("rate_hz", s.rate, 0);
    run.log_metric("gap_samples", s.gap_samples as f64, 0);
    for (why, n) in &s.dropped {
        run.log_metric(format!("dropped.{}", why.replace(' ', "_")), *n as f64, 0);
    }
    run.log_param("filter.sos", serde_json::to_string(&s.sos)?);
    run.log_param("window.samples", s.samples.to_string());
    run.log_artifact(out.join("meta.json"), "");
    run.set_tag("bciops.dataset_sha256", &s.sha256);
    Ok(())
}

fn print_summary(s: &Summary) {
    eprintln!(
        "wrote {} trials × {} channels × {} samples ({} Hz) to {}",
        s.trials, s.channels, s.samples, s.rate, s.out
    );
    eprintln!("{:<8} {:<8} {}", "subject", "session", s.classes.join("  "));
    for (subject, sessions) in &s.counts {
        for (session, classes) in sessions {
            let counts: Vec<String> = s
                .classes
                .iter()
                .map(|c| {
                    format!(
                        "{:>width$}",
                        classes.get(c).copied().unwrap_or(0),
                        width = c.len()
                    )
                })
                .collect();
            eprintln!("{subject:<8} {session:<8} {}", counts.join("  "));
        }
    }
    let dropped: Vec<String> = s
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(why, n)| format!("{n} {why}"))
        .collect();
    if !dropped.is_empty() {
        eprintln!("dropped: {}", dropped.join(", "));
    }
    if s.gap_samples > 0 {
        eprintln!("missing samples (gaps) found: {}", s.gap_samples);
    }
}
