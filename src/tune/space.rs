//! From a sweep's parameter values to what bciops runs: the model's hyper-parameters and, when
//! the sweep varies them, the preprocessing (band edges, filter order, window).
//!
//! Sweep files name parameters as `train` flags and `best.json` do: `pipeline` (the family)
//! and every parameter some family declares (`model/family/`), plus `l_freq`, `h_freq`,
//! `filter_order`, `tmin` and `tmax` for preprocessing. `C` (scikit-learn's and the original
//! W&B sweep's spelling) and `order` are accepted aliases. A sweep over `pipeline` may name
//! parameters that apply only to some families: each candidate takes those of its own family.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::family::{self, Params};
use crate::tune::sweep::{Param, Sweep};

/// Model parameters a sweep may vary: `pipeline` and every family's declared parameters.
pub fn model_params() -> Vec<&'static str> {
    let mut out = vec!["pipeline"];
    out.extend(family::all_param_names());
    out
}

/// Preprocessing parameters a sweep may vary (they need the dataset's source recordings).
pub const PREPROCESS_PARAMS: &[&str] = &["l_freq", "h_freq", "filter_order", "tmin", "tmax"];

/// The canonical name of a sweep parameter, or None if bciops does not know it. A dotted name
/// (a nested W&B parameter such as `svm: {parameters: {c: …}}`, flattened to `svm.c`) is
/// read by its last segment: groups only organise the file.
pub fn canonical(name: &str) -> Option<&'static str> {
    let name = name.rsplit('.').next().unwrap_or(name);
    let name = match name {
        "C" => "c",
        "order" => "filter_order",
        other => other,
    };
    model_params()
        .into_iter()
        .chain(PREPROCESS_PARAMS.iter().copied())
        .find(|known| *known == name)
}

/// Preprocessing that differs from the dataset's own; None keeps the dataset's value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l_freq: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub h_freq: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_order: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmin: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmax: Option<f64>,
}

impl PrepOverrides {
    pub fn is_empty(&self) -> bool {
        *self == PrepOverrides::default()
    }

    /// These overrides without the values `meta` already has.
    pub fn relative_to(&self, meta: &crate::dataset::Meta) -> PrepOverrides {
        let differs = |v: Option<f64>, own: f64| v.filter(|v| *v != own);
        PrepOverrides {
            l_freq: differs(self.l_freq, meta.filter.band[0]),
            h_freq: differs(self.h_freq, meta.filter.band[1]),
            filter_order: self.filter_order.filter(|o| *o != meta.filter.order),
            tmin: differs(self.tmin, meta.window.tmin),
            tmax: differs(self.tmax, meta.window.tmax),
        }
    }

    /// A stable text naming this preprocessing (its JSON), for grouping and caching.
    pub fn key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One point of the search space, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The sweep's values, as the file names them (the trial id hashes these).
    pub values: BTreeMap<String, Value>,
    pub model: Params,
    pub prep: PrepOverrides,
}

