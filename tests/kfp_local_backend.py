"""Runs a compiled Kubeflow Pipelines v2 IR with the kfp SDK's own local executor (kfp.local,
DockerRunner) where kfp.local behaves as the KFP v2 backend does. tests/pipeline_exec.rs
uses it to execute what `bciops pipeline compile` writes.

The IR is run exactly as written; only kfp.local is patched where it departs from the
open-source KFP v2 backend (github.com/kubeflow/pipelines, backend/src/v2) that runs the same IR on
a cluster. Each gap was reproduced with pipelines written with the kfp SDK itself (kfp 2.17.3,
podman 4.3.1), not with bciops:

1. ENTRYPOINT. A cluster runs the IR's `command` in place of the image's ENTRYPOINT (a
   Kubernetes container's `command` replaces it); kfp.local appends the command to the
   ENTRYPOINT. Filled with the runner's own option, `DockerRunner(entrypoint=[''])`.
2. Exit codes. The backend's launcher fails the task when the program exits non-zero
   (launcher_v2.go, `execute`: the error of `command.Run()`). kfp.local's `run_docker_container`
   starts the container with `auto_remove=True`; podman removes it before `wait()` answers, so
   kfp.local takes the lost exit code for 0 (a step that exits 2 "succeeds"), or podman answers
   the logs/inspect call with HTTP 500 "no such container", which kfp.local does not catch.
   Filled by `run_docker_container` below: no auto-remove; logs, exit code, then removal.
3. Output artifacts. The launcher publishes every output artifact the ExecutorInput declares,
   whether or not the program wrote executor_output.json (launcher_v2.go,
   `uploadOutputArtifacts`, which ranges over `executorInput.GetOutputs().GetArtifacts()`).
   kfp.local publishes only those listed in executor_output.json, which only the SDK's Python
   components write, so a container step's artifacts never reach the next step. Filled by
   `get_outputs_for_task` below.
4. Conditions. The driver resolves the task's inputs first and evaluates
   `triggerPolicy.condition` on them (driver container.go / dag.go: `resolveInputs`, then
   `expr.Condition(executorInput, condition)`). kfp.local instead guesses what a
   `pipelinechannel--…` name refers to in the enclosing scope, does not find a task's output
   parameter there, and takes the condition as false. Filled by `evaluate_condition` below:
   kfp.local's own evaluator, given the task's resolved inputs.

And what a cluster gives a pod: steps run as the image's user (uid 65532), so the pipeline root
is made writable by it, as KFP's emptyDir volumes are (mode 0777). `ulimits` and the host
network are this sandbox's podman settings (tests/image.rs uses the same).

Usage: kfp_local_backend.py IR_YAML PIPELINE_ROOT OUT_JSON [ARGUMENTS_JSON]
(DOCKER_HOST names the Docker API, e.g. podman's socket). OUT_JSON gets, for every task that
ran, its outputs: an artifact's local path or a parameter's value. Exit 1 if the pipeline
failed.
"""

import json
import os
import sys

import docker
from kfp import components, local
from kfp.local import docker_task_handler, executor_output_utils, io
from kfp.local.orchestrator import enhanced_dag_orchestrator, task_executor
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils


# Gap 2: the exit code of every container, as the launcher reports it.
def run_docker_container(client, image, command, volumes, **container_run_args):
    image = docker_task_handler.add_latest_tag_if_not_present(image=image)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        raise SystemExit(f"image {image!r} is not in the container store") from None
    # Created, then started: a container that fails to start is removed too.
    container = client.containers.create(
        image=image, command=command, volumes=volumes, **container_run_args
    )
    try:
        container.start()
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return container.wait()["StatusCode"]
    finally:
        container.remove(force=True)


# Gap 3: every declared output artifact is published.
_outputs_from_executor_output = executor_output_utils.get_outputs_for_task


def get_outputs_for_task(executor_input, component_spec):
    outputs = _outputs_from_executor_output(executor_input, component_spec)
    for name, artifacts in executor_input.outputs.artifacts.items():
        if name not in outputs and artifacts.artifacts:
            outputs[name] = executor_output_utils.artifact_list_to_dsl_artifact(
                artifacts,
                is_artifact_list=component_spec.output_definitions.artifacts[name].is_artifact_list,
            )
    return outputs


# Gap 4: a condition sees the inputs of the task it guards. kfp.local passes the evaluator only
# the condition's text, so the tasks' input specs are looked up by it.
_CONDITION_INPUTS = {}
_evaluate_in_scope = enhanced_dag_orchestrator.ConditionEvaluator.evaluate_condition


def collect_conditions(pipeline_spec):
    dags = [pipeline_spec.root.dag] + [
        c.dag for c in pipeline_spec.components.values() if c.WhichOneof("implementation") == "dag"
    ]
    for dag in dags:
        for name, task in dag.tasks.items():
            condition = task.trigger_policy.condition
            if not condition:
                continue
            if condition in _CONDITION_INPUTS and _CONDITION_INPUTS[condition] != task.inputs:
                raise SystemExit(f"two tasks share the condition {condition!r} with other inputs")
            _CONDITION_INPUTS[condition] = task.inputs


def evaluate_condition(condition, io_store):
    inputs = _CONDITION_INPUTS.get(condition)
    if inputs is None:
        return _evaluate_in_scope(condition, io_store)
    scope = io.IOStore()
    for name, value in OrchestratorUtils.make_task_arguments(inputs, io_store).items():
        scope.put_parent_input(name, value)
    return _evaluate_in_scope(condition, scope)


# What ran: task name -> outputs (for the caller's checks; not a gap).
_RAN = {}
_execute_single_task = task_executor.execute_single_task


def execute_single_task(task_name, **kwargs):
    outputs, status = _execute_single_task(task_name=task_name, **kwargs)
    _RAN[task_name] = {
        "status": status.name,
        "outputs": {k: getattr(v, "path", v) for k, v in outputs.items()},
    }
    return outputs, status


def main():
    ir, root, out = sys.argv[1:4]
    arguments = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    docker_task_handler.run_docker_container = run_docker_container
    executor_output_utils.get_outputs_for_task = get_outputs_for_task
    enhanced_dag_orchestrator.ConditionEvaluator.evaluate_condition = staticmethod(
        evaluate_condition
    )
    task_executor.execute_single_task = execute_single_task

    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o777)
    limits = [
        docker.types.Ulimit(name="nofile", soft=20000, hard=20000),
        docker.types.Ulimit(name="nproc", soft=32768, hard=32768),
    ]
    runner = local.DockerRunner(entrypoint=[""], ulimits=limits, network_mode="host")
    local.init(runner=runner, pipeline_root=root, raise_on_error=False, enable_caching=True)
    pipeline = components.load_component_from_file(ir)
    collect_conditions(pipeline.pipeline_spec)
    pipeline(**arguments)
    failed = [name for name, task in _RAN.items() if task["status"] != "SUCCESS"]
    with open(out, "w") as f:
        json.dump({"tasks": _RAN, "failed": failed}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
