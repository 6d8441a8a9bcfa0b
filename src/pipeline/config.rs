//! The pipeline configuration (`configs/pipeline.yaml`): what the DAG runs and with which
//! parameters, shared by the local runner and the Kubeflow emitter.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::error::{Error, Result};

/// The embedded default, identical to `configs/pipeline.yaml`.
pub const DEFAULT_YAML: &str = include_str!("../../configs/pipeline.yaml");

/// The default `tune.sweep`, relative to a checkout of the project.
pub const DEFAULT_SWEEP: &str = "configs/sweep.yaml";

/// The file `DEFAULT_SWEEP` names, embedded so that a run outside a checkout still tunes.
pub const DEFAULT_SWEEP_YAML: &str = include_str!("../../configs/sweep.yaml");

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(deserialize_with = "text")]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mode: Mode,
    pub run_dir: String,
    #[serde(default)]
    pub pipeline_root: Option<String>,
    pub data: DataConfig,
    pub preprocess: PreprocessConfig,
    pub tune: TuneConfig,
    pub train: TrainConfig,
    pub registry: RegistryConfig,
    pub deploy: DeployConfig,
    pub caching: bool,
    #[serde(default)]
    pub steps: BTreeMap<String, StepSettings>,
}

/// Which branch the pipeline takes after preprocessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Tune,
    Train,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tune => "tune",
            Mode::Train => "train",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub source: DataSource,
    pub synth: SynthConfig,
    #[serde(default)]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    Synth,
    Uri,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    #[serde(deserialize_with = "text")]
    pub subjects: String,
    pub seed: u64,
    pub trials_per_class: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessConfig {
    #[serde(deserialize_with = "text")]
    pub band: String,
    pub order: u32,
    #[serde(deserialize_with = "text")]
    pub window: String,
    #[serde(deserialize_with = "text")]
    pub classes: String,
    pub causal: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    pub sweep: String,
    pub shards: u32,
    #[serde(deserialize_with = "text")]
    pub eval: String,
    #[serde(default)]
    pub max_trials: Option<u32>,
    #[serde(default)]
    pub jobs: Option<u32>,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(deserialize_with = "text")]
    pub eval: String,
    pub seed: u64,
    #[serde(default)]
    pub params_file: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Scalar>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(deserialize_with = "text")]
    pub name: String,
    #[serde(deserialize_with = "text")]
    pub alias: String,
    #[serde(deserialize_with = "text")]
    pub metric: String,
    pub min_delta: f64,
    /// `--registry-uri` of compare-register; None: its own default ($MLFLOW_REGISTRY_URI,
    /// $MLFLOW_TRACKING_URI, else `./bciops-store`, where `serve` looks too).
    #[serde(default)]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    pub enabled: bool,
}

/// Resources and placement of one step's container (Kubernetes quantities as strings).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StepSettings {
    #[serde(default, deserialize_with = "quantity")]
    pub cpu_request: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    pub cpu_limit: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    pub memory_request: Option<String>,
    #[serde(default, deserialize_with = "quantity")]
    pub memory_limit: Option<String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub accelerator: Option<Accelerator>,
    /// Overrides the pipeline-wide `caching` for this step.
    #[serde(default)]
    pub cache: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    /// The resource name, e.g. `nvidia.com/gpu`.
    #[serde(rename = "type")]
    pub kind: String,
    pub count: u32,
}

/// A string field that `--set` may have given as a number (`--set data.synth.subjects=1`).
fn text<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Scalar::deserialize(d)?.to_string())
}

/// A Kubernetes quantity, written as a string (`500m`, `4Gi`) or a bare number (`2`).
fn quantity<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| s.to_string()))
}

/// A hyper-parameter value as YAML gives it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x:?}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

/// The `train` hyper-parameters a config may set: `pipeline` and every family's declared
/// parameters (`model/family/`), each with whether it is an on/off flag and, for flags, whether
/// it is on by default (then `false` is passed as `--no-NAME`).
pub fn train_params() -> Vec<(&'static str, bool, bool)> {
    let mut out = vec![("pipeline", false, false)];
    for (spec, _) in crate::model::family::all_param_specs() {
        let switch = spec.kind == crate::model::family::Kind::Bool;
        out.push((spec.name, switch, switch && spec.default == "true"));
    }
    out
}

/// Step names that `steps:` may configure.
pub const STEP_NAMES: &[&str] = &[
    "synth",
    "preprocess",
    "tune",
    "tune-merge",
    "train",
    "compare-register",
    "deploy",
];

