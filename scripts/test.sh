#!/usr/bin/env bash
# Runs every test bciops has, after installing what the tests need. CI runs exactly this
# (.ci/run), so a green run here is a green run there.
#
# What it installs: a Python venv (.venv-test) with the pinned peers in
# scripts/requirements-test.txt (NumPy, scipy, MNE-Python, scikit-learn), which tests use to
# check that other tools read what bciops writes.
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

cargo test "$@"
