#!/usr/bin/env bash
# Preprocesses the same synthetic recordings with bciops and with the Python peer (MNE-Python
# read_raw_gdf + scipy sosfiltfilt + epoching) in one run, and prints both wall times, peak
# memory and the ratio. Usage: scripts/bench/preprocess.sh [SUBJECTS]   (default 1-9)
set -euo pipefail
cd "$(dirname "$0")/../.."
subjects=${1:-1-9}
work=${BENCH_DIR:-target/bench-preprocess}
mkdir -p "$work"
scripts/setup-python.sh .venv-bench scripts/bench/requirements.txt
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
if [ ! -f "$work/raw/.done-$subjects" ]; then
  rm -rf "$work/raw"
  $bin synth --out "$work/raw" --subjects "$subjects" --quiet
  touch "$work/raw/.done-$subjects"
fi
files=$(ls "$work"/raw/*.gdf | wc -l)
size=$(du -sh "$work/raw" | cut -f1)

measure() { # label, command...: prints "seconds peak_MiB"
  local log="$work/time.log"
  /usr/bin/time -f "%e %M" -o "$log" "${@:2}" >/dev/null 2>"$work/$1.err" || { cat "$work/$1.err"; exit 1; }
  awk '{printf "%s %.0f\n", $1, $2/1024}' "$log"
}
# --no-track: the peer records no run either (tracking adds ~0.15 s: it hashes the dataset).
read -r rs_t rs_m < <(measure bciops $bin preprocess --input "$work/raw" --out "$work/rs" --quiet --no-track)
read -r py_t py_m < <(measure python .venv-bench/bin/python scripts/bench/preprocess_mne.py "$work/raw" "$work/py")

.venv-bench/bin/python - "$work" <<'PY'
import sys, numpy as np
w = sys.argv[1]
a, b = np.load(w + "/rs/X.npy"), np.load(w + "/py/X.npy")
print(f"trials: bciops {a.shape[0]}, python {b.shape[0]}")
PY
echo "data: $files GDF files ($size), subjects $subjects; machine: $(nproc) cores, $(lscpu | sed -n 's/Model name: *//p')"
printf "%-40s %8s s %8s MiB\n" "bciops preprocess" "$rs_t" "$rs_m"
printf "%-40s %8s s %8s MiB\n" "MNE read_raw_gdf + scipy sosfiltfilt" "$py_t" "$py_m"
awk -v a="$py_t" -v b="$rs_t" 'BEGIN { printf "speed-up: %.1fx\n", a / b }'
