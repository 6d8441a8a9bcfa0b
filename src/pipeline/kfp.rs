//! The Kubeflow Pipelines v2 emitter: renders the graph as the pipeline IR YAML that the `kfp`
//! SDK compiles to and the KFP UI uploads (`PipelineSpec`, schema 2.1.0), plus a second YAML
//! document with the Kubernetes platform spec (node selectors), as `kfp-kubernetes` writes it.
//!
//! The shapes follow what `kfp` 2.17 itself emits for container components: one component and
//! one executor per step, conditions and parallel-fors as sub-DAG components whose inputs are
//! `pipelinechannel--…` parameters and artifacts, `triggerPolicy.condition` on them, and a
//! collected artifact list out of the loop.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::config::{PipelineConfig, Scalar};
use super::dag::{Arg, ArtifactKind, ArtifactRef, Condition, Dag, Node, ParamType, Step, IMPORTED};
use crate::error::{Error, Result};

/// The IR schema version this emitter writes.
pub const SCHEMA_VERSION: &str = "2.1.0";

/// Renders the pipeline for `image` (which must have `bciops` on its PATH or as entrypoint).
pub fn emit(dag: &Dag, config: &PipelineConfig, image: &str) -> Result<String> {
    let cluster = super::cluster::for_cluster(dag)?;
    let dag = &cluster;
    let mut e = Emitter {
        dag,
        config,
        image,
        next_id: 0,
        components: Map::new(),
        executors: Map::new(),
        node_selectors: Map::new(),
    };
    let tasks = e.dag_tasks(&dag.nodes, true)?;

    let mut params = Map::new();
    for p in &dag.params {
        params.insert(
            p.name.clone(),
            json!({
                "defaultValue": scalar_json(&p.default),
                "isOptional": true,
                "parameterType": param_type(p.ty),
            }),
        );
    }
    let mut spec = json!({
        "components": e.components,
        "deploymentSpec": {"executors": e.executors},
        "pipelineInfo": {"name": dag.name},
        "root": {
            "dag": {"tasks": tasks},
            "inputDefinitions": {"parameters": params},
        },
        "schemaVersion": SCHEMA_VERSION,
        "sdkVersion": format!("bciops-{}", env!("CARGO_PKG_VERSION")),
    });
    if let Some(d) = &dag.description {
        spec["pipelineInfo"]["description"] = json!(d);
    }
    if let Some(root) = &config.pipeline_root {
        spec["defaultPipelineRoot"] = json!(root);
    }

    let mut out = String::new();
    out.push_str("# PIPELINE DEFINITION\n");
    out.push_str(&format!("# Name: {}\n", dag.name));
    out.push_str("# Written by `bciops pipeline compile`; upload it to Kubeflow Pipelines.\n");
    out.push_str("# Inputs:\n");
    for p in &dag.params {
        let value = p.default.to_string();
        // A multi-line value (an inline sweep) would end the comment.
        let shown = match value.lines().count() {
            0 | 1 => value,
            n => format!("({n} lines of text)"),
        };
        out.push_str(&format!("#    {}: {shown}\n", p.name));
    }
    out.push_str(&to_yaml(&spec)?);
    if !e.node_selectors.is_empty() {
        let platform = json!({
            "platforms": {"kubernetes": {"deploymentSpec": {"executors": e.node_selectors}}}
        });
        out.push_str("---\n");
        out.push_str(&to_yaml(&platform)?);
    }
    Ok(out)
}

fn to_yaml(v: &Value) -> Result<String> {
    serde_norway::to_string(v).map_err(|e| Error::Invalid(format!("cannot render YAML: {e}")))
}

fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(i) => json!(i),
        Scalar::Float(x) => json!(x),
        Scalar::Str(s) => json!(s),
    }
}

fn param_type(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "STRING",
        ParamType::Int => "NUMBER_INTEGER",
        ParamType::Double => "NUMBER_DOUBLE",
    }
}

fn artifact_type(kind: ArtifactKind) -> Value {
    json!({"schemaTitle": kind.schema_title(), "schemaVersion": "0.0.1"})
}

fn channel(name: &str) -> String {
    format!("pipelinechannel--{name}")
}

fn artifact_channel(r: &ArtifactRef) -> String {
    channel(&format!("{}-{}", r.step, r.output))
}

fn decision_channel(step: &str) -> String {
    channel(&format!("{step}-decision"))
}

/// Names of every step and import inside some nodes, at any depth.
fn produced(nodes: &[Node], out: &mut BTreeSet<String>) {
    for node in nodes {
        match node {
            Node::Step(s) => {
                out.insert(s.name.clone());
            }
            Node::Import { name, .. } => {
                out.insert(name.clone());
            }
            Node::If { body, .. } | Node::ForShards { body, .. } => produced(body, out),
        }
    }
}

