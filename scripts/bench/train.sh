#!/usr/bin/env bash
# Cross-validated CSP + SVM training, bciops vs MNE CSP + scikit-learn SVC, on the same epochs
# and the same folds, in one run. Prints both accuracies, the share of trials whose predictions
# agree, both times and the ratio.  Usage: scripts/bench/train.sh [SUBJECTS] [K]
set -euo pipefail
cd "$(dirname "$0")/../.."
subjects=${1:-1-9}
k=${2:-5}
work=${BENCH_DIR:-target/bench-train}
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

start=$(date +%s.%N)
$bin train --data "$work/epochs" --out "$work/model" --eval "cv:$k" --no-report --quiet --json > "$work/metrics.json"
end=$(date +%s.%N)
rs_acc=$(.venv-bench/bin/python -c "import json; print(json.load(open('$work/metrics.json'))['accuracy'])")
rs_eval=$(.venv-bench/bin/python -c "import json; print(json.load(open('$work/metrics.json'))['evaluation_seconds'])")
rs_wall=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
peer=$(.venv-bench/bin/python scripts/bench/train_peer.py "$work/epochs" "$work/model/cv_predictions.csv" 4)

.venv-bench/bin/python - "$rs_acc" "$rs_eval" "$rs_wall" "$peer" "$n" "$k" "$subjects" <<'PY'
import json, os, sys
rs_acc, rs_eval, rs_wall = map(float, sys.argv[1:4])
peer = json.loads(sys.argv[4])
n, k, subjects = sys.argv[5], sys.argv[6], sys.argv[7]
print(f"data: {n} trials x 22 x 750 (synthetic subjects {subjects}, session T, left/right), {k}-fold CV, same folds")
print(f"machine: {os.cpu_count()} cores")
print(f"{'':34} {'accuracy':>9} {'CV seconds':>11}")
print(f"{'bciops train':34} {rs_acc*100:8.2f}% {rs_eval:11.3f}   (whole command {rs_wall:.2f} s)")
print(f"{'MNE CSP + sklearn SVC':34} {peer['accuracy']*100:8.2f}% {peer['seconds']:11.3f}")
print(f"accuracy difference: {abs(rs_acc - peer['accuracy'])*100:.2f} points; predictions agree on {peer['agreement']*100:.1f}% of trials")
print(f"speed-up (cross-validation): {peer['seconds'] / rs_eval:.1f}x")
PY
