#!/usr/bin/env bash
# Data stages shared by every recipe (serial outlier exposure, DG-Mix, baseline):
#   stage 0: data      the built-in synthetic set, or download of the real DCASE 2022 data
#   stage 1: dump      validate + normalise every clip, write memory-mapped arrays + manifest
#   stage 2: lists     train / valid / test lists of each machine type

stage=0                # first stage to run
stop_stage=2           # last stage to run
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
data=synthetic         # synthetic (built-in) or dcase2022 (real data)
synthetic_size=small   # tiny, small or full (synthetic data only)
synthetic_seed=0       # seed of the synthetic set
data_root=             # DCASE 2022 layout folder (default: data/<data name>)
download_dir=downloads # where real archives are kept
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name> (unused here; shared naming)
valid_ratio=0.15       # share of source training clips held out for validation
fold_rule=int          # folds of that split (first fold = validation): int = int(1/valid_ratio) as the original (0.15: 6 folds, 16.7 %), round = round(1/valid_ratio) (0.15: 7 folds, 14.3 %)
split_seed=0           # seed of the train/valid split
nj=2                   # parallel jobs for data generation
outlier_pool=          # external outlier exposure: a folder of WAV files, or "synthetic" (built-in sounds)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="0-2"
help_message="Usage: $0 [options]  (the data stages shared by every recipe)"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. utils/data_dirs.sh
case "${fold_rule}" in
    int | round) ;;
    *) echo "$0: --fold_rule must be 'int' or 'round', not '${fold_rule}'" >&2; exit 1 ;;
esac
. ./path.sh
. ./cmd.sh
. utils/force.sh

if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
    if [ "${data}" = synthetic ]; then
        log "Stage 0: built-in synthetic data (${synthetic_size}) -> ${data_root} (log: ${data_root}/make_synthetic.log)"
        mkdir -p "${data_root}"
        ${train_cmd} "${data_root}/make_synthetic.log" python -m asd_tools.bin.make_synthetic \
            --root "${data_root}" --size "${synthetic_size}" --machines "${machines}" \
            --seed "${synthetic_seed}" --jobs "${nj}"
    else
        log "Stage 0: DCASE 2022 download -> ${download_dir}, unpacked into ${data_root}"
        local/download_data.sh --machines "${machines}" --download_dir "${download_dir}" --data_root "${data_root}"
    fi
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    log "Stage 1: dump ${data_root} -> ${dumpdir} (log: ${dumpdir}/dump.log)"
    mkdir -p "${dumpdir}"
    ${train_cmd} "${dumpdir}/dump.log" python -m asd_tools.bin.dump \
        --data_root "${data_root}" --dumpdir "${dumpdir}" --machines "${machines}" "${force_flag[@]}"
    if [ -n "${outlier_pool}" ]; then
        if [ "${outlier_pool}" = synthetic ]; then
            pool_args=(--folder "${data_root}/outlier_pool" --synthetic 40)
        else
            pool_args=(--folder "${outlier_pool}")
        fi
        log "Stage 1: outlier pool -> ${dumpdir}/outlier_pool (log: ${dumpdir}/dump_pool.log)"
        ${train_cmd} "${dumpdir}/dump_pool.log" python -m asd_tools.bin.dump_pool "${pool_args[@]}" --dumpdir "${dumpdir}" \
            "${force_flag[@]}"
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "Stage 2: train/valid/test lists in ${dumpdir}/<machine>/lists (log: ${dumpdir}/lists.log)"
    ${train_cmd} "${dumpdir}/lists.log" python -m asd_tools.bin.make_lists \
        --dumpdir "${dumpdir}" --machines "${machines}" --valid_ratio "${valid_ratio}" --fold_rule "${fold_rule}" \
        --seed "${split_seed}" "${force_flag[@]}"
fi
