"""Validates KServe manifests (configs/k8s/kserve/) offline, strictly, against the models of
KServe's own Python SDK (`kserve`, generated from KServe's CRD OpenAPI) and the Kubernetes
client's models they embed (containers, probes, volumes…).

Usage: python scripts/validate_kserve.py FILE.yaml…

Each document of kind ServingRuntime, ClusterServingRuntime or InferenceService must have
KServe's apiVersion; every field must be one the model declares (an unknown field is an
error, as `kubectl --validate=strict` would make it), every value of the declared type, and
every object constructible by the SDK (which refuses a missing required field). Other kinds
(the S3 credentials' Secret and ServiceAccount) go to kubernetes-validate --strict.
Prints `passed FILE` per file; exits 1 with one line per problem otherwise.
"""

import sys

import kubernetes.client.models as k8s_models
import kubernetes_validate
import yaml
from kserve import models as kserve_models

KINDS = {
    "ServingRuntime": ("serving.kserve.io/v1alpha1", "V1alpha1ServingRuntime"),
    "ClusterServingRuntime": ("serving.kserve.io/v1alpha1", "V1alpha1ClusterServingRuntime"),
    "InferenceService": ("serving.kserve.io/v1beta1", "V1beta1InferenceService"),
}
KUBERNETES = "1.33.0"
PRIMITIVES = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "date": (str,),
    "datetime": (str,),
}


class Invalid(Exception):
    pass


def model_class(name):
    for module in (kserve_models, k8s_models):
        cls = getattr(module, name, None)
        if cls is not None:
            return cls
    raise Invalid(f"no model `{name}` in the kserve or kubernetes SDK")


def build(value, type_name, path):
    """`value` checked against `type_name` (an SDK type string) and built into SDK objects."""
    if type_name == "object":
        return value
    if type_name in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[type_name]) and not (
            type_name != "bool" and isinstance(value, bool)
        )
        if not ok:
            raise Invalid(f"{path}: `{value!r}` is not a {type_name}")
        return value
    if type_name.startswith("list["):
        if not isinstance(value, list):
            raise Invalid(f"{path}: expected a list, found `{value!r}`")
        inner = type_name[5:-1]
        return [build(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            raise Invalid(f"{path}: expected a map, found `{value!r}`")
        inner = type_name[5:-1].split(", ", 1)[1]
        return {k: build(v, inner, f"{path}.{k}") for k, v in value.items()}
    cls = model_class(type_name)
    if not isinstance(value, dict):
        raise Invalid(f"{path}: expected an object ({type_name}), found `{value!r}`")
    by_key = {key: attr for attr, key in cls.attribute_map.items()}
    kwargs = {}
    for key, v in value.items():
        attr = by_key.get(key)
        if attr is None:
            raise Invalid(f"{path}: unknown field `{key}` in {type_name}")
        kwargs[attr] = build(v, cls.openapi_types[attr], f"{path}.{key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise Invalid(f"{path}: {type_name}: {e}") from None


def check(doc, where):
    kind = doc.get("kind")
    if kind not in KINDS:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        return
    api_version, type_name = KINDS[kind]
    if doc.get("apiVersion") != api_version:
        raise Invalid(f"{where}: {kind} has apiVersion `{doc.get('apiVersion')}`, not `{api_version}`")
    build(doc, type_name, f"{where} {kind}")


def main(paths):
    problems = []
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        failed = False
        for i, doc in enumerate(docs):
            try:
                check(doc, f"{path}#{i}")
            except (
                Invalid,
                kubernetes_validate.ValidationError,
                kubernetes_validate.SchemaNotFoundError,
                kubernetes_validate.InvalidSchemaError,
            ) as e:
                if isinstance(e, Invalid):
                    problems.append(str(e))
                else:
                    # kubernetes-validate's own message, without the schema it prints after.
                    first = getattr(e, "message", str(e)).splitlines()[0]
                    problems.append(f"{path}#{i}: {first}")
                failed = True
        if not docs:
            problems.append(f"{path}: no documents")
        elif not failed:
            print(f"passed {path}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
