//! Weights & Biases sweep files: the YAML schema W&B's `wandb sweep` accepts, read into a
//! validated search space so existing sweep files run unchanged with the local tuner.
//!
//! The file is parsed into an untyped YAML value first and then checked by hand, so that every
//! violation is collected and reported at once, as W&B's own validator does. The error is an
//! [`Error::Invalid`] whose message is **multi-line**: a first line naming the file and the
//! number of problems, then one line per violation, each starting with the path of the
//! offending key (``parameters.c: `min` (2) must be below `max` (1)``).
//!
//! Accepted top-level keys: `method` (required), `metric`, `parameters` (required),
//! `run_cap`, `early_terminate`, `name`, `description`. `program`, `command`, `entity`,
//! `project`, `apiVersion`, `kind` and `controller` are accepted and ignored: real W&B files
//! carry them, but they describe how W&B launches runs, which the local tuner decides itself.
//! Any other key is an error.
//!
//! What W&B's own validator (the `sweeps` package) accepts either runs here or is refused with
//! a line naming the construct: `method: custom`, the `beta`/`q_beta` distributions and
//! `metric.impute` other than `worst` are refused; everything else runs.
//!
//! **Nested parameters** (`svm: {parameters: {c: {values: [...]}}}`) are flattened to dotted
//! names (`svm.c`), which is what trials tables, journals and trial ids use; [`Sweep::nest`]
//! rebuilds W&B's nested shape (`{"svm": {"c": 1.0}}`) for run configs. A dotted name given at
//! top level and the same name reached by nesting are refused as ambiguous.
//!
//! **Grids** enumerate `values`, `value`, `int_uniform` (every integer of `min..=max`) and
//! `q_uniform` (NumPy's `arange(min, max, q)`: `max` itself is left out, and the values are
//! integers only when `min`, `max` and `q` all are) exactly as W&B's grid search does, in its
//! order (names sorted at each level of nesting, the last varying fastest); other
//! distributions, and `probabilities`, are refused in a grid, as W&B refuses them.
//!
//! **Deprecated forms** (`log_uniform`, `q_log_uniform`, `inv_log_uniform`, whose `min`/`max`
//! are exponents of e) run, with a one-line note in [`Sweep::notes`] naming the replacement.
//!
//! ```
//! use bciops::tune::sweep;
//! let s = sweep::parse("method: grid\nparameters:\n  c: {values: [0.5, 1.0]}\n", "inline")?;
//! assert_eq!(s.grid().len(), 2);
//! let bad = sweep::parse("method: annealing\nparameters: {c: {min: 2, max: 1}}\n", "inline");
//! assert!(bad.unwrap_err().to_string().contains("parameters.c: `min` (2) must be below `max` (1)"));
//! # Ok::<(), bciops::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use rand::Rng;
use serde_json::Value;
use serde_norway::Value as Yaml;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How the tuner picks the next trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Grid,
    Random,
    Bayes,
}

/// Whether a larger metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Minimize,
    Maximize,
}

/// The metric a sweep optimises. `goal` defaults to `minimize`, as in W&B.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub goal: Goal,
    /// Stop the sweep once a run reaches this value.
    pub target: Option<f64>,
}

/// Hyperband early termination. Exactly one of `min_iter` and `max_iter` is set; `s` is set
/// whenever `max_iter` is.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyTerminate {
    pub min_iter: Option<u64>,
    pub max_iter: Option<u64>,
    pub s: Option<u64>,
    /// Bracket multiplier, at least 2; 3 when the file does not say.
    pub eta: u64,
    pub strict: bool,
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub method: Method,
    /// Required for `bayes` only, as in W&B; grid and random sweeps may leave it out.
    pub metric: Option<Metric>,
    /// Parameters by name; iteration order (byte order of the names) is the grid's order.
    pub parameters: BTreeMap<String, Param>,
    pub run_cap: Option<usize>,
    pub early_terminate: Option<EarlyTerminate>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Parameters given inside another's `parameters:` (W&B's nested form), by flat name (the
    /// path joined with `.`, e.g. `svm.c`): the path itself, to rebuild W&B's nested config.
    pub nested: BTreeMap<String, Vec<String>>,
    /// One line per deprecated form that still runs, naming its replacement.
    pub notes: Vec<String>,
}

/// One parameter of the search space.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// `value:` (or `distribution: constant`).
    Constant(Value),
    /// `values:` (or `distribution: categorical`), with optional `probabilities` that sum to 1.
    Categorical {
        values: Vec<Value>,
        probabilities: Option<Vec<f64>>,
    },
    /// A numeric distribution.
    Distribution(Dist),
}

/// The numeric distributions of W&B. `min`/`max` of `log_uniform`, `q_log_uniform` and
/// `inv_log_uniform` are natural-log exponents (values lie in `e^min..e^max`, or
/// `e^-max..e^-min` for the inverse); the `_values` variants give the values themselves.
/// `q` quantises to multiples of `q`; a whole-numbered `q` yields integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    IntUniform {
        min: i64,
        max: i64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
    /// `ints`: `min`, `max` and `q` are all integers in the file (a grid then enumerates
    /// integers, as NumPy's `arange` does for W&B).
    QUniform {
        min: f64,
        max: f64,
        q: f64,
        ints: bool,
    },
    LogUniform {
        min: f64,
        max: f64,
    },
    LogUniformValues {
        min: f64,
        max: f64,
    },
    QLogUniform {
        min: f64,
        max: f64,
        q: f64,
    },
    QLogUniformValues {
        min: f64,
        max: f64,
        q: f64,
    },
    InvLogUniform {
        min: f64,
        max: f64,
    },
    InvLogUniformValues {
        min: f64,
        max: f64,
    },
    Normal {
        mu: f64,
        sigma: f64,
    },
    QNormal {
        mu: f64,
        sigma: f64,
        q: f64,
    },
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    QLogNormal {
        mu: f64,
        sigma: f64,
        q: f64,
    },
}

