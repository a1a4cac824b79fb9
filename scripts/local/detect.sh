#!/usr/bin/env bash
# Shared detector stage of every system: scores.csv for each checkpoint folder of one experiment.

machine_dir=           # exp/<data>/<machine>/<tag> (holds config.yaml and checkpoint-*/ embeddings)
machine=               # its machine type
dumpdir=               # dump folder
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)
stage_name="Stage 5"   # how the calling recipe numbers this stage (for the log lines)

help_message="Usage: $0 --machine_dir DIR --machine M --dumpdir DIR"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh
. ./cmd.sh
. utils/force.sh

for embeddir in "${machine_dir}"/checkpoint-*/; do
    embeddir=${embeddir%/}
    log "${stage_name}: ${machine}: detectors on $(basename "${embeddir}") (log: ${embeddir}/detect.log)"
    ${train_cmd} "${embeddir}/detect.log" python -m asd_tools.bin.detect \
        --config "${machine_dir}/config.yaml" --dumpdir "${dumpdir}" --machine "${machine}" --embeddir "${embeddir}" "${force_flag[@]}"
done
