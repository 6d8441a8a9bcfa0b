//! The model seam: a model is a *family* (a named chain of stages, `csp+svm`, `csp+lda`, …)
//! plus its hyper-parameters. Each family declares its parameters once ([`ParamSpec`]: name,
//! type, default, bounds, help) and everything else is derived from that declaration: the
//! `train` flags and `--params` files ([`Params`], merged as data), the sweep parameter names
//! (`tune/space.rs`), the pipeline config keys and their flags (`pipeline/`), the params logged
//! to MLflow, the `params` of `model.json` and the report's facts.
//!
//! Adding a family = one module implementing [`Family`] (and its [`Fitted`] model) plus its
//! line in [`FAMILIES`]; see `docs/model.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::csp;

pub mod chain;
pub mod csp_linear;
pub mod csp_svm;
pub mod fbcsp;
pub mod riemannian;

/// Every family bciops knows, by name. The first is the default.
pub static FAMILIES: &[&dyn Family] = &[
    &csp_svm::CspSvm,
    &csp_linear::CspLda,
    &csp_linear::CspLr,
    &riemannian::TsLr,
    &riemannian::TsSvm,
    &riemannian::MdmFamily,
    &fbcsp::FbcspSvm,
    &fbcsp::FbcspLda,
];

/// The default family: today's (and the original pipeline's) CSP + SVM.
pub const DEFAULT: &str = "csp+svm";

/// The family named `name`, or a one-line error listing the known ones.
pub fn family(name: &str) -> Result<&'static dyn Family> {
    FAMILIES
        .iter()
        .copied()
        .find(|f| f.name() == name)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unknown pipeline `{name}` (known: {})",
                names().join(", ")
            ))
        })
}

/// The names of every family.
pub fn names() -> Vec<&'static str> {
    FAMILIES.iter().map(|f| f.name()).collect()
}

/// The type and bounds of one hyper-parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// A number in `min..=max`; `open_min` excludes `min` itself (e.g. `C > 0`).
    Float {
        min: f64,
        max: f64,
        open_min: bool,
    },
    Bool,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// One of these words, or a number as [`Kind::Float`] (e.g. gamma `scale`, `auto` or > 0).
    WordOrFloat {
        words: &'static [&'static str],
        min: f64,
        max: f64,
        open_min: bool,
    },
    /// A list of numbers written `a,b,c` (e.g. filter-bank band edges).
    FloatList,
}

/// One hyper-parameter of a family, declared once.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// As `train` flags (`--n-components`), `--params` files, sweeps and the pipeline config
    /// (`n_components`) name it.
    pub name: &'static str,
    pub kind: Kind,
    /// As a user would write it on the command line.
    pub default: &'static str,
    pub help: &'static str,
}

