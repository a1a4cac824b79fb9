#!/usr/bin/env bash
# Download, verify and unpack one year's DCASE Task 2 archives (development, additional
# training, evaluation test) and its published ground truth. Resumable; archives are kept.

data=dcase2022         # the year: dcase2020 ... dcase2025
machines=              # machine types (default: every one of the year)
download_dir=downloads # archives are kept here (never deleted)
data_root=             # unpacked layout: dev/, eval/, ground_truth/ (default: data/<data>)
sets="dev eval_train eval_test"  # which archives
zenodo_url=https://zenodo.org/record  # base URL of the Zenodo records
ground_truth_url=      # base URL of the ground truth (default: the year's, from the registry)
timeout=30             # seconds to wait for a server

help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh
machines=${machines:-$(python -m asd_tools.bin.layout --layout "${data}" --machines)}
data_root=${data_root:-data/${data}}

mkdir -p "${download_dir}"
log "Downloading ${sets} for ${machines} (log: ${download_dir}/download.log)"
# The progress bars go to the terminal; the log keeps everything.
gt_args=()
[ -n "${ground_truth_url}" ] && gt_args=(--ground_truth_url "${ground_truth_url}")
# shellcheck disable=SC2086  # ${sets} is a list of words
python -m asd_tools.bin.download --layout "${data}" --machines "${machines}" --download_dir "${download_dir}" \
    --data_root "${data_root}" --sets ${sets} --zenodo_url "${zenodo_url}" "${gt_args[@]}" \
    --timeout "${timeout}" --log "${download_dir}/download.log"
