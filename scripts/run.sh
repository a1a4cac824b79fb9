#!/usr/bin/env bash
# Serial outlier exposure for ONE machine type (called by job.sh for each machine type):
#   stage 3: train the feature extractor         -> exp/<data>/<machine>/<tag>/checkpoint-*.pt
#   stage 4: embeddings per checkpoint            -> .../<checkpoint>/{inlier,test}.npz
#   stage 5: detectors per checkpoint             -> .../<checkpoint>/scores.csv

stage=3                # first stage to run
stop_stage=5           # last stage to run
machine=fan            # the machine type to model
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # all machine types (others are negatives)
conf=conf/tuning/asd_model.cpu.yaml  # the system's config
tag=                   # experiment name (default: the config's file name)
dumpdir=dump/synthetic_small  # dump folder (stage 1 output)
expdir=exp/synthetic_small    # experiment root
device=auto            # auto (CUDA when present), cpu, cuda, cuda:N
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="3-5"
help_message="Usage: $0 [options]  (one machine type)"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh
. ./cmd.sh
. utils/force.sh
tag=${tag:-$(basename "${conf}" .yaml)}
machine_dir=${expdir}/${machine}/${tag}

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    log "Stage 3: ${machine}: training ${tag} (log: ${machine_dir}/train.log)"
    ${cuda_cmd} --gpu 1 "${machine_dir}/train.log" python -m asd_tools.bin.train \
        --config "${conf}" --dumpdir "${dumpdir}" --machine "${machine}" --machines "${machines}" \
        --expdir "${machine_dir}" --device "${device}" "${force_flag[@]}"
fi

if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
    log "Stage 4: ${machine}: embeddings for every checkpoint (log: ${machine_dir}/embed.log)"
    ${cuda_cmd} --gpu 1 "${machine_dir}/embed.log" python -m asd_tools.bin.embed \
        --dumpdir "${dumpdir}" --machine "${machine}" --expdir "${machine_dir}" --device "${device}" "${force_flag[@]}"
fi

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    local/detect.sh --machine_dir "${machine_dir}" --machine "${machine}" --dumpdir "${dumpdir}" --force "${force}"
fi
