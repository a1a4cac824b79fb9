#!/usr/bin/env bash
# The simple baseline, end to end: log-mel statistics per clip + per-section detectors.
#   stages 0-2: shared data stages (local/data.sh)
#   stage 3:    log-mel statistics of inlier and test clips     -> exp/<data>/<machine>/<tag>/features/
#   stage 4:    shared detector stage                          -> .../features/scores.csv
#   stage 5:    official scoring over the machine types         -> exp/<data>/<set>/<tag>/features/score.md

stage=0                # first stage to run
stop_stage=5           # last stage to run
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
data=synthetic         # synthetic (built-in) or dcase2022 (real data)
synthetic_size=small   # tiny, small or full (synthetic data only)
data_root=             # DCASE 2022 layout folder (default: data/<data name>)
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name>
conf=conf/tuning/baseline.yaml  # the baseline's config
tag=                   # experiment name (default: the config's file name)
figures=true           # false: scoring draws no figures (about half its time)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="0-5"
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
    if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
        log "Stage 3: ${machine}: log-mel statistics (log: ${machine_dir}/features.log)"
        ${train_cmd} "${machine_dir}/features.log" python -m asd_tools.bin.embed_baseline \
            --config "${conf}" --dumpdir "${dumpdir}" --machine "${machine}" --expdir "${machine_dir}" \
            "${force_flag[@]}"
    fi
    if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
        log "Stage 4: ${machine}: detectors (log: ${machine_dir}/features/detect.log)"
        ${train_cmd} "${machine_dir}/features/detect.log" python -m asd_tools.bin.detect \
            --config "${machine_dir}/config.yaml" --dumpdir "${dumpdir}" --machine "${machine}" \
            --embeddir "${machine_dir}/features" "${force_flag[@]}"
    fi
done

if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
    local/score.sh --expdir "${expdir}" --dumpdir "${dumpdir}" --machines "${machines}" --tag "${tag}" \
        --figures "${figures}" --force "${force}" --stage_name "Stage 5"
fi