impl ParamSpec {
    /// The flag that sets it (`--n-components`).
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    /// Parses a command-line or config text into this parameter's JSON value.
    pub fn parse(&self, text: &str) -> std::result::Result<Value, String> {
        let t = text.trim();
        let bad = |what: &str| format!("`{}` = `{text}` is not {what}", self.name);
        match self.kind {
            Kind::Int { .. } => t
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| bad("an integer")),
            Kind::Float { .. } => t
                .parse::<f64>()
                .map(Value::from)
                .map_err(|_| bad("a number")),
            Kind::Bool => t
                .parse::<bool>()
                .map(Value::Bool)
                .map_err(|_| bad("true or false")),
            Kind::Choice(_) => Ok(Value::String(t.to_owned())),
            Kind::WordOrFloat { .. } => Ok(t
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(t.to_owned()))),
            Kind::FloatList => t
                .split(',')
                .map(|v| v.trim().parse::<f64>().map(Value::from))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Value::Array)
                .map_err(|_| bad("a list of numbers `a,b,c`")),
        }
    }

    /// Checks a JSON value against the type and bounds; the error names the parameter.
    pub fn check(&self, v: &Value) -> std::result::Result<(), String> {
        // Numbers as a user writes them (`2`, not `2.0`).
        let shown = match v {
            Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), |x| x.to_string()),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let bad = |what: String| format!("`{}` = `{shown}` {what}", self.name);
        let in_range = |x: f64, min: f64, max: f64, open: bool| {
            let low = if open { x > min } else { x >= min };
            if low && x <= max {
                Ok(())
            } else {
                let op = if open { ">" } else { "≥" };
                Err(bad(format!("is out of range ({op} {min}, ≤ {max})")))
            }
        };
        match self.kind {
            Kind::Int { min, max } => match v.as_i64() {
                Some(x) if x >= min && x <= max => Ok(()),
                Some(_) => Err(bad(format!("is out of range ({min}..={max})"))),
                None => Err(bad("is not an integer".into())),
            },
            Kind::Float { min, max, open_min } => match v.as_f64() {
                Some(x) => in_range(x, min, max, open_min),
                None => Err(bad("is not a number".into())),
            },
            Kind::Bool => v
                .is_boolean()
                .then_some(())
                .ok_or_else(|| bad("is not true or false".into())),
            Kind::Choice(words) => match v.as_str() {
                Some(s) if words.contains(&s) => Ok(()),
                _ => Err(bad(format!("is not one of {}", words.join(", ")))),
            },
            Kind::WordOrFloat {
                words,
                min,
                max,
                open_min,
            } => match (v.as_str(), v.as_f64()) {
                (Some(s), _) if words.contains(&s) => Ok(()),
                (_, Some(x)) => in_range(x, min, max, open_min),
                _ => Err(bad(format!(
                    "is not one of {} or a number",
                    words.join(", ")
                ))),
            },
            Kind::FloatList => match v.as_array() {
                Some(a) if !a.is_empty() && a.iter().all(Value::is_number) => Ok(()),
                _ => Err(bad("is not a list of numbers".into())),
            },
        }
    }

    /// The default as a JSON value (the declaration's text, parsed).
    pub fn default_value(&self) -> Value {
        self.parse(self.default)
            .unwrap_or_else(|_| Value::String(self.default.to_owned()))
    }

    /// A short text of the type and bounds, for help and docs.
    pub fn describe_kind(&self) -> String {
        match self.kind {
            Kind::Int { min, max } => format!("integer {min}..={max}"),
            Kind::Float { min, max, open_min } => {
                format!("number {} {min}, ≤ {max}", if open_min { ">" } else { "≥" })
            }
            Kind::Bool => "switch".into(),
            Kind::Choice(w) => w.join("|"),
            Kind::WordOrFloat { words, min, .. } => format!("{}|number > {min}", words.join("|")),
            Kind::FloatList => "numbers a,b,…".into(),
        }
    }
}

/// Trials as the model sees them: float32 from a dataset, float64 from a server.
#[derive(Debug, Clone, Copy)]
pub enum Trials3<'a> {
    F32(ArrayView3<'a, f32>),
    F64(ArrayView3<'a, f64>),
}

/// Dispatches a generic function over both sample types.
#[macro_export]
macro_rules! with_trials {
    ($x:expr, $v:ident => $body:expr) => {
        match $x {
            $crate::model::family::Trials3::F32($v) => $body,
            $crate::model::family::Trials3::F64($v) => $body,
        }
    };
}

impl<'a> Trials3<'a> {
    pub fn n_trials(&self) -> usize {
        with_trials!(*self, v => v.len_of(Axis(0)))
    }
    pub fn n_channels(&self) -> usize {
        with_trials!(*self, v => v.len_of(Axis(1)))
    }
}

impl<'a> From<ArrayView3<'a, f32>> for Trials3<'a> {
    fn from(v: ArrayView3<'a, f32>) -> Self {
        Trials3::F32(v)
    }
}

impl<'a> From<ArrayView3<'a, f64>> for Trials3<'a> {
    fn from(v: ArrayView3<'a, f64>) -> Self {
        Trials3::F64(v)
    }
}

/// What a family may check its parameters against before any work.
#[derive(Debug, Clone, Copy)]
pub struct DataShape {
    pub n_channels: usize,
    pub n_samples: usize,
    /// Sampling rate, Hz.
    pub rate: f64,
}

/// Labelled trials, as an evaluation sees them.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    pub x: Trials3<'a>,
    /// Class index of each trial, `0..n_classes`.
    pub y: &'a [usize],
    pub n_classes: usize,
    pub data: DataShape,
}

/// What the report shows of a fitted model beyond the evaluation.
#[derive(Debug, Clone, Default)]
pub struct ReportParts {
    /// (label, text) lines for the facts table.
    pub facts: Vec<(String, String)>,
    /// Scalp maps: (title, one value per channel).
    pub maps: Vec<(String, Vec<f64>)>,
    /// The maps' heading and a sentence on what they show (empty: CSP spatial patterns).
    pub maps_title: String,
    pub maps_note: String,
}

