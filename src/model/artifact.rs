//! The model directory: everything a later step (predict, registry, server) needs, verified on
//! load.
//!
//! ```text
//! MODEL_DIR/
//!   MLmodel            MLflow's model description: flavors `bciops`, `onnx`, `python_function`
//!   model.json         the whole pipeline: preprocessing, CSP filters, scaling, SVM, classes
//!   metrics.json       the evaluation (top-level `accuracy` and `kappa`)
//!   model.onnx         the served pipeline as one ONNX graph (with conda.yaml,
//!                      python_env.yaml, requirements.txt: MLflow's `python_function` env)
//!   report.html        confusion matrix, fold and subject scores, CSP patterns (optional)
//!   cv_predictions.csv each evaluated trial's fold, true and predicted class
//!   checksums.sha256   sha256 of every other file, `sha256sum -c` format
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::dataset::{FilterMeta, WindowMeta};
use crate::error::{Error, Result};
use crate::fsutil::{sha256_hex, DirKind, Replace, StagedDir};
use crate::model::family::{FittedModel, Params};
use crate::model::mlflow_flavors;
use crate::signal::filter::{self, FilterMode};

pub const FORMAT: &str = "bciops-model";
pub const FORMAT_VERSION: u32 = 1;
pub const CHECKSUMS: &str = "checksums.sha256";
pub const MODEL_FILE: &str = "model.json";
/// HMAC-SHA256 of `checksums.sha256` under the key in [`SIGNING_KEY_ENV`], hex.
pub const SIGNATURE: &str = "signature.hmac-sha256";
/// The environment variable holding the signing key: when set, `save` signs every model and
/// `load` refuses one without a valid signature.
pub const SIGNING_KEY_ENV: &str = "BCIOPS_MODEL_KEY";

/// A model directory, as `--out` may replace it: one whose every file `checksums.sha256`
/// lists (plus the checksums and the signature themselves).
pub const MODEL_DIR: DirKind = DirKind {
    name: "model directory",
    foreign: unlisted_entry,
};

/// The first entry of `dir` that its checksums do not cover; the first entry of all when it
/// has no readable checksums.
pub fn unlisted_entry(dir: &Path) -> Option<String> {
    let listed: Vec<String> = match std::fs::read(dir.join(CHECKSUMS)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| l.split_once("  ").map(|(_, name)| name.to_owned()))
            .collect(),
        Err(_) => return crate::fsutil::first_entry(dir),
    };
    crate::fsutil::sorted_names(dir)?
        .into_iter()
        .find(|n| n != CHECKSUMS && n != SIGNATURE && !listed.iter().any(|l| l == n))
}

/// The signing key from the environment, if one is set (an empty value counts as unset).
fn signing_key() -> Option<Vec<u8>> {
    std::env::var_os(SIGNING_KEY_ENV)
        .filter(|k| !k.is_empty())
        .map(|k| k.into_encoded_bytes())
}

/// Hex HMAC-SHA256 of `message` under `key`.
fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::{Mac, SimpleHmac};
    // SimpleHmac takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = match SimpleHmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(message);
    format!("{:x}", mac.finalize().into_bytes())
}

/// What must be done to raw EEG before the model sees it: exactly what training did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub channels: Vec<String>,
    pub rate: f64,
    pub filter: FilterMeta,
    pub window: WindowMeta,
    /// Cue code → class name the training data was cut with.
    pub events: BTreeMap<u16, String>,
}

/// The dataset a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub path: String,
    /// sha256 over the dataset's `checksums` lines (X.npy, y.npy, trials.csv, meta.json).
    pub sha256: String,
    pub n_trials: usize,
}

/// `model.json`. `params` names the family (`pipeline`, absent for `csp+svm`) and its
/// hyper-parameters; `fitted` is read by that family, which refuses stages that do not fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModelFile")]
pub struct ModelFile {
    pub format: String,
    pub format_version: u32,
    pub bciops_version: String,
    pub classes: Vec<String>,
    pub preprocessing: Preprocessing,
    pub params: Params,
    pub seed: u64,
    pub dataset: DatasetRef,
    pub fitted: FittedModel,
}