/// A grid sweep with more combinations than this is rejected, so that `grid()` cannot be
/// asked to build an impossible list.
pub const MAX_GRID: usize = 1_000_000;

/// Reads and validates the sweep file at `path`.
pub fn read(path: impl AsRef<Path>) -> Result<Sweep> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates a sweep; `name` names the source in messages.
///
/// Returns `Error::Malformed` when the text is not YAML and `Error::Problems` listing every
/// violation when it is YAML but not a valid sweep.
pub fn parse(text: &str, name: &str) -> Result<Sweep> {
    let yaml: Yaml = serde_norway::from_str(text).map_err(|e| {
        let msg = e.to_string().replace('\n', " ");
        Error::malformed(name, format!("not YAML: {msg}"))
    })?;
    let mut v = Violations::default();
    let sweep = check_sweep(&yaml, &mut v);
    match sweep {
        Some(s) if v.0.is_empty() => Ok(s),
        _ => {
            let n = v.0.len();
            let plural = if n == 1 { "" } else { "s" };
            Err(Error::Problems {
                summary: format!("`{name}` is not a valid sweep ({n} problem{plural})"),
                details: v.0,
            })
        }
    }
}

/// Stable id of a trial: the first 12 hex digits of the SHA-256 of the parameters' canonical
/// JSON (keys sorted at every level, no spaces). Integer `1` and float `1.0` differ.
pub fn trial_id(params: &BTreeMap<String, Value>) -> String {
    let canonical: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.clone(), canonical(v)))
        .collect();
    let text = Value::Object(canonical).to_string();
    let digest = Sha256::digest(text.as_bytes());
    // The first six bytes, as twelve hex digits.
    format!("{digest:x}")[..12].to_owned()
}

/// Rebuilds objects with keys inserted in sorted order, which is the serialisation order
/// whether or not serde_json's `preserve_order` feature is on somewhere in the build.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

impl Sweep {
    /// Every combination of the parameters, in W&B's grid order: parameters sorted by name at
    /// each level of nesting, each parameter's values in file order (`int_uniform` and
    /// `q_uniform` enumerated as W&B's grid search does), the last parameter varying fastest.
    /// Empty when a parameter cannot be enumerated or the grid is larger than [`MAX_GRID`].
    pub fn grid(&self) -> Vec<BTreeMap<String, Value>> {
        if self.grid_len().is_none_or(|n| n > MAX_GRID) {
            return Vec::new();
        }
        let mut axes: Vec<(&String, Vec<Value>)> = Vec::new();
        for name in self.grid_order() {
            match grid_values(&self.parameters[name]) {
                Some(values) => axes.push((name, values)),
                None => return Vec::new(),
            }
        }
        let mut out = vec![BTreeMap::new()];
        for (name, values) in axes {
            let mut next = Vec::with_capacity(out.len() * values.len());
            for partial in &out {
                for v in &values {
                    let mut combo = partial.clone();
                    combo.insert(name.clone(), v.clone());
                    next.push(combo);
                }
            }
            out = next;
        }
        out
    }

    /// The number of grid combinations, `None` if a parameter cannot be enumerated or the
    /// count overflows.
    pub fn grid_len(&self) -> Option<usize> {
        self.parameters
            .values()
            .try_fold(1usize, |n, p| n.checked_mul(grid_count(p)?))
    }

    /// Parameter names in W&B's order: sorted by their path, segment by segment, so a nested
    /// group sorts by its own name among its siblings (as `HyperParameterSet.from_config`
    /// walks `sorted(d.items())` at each level).
    fn grid_order(&self) -> Vec<&String> {
        let mut names: Vec<&String> = self.parameters.keys().collect();
        names.sort_by(|a, b| self.path(a).cmp(&self.path(b)));
        names
    }

    /// The path of a parameter: its segments when nested, else its name alone (which may
    /// itself contain dots).
    pub fn path<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        match self.nested.get(name) {
            Some(p) => p.iter().map(String::as_str).collect(),
            None => vec![name],
        }
    }

    /// A trial's values in W&B's run-config shape: nested parameters back under their groups
    /// (`{"svm.c": 1}` becomes `{"svm": {"c": 1}}`), the rest by name.
    pub fn nest(&self, values: &BTreeMap<String, Value>) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (name, v) in values {
            // Validation refuses a name that is both a value and a group, so every group on
            // the way is a map.
            let _ = insert_at(&mut out, &self.path(name), v.clone());
        }
        out
    }

    /// One random draw of every parameter.
    pub fn sample(&self, rng: &mut impl Rng) -> BTreeMap<String, Value> {
        self.parameters
            .iter()
            .map(|(k, p)| (k.clone(), p.sample(rng)))
            .collect()
    }
}

impl Param {
    /// One random draw; categorical values follow `probabilities` when given.
    pub fn sample(&self, rng: &mut impl Rng) -> Value {
        match self {
            Param::Constant(v) => v.clone(),
            Param::Categorical {
                values,
                probabilities,
            } => {
                let i = match probabilities {
                    Some(p) => {
                        let mut u = rng.gen::<f64>() * p.iter().sum::<f64>();
                        let mut pick = values.len() - 1;
                        for (i, w) in p.iter().enumerate() {
                            if u < *w {
                                pick = i;
                                break;
                            }
                            u -= w;
                        }
                        pick
                    }
                    None => rng.gen_range(0..values.len()),
                };
                values[i].clone()
            }
            Param::Distribution(d) => d.from_unit(rng.gen::<f64>()),
        }
    }
}

