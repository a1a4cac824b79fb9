#!/usr/bin/env bash
# The domain classifier of the specialisation ensemble: System 1's model with a domain head,
# trained with source batches plus target batches (conf/tuning/asd_model.domain_classifier.yaml: as the
# original code ran it; --no domain_classifier_intended: the paper's intent).
# Its embeddings carry the per-window domain logit, which local/get_domain_classifier_weight.py
# turns into per-clip target probabilities. It is ./job.sh with that config: the same options and stages.

no=domain_classifier   # config number: conf/tuning/asd_model.<no>.yaml

pass_through=./job.sh
help_message="Usage: $0 [options]"
. utils/parse_options.sh
set -euo pipefail
./job.sh --no "${no}" "${passed_options[@]}"
