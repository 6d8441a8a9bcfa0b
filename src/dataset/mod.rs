//! The epochs dataset: the contract between `preprocess` and every later step.
//!
//! A directory holding
//! - `X.npy`: float32, trials × channels × samples, microvolts;
//! - `y.npy`: int64 class index into `meta.json`'s `classes`;
//! - `trials.csv`: per-trial provenance (subject, session, run, trial index, cue code, source);
//! - `meta.json`: classes, channels, sampling rate, filter design, window, sources with sha256.
//!
//! NumPy reads `X.npy` and `y.npy` as they are; pandas reads `trials.csv`.

pub mod npy;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use ndarray::{Array1, Array3};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the format in `meta.json`, and its version; readers refuse other versions.
pub const FORMAT: &str = "bciops-epochs";
pub const FORMAT_VERSION: u32 = 1;

/// The files of an epochs dataset.
pub const FILES: [&str; 4] = ["X.npy", "y.npy", "trials.csv", "meta.json"];

/// An epochs dataset, as `--out` may replace it: `meta.json` of this format and nothing but
/// the dataset's files.
pub const DATASET_DIR: crate::fsutil::DirKind = crate::fsutil::DirKind {
    name: "epochs dataset",
    foreign: foreign_entry,
};

fn foreign_entry(dir: &Path) -> Option<String> {
    let ours = std::fs::read_to_string(dir.join("meta.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|m| m.get("format").and_then(|f| f.as_str()) == Some(FORMAT));
    if !ours {
        return crate::fsutil::first_entry(dir);
    }
    crate::fsutil::sorted_names(dir)?
        .into_iter()
        .find(|n| !FILES.contains(&n.as_str()))
}

/// The band-pass applied to the continuous recordings before cutting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterMeta {
    /// Always `butterworth` for now.
    pub kind: String,
    /// scipy's `N` in `butter(N, band)`: the band-pass has 2N poles.
    pub order: usize,
    pub band: [f64; 2],
    /// `zero-phase` (sosfiltfilt) or `causal` (sosfilt, like lfilter).
    pub mode: crate::signal::filter::FilterMode,
    /// Each trial's window was filtered on its own rather than cut from the filtered
    /// recording (how a server that sees one raw trial at a time filters).
    #[serde(default)]
    pub per_trial: bool,
    /// Second-order sections `[b0, b1, b2, a0, a1, a2]`, as scipy writes them.
    pub sos: Vec<[f64; 6]>,
}

/// The window cut around each cue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMeta {
    /// Seconds relative to the cue; the end is exclusive.
    pub tmin: f64,
    pub tmax: f64,
    pub samples: usize,
}

/// One recording that contributed trials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMeta {
    pub path: String,
    pub sha256: String,
    pub subject: u32,
    pub session: String,
    pub trials: usize,
    /// The true-label file of an evaluation session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsMeta>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelsMeta {
    pub path: String,
    pub sha256: String,
}

/// `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub format_version: u32,
    pub bciops_version: String,
    pub classes: Vec<String>,
    pub channels: Vec<String>,
    /// Hz.
    pub rate: f64,
    pub unit: String,
    pub n_trials: usize,
    pub window: WindowMeta,
    pub filter: FilterMeta,
    /// Cue event code → class name used to cut.
    pub events: BTreeMap<u16, String>,
    pub keep_rejected: bool,
    pub sources: Vec<SourceMeta>,
    /// Trials left out, by reason.
    pub dropped: BTreeMap<String, usize>,
}

/// Provenance of one trial (a row of `trials.csv`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialInfo {
    pub subject: u32,
    pub session: String,
    pub run: usize,
    /// 0-based index of the trial among its recording's cues.
    pub trial: usize,
    /// Cue code in the file (783 for evaluation trials).
    pub event: u16,
    /// Index into `sources`.
    pub source: usize,
}

const TRIALS_HEADER: &str = "index,subject,session,run,trial,event,class,label,source";