/// The shape behind each W&B name: every log variant is log-uniform between two positive
/// values, every uniform variant linear between two values.
enum Shape {
    Int(i64, i64),
    Linear(f64, f64, Option<f64>),
    Log(f64, f64, Option<f64>),
    Normal(f64, f64, Option<f64>),
    LogNormal(f64, f64, Option<f64>),
}

impl Dist {
    /// The name W&B gives this distribution.
    pub fn name(&self) -> &'static str {
        match self {
            Dist::IntUniform { .. } => "int_uniform",
            Dist::Uniform { .. } => "uniform",
            Dist::QUniform { .. } => "q_uniform",
            Dist::LogUniform { .. } => "log_uniform",
            Dist::LogUniformValues { .. } => "log_uniform_values",
            Dist::QLogUniform { .. } => "q_log_uniform",
            Dist::QLogUniformValues { .. } => "q_log_uniform_values",
            Dist::InvLogUniform { .. } => "inv_log_uniform",
            Dist::InvLogUniformValues { .. } => "inv_log_uniform_values",
            Dist::Normal { .. } => "normal",
            Dist::QNormal { .. } => "q_normal",
            Dist::LogNormal { .. } => "log_normal",
            Dist::QLogNormal { .. } => "q_log_normal",
        }
    }

    fn shape(&self) -> Shape {
        match *self {
            Dist::IntUniform { min, max } => Shape::Int(min, max),
            Dist::Uniform { min, max } => Shape::Linear(min, max, None),
            Dist::QUniform { min, max, q, .. } => Shape::Linear(min, max, Some(q)),
            Dist::LogUniform { min, max } => Shape::Log(min.exp(), max.exp(), None),
            Dist::LogUniformValues { min, max } | Dist::InvLogUniformValues { min, max } => {
                Shape::Log(min, max, None)
            }
            Dist::QLogUniform { min, max, q } => Shape::Log(min.exp(), max.exp(), Some(q)),
            Dist::QLogUniformValues { min, max, q } => Shape::Log(min, max, Some(q)),
            // log(1/X) uniform in [min, max] means X = e^-U: log-uniform in [e^-max, e^-min].
            Dist::InvLogUniform { min, max } => Shape::Log((-max).exp(), (-min).exp(), None),
            Dist::Normal { mu, sigma } => Shape::Normal(mu, sigma, None),
            Dist::QNormal { mu, sigma, q } => Shape::Normal(mu, sigma, Some(q)),
            Dist::LogNormal { mu, sigma } => Shape::LogNormal(mu, sigma, None),
            Dist::QLogNormal { mu, sigma, q } => Shape::LogNormal(mu, sigma, Some(q)),
        }
    }

    /// Whether draws are integers (`int_uniform`, or a whole-numbered `q`).
    pub fn is_integer(&self) -> bool {
        match self.shape() {
            Shape::Int(..) => true,
            Shape::Linear(_, _, q)
            | Shape::Log(_, _, q)
            | Shape::Normal(_, _, q)
            | Shape::LogNormal(_, _, q) => q.is_some_and(|q| q.fract() == 0.0),
        }
    }

    /// The smallest and largest value a draw can take (after quantisation), `None` for the
    /// unbounded normal families.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match self.shape() {
            Shape::Int(a, b) => Some((a as f64, b as f64)),
            Shape::Linear(a, b, q) | Shape::Log(a, b, q) => Some(quantised_bounds(a, b, q)),
            Shape::Normal(..) | Shape::LogNormal(..) => None,
        }
    }

    /// The distribution's cumulative probability at `value` (in 0..=1, clamped): linear in the
    /// sampling space for the uniform families, the normal CDF for the normal ones. `None` if
    /// `value` is not a number. `from_unit(to_unit(v)) == v` for every value a draw can take.
    pub fn to_unit(&self, value: &Value) -> Option<f64> {
        let x = value.as_f64()?;
        let u = match self.shape() {
            // Each integer owns an equal cell of the unit interval; its centre maps back to it.
            Shape::Int(a, b) => (x - a as f64 + 0.5) / ((b - a) as f64 + 1.0),
            Shape::Linear(a, b, _) => (x - a) / (b - a),
            Shape::Log(a, b, _) => {
                if x <= 0.0 {
                    0.0
                } else {
                    (x.ln() - a.ln()) / (b.ln() - a.ln())
                }
            }
            Shape::Normal(mu, sigma, _) => normal_cdf((x - mu) / sigma),
            Shape::LogNormal(mu, sigma, _) => {
                if x <= 0.0 {
                    0.0
                } else {
                    normal_cdf((x.ln() - mu) / sigma)
                }
            }
        };
        Some(if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) })
    }

    /// The value at cumulative probability `u` (clamped to 0..=1): a uniform `u` gives a draw
    /// of the distribution. Integers and multiples of a whole `q` come back as JSON integers.
    pub fn from_unit(&self, u: f64) -> Value {
        let u = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
        // The normal quantile is infinite at 0 and 1; 1e-12 keeps draws finite (|z| < 7.1).
        let un = u.clamp(1e-12, 1.0 - 1e-12);
        let (x, q, bounds) = match self.shape() {
            Shape::Int(a, b) => {
                let span = (b - a) as f64 + 1.0;
                let k = ((u * span).floor() as i64).min(b - a);
                return Value::from(a + k);
            }
            Shape::Linear(a, b, q) => (a + u * (b - a), q, Some(quantised_bounds(a, b, q))),
            Shape::Log(a, b, q) => (
                (a.ln() + u * (b.ln() - a.ln())).exp(),
                q,
                Some(quantised_bounds(a, b, q)),
            ),
            Shape::Normal(mu, sigma, q) => (mu + sigma * normal_quantile(un), q, None),
            Shape::LogNormal(mu, sigma, q) => ((mu + sigma * normal_quantile(un)).exp(), q, None),
        };
        let mut x = match q {
            Some(q) => (x / q).round() * q,
            None => x,
        };
        if let Some((lo, hi)) = bounds {
            x = x.clamp(lo, hi);
        }
        number(x, q.is_some_and(|q| q.fract() == 0.0))
    }
}

