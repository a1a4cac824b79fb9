#!/usr/bin/env bash
# The official DCASE autoencoder baseline, end to end: ./asd.sh with conf/tuning/dcase_ae.yaml (2023-2026 code:
# one model per machine type; conf/tuning/dcase_ae.legacy.yaml: their 2020-2022 scripts, one per section).
# Stage 3 trains the autoencoder(s) -> exp/<data>/<machine>/<tag>/autoencoder.pt; stage 4 computes each clip's
# MSE and MAHALA scores; stages 5-6 pass them through the shared detector stage and scoring.

conf=conf/tuning/dcase_ae.yaml  # the system's config

pass_through=./asd.sh
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
./asd.sh --conf "${conf}" "${passed_options[@]}"