impl PipelineConfig {
    /// Reads a config file (or the embedded default) and applies `key=value` overrides.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let (origin, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|e| Error::io("read", p, e))?,
            ),
            None => (
                "<embedded configs/pipeline.yaml>".to_owned(),
                DEFAULT_YAML.to_owned(),
            ),
        };
        Self::from_yaml(&origin, &text, overrides)
    }

    pub fn from_yaml(origin: &str, text: &str, overrides: &[String]) -> Result<Self> {
        let mut value: Value = serde_norway::from_str(text)
            .map_err(|e| Error::malformed(origin, format!("not YAML: {e}")))?;
        let text = if overrides.is_empty() {
            text.to_owned()
        } else {
            for item in overrides {
                apply_override(&mut value, item)?;
            }
            // Parsed from text again, so that errors name the offending key.
            serde_norway::to_string(&value)
                .map_err(|e| Error::Invalid(format!("cannot apply `--set`: {e}")))?
        };
        let config: PipelineConfig =
            serde_norway::from_str(&text).map_err(|e| Error::malformed(origin, e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks `train.params` against the family they name (`pipeline`, default `csp+svm`),
    /// as `train` will: a value of the wrong type or for another family stops the config
    /// here. With a `params_file` the family may come from the file, so only names are
    /// checked.
    fn check_train_params(&self) -> Result<()> {
        use crate::model::family::{self, Params};
        let pipeline = match self.train.params.get("pipeline") {
            Some(Scalar::Str(s)) => s.clone(),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "train parameter `pipeline` = `{other}` is not a name"
                )))
            }
            None if self.train.params_file.is_some() => return Ok(()),
            None => family::DEFAULT.to_owned(),
        };
        let mut p = Params::defaults(family::family(&pipeline)?);
        for (key, value) in self.train.params.iter().filter(|(k, _)| *k != "pipeline") {
            p.set_text(key, &value.to_string()).map_err(|e| {
                let e = e.strip_prefix("parameter ").unwrap_or(&e);
                Error::Invalid(format!("train parameter {e}"))
            })?;
        }
        p.normalized()
            .map(|_| ())
            .map_err(|e| Error::Invalid(format!("train parameters: {e}")))
    }

    fn validate(&self) -> Result<()> {
        if self.data.source == DataSource::Uri && self.data.uri.is_none() {
            return Err(Error::Invalid(
                "`data.source` is `uri` but `data.uri` is not set".into(),
            ));
        }
        if self.tune.shards == 0 {
            return Err(Error::Invalid("`tune.shards` must be at least 1".into()));
        }
        let known_params = train_params();
        for (key, value) in &self.train.params {
            match known_params
                .iter()
                .find(|(k, ..)| k == key)
                .map(|(_, s, _)| s)
            {
                None => {
                    let known: Vec<_> = known_params.iter().map(|(k, ..)| *k).collect();
                    return Err(Error::Invalid(format!(
                        "unknown train parameter `{key}` (known: {})",
                        known.join(", ")
                    )));
                }
                Some(true) if !matches!(value, Scalar::Bool(_)) => {
                    return Err(Error::Invalid(format!(
                        "train parameter `{key}` must be true or false, not `{value}`"
                    )));
                }
                Some(false) if matches!(value, Scalar::Bool(_)) => {
                    return Err(Error::Invalid(format!(
                        "train parameter `{key}` takes a value, not `{value}`"
                    )));
                }
                _ => {}
            }
        }
        self.check_train_params()?;
        for name in self.steps.keys() {
            if !STEP_NAMES.contains(&name.as_str()) {
                return Err(Error::Invalid(format!(
                    "unknown step `{name}` under `steps` (known: {})",
                    STEP_NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The settings of one step (empty when the config has none).
    pub fn step(&self, name: &str) -> StepSettings {
        self.steps.get(name).cloned().unwrap_or_default()
    }

    /// Whether a step's results may be reused.
    pub fn cache_enabled(&self, step: &str) -> bool {
        self.step(step).cache.unwrap_or(self.caching)
    }
}

/// Sets `a.b.c=value` in a YAML tree; the value is read as YAML (so `3` is a number and `true`
/// a boolean), missing mappings are created.
fn apply_override(root: &mut Value, item: &str) -> Result<()> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| Error::Invalid(format!("`--set {item}` is not of the form key=value")))?;
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::Invalid(format!("`{key}` is not a dotted key")));
    }
    let value: Value = if raw.is_empty() {
        Value::String(String::new())
    } else {
        serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
    };
    let mut node = root;
    for part in key.split('.') {
        if matches!(node, Value::Null) {
            *node = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = node else {
            return Err(Error::Invalid(format!(
                "`--set {key}`: `{part}` is inside a value that is not a mapping"
            )));
        };
        node = map
            .entry(Value::String(part.to_owned()))
            .or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = PipelineConfig::load(None, &[]).unwrap();
        assert_eq!(c.mode, Mode::Train);
        assert_eq!(c.data.source, DataSource::Synth);
        assert_eq!(c.tune.shards, 3);
        assert_eq!(c.step("preprocess").memory_limit.as_deref(), Some("8Gi"));
    }

    #[test]
    fn overrides_set_nested_keys_with_yaml_types() {
        let sets = [
            "mode=tune",
            "train.params.c=1.5",
            "train.params.log=false",
            "train.params.kernel=rbf",
            "steps.train.accelerator.type=nvidia.com/gpu",
            "steps.train.accelerator.count=1",
            "registry.min_delta=0.01",
        ]
        .map(String::from);
        let c = PipelineConfig::load(None, &sets).unwrap();
        assert_eq!(c.mode, Mode::Tune);
        assert_eq!(c.train.params["c"], Scalar::Float(1.5));
        assert_eq!(c.train.params["log"], Scalar::Bool(false));
        assert_eq!(c.train.params["kernel"], Scalar::Str("rbf".into()));
        assert_eq!(c.step("train").accelerator.unwrap().count, 1);
        assert_eq!(c.registry.min_delta, 0.01);
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let err = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            PipelineConfig::load(None, &sets).unwrap_err().to_string()
        };
        assert!(err(&["mode=fast"]).contains("fast"));
        assert!(err(&["nope=1"]).contains("nope"));
        assert!(err(&["train.params.colour=red"]).contains("`colour`"));
        assert!(err(&["train.params.log=3"]).contains("`log`"));
        assert!(err(&["steps.predict.cpu_limit=1"]).contains("`predict`"));
        assert!(err(&["mode"]).contains("key=value"));
        assert!(err(&["mode.x=1"]).contains("not a mapping"));
        assert!(err(&["data.source=uri"]).contains("data.uri"));
    }
}