/// What a node reads from outside itself.
#[derive(Default)]
struct Needs {
    params: BTreeSet<String>,
    artifacts: BTreeMap<ArtifactRef, ArtifactKind>,
    decisions: BTreeSet<String>,
}

fn needs(node: &Node) -> Needs {
    let mut n = Needs::default();
    match node {
        Node::Step(s) => {
            n.params.extend(s.params());
            for i in &s.inputs {
                n.artifacts.insert(i.from.clone(), i.kind);
            }
        }
        Node::Import { uri_param, .. } => {
            n.params.insert(uri_param.clone());
        }
        Node::If { condition, body } => return needs_of_condition(condition, body),
        Node::ForShards { body, .. } => body_needs(body, &mut n),
    }
    n
}

fn needs_of_condition(condition: &Condition, body: &[Node]) -> Needs {
    let mut n = Needs::default();
    match condition {
        Condition::Mode(_) => {
            n.params.insert("mode".into());
        }
        Condition::Promoted { step } => {
            n.decisions.insert(step.clone());
        }
    }
    body_needs(body, &mut n);
    n
}

fn body_needs(body: &[Node], n: &mut Needs) {
    let mut inside = BTreeSet::new();
    produced(body, &mut inside);
    for child in body {
        let c = needs(child);
        n.params.extend(c.params);
        for (r, k) in c.artifacts {
            if !inside.contains(&r.step) {
                n.artifacts.insert(r, k);
            }
        }
        n.decisions
            .extend(c.decisions.into_iter().filter(|d| !inside.contains(d)));
    }
}

/// One DAG's view: whether it is the root (where parameters are the pipeline's own), and the
/// producers that are its own tasks (others are reached through its inputs).
struct Scope {
    root: bool,
    siblings: BTreeSet<String>,
}

struct Emitter<'a> {
    dag: &'a Dag,
    config: &'a PipelineConfig,
    image: &'a str,
    next_id: usize,
    components: Map<String, Value>,
    executors: Map<String, Value>,
    node_selectors: Map<String, Value>,
}