/// Puts `v` at `path` in `map`, creating the groups on the way; None if one is not a map.
fn insert_at(map: &mut serde_json::Map<String, Value>, path: &[&str], v: Value) -> Option<()> {
    let (leaf, groups) = path.split_last()?;
    let mut at = map;
    for g in groups {
        at = at
            .entry((*g).to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()))
            .as_object_mut()?;
    }
    at.insert((*leaf).to_owned(), v);
    Some(())
}

/// How many values a grid takes from a parameter; `None` for what W&B's grid refuses.
fn grid_count(p: &Param) -> Option<usize> {
    match p {
        Param::Constant(_) => Some(1),
        Param::Categorical {
            values,
            probabilities: None,
        } => Some(values.len()),
        Param::Distribution(Dist::IntUniform { min, max }) => {
            usize::try_from(max.checked_sub(*min)?).ok()?.checked_add(1)
        }
        Param::Distribution(Dist::QUniform { min, max, q, ints }) => {
            let n = if *ints {
                // Integer division rounding up, as `arange` counts for integers.
                let (a, b, q) = (*min as i128, *max as i128, *q as i128);
                (b - a + q - 1).div_euclid(q).max(0) as f64
            } else {
                ((max - min) / q).ceil().max(0.0)
            };
            (n <= MAX_GRID as f64).then_some(n as usize)
        }
        _ => None,
    }
}

/// The values a grid takes from a parameter, as W&B's grid search makes them: `int_uniform`
/// is `range(min, max + 1)`, `q_uniform` is `numpy.arange(min, max, q).tolist()`.
fn grid_values(p: &Param) -> Option<Vec<Value>> {
    let n = grid_count(p)?;
    Some(match p {
        Param::Constant(v) => vec![v.clone()],
        Param::Categorical { values, .. } => values.clone(),
        Param::Distribution(Dist::IntUniform { min, .. }) => {
            (0..n as i64).map(|i| Value::from(min + i)).collect()
        }
        Param::Distribution(Dist::QUniform { min, q, ints, .. }) => {
            if *ints {
                let (a, q) = (*min as i64, *q as i64);
                (0..n as i64).map(|i| Value::from(a + i * q)).collect()
            } else {
                // NumPy fills `start`, `start + step`, then `start + i * delta` with
                // `delta = (start + step) - start`, which can differ from `step` in the last bit.
                let delta = (min + q) - min;
                (0..n)
                    .map(|i| match i {
                        0 => *min,
                        1 => min + q,
                        _ => min + i as f64 * delta,
                    })
                    .map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
                    .collect()
            }
        }
        _ => return None,
    })
}

/// The range of multiples of `q` inside `a..=b` (validation guarantees one exists); a small
/// slack keeps float noise from dropping an end that is itself a multiple.
fn quantised_bounds(a: f64, b: f64, q: Option<f64>) -> (f64, f64) {
    match q {
        None => (a, b),
        Some(q) => ((a / q - 1e-9).ceil() * q, (b / q + 1e-9).floor() * q),
    }
}

