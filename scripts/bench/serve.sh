#!/usr/bin/env bash
# Serving, bciops vs BentoML, side by side on this machine: the same pipeline (band-pass 8-30 Hz,
# 4 log-variance CSP components, RBF SVM) trained on the same epochs, the same payload (the
# original's: one 22 x 750 trial as JSON to POST /classify), the same load generator (Debian
# `wrk`) at 1, 8 and 32 connections; then a closed-loop client for true per-request latency
# (p50/p99/p99.9/max), the cost split (JSON parse vs inference, from bciops' Server-Timing
# header), process start -> ready, and a soak with resident memory after warm-up and at the end.
#
# Usage: scripts/bench/serve.sh            (DURATION=10s per wrk run, SOAK=180 seconds)
#        PEER=0 scripts/bench/serve.sh     bciops alone (no BentoML venv)
#        BCIOPS_BIN=path/to/bciops ...      use a built release binary instead of building
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${BENCH_DIR:-target/bench-serve}
duration=${DURATION:-10s}
soak=${SOAK:-180}
peer=${PEER:-1}
mkdir -p "$work"
work=$(cd "$work" && pwd)
# BentoML runs offline: no usage tracking, its home inside the bench directory.
export BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=true BENTOML_HOME="$work/bentoml-home"
export MNE_LOGGING_LEVEL=ERROR

if ! command -v wrk >/dev/null; then
  echo "installing wrk with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
scripts/setup-python.sh .venv-bench-serve scripts/bench/requirements-serve.txt
py="$PWD/.venv-bench-serve/bin/python"
bin="$work/bciops"
if [ -n "${BCIOPS_BIN:-}" ]; then
  cp "$BCIOPS_BIN" "$bin"      # an already built release binary
else
  cargo build --release --quiet
  cp "${CARGO_TARGET_DIR:-target}/release/bciops" "$bin"
fi

if [ ! -f "$work/.data-done" ]; then
  rm -rf "$work/raw" "$work/epochs" "$work/model"
  "$bin" synth --out "$work/raw" --subjects 1 --quiet
  "$bin" preprocess --input "$work/raw" --out "$work/epochs" --sessions T --quiet
  "$bin" train --data "$work/epochs" --out "$work/model" --eval cv:2 --no-report --quiet >/dev/null
  "$py" scripts/bench/serve_peer.py fit "$work/epochs" "$work/pipeline.pkl"
  # The payload: one trial, N x 22 x 750 with N = 1, as JSON.
  "$py" -c "import json, numpy as np, sys; x = np.load(sys.argv[1] + '/X.npy')[:1]; json.dump(x.tolist(), open(sys.argv[2], 'w'))" \
    "$work/epochs" "$work/trial.json"
  touch "$work/.data-done"
fi
# The same trial as the binary body (little-endian float32, 66 KB), for the throughput path.
if [ ! -f "$work/trial.f32" ]; then
  "$py" -c "import numpy as np, sys; np.load(sys.argv[1] + '/X.npy')[:1].astype('<f4').tofile(sys.argv[2])" \
    "$work/epochs" "$work/trial.f32"
