#!/usr/bin/env bash
# Runs every test bciops has, after installing and starting what the tests need. CI runs
# exactly this (.ci/run), so a green run here is a green run there.
#
# What it installs: a Python venv (.venv-test) with the pinned peers in
# scripts/requirements-test.txt (NumPy, scipy, MNE-Python, scikit-learn), which tests use to
# check that other tools read what bciops writes; then every script in scripts/services/ is
# sourced: each installs one real component (MLflow, an S3 server, Prometheus, …), starts it
# on a free 127.0.0.1 port, exports where it is, and registers how to stop it.
set -euo pipefail
cd "$(dirname "$0")/.."

export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true NO_PROGRESS=1
scripts/setup-python.sh .venv-test scripts/requirements-test.txt
export BCIOPS_PYTHON="$PWD/.venv-test/bin/python"

# The reference fixtures live in the shared folder beside the checkout.
if [ -z "${BCIOPS_FIXTURES:-}" ]; then
  for candidate in ../shared/fixtures /work/shared/fixtures; do
    if [ -d "$candidate" ]; then export BCIOPS_FIXTURES="$(cd "$candidate" && pwd)"; break; fi
  done
fi

# Services: stopped on any exit, in reverse order of start.
stop_cmds=()
stop_services() {
  local i
  for ((i = ${#stop_cmds[@]} - 1; i >= 0; i--)); do eval "${stop_cmds[$i]}" || true; done
}
trap stop_services EXIT
# A free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
  "$BCIOPS_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Polls a URL until it answers 200, for at most $2 seconds.
wait_http() {
  local url=$1 seconds=${2:-60} i
  for ((i = 0; i < seconds * 5; i++)); do
    if "$BCIOPS_PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  echo "error: $url did not answer within ${seconds}s" >&2
  return 1
}
mkdir -p target/services
for service in scripts/services/*.sh; do
  [ -e "$service" ] || continue
  # shellcheck source=/dev/null
  source "$service"
done

cargo test "$@"
