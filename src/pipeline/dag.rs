//! The pipeline as a graph of steps, independent of where it runs: each step is a bciops
//! subcommand with its arguments, the artifacts it reads and writes, and the condition under
//! which it runs. The local runner (`run.rs`) and the Kubeflow emitter (`kfp.rs`) both render it.

use super::config::{train_params, DataSource, Mode, PipelineConfig, Scalar};

/// What kind of thing an artifact is (Kubeflow's `system.*` schema titles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Dataset,
    Model,
    Artifact,
}

impl ArtifactKind {
    pub fn schema_title(self) -> &'static str {
        match self {
            ArtifactKind::Dataset => "system.Dataset",
            ArtifactKind::Model => "system.Model",
            ArtifactKind::Artifact => "system.Artifact",
        }
    }
}

/// A pipeline parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Int,
    Double,
}

/// A pipeline parameter with its default (the config's value).
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub default: Scalar,
}

/// One command-line argument of a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// Literal text.
    Lit(String),
    /// The value of a pipeline parameter.
    Param(String),
    /// The path of an input artifact, by the step's local input name.
    Input(String),
    /// The paths of every shard's copy of an input artifact produced inside a parallel-for.
    InputList(String),
    /// The path the step writes an output artifact to.
    Output(String),
    /// The file the step writes a small output parameter to (a bare word).
    OutputParam(String),
    /// `I/N`: this shard's index and the number of shards.
    Shard,
}

/// Which step output an input is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactRef {
    pub step: String,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub from: ArtifactRef,
    pub kind: ArtifactKind,
}

/// A container step: `bciops <command…> <args…>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub command: Vec<String>,
    pub args: Vec<Arg>,
    pub inputs: Vec<Input>,
    pub outputs: Vec<(String, ArtifactKind)>,
    pub output_params: Vec<String>,
}

impl Step {
    /// Every pipeline parameter the arguments use, in order of first use.
    pub fn params(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for arg in &self.args {
            if let Arg::Param(p) = arg {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }
}

/// When a branch runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The `mode` parameter has this value.
    Mode(Mode),
    /// The step's `decision` output parameter is `promoted`.
    Promoted { step: String },
}

/// A node of the graph, in execution order within its branch.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Step(Step),
    /// An artifact that exists outside the pipeline, named by a URI parameter; its one output
    /// is called `artifact`.
    Import {
        name: String,
        uri_param: String,
        kind: ArtifactKind,
    },
    If {
        condition: Condition,
        body: Vec<Node>,
    },
    /// The body once per shard `1..=shards` (`tune --shard I/N` is 1-based), in parallel.
    ForShards {
        shards: u32,
        body: Vec<Node>,
    },
}

/// The whole pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    pub name: String,
    pub description: Option<String>,
    pub params: Vec<Param>,
    pub nodes: Vec<Node>,
}

