#!/usr/bin/env bash
# The domain classifier of the specialisation ensemble: System 1's model with a domain head,
# trained with source batches plus target batches (conf/tuning/asd_model.domain_classifier.yaml: as the
# original code ran it; --no domain_classifier_intended: the paper's intent).
# Its embeddings carry the per-window domain logit, which local/get_domain_classifier_weight.py
# turns into per-clip target probabilities. Stages as in job.sh (it calls job.sh with this config).

no=domain_classifier   # config number: conf/tuning/asd_model.<no>.yaml
machines="bearing fan gearbox slider ToyCar ToyTrain valve"  # machine types
data=synthetic         # synthetic (built-in) or dcase2022 (real data)
synthetic_size=small   # tiny, small or full (synthetic data only)
data_root=             # DCASE 2022 layout folder (default: data/<data name>)
dumpdir=               # default: dump/<data name>
expdir=                # default: exp/<data name>
stage=1                # first job stage (1: data + model stages, 2: scoring)
stop_stage=2           # last job stage
start_stage=0          # first run stage (0 data ... 5 detect)
device=auto            # auto (CUDA when present), cpu, cuda, cuda:N
figures=true           # false: scoring draws no figures (about half its time)
force=false            # true: redo every stage even when its record says it is current (a trained model is moved aside)

valid_stages="1-2"
valid_run_stages="0-5"
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail

./job.sh --stage "${stage}" --stop_stage "${stop_stage}" --no "${no}" --machines "${machines}" --data "${data}" --synthetic_size "${synthetic_size}" \
    --data_root "${data_root}" --dumpdir "${dumpdir}" --expdir "${expdir}" --start_stage "${start_stage}" \
    --device "${device}" --figures "${figures}" --force "${force}"
