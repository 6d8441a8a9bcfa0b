//! `bciops synth`: a synthetic BCI IV 2a-like dataset, so everything runs with no download.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{args, progress, Global};
use crate::signal::synth::{self, Session, SynthConfig};
use crate::signal::{gdf, mat, montage};
use crate::storage::{Location, OutputDir};

/// Write synthetic recordings in the layout of BCI Competition IV 2a: `A01T.gdf`, `A01E.gdf`
/// and the evaluation session's true labels `A01E.mat` for each subject.
///
/// The signals carry class-specific mu/beta desynchronisation over the motor cortex, volume
/// conduction, 1/f background, EOG blinks, session drift and subjects of different difficulty,
/// so CSP + SVM behaves as on the real data. The same seed always gives the same files.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output directory: a path or `s3://` / `gs://` URI (uploaded when every file is written).
    #[arg(long, short, value_name = "DIR|URI")]
    pub out: Location,
    /// Subjects, e.g. `1,2` or `1-9`.
    #[arg(long, default_value = "1-3", value_parser = args::subject_list)]
    pub subjects: args::List<u8>,
    /// Random seed; each subject's data depends only on it and the subject number.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Trials per class in each session (the real dataset has 72).
    #[arg(long, default_value_t = 72)]
    pub trials_per_class: usize,
    /// Runs per session; trials are spread evenly over them.
    #[arg(long, default_value_t = 6)]
    pub runs: usize,
    /// Classes of cue, 2 (left, right) to 4 (+ feet, tongue).
    #[arg(long, default_value_t = 4)]
    pub classes: usize,
    /// Sampling rate in Hz (the real data: 250).
    #[arg(long, default_value_t = 250.0)]
    pub rate: f64,
    /// Length of each of the two eye-movement runs at the start, seconds (0 leaves them out).
    #[arg(long, default_value_t = 20.0)]
    pub eye_seconds: f64,
    /// Override every subject's difficulty, 0 (easy) to 1 (hard).
    #[arg(long)]
    pub difficulty: Option<f64>,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Written {
    files: Vec<String>,
    subjects: Vec<u8>,
    seed: u64,
}

/// The real files' header conventions: a patient code per subject and fixed physical ranges
/// per channel type (±100 µV for EEG), so that int16 quantisation matches the 2a files.
fn gdf_options(rec: &crate::signal::Recording, subject: u8) -> gdf::GdfWriteOptions {
    gdf::GdfWriteOptions {
        patient: format!("A{subject:02} synthetic"),
        recording_id: "bciops synth: BCI IV 2a-like motor imagery".to_owned(),
        physical_range: gdf::PhysicalRange::PerChannel(
            rec.labels
                .iter()
                .map(|l| montage::physical_range(l))
                .collect(),
        ),
        ..gdf::GdfWriteOptions::default()
    }
}

pub fn run(args: SynthArgs, global: Global) -> Result<()> {
    let config = SynthConfig {
        seed: args.seed,
        trials_per_class: args.trials_per_class,
        runs: args.runs,
        difficulty: args.difficulty,
        classes: args.classes,
        rate: args.rate,
        eye_seconds: args.eye_seconds,
        ..SynthConfig::default()
    };
    config.validate()?;
    let out = OutputDir::new(&args.out)?;
    let dir = out.path().to_owned();
    std::fs::create_dir_all(&dir).map_err(|e| crate::Error::io("create directory", &dir, e))?;
    let bar = progress::bar(global, 2 * args.subjects.0.len() as u64, "sessions");
    let mut files = Vec::new();
    for &subject in &args.subjects.0 {
        for session in [Session::T, Session::E] {
            let generated = synth::generate(&config, subject, session)?;
            let stem = format!("A{subject:02}{session}");
            let path = dir.join(format!("{stem}.gdf"));
            gdf::write(
                &path,
                &generated.recording,
                &gdf_options(&generated.recording, subject),
            )?;
            files.push(args.out.join(&format!("{stem}.gdf")).to_string());
            if session == Session::E {
                let path = dir.join(format!("{stem}.mat"));
                mat::write_classlabel(&path, &generated.labels)?;
                files.push(args.out.join(&format!("{stem}.mat")).to_string());
            }
            bar.set_message(stem);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    out.publish()?;
    eprintln!(
        "wrote {} files for subject(s) {:?} (seed {}) to {}",
        files.len(),
        args.subjects.0,
        args.seed,
        args.out
    );
    if args.json {
        let written = Written {
            files,
            subjects: args.subjects.0,
            seed: args.seed,
        };
        super::emit(&serde_json::to_string_pretty(&written)?)?;
    }
    Ok(())
}
