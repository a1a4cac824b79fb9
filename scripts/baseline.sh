#!/usr/bin/env bash
# The simple baseline (per-clip log-mel statistics + the shared detectors), end to end: ./asd.sh with
# conf/tuning/baseline.yaml and asd.sh's stages (stage 3 only saves the config: nothing is trained;
# stage 4 computes the statistics -> exp/<data>/<machine>/baseline/features/).

conf=conf/tuning/baseline.yaml  # the baseline's config

pass_through=./asd.sh
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
./asd.sh --conf "${conf}" "${passed_options[@]}"
