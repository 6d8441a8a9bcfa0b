#!/usr/bin/env bash
# The original 640-combination grid (configs/sweep.yaml) with 5-fold CV, through `bciops tune`
# and through scikit-learn GridSearchCV over MNE CSP + SVC, on the same epochs and the same
# folds, in one run. Prints both times, the ratio, and both best scores.
# Usage: scripts/bench/tune.sh [SUBJECTS]   (default 1: one subject's T session; GridSearchCV
# refits CSP for every combination and fold, 3200 fits, so nine subjects take it hours)
set -euo pipefail
cd "$(dirname "$0")/../.."
subjects=${1:-1}
work=${BENCH_DIR:-target/bench-tune}
jobs=$(nproc)
mkdir -p "$work"
scripts/setup-python.sh .venv-bench scripts/bench/requirements.txt
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
if [ ! -f "$work/.done-$subjects" ]; then
  rm -rf "$work/raw" "$work/epochs"
  $bin synth --out "$work/raw" --subjects "$subjects" --quiet
  $bin preprocess --input "$work/raw" --out "$work/epochs" --sessions T --quiet
  touch "$work/.done-$subjects"
fi
n=$(.venv-bench/bin/python -c "import numpy as np; print(np.load('$work/epochs/y.npy').shape[0])")
# The folds tune uses (seed 42, cv:5), written by train for the peer to reuse.
$bin train --data "$work/epochs" --out "$work/folds-model" --eval cv:5 --seed 42 --no-report --quiet --no-track

start=$(date +%s.%N)
$bin tune --data "$work/epochs" --sweep configs/sweep.yaml --out "$work/sweep" --eval cv:5 --seed 42 \
  --restart --quiet --json --top 0 --no-track > "$work/tune.json"
end=$(date +%s.%N)
rs_wall=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
MNE_LOGGING_LEVEL=ERROR .venv-bench/bin/python scripts/bench/tune_gridsearch.py "$work/epochs" "$work/folds-model/cv_predictions.csv" "$jobs" "$work/peer.json" > "$work/peer.log" 2>&1

.venv-bench/bin/python - "$rs_wall" "$work/peer.json" "$n" "$subjects" "$work/tune.json" <<'PY'
import json, os, sys
rs_wall = float(sys.argv[1])
peer = json.load(open(sys.argv[2]))
n, subjects = sys.argv[3], sys.argv[4]
rs = json.load(open(sys.argv[5]))
best = rs["best"]
print(f"data: {n} trials x 22 x 750 (synthetic subject(s) {subjects}, session T, left/right), 5-fold CV, same folds")
print(f"grid: configs/sweep.yaml, {rs['trials']} combinations; machine: {os.cpu_count()} cores, both use all")
print(f"{'':30} {'seconds':>9} {'best accuracy':>14} {'failed':>7}")
print(f"{'bciops tune':30} {rs_wall:9.2f} {best['value']*100:13.2f}% {rs['failed']:7d}")
print(f"{'GridSearchCV (MNE CSP + SVC)':30} {peer['seconds']:9.2f} {peer['best_accuracy']*100:13.2f}% {peer['failed']:7d}")
print(f"bciops best: {best['values']}")
print(f"sklearn best: {peer['best_params']}")
print(f"best scores differ by {abs(best['value'] - peer['best_accuracy'])*100:.2f} points")
print(f"speed-up: {peer['seconds'] / rs_wall:.1f}x")
PY