impl Emitter<'_> {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    /// Emits the tasks of one DAG (and, recursively, the components they use).
    fn dag_tasks(&mut self, nodes: &[Node], root: bool) -> Result<Map<String, Value>> {
        let mut scope = Scope {
            root,
            siblings: BTreeSet::new(),
        };
        let mut ids = vec![None; nodes.len()];
        let mut tasks = Map::new();
        for (i, node) in nodes.iter().enumerate() {
            match node {
                Node::Step(Step { name, .. }) | Node::Import { name, .. } => {
                    scope.siblings.insert(name.clone());
                }
                Node::If { .. } => ids[i] = Some(self.id("condition")),
                Node::ForShards { .. } => return Err(unrolled()),
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let (name, task) = match node {
                Node::Step(s) => (s.name.clone(), self.step_task(s, &scope)?),
                Node::Import {
                    name,
                    uri_param,
                    kind,
                } => (
                    name.clone(),
                    self.import_task(name, uri_param, *kind, &scope),
                ),
                Node::If { condition, body } => {
                    let id = ids[i].clone().expect("numbered above");
                    (
                        id.clone(),
                        self.condition_task(condition, body, &id, &scope)?,
                    )
                }
                Node::ForShards { .. } => return Err(unrolled()),
            };
            tasks.insert(name, task);
        }
        Ok(tasks)
    }

    fn bind_param(&self, name: &str, scope: &Scope) -> Value {
        if scope.root {
            json!({"componentInputParameter": name})
        } else {
            json!({"componentInputParameter": channel(name)})
        }
    }

    /// The binding of an artifact input, and the sibling task it makes this one depend on.
    fn bind_artifact(&self, r: &ArtifactRef, scope: &Scope) -> (Value, Option<String>) {
        if scope.siblings.contains(&r.step) {
            (
                json!({"taskOutputArtifact": {"outputArtifactKey": r.output, "producerTask": r.step}}),
                Some(r.step.clone()),
            )
        } else {
            (json!({"componentInputArtifact": artifact_channel(r)}), None)
        }
    }

    fn caching(&self, name: &str) -> Value {
        json!({"enableCache": self.config.cache_enabled(name)})
    }

    fn step_task(&mut self, step: &Step, scope: &Scope) -> Result<Value> {
        self.step_component(step)?;
        let mut params = Map::new();
        for p in step.params() {
            params.insert(p.clone(), self.bind_param(&p, scope));
        }
        let mut artifacts = Map::new();
        let mut deps = BTreeSet::new();
        for input in &step.inputs {
            let (binding, dep) = self.bind_artifact(&input.from, scope);
            artifacts.insert(input.name.clone(), binding);
            deps.extend(dep);
        }
        let mut task = json!({
            "cachingOptions": self.caching(&step.name),
            "componentRef": {"name": format!("comp-{}", step.name)},
            "taskInfo": {"name": step.name},
        });
        let mut inputs = Map::new();
        if !artifacts.is_empty() {
            inputs.insert("artifacts".into(), Value::Object(artifacts));
        }
        if !params.is_empty() {
            inputs.insert("parameters".into(), Value::Object(params));
        }
        if !inputs.is_empty() {
            task["inputs"] = Value::Object(inputs);
        }
        if !deps.is_empty() {
            task["dependentTasks"] = json!(deps);
        }
        Ok(task)
    }

    fn import_task(
        &mut self,
        name: &str,
        uri_param: &str,
        kind: ArtifactKind,
        scope: &Scope,
    ) -> Value {
        self.components.insert(
            format!("comp-{name}"),
            json!({
                "executorLabel": format!("exec-{name}"),
                "inputDefinitions": {"parameters": {"uri": {"parameterType": "STRING"}}},
                "outputDefinitions": {"artifacts": {IMPORTED: {"artifactType": artifact_type(kind)}}},
            }),
        );
        self.executors.insert(
            format!("exec-{name}"),
            json!({"importer": {
                "artifactUri": {"runtimeParameter": "uri"},
                "typeSchema": artifact_type(kind),
            }}),
        );
        json!({
            "cachingOptions": self.caching(name),
            "componentRef": {"name": format!("comp-{name}")},
            "inputs": {"parameters": {"uri": self.bind_param(uri_param, scope)}},
            "taskInfo": {"name": name},
        })
    }

    /// The component and executor of a container step.
    fn step_component(&mut self, step: &Step) -> Result<()> {
        let mut params = Map::new();
        for p in step.params() {
            let ty = self
                .dag
                .param(&p)
                .ok_or_else(|| Error::Invalid(format!("parameter `{p}` is not declared")))?
                .ty;
            params.insert(p, json!({"parameterType": param_type(ty)}));
        }
        let mut artifacts = Map::new();
        for input in &step.inputs {
            artifacts.insert(
                input.name.clone(),
                json!({"artifactType": artifact_type(input.kind)}),
            );
        }
        let mut component = json!({"executorLabel": format!("exec-{}", step.name)});
        let mut inputs = Map::new();
        if !artifacts.is_empty() {
            inputs.insert("artifacts".into(), Value::Object(artifacts));
        }
        if !params.is_empty() {
            inputs.insert("parameters".into(), Value::Object(params));
        }
        if !inputs.is_empty() {
            component["inputDefinitions"] = Value::Object(inputs);
        }
        let mut outputs = Map::new();
        if !step.outputs.is_empty() {
            let arts: Map<String, Value> = step
                .outputs
                .iter()
                .map(|(n, k)| (n.clone(), json!({"artifactType": artifact_type(*k)})))
                .collect();
            outputs.insert("artifacts".into(), Value::Object(arts));
        }
        if !step.output_params.is_empty() {
            let ps: Map<String, Value> = step
                .output_params
                .iter()
                .map(|n| (n.clone(), json!({"parameterType": "STRING"})))
                .collect();
            outputs.insert("parameters".into(), Value::Object(ps));
        }
        if !outputs.is_empty() {
            component["outputDefinitions"] = Value::Object(outputs);
        }
        self.components
            .insert(format!("comp-{}", step.name), component);

        let args = step
            .args
            .iter()
            .map(|a| {
                Ok(match a {
                    Arg::Lit(s) => json!(s),
                    Arg::Param(p) => json!(format!("{{{{$.inputs.parameters['{p}']}}}}")),
                    Arg::Input(n) => json!(format!("{{{{$.inputs.artifacts['{n}'].path}}}}")),
                    Arg::Output(n) => json!(format!("{{{{$.outputs.artifacts['{n}'].path}}}}")),
                    Arg::OutputParam(n) => {
                        json!(format!("{{{{$.outputs.parameters['{n}'].output_file}}}}"))
                    }
                    Arg::InputList(_) | Arg::Shard => return Err(unrolled()),
                })
            })
            .collect::<Result<Vec<Value>>>()?;
        let mut command = vec!["bciops".to_owned()];
        command.extend(step.command.iter().cloned());
        let mut container = json!({"args": args, "command": command, "image": self.image});
        let settings = self.config.step(&step.name);
        let resources = resources(&step.name, &settings)?;
        if !resources.is_empty() {
            container["resources"] = Value::Object(resources);
        }
        self.executors.insert(
            format!("exec-{}", step.name),
            json!({"container": container}),
        );
        if !settings.node_selector.is_empty() {
            self.node_selectors.insert(
                format!("exec-{}", step.name),
                json!({"nodeSelector": {"labels": settings.node_selector}}),
            );
        }
        Ok(())
    }

    /// A condition: its sub-DAG component and the task that runs it.
    fn condition_task(
        &mut self,
        condition: &Condition,
        body: &[Node],
        id: &str,
        scope: &Scope,
    ) -> Result<Value> {
        let n = needs_of_condition(condition, body);
        let inner_tasks = self.dag_tasks(body, false)?;

        // The sub-DAG's inputs, and how this DAG feeds them.
        let mut def_params = Map::new();
        let mut def_artifacts = Map::new();
        let mut in_params = Map::new();
        let mut in_artifacts = Map::new();
        let mut deps = BTreeSet::new();
        for p in &n.params {
            let ty = self
                .dag
                .param(p)
                .ok_or_else(|| Error::Invalid(format!("parameter `{p}` is not declared")))?
                .ty;
            def_params.insert(channel(p), json!({"parameterType": param_type(ty)}));
            in_params.insert(channel(p), self.bind_param(p, scope));
        }
        for d in &n.decisions {
            def_params.insert(decision_channel(d), json!({"parameterType": "STRING"}));
            let binding = if scope.siblings.contains(d) {
                deps.insert(d.clone());
                json!({"taskOutputParameter": {"outputParameterKey": "decision", "producerTask": d}})
            } else {
                json!({"componentInputParameter": decision_channel(d)})
            };
            in_params.insert(decision_channel(d), binding);
        }
        for (r, kind) in &n.artifacts {
            def_artifacts.insert(
                artifact_channel(r),
                json!({"artifactType": artifact_type(*kind)}),
            );
            let (binding, dep) = self.bind_artifact(r, scope);
            in_artifacts.insert(artifact_channel(r), binding);
            deps.extend(dep);
        }

        let mut defs = Map::new();
        if !def_artifacts.is_empty() {
            defs.insert("artifacts".into(), Value::Object(def_artifacts));
        }
        if !def_params.is_empty() {
            defs.insert("parameters".into(), Value::Object(def_params));
        }
        self.components.insert(
            format!("comp-{id}"),
            json!({"dag": {"tasks": inner_tasks}, "inputDefinitions": defs}),
        );

        let expr = match condition {
            Condition::Mode(m) => format!(
                "inputs.parameter_values['{}'] == '{}'",
                channel("mode"),
                m.as_str()
            ),
            Condition::Promoted { step } => format!(
                "inputs.parameter_values['{}'] == 'promoted'",
                decision_channel(step)
            ),
        };
        let mut inputs = Map::new();
        if !in_artifacts.is_empty() {
            inputs.insert("artifacts".into(), Value::Object(in_artifacts));
        }
        if !in_params.is_empty() {
            inputs.insert("parameters".into(), Value::Object(in_params));
        }
        let mut task = json!({
            "componentRef": {"name": format!("comp-{id}")},
            "inputs": inputs,
            "taskInfo": {"name": id},
            "triggerPolicy": {"condition": expr},
        });
        if !deps.is_empty() {
            task["dependentTasks"] = json!(deps);
        }
        Ok(task)
    }
}

