#!/usr/bin/env bash
# The train/serve difference: a model is trained on trials cut from band-passed recordings, but a
# server sees one raw trial at a time and filters it alone (from a zero state, as the original
# BentoML service did). This measures, under the competition protocol (train on session T, test
# on session E), the accuracy on E trials
#   (a) cut from the filtered recording (what training saw),
#   (b) filtered one at a time (what a server sees), with the same model,
#   (c) filtered one at a time, with a model trained on per-trial-filtered T trials
#       (`preprocess --filter-per-trial`), the mitigation bciops offers.
# Usage: scripts/bench/train_serve_skew.sh [SUBJECTS]   (default 1-9)
set -euo pipefail
cd "$(dirname "$0")/../.."
subjects=${1:-1-9}
work=${BENCH_DIR:-target/bench-skew}
mkdir -p "$work"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
q=--quiet
[ -f "$work/raw/.done-$subjects" ] || { rm -rf "$work/raw"; $bin synth --out "$work/raw" --subjects "$subjects" $q; touch "$work/raw/.done-$subjects"; }
acc() { $bin predict --model "$1" --data "$2" --json $q | sed -n 's/.*"accuracy": \([0-9.]*\).*/\1/p'; }
echo "synthetic subjects $subjects, left vs right, trained on T, tested on E (CSP + SVM defaults)"
for mode in zero-phase causal; do
  mflag=; [ $mode = causal ] && mflag=--causal
  for scope in recording trial; do
    flag=; [ $scope = trial ] && flag=--filter-per-trial
    $bin preprocess --input "$work/raw" --out "$work/T-$scope" --sessions T $flag $mflag $q 2>/dev/null
    $bin preprocess --input "$work/raw" --out "$work/E-$scope" --sessions E $flag $mflag $q 2>/dev/null
    $bin train --data "$work/T-$scope" --out "$work/model-$scope" --eval cv:5 --no-report $q 2>/dev/null
  done
  a=$(acc "$work/model-recording" "$work/E-recording" 2>/dev/null)
  b=$(acc "$work/model-recording" "$work/E-trial" 2>/dev/null)
  c=$(acc "$work/model-trial" "$work/E-trial" 2>/dev/null)
  echo "filter: Butterworth N=4 8-30 Hz, $mode"
  awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
    printf "  (a) E cut from the filtered recording, recording-trained model: %5.1f %%\n", 100*a
    printf "  (b) E filtered trial by trial,         recording-trained model: %5.1f %%  (%+.1f points)\n", 100*b, 100*(b-a)
    printf "  (c) E filtered trial by trial,         per-trial-trained model: %5.1f %%  (%+.1f points)\n", 100*c, 100*(c-a)
  }'
done
