#!/usr/bin/env bash
# DG-Mix (System 2), all machine types. Shares the data stages, detectors and scoring:
#   stages 0-2: prepare  (local/data.sh: data, dump, lists)
#   stage 3:    pre-train (VICReg with mixup, LARS)   -> exp/<data>/<machine>/<tag>/checkpoint-{50,100}epochs.pt
#   stage 4:    fine-tune (section KL)                -> .../checkpoint-120epochs.pt
#   stage 5:    embed: clip embeddings per checkpoint -> .../<checkpoint>/{inlier,test}.npz
#   stage 6:    infer: 1-NN per section (inlier sets "all" and "valid") -> .../<checkpoint>/scores.csv
#   stage 7:    score: official score + DG-Mix's AUC table -> exp/<data>/<set>/<tag>/<checkpoint>/score.md

stage=0                # first stage to run
stop_stage=7           # last stage to run
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
data=synthetic         # synthetic (built-in) or dcase2022 (real data)
synthetic_size=small   # tiny, small or full (synthetic data only)
data_root=             # DCASE 2022 layout folder (default: data/<data name>)
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name>
conf=conf/tuning/dgmix.original.yaml  # the DG-Mix config
tag=                   # experiment name (default: the config's file name)
device=auto            # auto (CUDA when present), cpu, cuda, cuda:N
figures=true           # false: scoring draws no figures (about half its time)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="0-7"
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. utils/data_dirs.sh
. ./path.sh
. ./cmd.sh
. utils/force.sh
tag=${tag:-$(basename "${conf}" .yaml)}

if [ "${stage}" -le 2 ]; then
    local/data.sh --stage "${stage}" --stop_stage "$((stop_stage < 2 ? stop_stage : 2))" \
        --machines "${machines}" --data "${data}" --synthetic_size "${synthetic_size}" \
        --data_root "${data_root}" --dumpdir "${dumpdir}" --force "${force}"
fi

for machine in ${machines}; do
    machine_dir=${expdir}/${machine}/${tag}
    common=(--dumpdir "${dumpdir}" --machine "${machine}" --expdir "${machine_dir}" "${force_flag[@]}")
    if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
        log "Stage 3: ${machine}: pre-training (log: ${machine_dir}/pretrain.log)"
        ${cuda_cmd} --gpu 1 "${machine_dir}/pretrain.log" python -m asd_tools.bin.train_dgmix --stage pretrain \
            --config "${conf}" "${common[@]}" --device "${device}"
    fi
    if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
        log "Stage 4: ${machine}: fine-tuning (log: ${machine_dir}/finetune.log)"
        ${cuda_cmd} --gpu 1 "${machine_dir}/finetune.log" python -m asd_tools.bin.train_dgmix --stage finetune \
            "${common[@]}" --device "${device}"
    fi
    if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
        log "Stage 5: ${machine}: clip embeddings (log: ${machine_dir}/embed.log)"
        ${cuda_cmd} --gpu 1 "${machine_dir}/embed.log" python -m asd_tools.bin.embed_dgmix "${common[@]}" \
            --device "${device}"
    fi
    if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
        local/detect.sh --machine_dir "${machine_dir}" --machine "${machine}" --dumpdir "${dumpdir}" \
            --force "${force}" --stage_name "Stage 6"
    fi
done

if [ "${stage}" -le 7 ] && [ "${stop_stage}" -ge 7 ]; then
    local/score.sh --expdir "${expdir}" --dumpdir "${dumpdir}" --machines "${machines}" --tag "${tag}" \
        --figures "${figures}" --force "${force}" --stage_name "Stage 7"
fi