/// Shard loops and input lists reach the emitter only unrolled (`cluster::for_cluster`).
fn unrolled() -> Error {
    Error::Internal("a shard loop reached the Kubeflow emitter without being unrolled".into())
}

/// A resource setting: config field, value, old and current IR field, parser, what it is.
type Quantity<'a> = (
    &'a str,
    &'a Option<String>,
    &'a str,
    &'a str,
    fn(&str) -> Option<f64>,
    &'a str,
);

/// The container's `resources`, with both the current string fields (`resourceCpuLimit`, …)
/// and the deprecated numeric ones older backends read, as the kfp SDK writes them.
fn resources(step: &str, s: &super::config::StepSettings) -> Result<Map<String, Value>> {
    let mut r = Map::new();
    // Each quantity goes in twice: as written (current field) and as a number (old field).
    let quantities: [Quantity<'_>; 4] = [
        (
            "cpu_limit",
            &s.cpu_limit,
            "cpuLimit",
            "resourceCpuLimit",
            cpu_cores,
            "CPU",
        ),
        (
            "cpu_request",
            &s.cpu_request,
            "cpuRequest",
            "resourceCpuRequest",
            cpu_cores,
            "CPU",
        ),
        (
            "memory_limit",
            &s.memory_limit,
            "memoryLimit",
            "resourceMemoryLimit",
            memory_gb,
            "memory",
        ),
        (
            "memory_request",
            &s.memory_request,
            "memoryRequest",
            "resourceMemoryRequest",
            memory_gb,
            "memory",
        ),
    ];
    for (field, value, old, new, parse, kind) in quantities {
        if let Some(q) = value {
            let number = parse(q).ok_or_else(|| {
                Error::Invalid(format!(
                    "`steps.{step}.{field}`: `{q}` is not a {kind} quantity"
                ))
            })?;
            r.insert(old.into(), json!(number));
            r.insert(new.into(), json!(q));
        }
    }
    if let Some(a) = &s.accelerator {
        if a.count == 0 || a.kind.is_empty() {
            return Err(Error::Invalid(format!(
                "`steps.{step}.accelerator` needs a type and a count of at least 1"
            )));
        }
        r.insert(
            "accelerator".into(),
            json!({
                "count": a.count.to_string(),
                "resourceCount": a.count.to_string(),
                "resourceType": a.kind,
                "type": a.kind,
            }),
        );
    }
    Ok(r)
}