/// Checks that the sweep varies something bciops knows; every problem is listed.
pub fn check_names(sweep: &Sweep) -> Result<()> {
    if sweep.parameters.is_empty() {
        return Err(Error::Invalid(
            "the sweep's search space is empty: `parameters` names no parameter".into(),
        ));
    }
    let unknown: Vec<&str> = sweep
        .parameters
        .keys()
        .filter(|k| canonical(k).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = model_params()
            .into_iter()
            .chain(PREPROCESS_PARAMS.iter().copied())
            .collect();
        return Err(Error::Invalid(format!(
            "unknown sweep parameter{} `{}` (known: {}; `C` and `order` are aliases)",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join("`, `"),
            known.join(", ")
        )));
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for name in sweep.parameters.keys() {
        let c = canonical(name).unwrap_or_default();
        if let Some(other) = seen.insert(c, name) {
            return Err(Error::Invalid(format!(
                "sweep parameters `{other}` and `{name}` are the same parameter"
            )));
        }
    }
    Ok(())
}

/// Checks every listed value (categorical and constant parameters) on its own against `base`,
/// so a typo such as `kernel: [rbf, rfb]` stops the sweep before it starts; every problem is
/// listed, one per line.
pub fn check_values(sweep: &Sweep, base: &Params) -> Result<()> {
    let mut problems = Vec::new();
    // Every model parameter must apply to some family the sweep can pick.
    let pipelines: Vec<String> = match sweep.parameters.get("pipeline") {
        None => vec![base.pipeline().to_owned()],
        Some(Param::Constant(v)) => vec![v.as_str().unwrap_or_default().to_owned()],
        Some(Param::Categorical { values, .. }) => values
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        Some(Param::Distribution(_)) => {
            problems.push("parameters.pipeline: takes `values`, not a distribution".to_owned());
            Vec::new()
        }
    };
    let families: Vec<&'static dyn family::Family> = pipelines
        .iter()
        .filter_map(|p| family::family(p).ok())
        .collect();
    for name in sweep.parameters.keys() {
        let Some(c) = canonical(name) else { continue };
        if c == "pipeline" || PREPROCESS_PARAMS.contains(&c) || families.is_empty() {
            continue;
        }
        if !families
            .iter()
            .any(|f| f.params().iter().any(|p| p.name == c))
        {
            problems.push(format!(
                "parameters.{name}: applies to none of the pipelines searched ({})",
                pipelines.join(", ")
            ));
        }
    }
    for (name, param) in &sweep.parameters {
        let values: Vec<&Value> = match param {
            Param::Constant(v) => vec![v],
            Param::Categorical { values, .. } => values.iter().collect(),
            Param::Distribution(_) => continue,
        };
        for v in values {
            let one = BTreeMap::from([(name.clone(), v.clone())]);
            if let Err(e) = candidate(&one, base) {
                problems.push(format!("parameters.{name}: {e}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Problems {
            summary: format!(
                "the sweep has {} bad value{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ),
            details: problems,
        })
    }
}

/// Resolves one assignment of sweep values on top of `base`. The error is the reason a trial
/// with these values fails.
pub fn candidate(
    values: &BTreeMap<String, Value>,
    base: &Params,
) -> std::result::Result<Candidate, String> {
    let family = match values
        .iter()
        .find(|(k, _)| canonical(k) == Some("pipeline"))
        .map(|(_, v)| v)
    {
        None => base.family(),
        Some(Value::String(s)) => family::family(s).map_err(|e| e.to_string())?,
        Some(other) => return Err(format!("`pipeline` = `{other}` is not a name")),
    };
    let mut model = base.with_family(family);
    let mut prep = serde_json::Map::new();
    for (name, value) in values {
        let Some(c) = canonical(name) else {
            return Err(format!("unknown parameter `{name}`"));
        };
        // A whole float is taken as the integer it equals: W&B's grid hands out `2.0` for a
        // `q_uniform` with the default `q: 1.0`, and an integer parameter must accept it.
        let value = match value.as_f64() {
            Some(x) if value.is_f64() && x.fract() == 0.0 && x.abs() < 9.0e15 => {
                Value::from(x as i64)
            }
            _ => value.clone(),
        };
        if c == "pipeline" {
            continue;
        }
        if PREPROCESS_PARAMS.contains(&c) {
            prep.insert(c.to_owned(), value);
        } else if family.params().iter().any(|p| p.name == c) {
            model
                .set(c, value)
                .map_err(|e| format!("{e} (in {})", shown(values)))?;
        }
        // Otherwise the parameter belongs to another family the sweep also searches.
    }
    let model = model
        .normalized()
        .map_err(|e| format!("{e} (in {})", shown(values)))?;
    let prep: PrepOverrides =
        serde_json::from_value(Value::Object(prep)).map_err(|e| describe(values, e))?;
    Ok(Candidate {
        values: values.clone(),
        model,
        prep,
    })
}

fn shown(values: &BTreeMap<String, Value>) -> String {
    let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    shown.join(", ")
}

fn describe(values: &BTreeMap<String, Value>, e: serde_json::Error) -> String {
    format!("{e} (in {})", shown(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::sweep;

    #[test]
    fn the_original_grid_maps_onto_model_parameters() {
        let s = sweep::read(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/sweep.yaml")).unwrap();
        check_names(&s).unwrap();
        check_values(&s, &Params::default()).unwrap();
        let grid = s.grid();
        let c = candidate(&grid[0], &Params::default()).unwrap();
        assert!(c.prep.is_empty());
        assert_eq!(c.values, grid[0]);
    }

    #[test]
    fn aliases_and_preprocessing_parameters_resolve() {
        let values = BTreeMap::from([
            ("C".to_owned(), Value::from(0.5)),
            ("kernel".to_owned(), Value::from("linear")),
            ("l_freq".to_owned(), Value::from(7)),
            ("order".to_owned(), Value::from(4)),
        ]);
        let c = candidate(&values, &Params::default()).unwrap();
        assert_eq!(c.model.get("c"), Some(&Value::from(0.5)));
        assert_eq!(c.model.get("kernel"), Some(&Value::from("linear")));
        assert_eq!(c.prep.l_freq, Some(7.0));
        assert_eq!(c.prep.filter_order, Some(4));
        assert_eq!(c.prep.h_freq, None);
    }

    #[test]
    fn nested_names_resolve_by_their_last_segment_and_whole_floats_as_integers() {
        let s = sweep::parse(
            "method: grid\nparameters:\n  svm: {parameters: {C: {values: [0.5]}}}\n  n_components: {distribution: q_uniform, min: 2, max: 4}\n",
            "x",
        )
        .unwrap();
        check_names(&s).unwrap();
        let grid = s.grid();
        // W&B's grid gives `2.0` for `q_uniform` with its default `q: 1.0`.
        assert_eq!(grid[0]["n_components"], Value::from(2.0));
        let c = candidate(&grid[0], &Params::default()).unwrap();
        assert_eq!(c.model.get("c").and_then(Value::as_f64), Some(0.5));
        assert_eq!(c.model.get("n_components"), Some(&Value::from(2)));
        assert_eq!(c.values, grid[0], "the trial keeps the values as given");
        let s = sweep::parse(
            "method: grid\nparameters:\n  a: {parameters: {c: {values: [1]}}}\n  b: {parameters: {C: {values: [2]}}}\n",
            "x",
        )
        .unwrap();
        let e = check_names(&s).unwrap_err().to_string();
        assert!(e.contains("`a.c` and `b.C` are the same parameter"), "{e}");
    }

    #[test]
    fn bad_names_and_values_are_listed() {
        let s = sweep::parse(
            "method: grid\nparameters:\n  kernel: {values: [rbf, rfb]}\n  n_components: {values: [4, 2.5]}\n",
            "inline",
        )
        .unwrap();
        let e = check_values(&s, &Params::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 bad values"), "{e}");
        assert!(e.contains("parameters.kernel:") && e.contains("rfb"), "{e}");
        assert!(e.contains("parameters.n_components:"), "{e}");

        let s = sweep::parse("method: grid\nparameters:\n  alpha: {values: [1]}\n", "x").unwrap();
        let e = check_names(&s).unwrap_err().to_string();
        assert!(e.contains("unknown sweep parameter `alpha`"), "{e}");

        let s = sweep::parse(
            "method: grid\nparameters:\n  c: {values: [1]}\n  C: {values: [2]}\n",
            "x",
        )
        .unwrap();
        let e = check_names(&s).unwrap_err().to_string();
        assert!(e.contains("the same parameter"), "{e}");
    }
}