/// A JSON number, integral when asked and exactly representable.
fn number(x: f64, integral: bool) -> Value {
    if integral && x.abs() < 9.0e15 {
        Value::from(x.round() as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

/// Standard normal CDF through the complementary error function (Numerical Recipes' `erfcc`,
/// fractional error below 1.2e-7 everywhere; shared with the TPE's tail maths).
fn normal_cdf(z: f64) -> f64 {
    let x = -z / std::f64::consts::SQRT_2;
    let r = super::tpe::ln_erfc_nonneg(x.abs()).exp();
    let erfc = if x >= 0.0 { r } else { 2.0 - r };
    0.5 * erfc
}

/// Standard normal quantile: Acklam's rational approximation (relative error 1.2e-9), then
/// two Halley steps against `normal_cdf` so that `normal_cdf(normal_quantile(p)) == p` to
/// rounding and the unit mapping round-trips.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let low = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - low {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    for _ in 0..2 {
        let e = normal_cdf(x) - p;
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

// ---------------------------------------------------------------------------------------------
// Validation: walks the untyped YAML, pushing one message per violation and returning `None`
// for the parts it could not build, so that one bad key never hides the next.

#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn at(&mut self, path: &str, msg: impl std::fmt::Display) {
        self.0.push(format!("{path}: {msg}"));
    }
}

const TOP_KEYS: &[&str] = &[
    "method",
    "metric",
    "parameters",
    "run_cap",
    "early_terminate",
    "name",
    "description",
];
/// Keys W&B uses to launch runs; the local tuner launches its own, so they are ignored.
const IGNORED_KEYS: &[&str] = &[
    "program",
    "command",
    "entity",
    "project",
    "apiVersion",
    "kind",
    "controller",
];
const METHODS: &str = "grid, random, bayes";
const DISTRIBUTIONS: &[&str] = &[
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "categorical_w_probabilities",
    "beta",
    "q_beta",
];
/// Distributions W&B accepts that the tuner does not implement.
const REFUSED_DISTRIBUTIONS: &[&str] = &["beta", "q_beta"];
const PARAM_KEYS: &[&str] = &[
    "value",
    "values",
    "probabilities",
    "min",
    "max",
    "distribution",
    "q",
    "mu",
    "sigma",
    "a",
    "b",
];

/// How a YAML value reads in a message: scalars bare, anything else as compact JSON.
fn show(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Null => "null".into(),
        Yaml::Bool(b) => b.to_string(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Tagged(t) => format!("{}", t.tag),
        other => to_json(other).map_or_else(|| "?".into(), |j| j.to_string()),
    }
}

/// A float in a message, rounded so that sums read like the numbers a person wrote.
fn show_f64(x: f64) -> String {
    let r = (x * 1e9).round() / 1e9;
    format!("{r}")
}

/// YAML → JSON for parameter values; `None` for non-finite floats, tags and non-string keys.
fn to_json(y: &Yaml) -> Option<Value> {
    Some(match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::Number(serde_json::Number::from_f64(n.as_f64()?)?)
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(s) => Value::Array(s.iter().map(to_json).collect::<Option<_>>()?),
        Yaml::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Some((k.as_str()?.to_owned(), to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
        Yaml::Tagged(_) => return None,
    })
}

/// The entries of a mapping with string keys; other keys are reported.
fn entries<'a>(
    m: &'a serde_norway::Mapping,
    path: &str,
    v: &mut Violations,
) -> Vec<(&'a str, &'a Yaml)> {
    let mut out = Vec::new();
    for (k, val) in m {
        match k.as_str() {
            Some(s) => out.push((s, val)),
            None => {
                let msg = format!("key `{}` is not a string", show(k));
                if path.is_empty() {
                    v.0.push(format!("{msg} at top level"));
                } else {
                    v.at(path, msg);
                }
            }
        }
    }
    out
}

fn check_sweep(y: &Yaml, v: &mut Violations) -> Option<Sweep> {
    let Yaml::Mapping(m) = y else {
        v.0.push(format!("the file must be a map of keys, not `{}`", show(y)));
        return None;
    };
    let fields: BTreeMap<&str, &Yaml> = entries(m, "", v).into_iter().collect();
    for k in fields.keys() {
        if !TOP_KEYS.contains(k) && !IGNORED_KEYS.contains(k) {
            v.0.push(format!("unknown key `{k}` at top level"));
        }
    }
    let method = match fields.get("method") {
        None => {
            v.at("method", format!("required (one of {METHODS})"));
            None
        }
        Some(Yaml::String(s)) if s == "grid" => Some(Method::Grid),
        Some(Yaml::String(s)) if s == "random" => Some(Method::Random),
        Some(Yaml::String(s)) if s == "bayes" => Some(Method::Bayes),
        Some(Yaml::String(s)) if s == "custom" => {
            v.at(
                "method",
                "`custom` is run by W&B's own sweep controller; use grid, random or bayes",
            );
            None
        }
        Some(other) => {
            v.at(
                "method",
                format!("`{}` is not one of {METHODS}", show(other)),
            );
            None
        }
    };
    let metric = fields.get("metric").and_then(|y| check_metric(y, v));
    if method == Some(Method::Bayes) && !fields.contains_key("metric") {
        v.at("metric", "required for `bayes`");
    }
    let mut nested = BTreeMap::new();
    let parameters = match fields.get("parameters") {
        None => {
            v.at("parameters", "required");
            None
        }
        Some(Yaml::Mapping(pm)) => {
            let mut out = BTreeMap::new();
            let mut level = Level {
                method,
                out: &mut out,
                nested: &mut nested,
            };
            check_parameters(pm, "parameters", &[], &mut level, v).then_some(out)
        }
        Some(other) => {
            v.at(
                "parameters",
                format!("must be a map, not `{}`", show(other)),
            );
            None
        }
    };
    let run_cap = fields.get("run_cap").and_then(|y| match y.as_u64() {
        Some(n) if n > 0 => usize::try_from(n).ok(),
        _ => {
            v.at(
                "run_cap",
                format!("`{}` is not a positive integer", show(y)),
            );
            None
        }
    });
    let early_terminate = fields
        .get("early_terminate")
        .and_then(|y| check_early_terminate(y, v));
    let name = fields.get("name").and_then(|y| string(y, "name", v));
    let description = fields
        .get("description")
        .and_then(|y| string(y, "description", v));

    let sweep = Sweep {
        method: method?,
        metric,
        parameters: parameters?,
        run_cap,
        early_terminate,
        name,
        description,
        notes: Vec::new(),
        nested,
    };
    let mut sweep = sweep;
    sweep.notes = deprecation_notes(&sweep);
    if sweep.method == Method::Grid {
        match sweep.grid_len() {
            Some(n) if n <= MAX_GRID => {}
            Some(n) => v.at(
                "parameters",
                format!("the grid has {n} combinations, more than {MAX_GRID}"),
            ),
            None if sweep.parameters.values().all(grid_values_known) => v.at(
                "parameters",
                format!("the grid has more than {MAX_GRID} combinations"),
            ),
            None => {}
        }
    }
    Some(sweep)
}

/// Where one level of `parameters` puts what it finds.
struct Level<'a> {
    method: Option<Method>,
    /// Every parameter by flat name.
    out: &'a mut BTreeMap<String, Param>,
    /// The path of each nested parameter.
    nested: &'a mut BTreeMap<String, Vec<String>>,
}

