#!/usr/bin/env bash
# Serial outlier exposure (System 1) with the seed recipe's command line: ./asd.sh with
# conf/tuning/asd_model.<no>.yaml and job.sh's own stage numbers:
#   stage 1: asd.sh stages --start_stage to --end_stage (0 data, 1 dump, 2 lists, 3 train, 4 embed, 5 detect)
#   stage 2: asd.sh stage 6: official scoring of every checkpoint over all machine types, best post-process on
#            the development set, submission files -> exp/<data>/<set>/<tag>/<checkpoint>/ (<set>: "all"
#            for every machine type, "only_<a>+<b>" for a subset)
# Every other option (--machines, --data, --conf, --device, --force, ...) is asd.sh's.

stage=1                # first job stage (1: data + models, 2: scoring)
stop_stage=2           # last job stage
start_stage=0          # first run stage inside job stage 1
end_stage=5            # last run stage inside job stage 1
no=cpu                 # config number: conf/tuning/asd_model.<no>.yaml (000 = original recipe)
conf=                  # config file (default: conf/tuning/asd_model.<no>.yaml)

valid_stages="1-2"
valid_run_stages="0-5"
pass_through=./asd.sh
help_message="Usage: $0 [options]   e.g. $0 --no 000 --data dcase2022 --machines \"fan valve\""
. utils/parse_options.sh
set -euo pipefail
conf=${conf:-conf/tuning/asd_model.${no}.yaml}

# Job stage 1 is asd.sh's stages start_stage..end_stage, job stage 2 its stage 6: one call when they meet.
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 2 ] && [ "${end_stage}" -eq 5 ]; then
    ranges=("${start_stage} 6")
else
    ranges=()
    [ "${stage}" -le 1 ] && ranges+=("${start_stage} ${end_stage}")
    [ "${stop_stage}" -ge 2 ] && ranges+=("6 6")
fi
for range in "${ranges[@]}"; do
    read -r first last <<< "${range}"
    ./asd.sh --conf "${conf}" --stage "${first}" --stop_stage "${last}" "${passed_options[@]}"
done