/// A family: a named chain of stages and its declared hyper-parameters.
pub trait Family: Sync + Send {
    /// The short name used everywhere (`--pipeline csp+svm`).
    fn name(&self) -> &'static str;
    /// The stages, for help and docs (`CSP → log-variance → [scaler] → SVM`).
    fn stages(&self) -> &'static str;
    /// What V2 `scores` / `predict --decision` return for this family.
    fn scores_doc(&self) -> &'static str;
    /// Columns of the scores for `n_classes` classes: scikit-learn's decision functions give
    /// one for two classes, else one per class.
    fn score_columns(&self, n_classes: usize) -> usize {
        if n_classes <= 2 {
            1
        } else {
            n_classes
        }
    }
    /// The hyper-parameters, declared once.
    fn params(&self) -> &'static [ParamSpec];
    /// Checks the values together (beyond each one's type and bounds) and returns them in
    /// their canonical JSON form (e.g. `"ledoit_wolf"` → `"auto"`).
    fn normalize(
        &self,
        values: BTreeMap<String, Value>,
    ) -> std::result::Result<BTreeMap<String, Value>, String>;
    /// Checks the parameters against the data before any work: bad input is refused naming
    /// the parameter and its value.
    fn check(&self, params: &Params, data: DataShape) -> Result<()>;
    /// Fits the whole chain on `x` (trials × channels × samples) with classes `y`.
    fn fit(
        &self,
        x: Trials3<'_>,
        y: &[usize],
        n_classes: usize,
        params: &Params,
        data: DataShape,
    ) -> Result<Arc<dyn Fitted>>;
    /// Reads a fitted model from `model.json`'s `fitted`; the error names the stage that does
    /// not fit.
    fn load(&self, fitted: Value, params: &Params) -> std::result::Result<Arc<dyn Fitted>, String>;
    /// Evaluates `params` with the folds of `splits`: each fold's predictions of its test
    /// trials and its wall time, `on_fold(fold, predictions, seconds)` called as each
    /// finishes. Families with shared per-trial work (CSP scatters) override this.
    fn evaluate_folds(
        &self,
        set: Labelled<'_>,
        params: &Params,
        splits: &[crate::model::cv::Split],
        on_fold: &(dyn Fn(usize, &[usize], f64) + Sync),
    ) -> Vec<Result<(Vec<usize>, f64)>> {
        use rayon::prelude::*;
        let Labelled {
            x,
            y,
            n_classes,
            data,
        } = set;
        splits
            .par_iter()
            .enumerate()
            .map(|(f, split)| {
                let start = std::time::Instant::now();
                let out = with_trials!(x, v => {
                    let train = v.select(Axis(0), &split.train);
                    let train_y: Vec<usize> = split.train.iter().map(|&i| y[i]).collect();
                    let fitted = self.fit(train.view().into(), &train_y, n_classes, params, data)?;
                    let test = v.select(Axis(0), &split.test);
                    fitted.predict(test.view().into())
                });
                let out = out.map(|p| (p, start.elapsed().as_secs_f64()));
                if let Ok((p, s)) = &out {
                    on_fold(f, p, *s);
                }
                out
            })
            .collect()
    }
}

/// A fitted chain of stages.
pub trait Fitted: Send + Sync + fmt::Debug {
    /// The `fitted` object of `model.json`.
    fn to_json(&self) -> Result<Value>;
    /// Channels the first stage takes.
    fn n_channels(&self) -> usize;
    /// Class index of each trial.
    fn predict(&self, x: Trials3<'_>) -> Result<Vec<usize>>;
    /// The head's scores (trials × columns): what V2 `scores` and `predict --decision` give;
    /// [`Family::scores_doc`] says which.
    fn scores(&self, x: Trials3<'_>) -> Result<Array2<f64>>;
    /// Class probabilities (trials × classes); an error naming the setting when the model
    /// cannot give them.
    fn predict_proba(&self, x: Trials3<'_>) -> Result<Array2<f64>>;
    /// One band-passed trial (channels × samples): the server's path.
    fn predict_trial(&self, trial: ArrayView2<f64>) -> Result<usize> {
        let x = trial.insert_axis(Axis(0));
        Ok(self.predict(x.into())?.first().copied().unwrap_or(0))
    }
    /// Facts and scalp maps for `report.html`.
    fn report(&self, params: &Params) -> ReportParts;
    /// The stages the ONNX exporter writes today (`src/export/onnx.rs`): CSP, an optional
    /// scaler and an SVM or linear head. Other families answer `None` and are not exported.
    fn csp_stages(&self) -> Option<CspStages<'_>> {
        None
    }
}

/// A CSP model's stages as the ONNX exporter reads them.
pub struct CspStages<'a> {
    pub csp: &'a crate::model::csp::Csp,
    pub scaler: Option<&'a crate::model::scaler::StandardScaler>,
    pub head: CspHead<'a>,
}

/// The head after CSP: scikit-learn's `SVC`, or a linear map (LDA, logistic regression) whose
/// class is the sign of its one score (two classes) or its first largest score.
pub enum CspHead<'a> {
    Svm(&'a crate::model::svm::SvmModel),
    Linear(&'a crate::model::linear::Linear),
}

/// A family's hyper-parameters: the family and one value per declared parameter.
///
/// Serialized flat, in declaration order, with `pipeline` first unless it is the default
/// family, so a `csp+svm` model's `params` are exactly what they always were.
#[derive(Clone)]
pub struct Params {
    family: &'static dyn Family,
    values: BTreeMap<String, Value>,
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Params")
            .field("pipeline", &self.family.name())
            .field("values", &self.values)
            .finish()
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.family.name() == other.family.name() && self.values == other.values
    }
}

impl Default for Params {
    fn default() -> Self {
        Params::defaults(FAMILIES[0])
    }
}

impl Params {
    /// The family's declared defaults.
    pub fn defaults(family: &'static dyn Family) -> Params {
        Params {
            family,
            values: family
                .params()
                .iter()
                .map(|p| (p.name.to_owned(), p.default_value()))
                .collect(),
        }
    }

