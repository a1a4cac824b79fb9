#!/usr/bin/env bash
# Stages 3-5 of ./asd.sh for ONE machine type (the seed recipe's per-machine script):
#   stage 3: train the feature extractor         -> exp/<data>/<machine>/<tag>/checkpoint-*.pt
#   stage 4: embeddings per checkpoint            -> .../<checkpoint>/{inlier,test}.npz
#   stage 5: detectors per checkpoint             -> .../<checkpoint>/scores.csv
# Every other option (--machines: all machine types, the others being negatives; --conf, --data, ...) is asd.sh's.

stage=3                # first stage to run
stop_stage=5           # last stage to run
machine=fan            # the machine type to model

valid_stages="3-5"
pass_through=./asd.sh
help_message="Usage: $0 [options]  (one machine type)"
. utils/parse_options.sh
set -euo pipefail
./asd.sh --stage "${stage}" --stop_stage "${stop_stage}" "${passed_options[@]}" --only_machines "${machine}"
