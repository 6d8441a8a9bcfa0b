#!/usr/bin/env bash
# Interleaved A/B of two bciops builds serving the same model: wrk with the original's JSON
# payload (one 22 x 750 trial, POST /classify; ENDPOINT=v2: the same trial as a V2 JSON request,
# POST /v2/models/model/infer) at 1 and 8 connections, ROUNDS rounds, the two
# servers alternating so that the machine's drift hits both alike. For "is this change any
# slower?"; scripts/bench/serve.sh compares against BentoML.
#
# Usage: scripts/bench/serve_ab.sh OLD_BINARY NEW_BINARY   (ROUNDS=3, DURATION=8s, ENDPOINT=classify)
# Needs wrk (Debian) and the test venv's NumPy (scripts/test.sh creates .venv-test).
set -euo pipefail
cd "$(dirname "$0")/../.."
old=$1 new=$2 rounds=${ROUNDS:-3} duration=${DURATION:-8s} endpoint=${ENDPOINT:-classify}
work=${BENCH_DIR:-target/bench-serve-ab}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export BCIOPS_NO_TRACK=1
if [ ! -f "$work/.data-done" ]; then
  rm -rf "$work/raw" "$work/epochs" "$work/model"
  "$old" synth --out "$work/raw" --subjects 1 --quiet
  "$old" preprocess --input "$work/raw" --out "$work/epochs" --sessions T --quiet
  "$old" train --data "$work/epochs" --out "$work/model" --eval cv:2 --no-report --quiet >/dev/null
  .venv-test/bin/python -c "import json, numpy as np, sys; json.dump(np.load(sys.argv[1] + '/X.npy')[:1].tolist(), open(sys.argv[2], 'w'))" \
    "$work/epochs" "$work/trial.json"
  touch "$work/.data-done"
fi
body=$work/trial.json path=/classify
if [ "$endpoint" = v2 ]; then
  body=$work/trial-v2.json path=/v2/models/model/infer
  .venv-test/bin/python -c "import json, numpy as np, sys; x = np.load(sys.argv[1] + '/X.npy')[:1]; json.dump({'inputs': [{'name': 'eeg', 'shape': list(x.shape), 'datatype': 'FP32', 'data': x.ravel().tolist()}]}, open(sys.argv[2], 'w'))" \
    "$work/epochs" "$body"
fi
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$body", "rb")
wrk.body = f:read("*a")
f:close()
LUA
port() { .venv-test/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for round in $(seq "$rounds"); do
  for name in old new; do
    bin=$old; [ "$name" = new ] && bin=$new
    p=$(port)
    "$bin" serve --model "$work/model" --addr "127.0.0.1:$p" >/dev/null 2>"$work/serve-$name.log" &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$p/readyz" >/dev/null && break; sleep 0.1; done
    wrk -t1 -c4 -d2s -s "$work/post.lua" "http://127.0.0.1:$p$path" >/dev/null
    sleep 2
    for c in 1 8; do
      out=$(wrk -t"$(( c < 2 ? 1 : 2 ))" -c"$c" -d"$duration" --latency -s "$work/post.lua" "http://127.0.0.1:$p$path")
      echo "round $round $name c=$c $(echo "$out" | awk '/Requests\/sec/ {r=$2} $1=="99%" {p=$2} END {print "req/s " r " p99 " p}')"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