    pub fn family(&self) -> &'static dyn Family {
        self.family
    }

    pub fn pipeline(&self) -> &'static str {
        self.family.name()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// The values by name.
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// The parameters as the family's typed struct.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(Value::Object(self.values.clone().into_iter().collect()))
            .map_err(|e| Error::Invalid(format!("pipeline `{}`: {e}", self.pipeline())))
    }

    /// Switches to another family, keeping the values the new family also declares.
    pub fn with_family(&self, family: &'static dyn Family) -> Params {
        if family.name() == self.pipeline() {
            return self.clone();
        }
        let mut p = Params::defaults(family);
        for (k, v) in &self.values {
            if p.values.contains_key(k) {
                p.values.insert(k.clone(), v.clone());
            }
        }
        p
    }

    /// Sets one declared parameter from JSON; the error names it and its value.
    pub fn set(&mut self, name: &str, value: Value) -> std::result::Result<(), String> {
        let spec = self.spec(name)?;
        spec.check(&value)?;
        self.values.insert(spec.name.to_owned(), value);
        Ok(())
    }

    /// Sets one declared parameter from its text (a flag's or a config's value).
    pub fn set_text(&mut self, name: &str, text: &str) -> std::result::Result<(), String> {
        let value = self.spec(name)?.parse(text)?;
        self.set(name, value)
    }

    fn spec(&self, name: &str) -> std::result::Result<&'static ParamSpec, String> {
        self.family
            .params()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                if all_param_names().contains(&name) {
                    format!(
                        "parameter `{name}` does not apply to pipeline `{}` (it takes: {})",
                        self.pipeline(),
                        self.family
                            .params()
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    format!(
                        "unknown parameter `{name}` of pipeline `{}` (it takes: {})",
                        self.pipeline(),
                        self.family
                            .params()
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            })
    }

    /// Canonical values, checked together by the family.
    pub fn normalized(mut self) -> std::result::Result<Params, String> {
        self.values = self.family.normalize(self.values)?;
        Ok(self)
    }

    /// Reads parameters from a JSON object: `pipeline` (default `csp+svm`) and any of that
    /// family's parameters; the others take their defaults. Unknown names are refused.
    pub fn from_json(value: &Value) -> std::result::Result<Params, String> {
        let Some(map) = value.as_object() else {
            return Err("parameters are not a JSON object".into());
        };
        let family = match map.get("pipeline") {
            None => FAMILIES[0],
            Some(Value::String(s)) => family(s).map_err(|e| e.to_string())?,
            Some(other) => return Err(format!("`pipeline` = `{other}` is not a name")),
        };
        let mut p = Params::defaults(family);
        p.merge_json(map)?;
        p.normalized()
    }

    /// Overlays the values of `map` (a `pipeline` key is skipped: choose the family first).
    pub fn merge_json(
        &mut self,
        map: &serde_json::Map<String, Value>,
    ) -> std::result::Result<(), String> {
        for (k, v) in map {
            if k != "pipeline" {
                self.set(k, v.clone())?;
            }
        }
        Ok(())
    }

    /// Parameters from a family name and a flat map of JSON values.
    pub fn of(
        pipeline: &str,
        values: &BTreeMap<String, Value>,
    ) -> std::result::Result<Params, String> {
        let mut p = Params::defaults(family(pipeline).map_err(|e| e.to_string())?);
        for (k, v) in values {
            p.set(k, v.clone())?;
        }
        p.normalized()
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if self.family.name() != DEFAULT {
            m.serialize_entry("pipeline", self.family.name())?;
        }
        // Declaration order, as the typed struct of `csp+svm` always wrote them.
        for spec in self.family.params() {
            if let Some(v) = self.values.get(spec.name) {
                m.serialize_entry(spec.name, v)?;
            }
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Params::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// Every parameter name any family declares, in first-declaration order.
pub fn all_param_names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in FAMILIES {
        for p in f.params() {
            if !out.contains(&p.name) {
                out.push(p.name);
            }
        }
    }
    out
}

/// The first declaration of each parameter name across the families, with the families that
/// take it.
pub fn all_param_specs() -> Vec<(&'static ParamSpec, Vec<&'static str>)> {
    let mut out: Vec<(&'static ParamSpec, Vec<&'static str>)> = Vec::new();
    for f in FAMILIES {
        for p in f.params() {
            match out.iter_mut().find(|(s, _)| s.name == p.name) {
                Some((_, fams)) => fams.push(f.name()),
                None => out.push((p, vec![f.name()])),
            }
        }
    }
    out
}

/// A fitted model together with its family, as `model.json` holds it.
#[derive(Clone, Debug)]
pub struct FittedModel(pub Arc<dyn Fitted>);

impl std::ops::Deref for FittedModel {
    type Target = dyn Fitted;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl PartialEq for FittedModel {
    fn eq(&self, other: &Self) -> bool {
        matches!((self.0.to_json(), other.0.to_json()), (Ok(a), Ok(b)) if a == b)
    }
}

impl Serialize for FittedModel {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0
            .to_json()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// Refuses trials whose channel count is not the model's.
pub fn check_channels(fitted: &dyn Fitted, x: &Trials3<'_>) -> Result<()> {
    let c = x.n_channels();
    if c != fitted.n_channels() {
        return Err(Error::Data(format!(
            "trials of {c} channels do not fit a model of {} channels",
            fitted.n_channels()
        )));
    }
    Ok(())
}

/// Fits through the generic trait on any sample type.
pub fn fit<T: csp::Sample>(
    x: ArrayView3<'_, T>,
    y: &[usize],
    n_classes: usize,
    params: &Params,
    data: DataShape,
) -> Result<FittedModel>
where
    for<'a> Trials3<'a>: From<ArrayView3<'a, T>>,
{
    Ok(FittedModel(params.family().fit(
        x.into(),
        y,
        n_classes,
        params,
        data,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_default_round_trips_through_json() {
        for f in FAMILIES {
            let p = Params::defaults(*f).normalized().unwrap();
            let json = serde_json::to_value(&p).unwrap();
            let back = Params::from_json(&json).unwrap();
            assert_eq!(back, p, "{}", f.name());
            // Each declared default passes its own declared bounds.
            for spec in f.params() {
                spec.check(&spec.default_value())
                    .unwrap_or_else(|e| panic!("{}: {e}", f.name()));
            }
        }
    }

    #[test]
    fn unknown_family_and_parameters_are_refused_by_name() {
        let e = Params::from_json(&serde_json::json!({"pipeline": "knn"})).unwrap_err();
        assert!(e.contains("unknown pipeline `knn`"), "{e}");
        let e = Params::from_json(&serde_json::json!({"alpha": 1})).unwrap_err();
        assert!(e.contains("unknown parameter `alpha`"), "{e}");
        let e = Params::from_json(&serde_json::json!({"c": "big"})).unwrap_err();
        assert!(e.contains("`c`") && e.contains("big"), "{e}");
    }

    #[test]
    fn parameter_names_are_unique_within_a_family_and_kinds_agree_across() {
        for f in FAMILIES {
            let mut names: Vec<_> = f.params().iter().map(|p| p.name).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "{} declares a name twice", f.name());
        }
        // A flag means one thing whichever family takes it.
        for (spec, _) in all_param_specs() {
            for f in FAMILIES {
                if let Some(other) = f.params().iter().find(|p| p.name == spec.name) {
                    assert_eq!(
                        std::mem::discriminant(&other.kind),
                        std::mem::discriminant(&spec.kind),
                        "`{}` has two types",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn text_values_parse_as_declared() {
        let mut p = Params::default();
        p.set_text("n_components", "6").unwrap();
        p.set_text("gamma", "0.5").unwrap();
        p.set_text("kernel", "linear").unwrap();
        assert_eq!(p.get("n_components"), Some(&Value::from(6)));
        assert_eq!(p.get("gamma"), Some(&Value::from(0.5)));
        assert!(p
            .set_text("n_components", "six")
            .unwrap_err()
            .contains("`six`"));
        assert!(p.set_text("c", "-1").unwrap_err().contains("-1"));
    }
}
