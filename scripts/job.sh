#!/usr/bin/env bash
# Serial outlier exposure (System 1), all machine types:
#   stage 1: data stages 0-2 (local/data.sh), then run.sh stages 3-5 for each machine type
#            (from --start_stage to --end_stage: 0 data, 1 dump, 2 lists, 3 train, 4 embed, 5 detect)
#   stage 2: official scoring of every checkpoint over all machine types, best post-process on
#            the development set, submission files -> exp/<data>/<set>/<tag>/<checkpoint>/ (<set>: "all"
#            for every machine type, "only_<a>+<b>" for a subset)

stage=1                # first job stage (1: data + models, 2: scoring)
stop_stage=2           # last job stage
start_stage=0          # first run stage inside job stage 1
end_stage=5            # last run stage inside job stage 1
no=cpu                 # config number: conf/tuning/asd_model.<no>.yaml (000 = original recipe)
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
data=synthetic         # synthetic (built-in) or dcase2022 (real data)
synthetic_size=small   # tiny, small or full (synthetic data only)
data_root=             # DCASE 2022 layout folder (default: data/<data name>)
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name>
conf=                  # config file (default: conf/tuning/asd_model.<no>.yaml)
tag=                   # experiment name (default: the config's file name)
device=auto            # auto (CUDA when present), cpu, cuda, cuda:N
outlier_pool=          # external outlier exposure pool: a folder of WAV files or "synthetic" (audioset configs)
figures=true           # false: scoring draws no figures (about half its time)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="1-2"
valid_run_stages="0-5"
help_message="Usage: $0 [options]   e.g. $0 --no 000 --data dcase2022 --machines \"fan valve\""
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. utils/data_dirs.sh
. utils/force.sh
. ./path.sh
conf=${conf:-conf/tuning/asd_model.${no}.yaml}
tag=${tag:-$(basename "${conf}" .yaml)}
if [ ! -f "${conf}" ]; then echo "$0: config ${conf} does not exist (see conf/tuning/)" >&2; exit 1; fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    if [ "${start_stage}" -le 2 ]; then
        local/data.sh --stage "${start_stage}" --stop_stage "$((end_stage < 2 ? end_stage : 2))" \
            --machines "${machines}" --data "${data}" --synthetic_size "${synthetic_size}" \
            --data_root "${data_root}" --dumpdir "${dumpdir}" --outlier_pool "${outlier_pool}" --force "${force}"
    fi
    if [ "${end_stage}" -ge 3 ]; then
        for machine in ${machines}; do
            ./run.sh --stage "$((start_stage > 3 ? start_stage : 3))" --stop_stage "${end_stage}" \
                --machine "${machine}" --machines "${machines}" --conf "${conf}" --tag "${tag}" \
                --dumpdir "${dumpdir}" --expdir "${expdir}" --device "${device}" --force "${force}"
        done
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    local/score.sh --expdir "${expdir}" --dumpdir "${dumpdir}" --machines "${machines}" --tag "${tag}" \
        --figures "${figures}" --force "${force}"
fi
