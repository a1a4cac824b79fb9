#!/usr/bin/env bash
# DG-Mix (System 2), end to end: ./asd.sh with a DG-Mix config and asd.sh's stages:
#   stage 3: pre-training (VICReg with mixup, LARS), then fine-tuning (section KL)
#            -> exp/<data>/<machine>/<tag>/checkpoint-{50,100,120}epochs.pt (fine-tuning's state in finetune/)
#   stage 4: clip embeddings (mean of the 2 s windows) per checkpoint of embed.checkpoints
#   stage 5: 1-NN per section (inlier sets "all" and "valid"); stage 6 adds DG-Mix's AUC table to the score

conf=conf/tuning/dgmix.original.yaml  # the DG-Mix config (original: as the code ran; intended: its bugs fixed)

pass_through=./asd.sh
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
./asd.sh --conf "${conf}" "${passed_options[@]}"
