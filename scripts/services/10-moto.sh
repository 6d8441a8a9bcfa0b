# Sourced by scripts/test.sh: an S3-compatible server (moto) for the object-storage tests.
# Exports BCIOPS_S3_ENDPOINT (http://127.0.0.1:PORT) and BCIOPS_S3_PYTHON (a Python with boto3,
# which the tests use to create buckets); the tests point bciops at it with AWS_ENDPOINT_URL and
# AWS_ALLOW_HTTP=true.
scripts/setup-python.sh .venv-moto scripts/requirements-moto.txt
moto_port=$(free_port)
# moto keeps everything in memory; its log goes beside the other services' logs.
.venv-moto/bin/moto_server -H 127.0.0.1 -p "$moto_port" > target/services/moto.log 2>&1 &
moto_pid=$!
stop_cmds+=("kill $moto_pid 2>/dev/null; wait $moto_pid 2>/dev/null")
wait_http "http://127.0.0.1:$moto_port/moto-api/" 60
export BCIOPS_S3_ENDPOINT="http://127.0.0.1:$moto_port"
export BCIOPS_S3_PYTHON="$PWD/.venv-moto/bin/python"