/// `model.json` before its family has read `params` and `fitted`.
#[derive(Deserialize)]
struct RawModelFile {
    format: String,
    format_version: u32,
    bciops_version: String,
    classes: Vec<String>,
    preprocessing: Preprocessing,
    params: serde_json::Value,
    seed: u64,
    dataset: DatasetRef,
    fitted: serde_json::Value,
}

impl TryFrom<RawModelFile> for ModelFile {
    type Error = String;
    fn try_from(raw: RawModelFile) -> std::result::Result<Self, String> {
        let params = Params::from_json(&raw.params).map_err(|e| format!("params: {e}"))?;
        let fitted = params
            .family()
            .load(raw.fitted, &params)
            .map_err(|e| format!("fitted ({}): {e}", params.pipeline()))?;
        Ok(ModelFile {
            format: raw.format,
            format_version: raw.format_version,
            bciops_version: raw.bciops_version,
            classes: raw.classes,
            preprocessing: raw.preprocessing,
            params,
            seed: raw.seed,
            dataset: raw.dataset,
            fitted: FittedModel(fitted),
        })
    }
}

impl ModelFile {
    /// Input shape of one trial: channels × samples.
    pub fn trial_shape(&self) -> (usize, usize) {
        (
            self.preprocessing.channels.len(),
            self.preprocessing.window.samples,
        )
    }

    /// Columns of the scores [`ModelFile::predict_raw_batch`] returns (as its family
    /// documents them).
    pub fn score_columns(&self) -> usize {
        self.params.family().score_columns(self.classes.len())
    }

    /// Classifies one raw (unfiltered) trial, channels × samples in µV: the model's band-pass
    /// is applied to the trial alone, then CSP and the SVM. The trial's values are checked
    /// for finiteness here: this is the entry point for a trial from anywhere.
    pub fn predict_raw_trial(&self, trial: ArrayView2<f64>) -> Result<usize> {
        self.fits((trial.nrows(), trial.ncols()))?;
        if trial.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data("the trial holds a non-finite value".into()));
        }
        self.filter_and_predict(trial, self.preprocessing.filter.mode)
    }

    /// Classifies a batch of raw trials (trials × channels × samples, µV) as
    /// [`ModelFile::predict_raw_trial`] does each one, and with `scores` also returns the
    /// scores (trials × columns: the family's decision values, distances or probabilities).
    /// This is what a server does. The values must be
    /// finite: the server checks them once, where it decodes a request body, so they are
    /// not scanned again here (a non-finite value would still be refused, by the SVM's
    /// check of the features it yields, with a less precise message).
    pub fn predict_raw_batch(
        &self,
        trials: ArrayView3<f64>,
        scores: bool,
    ) -> Result<(Vec<usize>, Option<Array2<f64>>)> {
        let (n, c, s) = trials.dim();
        self.fits((c, s))?;
        let mode = self.preprocessing.filter.mode;
        if !scores {
            // Trial by trial: the per-trial path allocates no batch of features.
            let labels = trials
                .outer_iter()
                .map(|t| self.filter_and_predict(t, mode))
                .collect::<Result<Vec<_>>>()?;
            return Ok((labels, None));
        }
        let mut filtered = Array3::<f64>::zeros((n, c, s));
        for (t, mut out) in trials.outer_iter().zip(filtered.outer_iter_mut()) {
            let mut t = t.to_owned();
            filter::filter_rows(&self.preprocessing.filter.sos, mode, &mut t)?;
            out.assign(&t);
        }
        let labels = self.fitted.predict(filtered.view().into())?;
        let decision = self.fitted.scores(filtered.view().into())?;
        Ok((labels, Some(decision)))
    }

    /// Refuses a trial shape (channels, samples) other than the model's.
    fn fits(&self, (rows, cols): (usize, usize)) -> Result<()> {
        let (c, s) = self.trial_shape();
        if (rows, cols) != (c, s) {
            return Err(Error::Data(format!(
                "a trial of {rows} × {cols} does not fit the model's {c} channels × {s} samples"
            )));
        }
        Ok(())
    }

    /// The band-pass on one trial, then CSP and the SVM.
    fn filter_and_predict(&self, trial: ArrayView2<f64>, mode: FilterMode) -> Result<usize> {
        let mut filtered = trial.to_owned();
        filter::filter_rows(&self.preprocessing.filter.sos, mode, &mut filtered)?;
        self.fitted.predict_trial(filtered.view())
    }
}

