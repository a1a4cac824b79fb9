#!/usr/bin/env bash
# Shared scoring stage: official score tables and submission files for every checkpoint of one
# experiment (tag) over all machine types -> <expdir>/all/<tag>/<checkpoint>/.

expdir=                # exp/<data>
dumpdir=               # dump folder
machines=              # machine types
tag=                   # experiment name
stage_name="Stage 2"   # how the calling recipe numbers this stage (for the log lines)

help_message="Usage: $0 --expdir DIR --dumpdir DIR --machines \"...\" --tag TAG"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh

first=${machines%% *}
checkpoints=$(find "${expdir}/${first}/${tag}" -maxdepth 2 -name scores.csv -printf '%h\n' 2>/dev/null \
    | xargs -r -n1 basename | sort -V)
if [ -z "${checkpoints}" ]; then
    echo "$0: no scores in ${expdir}/${first}/${tag}: run the detector stage first" >&2
    exit 1
fi
for checkpoint in ${checkpoints}; do
    outdir=${expdir}/all/${tag}/${checkpoint}
    log "${stage_name}: scoring ${tag}/${checkpoint} (log: ${outdir}/score.log)"
    utils/run_local.sh "${outdir}/score.log" python -m asd_tools.bin.score --dumpdir "${dumpdir}" \
        --expdir "${expdir}" --machines "${machines}" --tag "${tag}" --checkpoint "${checkpoint}"
    grep "official score" "${outdir}/score.log" || true
done
log "Results: ${expdir}/all/${tag}/<checkpoint>/score.md; submission files in .../teams/"
