# MLflow tracking server + model registry (PyPI `mlflow`, pinned in scripts/requirements-mlflow.txt)
# on a free 127.0.0.1 port, SQLite backend and proxied artifacts under target/services/mlflow.
# Sourced by scripts/test.sh (which defines free_port, wait_http and stop_cmds).
# Exports BCIOPS_MLFLOW_URI (the server) and BCIOPS_MLFLOW_PYTHON (a Python with the mlflow
# client, for the tests' cross-checks).
scripts/setup-python.sh .venv-mlflow scripts/requirements-mlflow.txt
mlflow_dir="$PWD/target/services/mlflow"
rm -rf "$mlflow_dir"
mkdir -p "$mlflow_dir/artifacts"
mlflow_port=$(free_port)
# One worker (the machine has 2 cores); no job runner; telemetry off (set by test.sh too).
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
  setsid .venv-mlflow/bin/mlflow server --host 127.0.0.1 --port "$mlflow_port" --workers 1 \
  --backend-store-uri "sqlite:///$mlflow_dir/db.sqlite" \
  --artifacts-destination "$mlflow_dir/artifacts" \
  >"$mlflow_dir/server.log" 2>&1 &
mlflow_pid=$!
# setsid makes the server its own process group: stopping it stops its gunicorn/uvicorn children.
stop_cmds+=("kill -- -$mlflow_pid 2>/dev/null; wait $mlflow_pid 2>/dev/null")
if ! wait_http "http://127.0.0.1:$mlflow_port/health" 120; then
  tail -n 30 "$mlflow_dir/server.log" >&2
  return 1
fi
export BCIOPS_MLFLOW_URI="http://127.0.0.1:$mlflow_port"
export BCIOPS_MLFLOW_PYTHON="$PWD/.venv-mlflow/bin/python"
echo "MLflow $("$BCIOPS_MLFLOW_PYTHON" -c 'import mlflow; print(mlflow.__version__)') at $BCIOPS_MLFLOW_URI" >&2