fi
# A wrk script that POSTs a file's bytes with a content type: post_script OUT TYPE FILE.
post_script() {
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "$2"
local f = io.open("$3", "rb")
wrk.body = f:read("*a")
f:close()
LUA
}
post_script "$work/post-f32.lua" application/octet-stream "$work/trial.f32"
post_script "$work/post.lua" application/json "$work/trial.json"

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# Sum of the resident memory of a process and its children (BentoML forks workers).
tree_rss_mib() {
  local pids
  pids=$(ps -o pid= --ppid "$1" 2>/dev/null | tr '\n' ' ')
  ps -o rss= -p "$1" $pids 2>/dev/null | awk '{ s += $1 } END { printf "%.1f", s / 1024 }'
}
pids=()
cleanup() { local p; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# wrk at one concurrency: prints "rps p50_ms p99_ms".
wrk_run() {
  local url=$1 c=$2 t=$(( $2 < 2 ? 1 : 2 )) script=${3:-$work/post.lua}
  wrk -t"$t" -c"$c" -d"$duration" --latency -s "$script" "$url" > "$work/wrk.txt"
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { bad = $NF }
    END { if (bad) { print "non-2xx responses: " bad > "/dev/stderr"; exit 1 } printf "%.1f %.3f %.3f\n", rps, p50, p99 }
  ' "$work/wrk.txt"
}

# Starts a server (the rest of the arguments), waits for READY_URL; sets $server_pid and
# $ready_s (process start -> first 200, measured by the client that starts it).
start_server() {
  local ready_url=$1; shift
  local out
  out=$("$py" scripts/bench/serve_client.py ready "$ready_url" 120 "$work/server.log" -- "$@")
  server_pid=${out% *}
  ready_s=${out#* }
  pids+=("$server_pid")
}
# Stops a server started by start_server (not a child of this shell) and waits for it.
stop_server() {
  kill -TERM "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}

measure() {
  local name=$1 url=$2
  local c line
  echo "$name: warming up" >&2
  wrk -t1 -c4 -d2s -s "$work/post.lua" "$url" > /dev/null
  # Both servers settle for 2 s: bciops predicts a lone request where it was read only after
  # a second in which no two requests overlapped (`serve::work::Scheduler::blocking`).
  sleep 2
  for c in 1 8 32; do
    line=$(wrk_run "$url" "$c")
    echo "$name c=$c $line"
    echo "  $name wrk c=$c: $line (rps p50_ms p99_ms)" >&2
  done > "$work/$name.wrk"
  "$py" scripts/bench/serve_client.py latency "$url" "$work/trial.json" "${CLOSED_N:-3000}" 1 > "$work/$name.closed"
  echo "  $name closed loop: $(cat "$work/$name.closed")" >&2
}

# bciops.
port=$(free_port)
start_server "http://127.0.0.1:$port/readyz" "$bin" serve --model "$work/model" --addr "127.0.0.1:$port" --quiet
bciops_pid=$server_pid
bciops_ready=$ready_s
bciops_self_ready=$(sed -n 's/.*ready \([0-9.]*\) ms after start.*/\1/p' "$work/server.log")
echo "bciops ready after ${bciops_ready} s (its own log: ${bciops_self_ready} ms)" >&2
measure bciops "http://127.0.0.1:$port/classify"
curl -s "http://127.0.0.1:$port/metrics" > "$work/bciops.metrics"
# bciops only: the binary body (BentoML's API takes JSON only).
for c in 1 8 32; do
  line=$(wrk_run "http://127.0.0.1:$port/classify" "$c" "$work/post-f32.lua")
  echo "bciops-f32 c=$c $line"
  echo "  bciops float32 body wrk c=$c: $line (rps p50_ms p99_ms)" >&2
done > "$work/bciops-f32.wrk"

# Soak: 8 connections for $soak seconds; RSS after a 10 s warm-up and at the end.
echo "soak: ${soak} s at 8 connections" >&2
wrk -t2 -c8 -d10s -s "$work/post.lua" "http://127.0.0.1:$port/classify" > /dev/null
rss_warm=$(rss_mib "$bciops_pid")
wrk -t2 -c8 -d"${soak}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/classify" > "$work/soak.txt"
rss_end=$(rss_mib "$bciops_pid")
soak_reqs=$(awk '/requests in/ { print $1 }' "$work/soak.txt")
soak_max=$(awk '/Latency/ && !done { print $4; done = 1 }' "$work/soak.txt")
stop_server "$bciops_pid"

peer_ready=""
if [ "$peer" = 1 ]; then
  port=$(free_port)
  export BCI_PIPELINE="$work/pipeline.pkl"
  start_server "http://127.0.0.1:$port/readyz" \
    "$PWD/.venv-bench-serve/bin/bentoml" serve serve_peer:svc --working-dir scripts/bench \
    --host 127.0.0.1 --port "$port"
  peer_pid=$server_pid
  peer_ready=$ready_s
  echo "BentoML ready after ${peer_ready} s" >&2
  peer_rss_start=$(tree_rss_mib "$peer_pid")
  measure bentoml "http://127.0.0.1:$port/classify"
  peer_rss_end=$(tree_rss_mib "$peer_pid")
  stop_server "$peer_pid"
fi

"$py" - "$work" "$bciops_ready" "$bciops_self_ready" "$peer_ready" "$rss_warm" "$rss_end" \
  "$soak" "$soak_reqs" "$soak_max" "${peer_rss_start:-}" "${peer_rss_end:-}" <<'PY'
import json, os, sys
work, b_ready, b_self, p_ready, rss_warm, rss_end, soak, soak_reqs, soak_max, p_rss0, p_rss1 = sys.argv[1:]
def wrk(name):
    path = f"{work}/{name}.wrk"
    if not os.path.exists(path):
        return None
    out = {}
    for line in open(path):
        _, c, rps, p50, p99 = line.split()
        out[int(c[2:])] = (float(rps), float(p50), float(p99))
    return out
def metric_mean(name):
    s = c = 0.0
    for line in open(f"{work}/bciops.metrics"):
        if line.startswith(name + "_sum"):
            s = float(line.split()[-1])
        if line.startswith(name + "_count"):
            c = float(line.split()[-1])
    return s / c * 1e6 if c else float("nan")
b, p = wrk("bciops"), wrk("bentoml")
print(f"machine: {os.cpu_count()} cores (wrk shares them with the server); payload: one 22 x 750 trial, JSON, {os.path.getsize(work + '/trial.json')} bytes")
print(f"{'wrk':10} {'conns':>5} {'bciops req/s':>13} {'p50 ms':>8} {'p99 ms':>8}" + (f" {'BentoML req/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'x req/s':>8} {'p99 /':>7}" if p else ""))
for c in sorted(b):
    rb = b[c]
    line = f"{'':10} {c:5} {rb[0]:13.0f} {rb[1]:8.3f} {rb[2]:8.3f}"
    if p:
        rp = p[c]
        line += f" {rp[0]:14.0f} {rp[1]:8.2f} {rp[2]:8.2f} {rb[0] / rp[0]:8.1f} {rp[2] / rb[2]:7.1f}"
    print(line)
f32 = wrk("bciops-f32")
if f32:
    print(f"bciops, the same trial as a float32 body ({os.path.getsize(work + '/trial.f32')} bytes):")
    for c in sorted(f32):
        r = f32[c]
        line = f"{'':10} {c:5} {r[0]:13.0f} {r[1]:8.3f} {r[2]:8.3f}"
        if p:
            line += f"   vs BentoML's JSON: {r[0] / p[c][0]:.1f}x req/s, p99 {p[c][2] / r[2]:.1f}x lower"
        print(line)
for name in ["bciops", "bentoml"]:
    path = f"{work}/{name}.closed"
    if os.path.exists(path):
        d = json.load(open(path))
        print(f"closed loop {name:8}: {d['n']} requests, {d['rps']:.0f} req/s, p50 {d['p50_ms']:.3f} ms, p99 {d['p99_ms']:.3f} ms, p99.9 {d['p999_ms']:.3f} ms, max {d['max_ms']:.3f} ms")
        if "parse_ms" in d:
            print(f"  cost split per request (Server-Timing): JSON parse {d['parse_ms'] * 1e3:.0f} us, inference {d['infer_ms'] * 1e3:.0f} us")
print(f"bciops /metrics means: parse {metric_mean('bciops_parse_duration_seconds'):.0f} us, inference {metric_mean('bciops_inference_duration_seconds'):.0f} us")
print(f"start -> ready: bciops {float(b_ready) * 1e3:.1f} ms (its own log: {b_self} ms)" + (f", BentoML {float(p_ready):.2f} s" if p_ready else ""))
print(f"soak {soak} s at 8 connections: {soak_reqs} requests, max latency {soak_max}; bciops RSS {rss_warm} MiB after warm-up, {rss_end} MiB at the end")
if p_rss0:
    print(f"BentoML RSS (server + workers): {p_rss0} MiB after start, {p_rss1} MiB after its runs")
PY