/// Checks one `parameters` map (`at` is its path in messages, `prefix` the groups above it);
/// false if any parameter could not be built.
fn check_parameters(
    m: &serde_norway::Mapping,
    at: &str,
    prefix: &[String],
    level: &mut Level<'_>,
    v: &mut Violations,
) -> bool {
    if m.is_empty() {
        v.at(at, "must not be empty");
    }
    let mut ok = true;
    for (name, py) in entries(m, at, v) {
        let path = format!("{at}.{name}");
        let mut segments = prefix.to_vec();
        segments.push(name.to_owned());
        // A group: W&B's `param_dict`, a map holding only `parameters`.
        if let Some(inner) = py.as_mapping().and_then(|pm| pm.get("parameters")) {
            let others: Vec<&str> = py
                .as_mapping()
                .into_iter()
                .flat_map(|pm| pm.keys())
                .filter_map(Yaml::as_str)
                .filter(|k| *k != "parameters")
                .collect();
            if !others.is_empty() {
                v.at(
                    &path,
                    format!(
                        "a group of nested `parameters` takes no other keys (found `{}`)",
                        others.join("`, `")
                    ),
                );
                ok = false;
                continue;
            }
            match inner {
                Yaml::Mapping(im) => {
                    let at = format!("{path}.parameters");
                    ok &= check_parameters(im, &at, &segments, level, v);
                }
                other => {
                    v.at(
                        &format!("{path}.parameters"),
                        format!("must be a map, not `{}`", show(other)),
                    );
                    ok = false;
                }
            }
            continue;
        }
        let Some(p) = check_param(py, &path, v) else {
            ok = false;
            continue;
        };
        if level.method == Some(Method::Grid) && !grid_values_known(&p) {
            let what = match &p {
                Param::Distribution(d) => format!("`{}`", d.name()),
                _ => "`probabilities`".to_owned(),
            };
            v.at(
                &path,
                format!("{what} cannot be searched by grid (W&B's grid takes `values`, `value`, `int_uniform` and `q_uniform`)"),
            );
        }
        let flat = segments.join(".");
        if level.out.contains_key(&flat) {
            v.at(
                &path,
                format!("`{flat}` names two parameters (a dotted name and a nested one)"),
            );
            ok = false;
            continue;
        }
        if !prefix.is_empty() {
            level.nested.insert(flat.clone(), segments);
        }
        level.out.insert(flat, p);
    }
    ok
}

/// Whether W&B's grid search can enumerate the parameter.
fn grid_values_known(p: &Param) -> bool {
    matches!(
        p,
        Param::Constant(_)
            | Param::Categorical {
                probabilities: None,
                ..
            }
            | Param::Distribution(Dist::IntUniform { .. } | Dist::QUniform { .. })
    )
}

/// One line per parameter in a deprecated W&B form, naming the form that replaces it.
fn deprecation_notes(sweep: &Sweep) -> Vec<String> {
    sweep
        .parameters
        .iter()
        .filter_map(|(name, p)| {
            let Param::Distribution(d) = p else {
                return None;
            };
            let replacement = match d {
                Dist::LogUniform { .. } => "log_uniform_values",
                Dist::QLogUniform { .. } => "q_log_uniform_values",
                Dist::InvLogUniform { .. } => "inv_log_uniform_values",
                _ => return None,
            };
            Some(format!(
                "parameter `{name}` uses `{}`, deprecated in W&B (`min`/`max` are exponents of e); `{replacement}` takes the values themselves",
                d.name()
            ))
        })
        .collect()
}

fn string(y: &Yaml, path: &str, v: &mut Violations) -> Option<String> {
    match y {
        Yaml::String(s) => Some(s.clone()),
        other => {
            v.at(path, format!("`{}` is not a string", show(other)));
            None
        }
    }
}

fn check_metric(y: &Yaml, v: &mut Violations) -> Option<Metric> {
    let Yaml::Mapping(m) = y else {
        v.at("metric", format!("must be a map, not `{}`", show(y)));
        return None;
    };
    let (mut name, mut goal, mut target, mut ok) = (None, Some(Goal::Minimize), None, true);
    for (k, val) in entries(m, "metric", v) {
        match k {
            "name" => name = string(val, "metric.name", v),
            "goal" => {
                goal = match val.as_str() {
                    Some("minimize") => Some(Goal::Minimize),
                    Some("maximize") => Some(Goal::Maximize),
                    _ => {
                        v.at(
                            "metric.goal",
                            format!("`{}` is not one of minimize, maximize", show(val)),
                        );
                        None
                    }
                }
            }
            "target" => match finite(val) {
                Some(x) => target = Some(x),
                None => {
                    v.at(
                        "metric.target",
                        format!("`{}` is not a finite number", show(val)),
                    );
                    ok = false;
                }
            },
            // What W&B's bayes search assumes for a failed run; the tuner counts a failed
            // trial as the worst, which is `worst`.
            "impute" => match val.as_str() {
                Some("worst") => {}
                _ => {
                    v.at(
                        "metric.impute",
                        format!(
                            "`{}` is not supported: failed trials count as the worst (`worst`)",
                            show(val)
                        ),
                    );
                    ok = false;
                }
            },
            other => {
                v.at("metric", format!("unknown key `{other}`"));
                ok = false;
            }
        }
    }
    if !m.contains_key("name") {
        v.at("metric.name", "required");
    }
    ok.then_some(())?;
    Some(Metric {
        name: name?,
        goal: goal?,
        target,
    })
}