/// Renders `trials.csv`.
pub fn trials_csv(trials: &[TrialInfo], y: &[i64], classes: &[String]) -> String {
    let mut out = String::with_capacity(64 * trials.len() + 64);
    out.push_str(TRIALS_HEADER);
    out.push('\n');
    for (i, (t, &label)) in trials.iter().zip(y).enumerate() {
        let class = usize::try_from(label)
            .ok()
            .and_then(|l| classes.get(l))
            .map_or("", String::as_str);
        let _ = writeln!(
            out,
            "{i},{},{},{},{},{},{label},{class},{}",
            t.subject, t.session, t.run, t.trial, t.event, t.source
        );
    }
    out
}

fn parse_trials_csv(path: &Path, text: &str) -> Result<Vec<TrialInfo>> {
    let mut lines = text.lines();
    if lines.next() != Some(TRIALS_HEADER) {
        return Err(Error::malformed(
            path,
            format!("first line is not `{TRIALS_HEADER}`"),
        ));
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, line)| {
            let bad =
                || Error::malformed(path, format!("line {} is not a trial row: `{line}`", i + 2));
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 9 {
                return Err(bad());
            }
            Ok(TrialInfo {
                subject: f[1].parse().map_err(|_| bad())?,
                session: f[2].to_owned(),
                run: f[3].parse().map_err(|_| bad())?,
                trial: f[4].parse().map_err(|_| bad())?,
                event: f[5].parse().map_err(|_| bad())?,
                source: f[8].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

/// An epochs dataset loaded into memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub x: Array3<f32>,
    pub y: Array1<i64>,
    pub trials: Vec<TrialInfo>,
    pub meta: Meta,
    /// sha256 over the lines `<sha256>  <file>` of X.npy, y.npy, trials.csv and meta.json, so
    /// a model names exactly the data it saw.
    pub sha256: String,
}

/// Reads a whole small file, for parsing and hashing from the same bytes.
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// A reader that hashes what passes through it, so a large array is parsed and hashed in one
/// read without holding its bytes twice.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The dataset's digest from its files' sha256 (in the order of [`FILES`]): the sha256 of the
/// lines `<sha256>  <file>`, as `sha256sum` would list them.
fn digest_of(file_sha256: [String; 4]) -> String {
    let lines: String = file_sha256
        .iter()
        .zip(FILES)
        .map(|(sha, name)| format!("{sha}  {name}\n"))
        .collect();
    crate::fsutil::sha256_hex(lines.as_bytes())
}

/// The digest of the dataset in `dir` ([`Dataset::sha256`]) without loading it: the files
/// are streamed through the hash.
pub fn digest(dir: &Path) -> Result<String> {
    use sha2::Digest;
    let mut shas: [String; 4] = Default::default();
    for (sha, name) in shas.iter_mut().zip(FILES) {
        let path = dir.join(name);
        let mut file = std::fs::File::open(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut hasher = sha2::Sha256::new();
        std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io("read", &path, e))?;
        *sha = format!("{:x}", hasher.finalize());
    }
    Ok(digest_of(shas))
}

/// Parses an `.npy` file and returns it with the sha256 of its bytes.
///
/// The header is checked against the file's length first ([`npy::read_checked`]): ndarray-npy
/// allocates the array from the header's shape before reading, so an unchecked header that
/// claims petabytes aborts the process.
fn read_npy_hashed<A: ndarray_npy::ReadNpyExt>(path: &Path, what: &str) -> Result<(A, String)> {
    use sha2::Digest;
    let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let file_len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    let mut reader = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: sha2::Sha256::new(),
    };
    let array = npy::read_checked(&mut reader, file_len)
        .map_err(|e| Error::malformed(path, format!("not {what}: {e}")))?;
    // Hash anything after the array too (read_npy stops at its end), so the digest covers the file.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::io("read", path, e))?;
    let digest = reader.hasher.finalize();
    Ok((array, format!("{digest:x}")))
}

impl Dataset {
    /// Loads a dataset directory and checks that its parts agree with each other.
    pub fn load(dir: &Path) -> Result<Dataset> {
        let meta_path = dir.join("meta.json");
        let meta_bytes = read_bytes(&meta_path)?;
        let meta: Meta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| Error::malformed(&meta_path, format!("not a dataset description: {e}")))?;
        if meta.format != FORMAT || meta.format_version != FORMAT_VERSION {
            return Err(Error::malformed(
                &meta_path,
                format!(
                    "format `{} {}` is not `{FORMAT} {FORMAT_VERSION}`",
                    meta.format, meta.format_version
                ),
            ));
        }
        let (x, x_sha): (Array3<f32>, _) =
            read_npy_hashed(&dir.join("X.npy"), "a float32 3-D array")?;
        let (y, y_sha): (Array1<i64>, _) =
            read_npy_hashed(&dir.join("y.npy"), "an int64 1-D array")?;
        let t_path = dir.join("trials.csv");
        let t_bytes = read_bytes(&t_path)?;
        let text = std::str::from_utf8(&t_bytes)
            .map_err(|_| Error::malformed(&t_path, "is not UTF-8 text"))?;
        let trials = parse_trials_csv(&t_path, text)?;
        let sha256 = digest_of([
            x_sha,
            y_sha,
            crate::fsutil::sha256_hex(&t_bytes),
            crate::fsutil::sha256_hex(&meta_bytes),
        ]);

        let (n, c, s) = x.dim();
        let checks = [
            (
                y.len() == n,
                format!("y.npy has {} trials, X.npy {n}", y.len()),
            ),
            (
                trials.len() == n,
                format!("trials.csv has {} rows, X.npy {n} trials", trials.len()),
            ),
            (
                meta.n_trials == n,
                format!("meta.json says {} trials, X.npy has {n}", meta.n_trials),
            ),
            (
                meta.channels.len() == c,
                format!(
                    "meta.json names {} channels, X.npy has {c}",
                    meta.channels.len()
                ),
            ),
            (
                meta.window.samples == s,
                format!(
                    "meta.json says {} samples, X.npy has {s}",
                    meta.window.samples
                ),
            ),
        ];
        if let Some((_, message)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(Error::malformed(dir, message));
        }
        if let Some((i, &label)) = y
            .iter()
            .enumerate()
            .find(|(_, &l)| l < 0 || l as usize >= meta.classes.len())
        {
            return Err(Error::malformed(
                dir.join("y.npy"),
                format!(
                    "trial {i} has class index `{label}` but there are {} classes",
                    meta.classes.len()
                ),
            ));
        }
        Ok(Dataset {
            x,
            y,
            trials,
            meta,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_npy_header_claiming_more_than_the_file_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("X.npy");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 22, 750), }";
        std::fs::write(&path, npy::npy_with_header(1, dict, &[0; 64])).unwrap();
        let e = read_npy_hashed::<Array3<f32>>(&path, "a float32 3-D array").unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
        assert_eq!(
            e.to_string(),
            format!(
                "`{}`: not a float32 3-D array: shape `(100000000000, 22, 750)` of `<f4` needs \
                 `6600000000000000` bytes of data but `64` follow the header",
                path.display()
            )
        );
        // A file that holds what its header says reads, and hashes as its bytes.
        let data: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
        let bytes =
            npy::npy_with_header(1, &dict.replace("100000000000, 22, 750", "1, 2, 3"), &data);
        std::fs::write(&path, &bytes).unwrap();
        let (x, sha) = read_npy_hashed::<Array3<f32>>(&path, "a float32 3-D array").unwrap();
        assert_eq!((x.dim(), x[[0, 1, 2]]), ((1, 2, 3), 5.0));
        assert_eq!(sha, crate::fsutil::sha256_hex(&bytes));
    }
}