/// What `MLmodel` records besides the model itself.
#[derive(Debug, Clone, Copy)]
pub struct MlmodelFacts<'a> {
    /// The tracking run the model was trained in.
    pub run_id: Option<&'a str>,
    pub model_uuid: &'a str,
    /// Whether the directory holds `model.onnx` (then the `onnx` and `python_function`
    /// flavors are written).
    pub onnx: bool,
}

fn mlmodel(model: &ModelFile, created: &str, facts: &MlmodelFacts) -> String {
    let n_scores = model.score_columns();
    render_mlmodel(
        &model.bciops_version,
        &model.classes,
        (model.trial_shape(), n_scores),
        created,
        facts,
    )
}

/// The `MLmodel` text. Written by hand rather than through serde_norway on purpose: MLflow
/// reads it with PyYAML, which loads a plain `2026-11-27 08:00:00.123456` (or a class named
/// `2026-01-01`) as a timestamp, and serde_norway writes such strings plain with no way to
/// ask for quotes. Here every string that could be misread is single-quoted; the test
/// `mlmodel_text_is_unchanged` pins the bytes. Keys are sorted, as MLflow writes them.
fn render_mlmodel(
    bciops_version: &str,
    classes: &[String],
    ((c, s), n_scores): ((usize, usize), usize),
    created: &str,
    facts: &MlmodelFacts,
) -> String {
    let inputs = format!(
        r#"[{{"name": "eeg", "type": "tensor", "tensor-spec": {{"dtype": "float32", "shape": [-1, {c}, {s}]}}}}]"#
    );
    let outputs = mlflow_flavors::signature_outputs(n_scores);
    let mut y = String::new();
    let _ = writeln!(y, "artifact_path: model");
    let _ = writeln!(y, "flavors:");
    let _ = writeln!(y, "  bciops:");
    let _ = writeln!(y, "    bciops_version: {bciops_version}");
    let _ = writeln!(y, "    format: {FORMAT}");
    let _ = writeln!(y, "    format_version: {FORMAT_VERSION}");
    let _ = writeln!(y, "    model_file: {MODEL_FILE}");
    let _ = writeln!(
        y,
        "    classes: [{}]",
        classes
            .iter()
            .map(|c| format!("'{}'", c.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(y, "    loader: bciops serve --model <this directory>");
    if facts.onnx {
        y.push_str(&mlflow_flavors::flavor_lines());
    }
    let _ = writeln!(y, "is_signature_from_type_hint: false");
    let _ = writeln!(y, "mlflow_version: {}", mlflow_flavors::MLFLOW_VERSION);
    let _ = writeln!(y, "model_id: null");
    let _ = writeln!(y, "model_size_bytes: null");
    let _ = writeln!(y, "model_uuid: '{}'", facts.model_uuid);
    let _ = writeln!(y, "prompts: null");
    if let Some(run_id) = facts.run_id {
        let _ = writeln!(y, "run_id: '{}'", run_id.replace('\'', "''"));
    }
    let _ = writeln!(y, "signature:");
    let _ = writeln!(y, "  inputs: '{inputs}'");
    let _ = writeln!(y, "  outputs: '{outputs}'");
    let _ = writeln!(y, "  params: null");
    let _ = writeln!(y, "type_hint_from_example: false");
    let _ = writeln!(y, "utc_time_created: '{created}'");
    y
}

/// UTC now as `YYYY-MM-DD HH:MM:SS.ffffff`, MLflow's style.
pub fn utc_now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string()
}

/// Writes the model directory at `dir` (replacing an older one only when complete).
/// `extra` files (name, text) are written beside the others and covered by the checksums.
/// `run_id`: the tracking run that trained it, recorded in `MLmodel`. The model's ONNX
/// graph, `model.onnx`, is written with MLflow's `onnx` and `python_function` flavors and
/// their environment files unless the model cannot be exported (then none of them is).
pub fn save(
    dir: &Path,
    model: &ModelFile,
    metrics: &serde_json::Value,
    report_html: Option<&str>,
    extra: &[(&str, String)],
    run_id: Option<&str>,
    force: bool,
) -> Result<()> {
    let staged = StagedDir::new(
        dir,
        Replace {
            kind: MODEL_DIR,
            force,
        },
    )?;
    // A model the exporter refuses (Error::Invalid: e.g. too long a window) is still a
    // model; any other failure is a bug and stops the save.
    let onnx = match crate::export::onnx::to_bytes(model) {
        Ok(bytes) => Some(bytes),
        Err(Error::Invalid(_)) => None,
        Err(e) => return Err(e),
    };
    let facts = MlmodelFacts {
        run_id,
        model_uuid: &mlflow_flavors::new_model_uuid(),
        onnx: onnx.is_some(),
    };
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("MLmodel", mlmodel(model, &utc_now(), &facts).into_bytes()),
        (MODEL_FILE, pretty(model)?.into_bytes()),
        ("metrics.json", pretty(metrics)?.into_bytes()),
    ];
    if let Some(bytes) = onnx {
        files.push((mlflow_flavors::ONNX_FILE, bytes));
        for (name, text) in mlflow_flavors::environment_files() {
            files.push((name, text.into_bytes()));
        }
    }
    if let Some(html) = report_html {
        files.push(("report.html", html.as_bytes().to_vec()));
    }
    for (name, text) in extra {
        files.push((name, text.as_bytes().to_vec()));
    }
    let mut sums = String::new();
    for (name, bytes) in &files {
        let path = staged.path().join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io("write", &path, e))?;
        let _ = writeln!(sums, "{}  {name}", sha256_hex(bytes));
    }
    let path = staged.path().join(CHECKSUMS);
    std::fs::write(&path, &sums).map_err(|e| Error::io("write", &path, e))?;
    if let Some(key) = signing_key() {
        let path = staged.path().join(SIGNATURE);
        std::fs::write(&path, hmac_hex(&key, sums.as_bytes()) + "\n")
            .map_err(|e| Error::io("write", &path, e))?;
    }
    staged.commit()
}

