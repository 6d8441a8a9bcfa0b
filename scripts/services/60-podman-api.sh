# Sourced by scripts/test.sh, after 40-validators.sh (.venv-kfp) and 50-image.sh (podman, the
# image).
# podman's Docker-compatible API on a unix socket under target/services/, for the Kubeflow
# Pipelines SDK's local executor (kfp.local's DockerRunner, through the `docker` Python client
# in .venv-kfp) in tests/pipeline_exec.rs. Exports BCIOPS_DOCKER_HOST (a DOCKER_HOST value).
podman_api_dir="$PWD/target/services/podman-api"
rm -rf "$podman_api_dir" && mkdir -p "$podman_api_dir"
podman_api_sock="$podman_api_dir/api.sock"
# --time=0: the service does not exit when idle. setsid: stopped as one process group.
setsid podman system service --time=0 "unix://$podman_api_sock" >"$podman_api_dir/service.log" 2>&1 &
podman_api_pid=$!
stop_cmds+=("kill -- -$podman_api_pid 2>/dev/null; wait $podman_api_pid 2>/dev/null")
# Ready when the client the tests use (docker, in .venv-kfp from 40-validators.sh) gets an
# answer to /_ping.
podman_api_ready=
for ((i = 0; i < 150; i++)); do
  if "$BCIOPS_KFP_PYTHON" -c 'import docker, sys; docker.DockerClient(base_url=sys.argv[1], timeout=1).ping()' \
    "unix://$podman_api_sock" 2>/dev/null; then
    podman_api_ready=1
    break
  fi
  sleep 0.2
done
if [ -z "$podman_api_ready" ]; then
  echo "error: podman's API did not answer on $podman_api_sock within 30s" >&2
  tail -n 20 "$podman_api_dir/service.log" >&2
  return 1
fi
export BCIOPS_DOCKER_HOST="unix://$podman_api_sock"
