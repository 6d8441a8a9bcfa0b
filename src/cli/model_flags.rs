//! `--pipeline NAME` and one flag per declared hyper-parameter of every family, built from the
//! declarations in `model/family/` (nothing here names a parameter), and the merge of
//! defaults ← `--params` file ← flags, as data.

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use serde_json::Value;

use crate::model::family::{self, Kind, Params};
use crate::storage::{self, Location};
use crate::Error;

/// The model flags as given: the family and each parameter's text, in declaration order.
#[derive(Debug, Clone, Default)]
pub struct ModelFlags {
    pub pipeline: Option<String>,
    pub set: Vec<(&'static str, String)>,
}

fn no_id(name: &str) -> String {
    format!("no_{name}")
}

/// clap (without its `string` feature) names arguments by `&'static str`; these few names are
/// built once per process from the declarations, so they are leaked rather than owned.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

impl Args for ModelFlags {
    fn augment_args(cmd: Command) -> Command {
        let mut cmd = cmd.arg(
            Arg::new("pipeline")
                .long("pipeline")
                .value_name("NAME")
                .help(format!(
                    "Model family: {} (default `{}`)",
                    family::names().join(", "),
                    family::DEFAULT
                )),
        );
        for (spec, families) in family::all_param_specs() {
            let only = if families.len() == family::FAMILIES.len() {
                String::new()
            } else {
                format!(" [{}]", families.join(", "))
            };
            let long = spec.name.replace('_', "-");
            match spec.kind {
                Kind::Bool => {
                    let no = leak(no_id(spec.name));
                    cmd = cmd
                        .arg(
                            Arg::new(spec.name)
                                .long(leak(long.clone()))
                                .action(ArgAction::SetTrue)
                                .overrides_with(no)
                                .help(format!("{}{only}", spec.help)),
                        )
                        .arg(
                            Arg::new(no)
                                .long(leak(format!("no-{long}")))
                                .action(ArgAction::SetTrue)
                                .overrides_with(spec.name)
                                .hide(spec.default != "true")
                                .help(format!("Turn `--{long}` off{only}")),
                        );
                }
                _ => {
                    cmd = cmd.arg(
                        Arg::new(spec.name)
                            .long(leak(long))
                            .value_name(leak(spec.name.to_uppercase()))
                            .allow_negative_numbers(true)
                            .help(format!(
                                "{} ({}; default {}){only}",
                                spec.help,
                                spec.describe_kind(),
                                spec.default
                            )),
                    );
                }
            }
        }
        cmd
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ModelFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = ModelFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        if let Some(p) = m.get_one::<String>("pipeline") {
            self.pipeline = Some(p.clone());
        }
        for (spec, _) in family::all_param_specs() {
            if spec.kind == Kind::Bool {
                if m.get_flag(spec.name) {
                    self.set.push((spec.name, "true".into()));
                } else if m.get_flag(&no_id(spec.name)) {
                    self.set.push((spec.name, "false".into()));
                }
            } else if let Some(v) = m.get_one::<String>(spec.name) {
                self.set.push((spec.name, v.clone()));
            }
        }
        Ok(())
    }
}

/// Reads a `--params` file: a flat object, or one with the parameters under `params` (as a
/// sweep's `best.json` has them). Returns the object; [`ModelFlags::resolve`] checks it.
pub fn read_params_file(location: &Location) -> Result<serde_json::Map<String, Value>, Error> {
    let path = location.to_string();
    let bytes = storage::read_file(location)?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::malformed(&path, format!("not JSON: {e}")))?;
    let inner = match value.get("params") {
        Some(p) if p.is_object() => p.clone(),
        _ => value,
    };
    match inner {
        Value::Object(m) => Ok(m),
        _ => Err(Error::malformed(
            path,
            "bad parameters: not a JSON object".to_owned(),
        )),
    }
}

/// Reads a `--params` file into checked parameters.
pub fn read_params(location: &Location) -> Result<Params, Error> {
    ModelFlags::default().resolve(Some(location))
}

impl ModelFlags {
    /// Defaults of the family, then the `--params` file, then the flags: later wins. The family
    /// is `--pipeline`, else the file's `pipeline`, else `csp+svm`.
    pub fn resolve(&self, file: Option<&Location>) -> Result<Params, Error> {
        let file = match file {
            Some(l) => Some((l.to_string(), read_params_file(l)?)),
            None => None,
        };
        let from_file = match file
            .as_ref()
            .and_then(|(path, m)| m.get("pipeline").map(|v| (path, v)))
        {
            None => None,
            Some((_, Value::String(s))) => Some(s.clone()),
            Some((path, other)) => {
                return Err(Error::malformed(
                    path,
                    format!("bad parameters: `pipeline` = `{other}` is not a name"),
                ))
            }
        };
        let name = self
            .pipeline
            .clone()
            .or(from_file)
            .unwrap_or_else(|| family::DEFAULT.to_owned());
        let mut p = Params::defaults(family::family(&name)?);
        if let Some((path, map)) = &file {
            p.merge_json(map)
                .map_err(|e| Error::malformed(path, format!("bad parameters: {e}")))?;
        }
        for (name, text) in &self.set {
            p.set_text(name, text).map_err(Error::Invalid)?;
        }
        p.normalized().map_err(Error::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Params, Error> {
        let cmd = ModelFlags::augment_args(Command::new("t"));
        let m = cmd
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        ModelFlags::from_arg_matches(&m)
            .map_err(|e| Error::Invalid(e.to_string()))?
            .resolve(None)
    }

    #[test]
    fn every_declared_parameter_has_a_flag_that_round_trips() {
        // For each family, each parameter set from its flag to its default text gives the
        // declared default back.
        for f in family::FAMILIES {
            for spec in f.params() {
                let flag = spec.flag();
                let args: Vec<String> = match spec.kind {
                    Kind::Bool if spec.default == "true" => {
                        vec![format!("--no-{}", &flag[2..]), flag.clone()]
                    }
                    Kind::Bool => vec![flag.clone()],
                    _ => vec![format!("{flag}={}", spec.default)],
                };
                let mut all = vec!["--pipeline".to_string(), f.name().to_string()];
                all.extend(args);
                let refs: Vec<&str> = all.iter().map(String::as_str).collect();
                let p = parse(&refs).unwrap_or_else(|e| panic!("{} {flag}: {e}", f.name()));
                assert_eq!(p.pipeline(), f.name());
                let want = Params::defaults(*f).normalized().unwrap();
                let got_v = p.get(spec.name).unwrap();
                if spec.kind == Kind::Bool {
                    assert_eq!(got_v, &Value::Bool(true), "{flag}");
                } else {
                    assert_eq!(got_v, want.get(spec.name).unwrap(), "{flag}");
                }
            }
        }
    }

    #[test]
    fn flags_of_other_families_and_unknown_pipelines_are_refused() {
        let e = parse(&["--pipeline", "nope"]).unwrap_err().to_string();
        assert!(e.contains("unknown pipeline `nope`"), "{e}");
        let p = parse(&["--no-log", "--c", "2"]).unwrap();
        assert_eq!(p.get("log"), Some(&Value::Bool(false)));
        assert_eq!(p.get("c"), Some(&Value::from(2.0)));
    }
}
