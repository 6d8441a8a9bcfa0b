//! The graph as a Kubeflow cluster must get it. The KFP v2 backend's launcher resolves plain
//! input and output placeholders, but neither a list of artifacts in one placeholder
//! (`{{$.inputs.artifacts['shards']}}`, which `tune merge` would receive as literal text) nor
//! a `Concat` placeholder (which `--shard` was built with). And a step on a cluster reads no
//! file of the machine that compiled the pipeline.
//!
//! So, before the IR is written: the shard loop is unrolled into one task per shard with a
//! literal `--shard I/N` (the count is known when compiling), the merge takes one input per
//! shard, a sweep given as a local file travels inline as the pipeline parameter
//! `sweep_yaml` (editable when the run is submitted), and any other input given as a local
//! path is refused, naming the config key, as is a registry that is not shared (an MLflow
//! server or a bucket): one in the pod's filesystem is lost with the pod. The local runner
//! keeps the graph as it is.

use super::config::{Scalar, DEFAULT_SWEEP, DEFAULT_SWEEP_YAML};
use super::dag::{Arg, ArtifactRef, Dag, Input, Node, Param, ParamType, Step};
use crate::error::{Error, Result};

/// The pipeline parameter that carries a sweep file's text.
pub const SWEEP_YAML: &str = "sweep_yaml";

/// Imported inputs: the pipeline parameter holding the URI, and the config key that sets it.
const IMPORTS: [(&str, &str); 3] = [
    ("sweep_uri", "tune.sweep"),
    ("data_uri", "data.uri"),
    ("params_uri", "train.params_file"),
];

/// URIs a step on a cluster (and KFP's importer) can read.
fn is_remote(uri: &str) -> bool {
    ["s3://", "gs://", "minio://", "http://", "https://"]
        .iter()
        .any(|scheme| uri.starts_with(scheme))
}

/// Registries a step on a cluster can write and the next run still finds: an MLflow server or
/// the embedded store on a bucket.
fn is_shared_registry(uri: &str) -> bool {
    ["http://", "https://", "s3://", "gs://"]
        .iter()
        .any(|scheme| uri.starts_with(scheme))
}

/// compare-register's registry must outlive the step's pod: a directory (or the default
/// `./bciops-store`) would be written in the pod's filesystem and lost with it, and every run
/// would find no champion and promote.
fn check_registry(dag: &Dag) -> Result<()> {
    if !dag.steps().iter().any(|s| s.name == "compare-register") {
        return Ok(());
    }
    match dag.param("registry_uri") {
        Some(Param {
            default: Scalar::Str(uri),
            ..
        }) if is_shared_registry(uri) => Ok(()),
        Some(Param { default, .. }) => Err(Error::Invalid(format!(
            "`registry.uri` is `{default}`, a directory in the step's pod on a cluster, lost \
             with it: give an MLflow URI (http(s)://…) or a bucket (s3://…, gs://…)"
        ))),
        None => Err(Error::Invalid(
            "`registry.uri` is not set: on a cluster the default registry (./bciops-store) \
             would live in the step's pod and be lost with it: give an MLflow URI \
             (http(s)://…) or a bucket (s3://…, gs://…)"
                .into(),
        )),
    }
}

/// The graph `dag` rewritten for a cluster (see the module docs).
pub fn for_cluster(dag: &Dag) -> Result<Dag> {
    check_registry(dag)?;
    let mut out = dag.clone();
    let mut inline_sweep = None;
    for (param, key) in IMPORTS {
        let Some(Param {
            default: Scalar::Str(uri),
            ..
        }) = dag.param(param)
        else {
            continue;
        };
        if is_remote(uri) || !imported(&dag.nodes, param) {
            continue;
        }
        if param != "sweep_uri" {
            return Err(Error::Invalid(format!(
                "`{key}` is `{uri}`, a path on this machine, which no step on a cluster can \
                 read: give an `s3://` or `gs://` URI"
            )));
        }
        let text = match std::fs::read_to_string(uri) {
            Ok(text) => text,
            Err(_) if uri == DEFAULT_SWEEP => DEFAULT_SWEEP_YAML.to_owned(),
            Err(e) => return Err(Error::io("read", uri, e)),
        };
        // Checked now, so that a bad sweep fails the compile rather than the run.
        crate::tune::sweep::parse(&text, uri)?;
        inline_sweep = Some(text);
    }
    if let Some(text) = inline_sweep {
        out.params.retain(|p| p.name != "sweep_uri");
        out.params.push(Param {
            name: SWEEP_YAML.into(),
            ty: ParamType::String,
            default: Scalar::Str(text),
        });
        out.nodes = inline(out.nodes);
    }
    out.nodes = unroll(out.nodes)?;
    Ok(out)
}