impl Dag {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Every step, depth first.
    pub fn steps(&self) -> Vec<&Step> {
        fn walk<'a>(nodes: &'a [Node], out: &mut Vec<&'a Step>) {
            for node in nodes {
                match node {
                    Node::Step(s) => out.push(s),
                    Node::Import { .. } => {}
                    Node::If { body, .. } | Node::ForShards { body, .. } => walk(body, out),
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }
}

/// The output name of an import node.
pub const IMPORTED: &str = "artifact";

fn lit(s: &str) -> Arg {
    Arg::Lit(s.to_owned())
}

fn param(s: &str) -> Arg {
    Arg::Param(s.to_owned())
}

fn input(name: &str, step: &str, output: &str, kind: ArtifactKind) -> Input {
    Input {
        name: name.to_owned(),
        from: ArtifactRef {
            step: step.to_owned(),
            output: output.to_owned(),
        },
        kind,
    }
}

/// Builds the graph a config describes.
pub fn build(config: &PipelineConfig) -> Dag {
    use ArtifactKind::*;
    let mut params = vec![Param {
        name: "mode".into(),
        ty: ParamType::String,
        default: Scalar::Str(config.mode.as_str().into()),
    }];
    let mut add = |name: &str, ty: ParamType, default: Scalar| {
        params.push(Param {
            name: name.into(),
            ty,
            default,
        })
    };
    let s = |v: &str| Scalar::Str(v.to_owned());
    let int = |v: u64| Scalar::Int(v as i64);
    let mut nodes = Vec::new();

    // Recordings: synthetic, or imported from a URI.
    let recordings = match config.data.source {
        DataSource::Synth => {
            let syn = &config.data.synth;
            add("subjects", ParamType::String, s(&syn.subjects));
            add("synth_seed", ParamType::Int, int(syn.seed));
            add(
                "trials_per_class",
                ParamType::Int,
                int(syn.trials_per_class.into()),
            );
            nodes.push(Node::Step(Step {
                name: "synth".into(),
                command: vec!["synth".into()],
                args: vec![
                    lit("--out"),
                    Arg::Output("recordings".into()),
                    lit("--subjects"),
                    param("subjects"),
                    lit("--seed"),
                    param("synth_seed"),
                    lit("--trials-per-class"),
                    param("trials_per_class"),
                ],
                inputs: vec![],
                outputs: vec![("recordings".into(), Dataset)],
                output_params: vec![],
            }));
            ArtifactRef {
                step: "synth".into(),
                output: "recordings".into(),
            }
        }
        DataSource::Uri => {
            add(
                "data_uri",
                ParamType::String,
                s(config.data.uri.as_deref().unwrap_or_default()),
            );
            nodes.push(Node::Import {
                name: "import-recordings".into(),
                uri_param: "data_uri".into(),
                kind: Dataset,
            });
            ArtifactRef {
                step: "import-recordings".into(),
                output: IMPORTED.into(),
            }
        }
    };

    let pre = &config.preprocess;
    add("band", ParamType::String, s(&pre.band));
    add("order", ParamType::Int, int(pre.order.into()));
    add("window", ParamType::String, s(&pre.window));
    add("classes", ParamType::String, s(&pre.classes));
    let mut args = vec![
        lit("--input"),
        Arg::Input("recordings".into()),
        lit("--out"),
        Arg::Output("dataset".into()),
        lit("--band"),
        param("band"),
        lit("--order"),
        param("order"),
        lit("--window"),
        param("window"),
        lit("--classes"),
        param("classes"),
    ];
    if pre.causal {
        args.push(lit("--causal"));
    }
    nodes.push(Node::Step(Step {
        name: "preprocess".into(),
        command: vec!["preprocess".into()],
        args,
        inputs: vec![Input {
            name: "recordings".into(),
            from: recordings,
            kind: Dataset,
        }],
        outputs: vec![("dataset".into(), Dataset)],
        output_params: vec![],
    }));

    // Branch 1: the sweep, split into shards and merged.
    let tune = &config.tune;
    add("sweep_uri", ParamType::String, s(&tune.sweep));
    add("tune_eval", ParamType::String, s(&tune.eval));
    add("tune_seed", ParamType::Int, int(tune.seed));
    let mut args = vec![
        lit("--data"),
        Arg::Input("data".into()),
        lit("--sweep"),
        Arg::Input("sweep".into()),
        lit("--out"),
        Arg::Output("sweep".into()),
        lit("--eval"),
        param("tune_eval"),
        lit("--seed"),
        param("tune_seed"),
        lit("--shard"),
        Arg::Shard,
    ];
    if let Some(n) = tune.max_trials {
        args.extend([lit("--max-trials"), Arg::Lit(n.to_string())]);
    }
    if let Some(n) = tune.jobs {
        args.extend([lit("--jobs"), Arg::Lit(n.to_string())]);
    }
    let tune_branch = vec![
        Node::Import {
            name: "import-sweep".into(),
            uri_param: "sweep_uri".into(),
            kind: Artifact,
        },
        Node::ForShards {
            shards: tune.shards,
            body: vec![Node::Step(Step {
                name: "tune".into(),
                command: vec!["tune".into()],
                args,
                inputs: vec![
                    input("data", "preprocess", "dataset", Dataset),
                    input("sweep", "import-sweep", IMPORTED, Artifact),
                ],
                outputs: vec![("sweep".into(), Artifact)],
                output_params: vec![],
            })],
        },
        Node::Step(Step {
            name: "tune-merge".into(),
            command: vec!["tune".into(), "merge".into()],
            args: vec![
                Arg::InputList("shards".into()),
                lit("--out"),
                Arg::Output("sweep".into()),
            ],
            inputs: vec![input("shards", "tune", "sweep", Artifact)],
            outputs: vec![("sweep".into(), Artifact)],
            output_params: vec![],
        }),
    ];

    // Branch 2: train, compare with the champion, register, deploy if promoted.
    let tr = &config.train;
    add("train_eval", ParamType::String, s(&tr.eval));
    add("train_seed", ParamType::Int, int(tr.seed));
    let mut train_branch = Vec::new();
    let mut args = vec![
        lit("--data"),
        Arg::Input("data".into()),
        lit("--out"),
        Arg::Output("model".into()),
        lit("--eval"),
        param("train_eval"),
        lit("--seed"),
        param("train_seed"),
    ];
    let mut inputs = vec![input("data", "preprocess", "dataset", Dataset)];
    if let Some(file) = &tr.params_file {
        add("params_uri", ParamType::String, s(file));
        train_branch.push(Node::Import {
            name: "import-params".into(),
            uri_param: "params_uri".into(),
            kind: Artifact,
        });
        args.extend([lit("--params"), Arg::Input("params".into())]);
        inputs.push(input("params", "import-params", IMPORTED, Artifact));
    }
    // Switches are fixed at compile time; values become parameters.
    // Names and switches come from the families' declarations (`model/family/`).
    for (key, is_switch, on_by_default) in train_params() {
        let Some(value) = tr.params.get(key) else {
            continue;
        };
        let flag = format!("--{}", key.replace('_', "-"));
        match (is_switch, value) {
            (true, Scalar::Bool(true)) => args.push(Arg::Lit(flag)),
            (true, _) if on_by_default => args.push(Arg::Lit(format!("--no-{}", &flag[2..]))),
            (true, _) => {}
            (false, v) => {
                let name = format!("train_{key}");
                let ty = match v {
                    Scalar::Int(_) => ParamType::Int,
                    Scalar::Float(_) => ParamType::Double,
                    _ => ParamType::String,
                };
                add(&name, ty, v.clone());
                args.extend([Arg::Lit(flag), Arg::Param(name)]);
            }
        }
    }
    train_branch.push(Node::Step(Step {
        name: "train".into(),
        command: vec!["train".into()],
        args,
        inputs,
        outputs: vec![("model".into(), Model)],
        output_params: vec![],
    }));
    let reg = &config.registry;
    add("registry_name", ParamType::String, s(&reg.name));
    add("alias", ParamType::String, s(&reg.alias));
    add("metric", ParamType::String, s(&reg.metric));
    add("min_delta", ParamType::Double, Scalar::Float(reg.min_delta));
    let mut registry_args = Vec::new();
    if let Some(uri) = &reg.uri {
        add("registry_uri", ParamType::String, s(uri));
        registry_args = vec![lit("--registry-uri"), param("registry_uri")];
    }
    train_branch.push(Node::Step(Step {
        name: "compare-register".into(),
        command: vec!["compare-register".into()],
        args: [
            lit("--model"),
            Arg::Input("model".into()),
            lit("--name"),
            param("registry_name"),
            lit("--metric"),
            param("metric"),
            lit("--min-delta"),
            param("min_delta"),
            lit("--alias"),
            param("alias"),
            lit("--decision-out"),
            Arg::OutputParam("decision".into()),
            lit("--json"),
        ]
        .into_iter()
        .chain(registry_args)
        .collect(),
        inputs: vec![input("model", "train", "model", Model)],
        outputs: vec![],
        output_params: vec!["decision".into()],
    }));
    if config.deploy.enabled {
        // The serving Deployment follows `models:/NAME@ALIAS`, so promotion is the rollout;
        // this step proves the new champion loads and predicts before anyone relies on it.
        train_branch.push(Node::If {
            condition: Condition::Promoted {
                step: "compare-register".into(),
            },
            body: vec![Node::Step(Step {
                name: "deploy".into(),
                command: vec!["predict".into()],
                args: vec![
                    lit("--model"),
                    Arg::Input("model".into()),
                    lit("--data"),
                    Arg::Input("data".into()),
                    lit("--out"),
                    Arg::Output("predictions".into()),
                ],
                inputs: vec![
                    input("model", "train", "model", Model),
                    input("data", "preprocess", "dataset", Dataset),
                ],
                outputs: vec![("predictions".into(), Artifact)],
                output_params: vec![],
            })],
        });
    }

    nodes.push(Node::If {
        condition: Condition::Mode(Mode::Tune),
        body: tune_branch,
    });
    nodes.push(Node::If {
        condition: Condition::Mode(Mode::Train),
        body: train_branch,
    });
    Dag {
        name: config.name.clone(),
        description: config.description.clone(),
        params,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_graph_has_every_step_once() {
        let config = PipelineConfig::load(None, &[]).unwrap();
        let dag = build(&config);
        let names: Vec<_> = dag.steps().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "synth",
                "preprocess",
                "tune",
                "tune-merge",
                "train",
                "compare-register",
                "deploy"
            ]
        );
        // Every parameter a step uses is declared.
        for step in dag.steps() {
            for p in step.params() {
                assert!(
                    dag.param(&p).is_some(),
                    "{} uses undeclared `{p}`",
                    step.name
                );
            }
        }
    }

    #[test]
    fn train_params_become_flags_and_parameters() {
        let sets = [
            "train.params.c=1.5",
            "train.params.log=false",
            "train.params.norm_trace=true",
        ]
        .map(String::from);
        let dag = build(&PipelineConfig::load(None, &sets).unwrap());
        let train = dag.steps().into_iter().find(|s| s.name == "train").unwrap();
        assert!(train.args.contains(&Arg::Lit("--no-log".into())));
        assert!(train.args.contains(&Arg::Lit("--norm-trace".into())));
        assert!(train.args.contains(&Arg::Param("train_c".into())));
        assert_eq!(dag.param("train_c").unwrap().ty, ParamType::Double);
    }
}