/// With a signing key in the environment, the model must carry a matching signature.
/// Checksums catch accidents (a truncated copy, an edited file); only a signature, made with a
/// key the writer of a consistent tamper does not have, shows that the model is the one signed.
fn verify_signature(dir: &Path, sums: &[u8]) -> Result<()> {
    let Some(key) = signing_key() else {
        return Ok(());
    };
    let path = dir.join(SIGNATURE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::malformed(
                dir,
                format!(
                    "has no `{SIGNATURE}`, but `{SIGNING_KEY_ENV}` is set: models must be signed"
                ),
            ))
        }
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    let want = hmac_hex(&key, sums);
    let got = String::from_utf8_lossy(&text);
    // Both are hex of fixed length; the comparison leaks nothing useful about the key.
    if got.trim() != want {
        return Err(Error::malformed(
            &path,
            format!("does not match the checksums under the key in `{SIGNING_KEY_ENV}`: the model was changed or signed with another key"),
        ));
    }
    Ok(())
}

/// Pretty JSON of any serializable value.
fn pretty<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::encode("json", e))
}

/// Loads and verifies a model directory: every file in `checksums.sha256` must match, the
/// format must be one this build reads, and the fitted parts must agree with each other.
pub fn load(dir: &Path) -> Result<ModelFile> {
    let sums_path = dir.join(CHECKSUMS);
    let sums_bytes = std::fs::read(&sums_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::malformed(
                dir,
                format!("not a bciops model directory (no `{CHECKSUMS}`)"),
            )
        } else {
            Error::io("read", &sums_path, e)
        }
    })?;
    let sums = std::str::from_utf8(&sums_bytes)
        .map_err(|_| Error::malformed(&sums_path, "is not UTF-8 text"))?;
    verify_signature(dir, &sums_bytes)?;
    let mut listed = Vec::new();
    for (i, line) in sums
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (digest, name) = line.split_once("  ").ok_or_else(|| {
            Error::malformed(&sums_path, format!("line {} is not `SHA256  NAME`", i + 1))
        })?;
        if name.contains('/') || name.contains("..") {
            return Err(Error::malformed(
                &sums_path,
                format!("line {} names `{name}` outside the model", i + 1),
            ));
        }
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        if sha256_hex(&bytes) != digest {
            return Err(Error::malformed(
                &path,
                "checksum mismatch: the file was changed after the model was written",
            ));
        }
        listed.push(name.to_owned());
    }
    if let Some(extra) = unlisted_entry(dir) {
        return Err(Error::malformed(
            dir.join(&extra),
            format!("is not listed in `{CHECKSUMS}`: a model directory holds only what it lists"),
        ));
    }
    for required in ["MLmodel", MODEL_FILE] {
        if !listed.iter().any(|n| n == required) {
            return Err(Error::malformed(
                &sums_path,
                format!("does not list `{required}`"),
            ));
        }
    }
    let path = dir.join(MODEL_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let model: ModelFile = serde_json::from_str(&text)
        .map_err(|e| Error::malformed(&path, format!("not a bciops model: {e}")))?;
    if model.format != FORMAT || model.format_version != FORMAT_VERSION {
        return Err(Error::malformed(
            &path,
            format!(
                "format `{} {}` is not `{FORMAT} {FORMAT_VERSION}` (written by bciops {})",
                model.format, model.format_version, model.bciops_version
            ),
        ));
    }
    // The family checked its stages against each other when it read them; the first stage
    // must also take the channels the model names.
    let (c, _) = model.trial_shape();
    if model.fitted.n_channels() != c {
        return Err(Error::malformed(
            &path,
            format!(
                "stage 1 of `{}` takes {} channels but the model names {c}",
                model.params.pipeline(),
                model.fitted.n_channels()
            ),
        ));
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_now_is_well_formed() {
        let t = utc_now();
        assert_eq!(t.len(), 26, "{t}");
        assert!(t.starts_with("20"), "{t}");
    }

    #[test]
    fn mlmodel_text_is_unchanged() {
        let classes = vec![
            "left".to_string(),
            "it's".into(),
            "2026-01-01".into(),
            "null".into(),
        ];
        let facts = MlmodelFacts {
            run_id: Some("0123456789"),
            model_uuid: "9192a97e716044068b2a71cc07178f1e",
            onnx: true,
        };
        let text = render_mlmodel(
            "0.1.0",
            &classes,
            ((22, 500), 4),
            "2026-11-27 08:00:00.123456",
            &facts,
        );
        // The `onnx` and `python_function` flavors and the top-level keys as
        // `mlflow.onnx.save_model` writes them (mlflow 3.17.2), keys sorted.
        let want = "artifact_path: model
flavors:
  bciops:
    bciops_version: 0.1.0
    format: bciops-model
    format_version: 1
    model_file: model.json
    classes: ['left', 'it''s', '2026-01-01', 'null']
    loader: bciops serve --model <this directory>
  onnx:
    code: null
    data: model.onnx
    onnx_session_options: null
    onnx_version: 1.23.1
    providers:
    - CUDAExecutionProvider
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.7
is_signature_from_type_hint: false
mlflow_version: 3.17.2
model_id: null
model_size_bytes: null
model_uuid: '9192a97e716044068b2a71cc07178f1e'
prompts: null
run_id: '0123456789'
signature:
  inputs: '[{\"name\": \"eeg\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float32\", \"shape\": [-1, 22, 500]}}]'
  outputs: '[{\"name\": \"labels\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"str\", \"shape\": [-1]}}, {\"name\": \"scores\", \"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1, 4]}}]'
  params: null
type_hint_from_example: false
utc_time_created: '2026-11-27 08:00:00.123456'
";
        assert_eq!(text, want);
        // And it is the YAML it means to be: strings stay strings.
        let v: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(v["flavors"]["bciops"]["classes"][1], "it's");
        assert_eq!(v["utc_time_created"], "2026-11-27 08:00:00.123456");
        assert_eq!(v["run_id"], "0123456789");
        // Without model.onnx (a model the exporter refuses) neither flavor is claimed.
        let bare = MlmodelFacts {
            run_id: None,
            onnx: false,
            ..facts
        };
        let text = render_mlmodel("0.1.0", &classes, ((22, 500), 1), "x", &bare);
        assert!(
            !text.contains("python_function") && !text.contains("run_id"),
            "{text}"
        );
    }
}
