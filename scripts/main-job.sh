#!/usr/bin/env bash
# The main job: the embedded default pipeline end to end (`bciops pipeline run`, no config):
# synthetic BCI IV 2a-like recordings → epochs dataset → CSP + SVM model evaluated with the
# competition protocol (fit on session T, test on E) → compare with the champion in the local
# registry (./bciops-store) and register it → deploy (the `champion` alias moves; a server
# following `models:/bciops-mi@champion` picks it up). No service and no download. Steps'
# outputs go to work/pipeline; a second run reuses the unchanged steps. Extra arguments go to
# `bciops pipeline run` (e.g. `--set mode=tune`, `--no-cache`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/bciops"
"$bin" pipeline run "$@"
