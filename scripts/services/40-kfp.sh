# Sourced by scripts/test.sh. Not a server: the offline validators for the orchestration files,
# in their own venv (.venv-kfp, pinned in scripts/requirements-kfp.txt): the Kubeflow Pipelines
# SDK (strict parse of `bciops pipeline compile` output, tests/pipeline_compile.rs) and
# kubernetes-validate (configs/k8s/, tests/deploy_manifests.rs).
scripts/setup-python.sh .venv-kfp scripts/requirements-kfp.txt
export BCIOPS_KFP_PYTHON="$PWD/.venv-kfp/bin/python"
export BCIOPS_KUBERNETES_VALIDATE="$PWD/.venv-kfp/bin/kubernetes-validate"
