#!/usr/bin/env bash
# Shared scoring stage: official score tables and submission files for every checkpoint of one
# experiment (tag) over the given machine types -> <expdir>/<set>/<tag>/<checkpoint>/, where <set>
# is "all" for every machine type and "only_<a>+<b>" for a subset (never mixed in one folder).
# Evaluation labels are read from the ground truth now, so labels published later need no re-dump.

expdir=                # exp/<data>
dumpdir=               # dump folder
machines=              # machine types
tag=                   # experiment name
ground_truth_dir=      # evaluator ground truth (default: <data root>/ground_truth of the dump)
figures=true           # false: leave the figures (ROC, histograms, t-SNE, training curves) out of report.md; about half the time
force=false            # true: re-score even when the tables are current
stage_name="Stage 2"   # how the calling recipe numbers this stage (for the log lines)

help_message="Usage: $0 --expdir DIR --dumpdir DIR --machines \"...\" --tag TAG"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh
. ./cmd.sh

args=(--expdir "${expdir}" --dumpdir "${dumpdir}" --machines "${machines}" --tag "${tag}")
# The results folder depends on the machine set: asked of the scorer, which also checks the names.
results=$(python -m asd_tools.bin.score "${args[@]}" --where)
[ -n "${ground_truth_dir}" ] && args+=(--ground_truth_dir "${ground_truth_dir}")
[ "${force}" = true ] && args+=(--force)
args+=(--figures "${figures}")
log "${stage_name}: scoring every checkpoint of ${tag} (log: ${results}/score.log)"
${train_cmd} "${results}/score.log" python -m asd_tools.bin.score "${args[@]}"  # prints one line per checkpoint
log "Results: ${results}/<checkpoint>/score.md; submission files in .../teams/"
