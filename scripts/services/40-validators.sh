# Sourced by scripts/test.sh. Not a server: the offline validators for the orchestration files.
# - .venv-kfp (pinned in scripts/requirements-kfp.txt): the Kubeflow Pipelines SDK, which parses
#   `bciops pipeline compile` output strictly (tests/pipeline_compile.rs) and, with the docker
#   client, executes it on podman (tests/pipeline_exec.rs, 60-podman-api.sh),
#   kubernetes-validate for configs/k8s/ (tests/deploy_manifests.rs), and the kserve SDK for
#   configs/k8s/kserve/ (tests/kserve_manifests.rs);
# - promtool (Debian `prometheus`) for configs/monitoring/, installed only if missing (the
#   Prometheus service script may already have installed it and exported BCIOPS_PROMTOOL).
scripts/setup-python.sh .venv-kfp scripts/requirements-kfp.txt
export BCIOPS_KFP_PYTHON="$PWD/.venv-kfp/bin/python"
export BCIOPS_KUBERNETES_VALIDATE="$PWD/.venv-kfp/bin/kubernetes-validate"
if [ -z "${BCIOPS_PROMTOOL:-}" ] && ! command -v promtool >/dev/null; then
  echo "installing prometheus (for promtool) with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
export BCIOPS_PROMTOOL="${BCIOPS_PROMTOOL:-$(command -v promtool)}"