/// Whether some node imports through `param`.
fn imported(nodes: &[Node], param: &str) -> bool {
    nodes.iter().any(|n| match n {
        Node::Import { uri_param, .. } => uri_param == param,
        Node::If { body, .. } | Node::ForShards { body, .. } => imported(body, param),
        Node::Step(_) => false,
    })
}

/// The sweep import dropped; steps that read it take `--sweep-text` with the parameter.
fn inline(nodes: Vec<Node>) -> Vec<Node> {
    nodes
        .into_iter()
        .filter(|n| !matches!(n, Node::Import { uri_param, .. } if uri_param == "sweep_uri"))
        .map(|n| match n {
            Node::Step(mut s) => {
                let Some(input) = s.inputs.iter().position(|i| i.from.step == "import-sweep")
                else {
                    return Node::Step(s);
                };
                let name = s.inputs.remove(input).name;
                let mut args = Vec::with_capacity(s.args.len());
                for arg in s.args {
                    match arg {
                        Arg::Input(n) if n == name => {
                            args.pop(); // `--sweep`
                            args.push(Arg::Lit("--sweep-text".into()));
                            args.push(Arg::Param(SWEEP_YAML.into()));
                        }
                        other => args.push(other),
                    }
                }
                s.args = args;
                Node::Step(s)
            }
            Node::If { condition, body } => Node::If {
                condition,
                body: inline(body),
            },
            Node::ForShards { shards, body } => Node::ForShards {
                shards,
                body: inline(body),
            },
            other => other,
        })
        .collect()
}

/// Each shard loop becomes `shards` steps `NAME-I` with a literal `--shard I/N`; an input list
/// of their outputs becomes one input per shard.
fn unroll(nodes: Vec<Node>) -> Result<Vec<Node>> {
    // Each looped step's name and its loop's shard count.
    let mut looped: Vec<(String, u32)> = Vec::new();
    let mut out = Vec::new();
    for node in nodes {
        match node {
            Node::ForShards { shards: n, body } => {
                for i in 1..=n {
                    for child in &body {
                        let Node::Step(s) = child else {
                            return Err(Error::Invalid("a shard loop may hold only steps".into()));
                        };
                        let mut s = s.clone();
                        looped.push((s.name.clone(), n));
                        s.name = format!("{}-{i}", s.name);
                        for arg in &mut s.args {
                            if *arg == Arg::Shard {
                                *arg = Arg::Lit(format!("{i}/{n}"));
                            }
                        }
                        out.push(Node::Step(s));
                    }
                }
            }
            Node::If { condition, body } => out.push(Node::If {
                condition,
                body: unroll(body)?,
            }),
            Node::Step(s) => out.push(Node::Step(fan_in(s, &looped))),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// An input list from a looped step becomes inputs `NAME-1` … `NAME-N`.
fn fan_in(mut s: Step, looped: &[(String, u32)]) -> Step {
    let lists: Vec<(Input, u32)> = s
        .inputs
        .iter()
        .filter(|i| s.args.contains(&Arg::InputList(i.name.clone())))
        .filter_map(|i| {
            let (_, n) = looped.iter().find(|(step, _)| *step == i.from.step)?;
            Some((i.clone(), *n))
        })
        .collect();
    for (list, shards) in lists {
        s.inputs.retain(|i| i.name != list.name);
        let mut args = Vec::new();
        for arg in s.args {
            if arg == Arg::InputList(list.name.clone()) {
                for i in 1..=shards {
                    let name = format!("{}-{i}", list.name);
                    args.push(Arg::Input(name.clone()));
                    s.inputs.push(Input {
                        name,
                        from: ArtifactRef {
                            step: format!("{}-{i}", list.from.step),
                            output: list.from.output.clone(),
                        },
                        kind: list.kind,
                    });
                }
            } else {
                args.push(arg);
            }
        }
        s.args = args;
    }
    s
}
