"""Validates a pipeline YAML written by `bciops pipeline compile` with the real kfp SDK.

Usage: python scripts/validate_kfp.py pipeline.yaml

- strict protobuf parse (unknown fields are errors) of the first document into
  PipelineSpec, of its deploymentSpec into PipelineDeploymentConfig, and of the platform
  document (if any) into PlatformSpec and each executor into KubernetesExecutorConfig;
- kfp.components.load_component_from_file, and the SDK compiler accepting the result as a
  sub-pipeline;
- every componentRef, executorLabel, dependentTask, producerTask, producerSubtask,
  componentInput* and placeholder names something that exists.
Prints one JSON line with what it saw; exits 1 with the problems listed otherwise.
"""

import json
import os
import re
import sys
import tempfile

import yaml
from google.protobuf import json_format
from kfp import compiler, dsl
from kfp import components as kfp_components
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

path = sys.argv[1]
with open(path) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
problems = []

spec = pipeline_spec_pb2.PipelineSpec()
json_format.ParseDict(docs[0], spec, ignore_unknown_fields=False)
deployment = pipeline_spec_pb2.PipelineDeploymentConfig()
json_format.ParseDict(docs[0]["deploymentSpec"], deployment, ignore_unknown_fields=False)
platform_executors = {}
if len(docs) > 1:
    platform = pipeline_spec_pb2.PlatformSpec()
    json_format.ParseDict(docs[1], platform, ignore_unknown_fields=False)
    for name, cfg in docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
        k8s = kubernetes_executor_config_pb2.KubernetesExecutorConfig()
        json_format.ParseDict(cfg, k8s, ignore_unknown_fields=False)
        platform_executors[name] = cfg
        if name not in deployment.executors:
            problems.append(f"platform spec names unknown executor {name}")

loaded = kfp_components.load_component_from_file(path)


# The SDK's compiler must also accept it as a sub-pipeline of another pipeline.
@dsl.pipeline(name="wrapper")
def wrapper():
    loaded()


with tempfile.TemporaryDirectory() as tmp:
    compiler.Compiler().compile(wrapper, os.path.join(tmp, "wrapper.yaml"))

components = spec.components
executors = deployment.executors


def input_names(defs):
    return set(defs.parameters.keys()), set(defs.artifacts.keys())


def check_dag(where, dag, defs):
    params, artifacts = input_names(defs)
    tasks = dag.tasks
    for name, task in tasks.items():
        at = f"{where}/{name}"
        ref = task.component_ref.name
        if ref not in components:
            problems.append(f"{at}: componentRef {ref} does not exist")
            continue
        callee = components[ref].input_definitions
        callee_params, callee_artifacts = input_names(callee)
        for dep in task.dependent_tasks:
            if dep not in tasks:
                problems.append(f"{at}: dependentTask {dep} does not exist")
        for key, spec_ in task.inputs.parameters.items():
            if key not in callee_params:
                problems.append(f"{at}: parameter {key} is not an input of {ref}")
            kind = spec_.WhichOneof("kind")
            if kind == "component_input_parameter" and spec_.component_input_parameter not in params:
                problems.append(f"{at}: componentInputParameter {spec_.component_input_parameter} not in {where}'s inputs")
            if kind == "task_output_parameter":
                producer = spec_.task_output_parameter.producer_task
                if producer not in tasks:
                    problems.append(f"{at}: producerTask {producer} does not exist")
                elif spec_.task_output_parameter.output_parameter_key not in components[tasks[producer].component_ref.name].output_definitions.parameters:
                    problems.append(f"{at}: {producer} has no output parameter {spec_.task_output_parameter.output_parameter_key}")
        for key, spec_ in task.inputs.artifacts.items():
            if key not in callee_artifacts:
                problems.append(f"{at}: artifact {key} is not an input of {ref}")
            kind = spec_.WhichOneof("kind")
            if kind == "component_input_artifact" and spec_.component_input_artifact not in artifacts:
                problems.append(f"{at}: componentInputArtifact {spec_.component_input_artifact} not in {where}'s inputs")
            if kind == "task_output_artifact":
                producer = spec_.task_output_artifact.producer_task
                if producer not in tasks:
                    problems.append(f"{at}: producerTask {producer} does not exist")
                elif spec_.task_output_artifact.output_artifact_key not in components[tasks[producer].component_ref.name].output_definitions.artifacts:
                    problems.append(f"{at}: {producer} has no output artifact {spec_.task_output_artifact.output_artifact_key}")
                elif producer not in task.dependent_tasks:
                    problems.append(f"{at}: reads {producer} but does not depend on it")
        for required in callee_params - set(task.inputs.parameters.keys()):
            if not callee.parameters[required].is_optional and not (
                task.HasField("parameter_iterator") and task.parameter_iterator.item_input == required
            ):
                problems.append(f"{at}: required parameter {required} of {ref} is not bound")
        for required in callee_artifacts - set(task.inputs.artifacts.keys()):
            problems.append(f"{at}: artifact {required} of {ref} is not bound")
        condition = task.trigger_policy.condition
        for used in re.findall(r"parameter_values\['([^']+)'\]", condition):
            if used not in task.inputs.parameters:
                problems.append(f"{at}: condition uses {used}, which the task does not pass")
    for key, out in dag.outputs.artifacts.items():
        for sel in out.artifact_selectors:
            if sel.producer_subtask not in tasks:
                problems.append(f"{where}: output {key} selects unknown subtask {sel.producer_subtask}")


check_dag("root", spec.root.dag, spec.root.input_definitions)
placeholder = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\]")
for name, comp in components.items():
    if comp.WhichOneof("implementation") == "dag":
        check_dag(name, comp.dag, comp.input_definitions)
        continue
    label = comp.executor_label
    if label not in executors:
        problems.append(f"{name}: executorLabel {label} does not exist")
        continue
    executor = executors[label]
    if executor.WhichOneof("spec") != "container":
        continue
    text = json.dumps(list(executor.container.args))
    for direction, kind, key in placeholder.findall(text):
        defs = comp.input_definitions if direction == "inputs" else comp.output_definitions
        if key not in getattr(defs, kind):
            problems.append(f"{label}: placeholder {direction}.{kind}['{key}'] names nothing in {name}")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(json.dumps({
    "components": len(components),
    "executors": len(executors),
    "root_tasks": len(spec.root.dag.tasks),
    "parameters": len(spec.root.input_definitions.parameters),
    "platform_executors": sorted(platform_executors),
    "component_name": loaded.name,
}))