fn check_early_terminate(y: &Yaml, v: &mut Violations) -> Option<EarlyTerminate> {
    const P: &str = "early_terminate";
    let Yaml::Mapping(m) = y else {
        v.at(P, format!("must be a map, not `{}`", show(y)));
        return None;
    };
    let mut et = EarlyTerminate {
        min_iter: None,
        max_iter: None,
        s: None,
        eta: 3,
        strict: false,
    };
    let mut ok = true;
    let mut positive = |val: &Yaml, key: &str, v: &mut Violations| match val.as_u64() {
        Some(n) if n > 0 => Some(n),
        _ => {
            v.at(
                &format!("{P}.{key}"),
                format!("`{}` is not a positive integer", show(val)),
            );
            ok = false;
            None
        }
    };
    let mut kind_ok = false;
    for (k, val) in entries(m, P, v) {
        match k {
            "type" => {
                kind_ok = val.as_str() == Some("hyperband");
                if !kind_ok {
                    v.at(
                        &format!("{P}.type"),
                        format!("`{}` is not `hyperband`", show(val)),
                    );
                }
            }
            "min_iter" => et.min_iter = positive(val, k, v),
            "max_iter" => et.max_iter = positive(val, k, v),
            "s" => et.s = positive(val, k, v),
            "eta" => {
                if let Some(n) = positive(val, k, v) {
                    if n < 2 {
                        v.at(&format!("{P}.eta"), format!("`{n}` must be at least 2"));
                    }
                    et.eta = n;
                }
            }
            "strict" => match val.as_bool() {
                Some(b) => et.strict = b,
                None => v.at(
                    &format!("{P}.strict"),
                    format!("`{}` is not a boolean", show(val)),
                ),
            },
            other => v.at(P, format!("unknown key `{other}`")),
        }
    }
    if !m.contains_key("type") {
        v.at(&format!("{P}.type"), "required (`hyperband`)");
    }
    let (has_min, has_max) = (m.contains_key("min_iter"), m.contains_key("max_iter"));
    if has_min == has_max {
        v.at(P, "give exactly one of `min_iter` and `max_iter`");
    }
    if has_max && !m.contains_key("s") {
        v.at(P, "`s` is required with `max_iter`");
    }
    (kind_ok && ok && has_min != has_max).then_some(et)
}

fn finite(y: &Yaml) -> Option<f64> {
    y.as_f64().filter(|x| x.is_finite())
}

fn check_param(y: &Yaml, path: &str, v: &mut Violations) -> Option<Param> {
    let Yaml::Mapping(m) = y else {
        v.at(path, format!("must be a map, not `{}`", show(y)));
        return None;
    };
    let fields: BTreeMap<&str, &Yaml> = entries(m, path, v).into_iter().collect();
    let before = v.0.len();
    for k in fields.keys() {
        if !PARAM_KEYS.contains(k) {
            v.at(path, format!("unknown key `{k}`"));
        }
    }
    let dist = match fields.get("distribution") {
        Some(Yaml::String(s)) if REFUSED_DISTRIBUTIONS.contains(&s.as_str()) => {
            v.at(
                path,
                format!("distribution `{s}` is not supported by bciops' tuner (use `uniform` or `values`)"),
            );
            return None;
        }
        // W&B's name for `values` with `probabilities`.
        Some(Yaml::String(s)) if s == "categorical_w_probabilities" => {
            if !fields.contains_key("probabilities") {
                v.at(path, "`categorical_w_probabilities` needs `probabilities`");
            }
            "categorical"
        }
        Some(Yaml::String(s)) if DISTRIBUTIONS.contains(&s.as_str()) => s.as_str(),
        Some(other) => {
            v.at(
                path,
                format!(
                    "distribution `{}` is not one of {}",
                    show(other),
                    DISTRIBUTIONS.join(", ")
                ),
            );
            return None;
        }
        None if fields.contains_key("values") => "categorical",
        None if fields.contains_key("value") => "constant",
        None => match (fields.get("min"), fields.get("max")) {
            (Some(a), Some(b)) if a.is_i64() && b.is_i64() => "int_uniform",
            (Some(_), Some(_)) => "uniform",
            _ => {
                v.at(path, "needs `value`, `values`, or `min` and `max`");
                return None;
            }
        },
    };
    let allowed: &[&str] = match dist {
        "constant" => &["value"],
        "categorical" => &["values", "probabilities"],
        "int_uniform"
        | "uniform"
        | "log_uniform"
        | "log_uniform_values"
        | "inv_log_uniform"
        | "inv_log_uniform_values" => &["min", "max"],
        "q_uniform" | "q_log_uniform" | "q_log_uniform_values" => &["min", "max", "q"],
        "normal" | "log_normal" => &["mu", "sigma"],
        _ => &["mu", "sigma", "q"],
    };
    for k in fields.keys() {
        if PARAM_KEYS.contains(k) && *k != "distribution" && !allowed.contains(k) {
            v.at(path, format!("`{k}` does not apply to `{dist}`"));
        }
    }
    let param = match dist {
        "constant" => match fields.get("value") {
            None => {
                v.at(path, "`constant` needs `value`");
                None
            }
            Some(y) => json_value(y, &format!("{path}.value"), v).map(Param::Constant),
        },
        "categorical" => check_categorical(&fields, path, v),
        _ => check_dist(dist, &fields, path, v).map(Param::Distribution),
    };
    if v.0.len() > before {
        return None;
    }
    param
}

fn json_value(y: &Yaml, path: &str, v: &mut Violations) -> Option<Value> {
    let j = to_json(y);
    if j.is_none() {
        v.at(
            path,
            format!(
                "`{}` is not a plain value (finite number, string, boolean, list or map)",
                show(y)
            ),
        );
    }
    j
}

fn check_categorical(
    fields: &BTreeMap<&str, &Yaml>,
    path: &str,
    v: &mut Violations,
) -> Option<Param> {
    let Some(y) = fields.get("values") else {
        v.at(path, "`categorical` needs `values`");
        return None;
    };
    let Yaml::Sequence(items) = y else {
        v.at(path, format!("`values` must be a list, not `{}`", show(y)));
        return None;
    };
    if items.is_empty() {
        v.at(path, "`values` must not be empty");
    }
    let values: Option<Vec<Value>> = items
        .iter()
        .enumerate()
        .map(|(i, it)| json_value(it, &format!("{path}.values[{i}]"), v))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    let probabilities = match fields.get("probabilities") {
        None => None,
        Some(Yaml::Sequence(ps)) => {
            let mut out = Vec::new();
            for p in ps {
                match finite(p) {
                    Some(x) if (0.0..=1.0).contains(&x) => out.push(x),
                    _ => v.at(
                        path,
                        format!("probability `{}` is not a number between 0 and 1", show(p)),
                    ),
                }
            }
            if ps.len() != items.len() {
                v.at(
                    path,
                    format!("{} probabilities for {} values", ps.len(), items.len()),
                );
            }
            let sum: f64 = out.iter().sum();
            if out.len() == ps.len() && (sum - 1.0).abs() > 1e-6 {
                v.at(
                    path,
                    format!("probabilities sum to {}, not 1", show_f64(sum)),
                );
            }
            Some(out)
        }
        Some(other) => {
            v.at(
                path,
                format!("`probabilities` must be a list, not `{}`", show(other)),
            );
            None
        }
    };
    Some(Param::Categorical {
        values: values?,
        probabilities,
    })
}

