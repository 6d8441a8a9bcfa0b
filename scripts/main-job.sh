#!/usr/bin/env bash
# The main job on the embedded default, end to end: synthetic BCI IV 2a-like recordings →
# epochs dataset → CSP + SVM model evaluated with the competition protocol (train on session T,
# test on session E) → predictions. No service and no download. Outputs go to ./work (or
# $BCIOPS_WORK).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BCIOPS_WORK:-work}
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
$bin synth --out "$work/raw" --subjects 1-3
$bin preprocess --input "$work/raw" --out "$work/epochs"
$bin train --data "$work/epochs" --out "$work/model" --eval session
$bin predict --model "$work/model" --data "$work/epochs" --out "$work/predictions.json"
echo "done: dataset in $work/epochs, model and report in $work/model (open $work/model/report.html)" >&2
