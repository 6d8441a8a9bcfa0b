#!/usr/bin/env bash
# Cross-validated training of the model families, bciops against their Python peers (pyRiemann +
# scikit-learn, MNE + scikit-learn; scripts/bench/families_peer.py) on the same epochs and the
# same folds, in one run. Prints per family both accuracies, the share of trials whose
# predictions agree, bciops' `evaluation_seconds` and whole-process time, the peer's in-process
# CV time, and the ratios.
# Usage: scripts/bench/families.sh [SUBJECTS] [K] [FAMILIES]
#   defaults: 1-9, 5, "ts+lr mdm csp+lda fbcsp+svm csp+svm"
# The release build is the normal one (with LTO); cargo's own variables change it, e.g.
#   CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 scripts/bench/families.sh 1
# fbcsp+* run on the same recordings preprocessed at 2-45 Hz (the bank spans 4-40 Hz); the other
# families on the default 8-30 Hz epochs.
set -euo pipefail
cd "$(dirname "$0")/../.."
subjects=${1:-1-9}
k=${2:-5}
families=${3:-ts+lr mdm csp+lda fbcsp+svm csp+svm}
work=${BENCH_DIR:-target/bench-families}/$subjects
mkdir -p "$work"
scripts/setup-python.sh .venv-bench scripts/bench/requirements.txt
py=.venv-bench/bin/python
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
if [ ! -f "$work/.done" ]; then
  rm -rf "$work/raw" "$work/epochs" "$work/epochs-wide"
  $bin synth --out "$work/raw" --subjects "$subjects" --quiet
  $bin preprocess --input "$work/raw" --out "$work/epochs" --sessions T --quiet
  $bin preprocess --input "$work/raw" --out "$work/epochs-wide" --sessions T --band 2,45 --quiet
  touch "$work/.done"
fi

results="$work/results.jsonl"
: > "$results"
for family in $families; do
  case $family in fbcsp+*) data="$work/epochs-wide" ;; *) data="$work/epochs" ;; esac
  out="$work/model-$family"
  start=$(date +%s.%N)
  $bin train --data "$data" --out "$out" --force --pipeline "$family" --eval "cv:$k" \
    --no-report --quiet --json > "$out.metrics.json"
  end=$(date +%s.%N)
  peer=$($py scripts/bench/families_peer.py "$data" "$out/cv_predictions.csv" "$family")
  $py - "$family" "$data" "$out.metrics.json" "$start" "$end" "$peer" >> "$results" <<'PY'
import json, sys
family, data, metrics, start, end, peer = sys.argv[1:]
m = json.load(open(metrics))
print(json.dumps({"family": family, "data": data, "accuracy": m["accuracy"],
                  "evaluation_seconds": m["evaluation_seconds"],
                  "wall_seconds": float(end) - float(start), "peer": json.loads(peer)}))
PY
done

$py - "$results" "$subjects" "$k" <<'PY'
import json, os, sys
import numpy as np
results, subjects, k = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(results)]
shape = np.load(rows[0]["data"] + "/X.npy", mmap_mode="r").shape
load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"] * 3
print(f"data: {shape[0]} trials x {shape[1]} x {shape[2]} (synthetic subjects {subjects}, session T, "
      f"left/right), {k}-fold CV, the same folds for bciops and the peer")
print(f"machine: {os.cpu_count()} cores, load average {' '.join(load)}")
print(f"{'family':10} {'bciops acc':>10} {'peer acc':>9} {'agree':>7} {'bciops eval s':>14} "
      f"{'bciops wall s':>14} {'peer CV s':>10} {'peer/eval':>10} {'peer/wall':>10}")
for r in rows:
    p = r["peer"]
    print(f"{r['family']:10} {r['accuracy']*100:9.2f}% {p['accuracy']*100:8.2f}% "
          f"{p['agreement']*100:6.1f}% {r['evaluation_seconds']:14.4f} {r['wall_seconds']:14.3f} "
          f"{p['seconds']:10.3f} {p['seconds']/r['evaluation_seconds']:9.1f}x "
          f"{p['seconds']/r['wall_seconds']:9.1f}x")
PY
