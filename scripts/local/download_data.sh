#!/usr/bin/env bash
# Download, verify and unpack the DCASE 2022 Task 2 archives (development, additional
# training, evaluation test) and the evaluator's ground truth. Resumable; archives are kept.

machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
download_dir=downloads # archives are kept here (never deleted)
data_root=data/dcase2022  # unpacked layout: dev/, eval/, ground_truth/
sets="dev eval_train eval_test"  # which archives
zenodo_url=https://zenodo.org/record  # base URL of the Zenodo records
ground_truth_url=https://raw.githubusercontent.com/Kota-Dohi/dcase2022_evaluator/main  # evaluator files
timeout=30             # seconds to wait for a server

help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
. utils/log.sh
. ./path.sh

mkdir -p "${download_dir}"
log "Downloading ${sets} for ${machines} (log: ${download_dir}/download.log)"
# The progress bars go to the terminal; the log keeps everything.
# shellcheck disable=SC2086  # ${sets} is a list of words
python -m asd_tools.bin.download --machines "${machines}" --download_dir "${download_dir}" \
    --data_root "${data_root}" --sets ${sets} --zenodo_url "${zenodo_url}" \
    --ground_truth_url "${ground_truth_url}" --timeout "${timeout}" --log "${download_dir}/download.log"