fn check_dist(
    dist: &str,
    fields: &BTreeMap<&str, &Yaml>,
    path: &str,
    v: &mut Violations,
) -> Option<Dist> {
    let before = v.0.len();
    // A numeric key: `default` when absent (None means required).
    let num = |key: &str, default: Option<f64>, v: &mut Violations| -> f64 {
        match fields.get(key) {
            None => default.unwrap_or_else(|| {
                v.at(path, format!("`{dist}` needs `{key}`"));
                f64::NAN
            }),
            Some(y) => finite(y).unwrap_or_else(|| {
                v.at(
                    path,
                    format!("`{key}` (`{}`) is not a finite number", show(y)),
                );
                f64::NAN
            }),
        }
    };
    let uses_bounds = !dist.ends_with("normal");
    let (min, max) = if uses_bounds {
        (num("min", None, v), num("max", None, v))
    } else {
        (f64::NAN, f64::NAN)
    };
    let q = if dist.starts_with("q_") {
        let q = num("q", Some(1.0), v);
        if q <= 0.0 {
            v.at(path, format!("`q` ({}) must be positive", show_f64(q)));
        }
        q
    } else {
        f64::NAN
    };
    let (mu, sigma) = if uses_bounds {
        (f64::NAN, f64::NAN)
    } else {
        let (mu, sigma) = (num("mu", Some(0.0), v), num("sigma", Some(1.0), v));
        if sigma <= 0.0 {
            v.at(
                path,
                format!("`sigma` ({}) must be positive", show_f64(sigma)),
            );
        }
        (mu, sigma)
    };
    if uses_bounds && min.is_finite() && max.is_finite() {
        if min >= max {
            v.at(
                path,
                format!(
                    "`min` ({}) must be below `max` ({})",
                    show_f64(min),
                    show_f64(max)
                ),
            );
        }
        if dist.ends_with("_values") && min <= 0.0 {
            v.at(
                path,
                format!("`min` ({}) must be positive for `{dist}`", show_f64(min)),
            );
        }
        if !(max - min).is_finite() {
            v.at(
                path,
                format!(
                    "the range `{}`..`{}` is too wide",
                    show_f64(min),
                    show_f64(max)
                ),
            );
        }
        let exponents = matches!(dist, "log_uniform" | "q_log_uniform" | "inv_log_uniform");
        // e^±700 is near the end of f64's range; beyond it draws would be 0 or infinite.
        if exponents && (min.abs() > 700.0 || max.abs() > 700.0) {
            v.at(
                path,
                format!(
                    "`min` ({}) and `max` ({}) are exponents of e and must stay within ±700",
                    show_f64(min),
                    show_f64(max)
                ),
            );
        }
        if dist == "int_uniform" {
            for key in ["min", "max"] {
                if fields.get(key).is_some_and(|y| !y.is_i64()) {
                    v.at(
                        path,
                        format!(
                            "`{key}` ({}) must be an integer for `int_uniform`",
                            show(fields[key])
                        ),
                    );
                }
            }
            // Draws index cells of the range, so its width must fit an i64.
            let (a, b) = (fields["min"].as_i64(), fields["max"].as_i64());
            if let (Some(a), Some(b)) = (a, b) {
                if b.checked_sub(a).is_none_or(|w| w == i64::MAX) {
                    v.at(path, format!("the range `{a}`..`{b}` is too wide"));
                }
            }
        }
    }
    if v.0.len() > before {
        return None;
    }
    let d = match dist {
        "int_uniform" => Dist::IntUniform {
            min: fields["min"].as_i64()?,
            max: fields["max"].as_i64()?,
        },
        "uniform" => Dist::Uniform { min, max },
        "q_uniform" => Dist::QUniform {
            min,
            max,
            q,
            ints: ["min", "max", "q"]
                .iter()
                .all(|k| fields.get(k).is_some_and(|y| y.is_i64() || y.is_u64())),
        },
        "log_uniform" => Dist::LogUniform { min, max },
        "log_uniform_values" => Dist::LogUniformValues { min, max },
        "q_log_uniform" => Dist::QLogUniform { min, max, q },
        "q_log_uniform_values" => Dist::QLogUniformValues { min, max, q },
        "inv_log_uniform" => Dist::InvLogUniform { min, max },
        "inv_log_uniform_values" => Dist::InvLogUniformValues { min, max },
        "normal" => Dist::Normal { mu, sigma },
        "q_normal" => Dist::QNormal { mu, sigma, q },
        "log_normal" => Dist::LogNormal { mu, sigma },
        _ => Dist::QLogNormal { mu, sigma, q },
    };
    if let (Some(q), Some((lo, hi))) = (q.is_finite().then_some(q), d.bounds()) {
        if lo > hi {
            v.at(
                path,
                format!("no multiple of `q` ({}) lies within the range", show_f64(q)),
            );
            return None;
        }
    }
    Some(d)
}

#[cfg(test)]
mod tests;