/// A Kubernetes CPU quantity (`2`, `0.5`, `500m`) in cores.
fn cpu_cores(q: &str) -> Option<f64> {
    let v = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => q.parse::<f64>().ok()?,
    };
    (v.is_finite() && v > 0.0).then_some(v)
}

/// A Kubernetes memory quantity in (decimal) gigabytes, as the kfp SDK converts it.
fn memory_gb(q: &str) -> Option<f64> {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("K", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = UNITS
        .iter()
        .find_map(|(u, f)| q.strip_suffix(u).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let v = number.parse::<f64>().ok()? * factor / 1e9;
    (v.is_finite() && v > 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::dag;

    #[test]
    fn quantities_convert_like_the_sdk() {
        // kfp 2.17: set_memory_limit('4Gi') → memoryLimit 4.294967296, '8G' → 8.0.
        assert_eq!(memory_gb("4Gi"), Some(4.294967296));
        assert_eq!(memory_gb("8G"), Some(8.0));
        assert_eq!(memory_gb("512Mi"), Some(0.536870912));
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("two"), None);
        assert_eq!(memory_gb("-1Gi"), None);
    }

    #[test]
    fn default_pipeline_has_branches_loop_and_gate() {
        // A cluster needs a shared registry (`cluster::check_registry`).
        let sets = ["registry.uri=https://mlflow.example.com".to_owned()];
        let config = PipelineConfig::load(None, &sets).unwrap();
        let yaml = emit(&dag::build(&config), &config, "bciops:test").unwrap();
        for needle in [
            "inputs.parameter_values['pipelinechannel--mode'] == 'tune'",
            "inputs.parameter_values['pipelinechannel--mode'] == 'train'",
            "inputs.parameter_values['pipelinechannel--compare-register-decision'] == 'promoted'",
            "{{$.outputs.parameters[''decision''].output_file}}",
            "resourceMemoryLimit: 8Gi",
            // The shards unrolled with a literal `--shard`, merged from one input each, and
            // the checkout's sweep inline (issue 19: the backend resolves none of a list
            // placeholder, `Concat` or a path on the compiling machine).
            "- --shard\n        - 3/3",
            "'{{$.inputs.artifacts[''shards-3''].path}}'",
            "- --sweep-text\n        - '{{$.inputs.parameters[''sweep_yaml'']}}'",
        ] {
            assert!(yaml.contains(needle), "`{needle}` missing:\n{yaml}");
        }
        for absent in ["Concat", "isArtifactList", "parameterIterator", "sweep_uri"] {
            assert!(!yaml.contains(absent), "`{absent}` present:\n{yaml}");
        }
        // No node selector configured: no platform document.
        assert!(!yaml.contains("\n---\n"));
    }

    #[test]
    fn bad_quantity_is_an_error_naming_it() {
        let sets = [
            "steps.train.cpu_limit=lots".to_owned(),
            "registry.uri=s3://bucket/registry".to_owned(),
        ];
        let config = PipelineConfig::load(None, &sets).unwrap();
        let err = emit(&dag::build(&config), &config, "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`lots`") && err.contains("steps.train.cpu_limit"),
            "{err}"
        );
    }
}
