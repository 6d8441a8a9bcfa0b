#!/usr/bin/env bash
# Does `bayes` (TPE) beat `random` at equal budget? Runs both on the same dataset and search
# space for several seeds (the seed also picks the folds, the same for both methods) and prints
# the best cross-validated accuracy each found, per seed and averaged.
# Usage: scripts/bench/tune_bayes_vs_random.sh [BUDGET] [SEEDS]   (defaults 20 trials, 10 seeds)
set -euo pipefail
cd "$(dirname "$0")/../.."
budget=${1:-20}
seeds=${2:-10}
work=${BENCH_DIR:-target/bench-tune}
mkdir -p "$work"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
if [ ! -d "$work/epochs" ]; then
  $bin synth --out "$work/raw" --subjects 1 --quiet
  $bin preprocess --input "$work/raw" --out "$work/epochs" --sessions T --quiet
fi
space='parameters:
  C: {distribution: log_uniform_values, min: 0.001, max: 1000}
  gamma: {distribution: log_uniform_values, min: 0.0001, max: 10}
  n_components: {distribution: int_uniform, min: 2, max: 12}
  kernel: {values: [rbf, sigmoid, linear]}
  log: {values: [true, false]}'
printf 'method: random\nmetric: {name: accuracy, goal: maximize}\n%s\n' "$space" > "$work/random.yaml"
printf 'method: bayes\nmetric: {name: accuracy, goal: maximize}\n%s\n' "$space" > "$work/bayes.yaml"
best() { grep -o '"value": [0-9.e-]*' "$1/best.json" | head -1 | awk '{print $2}'; }
printf '%-6s %10s %10s\n' seed random bayes
sum_r=0; sum_b=0; wins=0
for ((s = 1; s <= seeds; s++)); do
  for m in random bayes; do
    $bin tune --data "$work/epochs" --sweep "$work/$m.yaml" --out "$work/bvr-$m-$s" --seed "$s" \
      --max-trials "$budget" --restart --quiet --top 0 --no-track 2>/dev/null
  done
  r=$(best "$work/bvr-random-$s"); b=$(best "$work/bvr-bayes-$s")
  printf '%-6s %9.2f%% %9.2f%%\n' "$s" "$(awk -v v="$r" 'BEGIN{print v*100}')" "$(awk -v v="$b" 'BEGIN{print v*100}')"
  sum_r=$(awk -v a="$sum_r" -v v="$r" 'BEGIN{print a+v}'); sum_b=$(awk -v a="$sum_b" -v v="$b" 'BEGIN{print a+v}')
  wins=$(awk -v w="$wins" -v r="$r" -v b="$b" 'BEGIN{print w + (b > r)}')
done
awk -v r="$sum_r" -v b="$sum_b" -v n="$seeds" -v w="$wins" -v k="$budget" 'BEGIN {
  printf "mean best accuracy over %d seeds, %d trials each: random %.2f%%, bayes %.2f%% (bayes better on %d of %d seeds)\n", n, k, 100*r/n, 100*b/n, w, n }'
