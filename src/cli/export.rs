//! `bciops export`: a model as one file another runtime executes (today: ONNX).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use super::compare_register::RegistryArgs;
use super::Global;
use crate::error::Error;
use crate::export;
use crate::model::artifact;
use crate::registry;
use crate::serve::reload::is_registry_reference;
use crate::storage::{self, Location};

/// Write a model's whole served pipeline — raw trial in, label and decision values out — as
/// one file another runtime executes: `onnx` (onnxruntime, any ONNX runtime; see
/// docs/export.md). The model's checksums are verified first; the output is never replaced
/// and appears only once complete.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The model: a directory (from `bciops train`; a path or `s3://` / `gs://` URI), or a
    /// registry reference `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
    #[arg(long, short, value_name = "DIR|URI|models:/NAME@ALIAS")]
    pub model: String,
    /// The format written.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The file written (a path or URI); it must not exist.
    #[arg(long, short, value_name = "FILE|URI")]
    pub out: Location,
    /// For a `models:/` reference.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ONNX (IR 8, opset 17): input `eeg` float32 [batch, channels, samples]; outputs
    /// `labels` (string [batch]) and `scores` (float64 [batch, K]).
    Onnx,
}

pub fn run(args: ExportArgs, _global: Global) -> Result<()> {
    // Checked before any download: an existing output is never replaced.
    if output_exists(&args.out)? {
        return Err(Error::Invalid(format!(
            "`{}` exists: export never replaces a file (remove it or choose another --out)",
            args.out
        ))
        .into());
    }
    let scratch = Scratch::new()?;
    let (dir, relabel): (PathBuf, Box<dyn Fn(Error) -> Error>) =
        if is_registry_reference(&args.model) {
            let dest = scratch.0.join("model");
            let fetched =
                registry::fetch_model(&args.model, &args.registry.config()?, &dest, false)?;
            let name = args.model.clone();
            (fetched.dir, Box::new(move |e| prefix(&name, e)))
        } else {
            if let Some(flag) = [
                ("--registry-uri", &args.registry.registry_uri),
                ("--tracking-uri", &args.registry.tracking_uri),
            ]
            .iter()
            .find_map(|(flag, v)| v.is_some().then_some(flag))
            {
                return Err(Error::Invalid(format!(
                    "`{flag}` applies only to a `models:/` reference, not to `{}`",
                    args.model
                ))
                .into());
            }
            let fetched = storage::fetch_dir(&Location::parse(&args.model)?)?;
            let dir = fetched.path().to_owned();
            (dir, Box::new(move |e| fetched.relabel(e)))
        };
    let model = artifact::load(&dir).map_err(&relabel)?;
    let bytes = match args.format {
        Format::Onnx => export::onnx::to_bytes(&model).map_err(&relabel)?,
    };
    write_new(&args.out, &bytes)?;
    eprintln!(
        "exported `{}` ({} classes: {}; {} channels × {} samples) as ONNX to {} ({} bytes)",
        args.model,
        model.classes.len(),
        model.classes.join(", "),
        model.trial_shape().0,
        model.trial_shape().1,
        args.out,
        bytes.len()
    );
    Ok(())
}

fn prefix(what: &str, e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(format!("`{what}`: {m}")),
        other => other,
    }
}

fn output_exists(out: &Location) -> Result<bool, Error> {
    match out {
        Location::Local(p) => Ok(std::fs::symlink_metadata(p).is_ok()),
        remote => storage::exists(remote),
    }
}

/// Writes `bytes` to `out` only if nothing is there: locally through a temporary file linked
/// into place (a hard link fails rather than replace), on a bucket with a create-if-absent
/// write.
fn write_new(out: &Location, bytes: &[u8]) -> Result<(), Error> {
    let taken = || {
        Error::Invalid(format!(
            "`{out}` appeared while exporting: export never replaces a file"
        ))
    };
    match out {
        Location::Local(path) => {
            let name = path.file_name().ok_or_else(|| {
                Error::Invalid(format!("`{}` is not a file name", path.display()))
            })?;
            let tmp = path.with_file_name(format!(
                ".{}.export-{}",
                name.to_string_lossy(),
                std::process::id()
            ));
            crate::fsutil::write_atomic(&tmp, bytes)?;
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(taken()),
                Err(e) => Err(Error::io("write", path, e)),
            }
        }
        Location::Remote(remote) => {
            if storage::create_new(remote, bytes)? {
                Ok(())
            } else {
                Err(taken())
            }
        }
    }
}

/// A private directory for a model fetched from the registry, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("bciops-export-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
